//! SPDY/3 header blocks: name/value pairs, and the zlib stream they travel in.
//!
//! A block is `count (u32)`, then per pair `name length (u32)`, name, `value length (u32)`,
//! value, with several values of one name joined by NUL (spdystream's
//! `writeHeaderValueBlock`/`parseHeaderValueBlock`). Names are lower case and appear once;
//! spdystream refuses a block that breaks either rule, and so does [`decode`].
//!
//! Every block of a connection, in one direction, goes through **one** zlib stream primed with
//! [`HEADER_DICTIONARY`], sync-flushed after each block: a [`Compressor`] per writer, a
//! [`Decompressor`] per reader, fed every block in order (a reader that skips one cannot read
//! the next). A decompressed block is bounded, so a few bytes of zlib cannot grow into
//! gigabytes here.

use super::SpdyError;
use super::dictionary::HEADER_DICTIONARY;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The most a decompressed header block may hold. kubectl's blocks are about 60 bytes.
pub const MAX_BLOCK: usize = 64 << 10;

/// Header pairs in the order they came, names lower case, each value list non-empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, Vec<String>)>);

impl Headers {
    /// The first value of `name` (lower case), as Go's `http.Header.Get` reads it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.first())
            .map(String::as_str)
    }

    /// Headers of single values, for writing.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Headers {
        Headers(
            pairs
                .into_iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), vec![v.to_string()]))
                .collect(),
        )
    }
}

fn be32(b: &[u8], at: &mut usize) -> Result<usize, SpdyError> {
    let s = b.get(*at..*at + 4).ok_or(SpdyError::Truncated)?;
    *at += 4;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

fn bytes<'a>(b: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], SpdyError> {
    let s = b
        .get(*at..at.saturating_add(n))
        .ok_or(SpdyError::Truncated)?;
    *at += n;
    Ok(s)
}

/// Reads an uncompressed block. It must be read whole: bytes after the last pair are refused
/// (spdystream's `WrongCompressedPayloadSize`).
pub fn decode(block: &[u8]) -> Result<Headers, SpdyError> {
    let mut at = 0;
    let count = be32(block, &mut at)?;
    // Each pair takes at least 8 bytes: a count past that is a lie, refused before allocating.
    if count > block.len() / 8 {
        return Err(SpdyError::Truncated);
    }
    let mut pairs: Vec<(String, Vec<String>)> = Vec::with_capacity(count);
    for _ in 0..count {
        let n = be32(block, &mut at)?;
        let name = std::str::from_utf8(bytes(block, &mut at, n)?)
            .map_err(|_| SpdyError::BadHeader("a header name is not UTF-8".into()))?;
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(SpdyError::BadHeader(format!(
                "header name {name:?} is not lower case"
            )));
        }
        if pairs.iter().any(|(p, _)| p == name) {
            return Err(SpdyError::BadHeader(format!(
                "header {name:?} appears twice"
            )));
        }
        let n = be32(block, &mut at)?;
        let value = std::str::from_utf8(bytes(block, &mut at, n)?).map_err(|_| {
            SpdyError::BadHeader(format!("the value of header {name:?} is not UTF-8"))
        })?;
        pairs.push((
            name.to_string(),
            value.split('\0').map(str::to_string).collect(),
        ));
    }
    if at != block.len() {
        return Err(SpdyError::BadHeader(format!(
            "{} bytes follow the last header",
            block.len() - at
        )));
    }
    Ok(Headers(pairs))
}

/// Writes an uncompressed block.
pub fn encode(headers: &Headers) -> Vec<u8> {
    let mut out = (headers.0.len() as u32).to_be_bytes().to_vec();
    for (name, values) in &headers.0 {
        let value = values.join("\0");
        out.extend_from_slice(&(name.len() as u32).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// One direction's header compressor (best compression, as spdystream's).
pub struct Compressor {
    z: Compress,
}

impl Default for Compressor {
    fn default() -> Self {
        Compressor::new()
    }
}

impl Compressor {
    pub fn new() -> Compressor {
        let mut z = Compress::new(Compression::best(), true);
        // Only fails for a stream already started: this one is new.
        let _ = z.set_dictionary(HEADER_DICTIONARY);
        Compressor { z }
    }

    /// Compresses `headers` as the next block of this stream, sync-flushed.
    pub fn compress(&mut self, headers: &Headers) -> Vec<u8> {
        let input = encode(headers);
        let mut out = Vec::with_capacity(input.len() + 64);
        let mut consumed = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let before = self.z.total_in();
            let result = self
                .z
                .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync);
            consumed += (self.z.total_in() - before) as usize;
            // A sync flush is complete once the input is in and room was left over; deflate
            // on memory fails only for a stream used wrongly, which this one cannot be.
            if result.is_err() || (consumed == input.len() && out.len() < out.capacity()) {
                return out;
            }
        }
    }
}

/// One direction's header decompressor.
pub struct Decompressor {
    z: Decompress,
}

impl Default for Decompressor {
    fn default() -> Self {
        Decompressor::new()
    }
}

impl Decompressor {
    pub fn new() -> Decompressor {
        Decompressor {
            z: Decompress::new(true),
        }
    }

    /// Decompresses the next block of this stream (the whole of it must be used) and reads it.
    pub fn headers(&mut self, compressed: &[u8]) -> Result<Headers, SpdyError> {
        decode(&self.decompress(compressed)?)
    }

    /// Decompresses the next block of this stream; at most [`MAX_BLOCK`] bytes come out.
    pub fn decompress(&mut self, compressed: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(256);
        let mut consumed = 0;
        loop {
            if out.len() > MAX_BLOCK {
                return Err(SpdyError::BlockTooLarge(MAX_BLOCK));
            }
            if out.capacity() - out.len() < 256 {
                out.reserve(out.capacity().max(256));
            }
            let (before_in, before_out) = (self.z.total_in(), out.len());
            let result =
                self.z
                    .decompress_vec(&compressed[consumed..], &mut out, FlushDecompress::Sync);
            consumed += (self.z.total_in() - before_in) as usize;
            match result {
                Err(e) if e.needs_dictionary().is_some() => self
                    .z
                    .set_dictionary(HEADER_DICTIONARY)
                    .map(|_| ())
                    .map_err(|e| SpdyError::Compression(e.to_string()))?,
                Err(e) => return Err(SpdyError::Compression(e.to_string())),
                Ok(Status::StreamEnd) => {
                    return Err(SpdyError::Compression(
                        "the header stream ended, which SPDY never does".into(),
                    ));
                }
                Ok(_) if consumed == compressed.len() && out.len() < out.capacity() => {
                    return Ok(out);
                }
                Ok(_) if consumed == compressed.len() || out.len() > before_out => {}
                // Input left, and inflate took none of it nor wrote anything.
                Ok(_) => {
                    return Err(SpdyError::Compression(
                        "the header block does not inflate".into(),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubectl_headers(stream_type: &str, request: &str) -> Headers {
        Headers::from_pairs([
            ("streamType", stream_type),
            ("port", "80"),
            ("requestID", request),
        ])
    }

    #[test]
    fn blocks_round_trip_through_one_stream_per_direction() {
        let mut c = Compressor::new();
        let mut d = Decompressor::new();
        for i in 0..50 {
            let h = kubectl_headers(if i % 2 == 0 { "error" } else { "data" }, &i.to_string());
            let block = c.compress(&h);
            // A sync flush ends every block.
            assert!(block.ends_with(&[0, 0, 0xff, 0xff]), "{block:?}");
            assert_eq!(d.headers(&block).expect("readable"), h);
        }
        let empty = c.compress(&Headers::default());
        assert_eq!(d.headers(&empty).unwrap(), Headers::default());
    }

    #[test]
    fn the_first_block_names_the_spdy3_dictionary() {
        let block = Compressor::new().compress(&kubectl_headers("error", "0"));
        // zlib header with FDICT set, then the Adler-32 of the dictionary.
        assert_eq!(block[0], 0x78);
        assert_ne!(block[1] & 0x20, 0, "FDICT");
        assert_eq!(&block[2..6], &[0xe3, 0xc6, 0xa7, 0xc2]);
    }

    #[test]
    fn blocks_spdystream_refuses_are_refused() {
        let block = |pairs: &[(&str, &str)]| {
            let mut out = (pairs.len() as u32).to_be_bytes().to_vec();
            for (n, v) in pairs {
                out.extend_from_slice(&(n.len() as u32).to_be_bytes());
                out.extend_from_slice(n.as_bytes());
                out.extend_from_slice(&(v.len() as u32).to_be_bytes());
                out.extend_from_slice(v.as_bytes());
            }
            out
        };
        assert!(matches!(
            decode(&block(&[("Port", "80")])),
            Err(SpdyError::BadHeader(_))
        ));
        assert!(matches!(
            decode(&block(&[("port", "80"), ("port", "81")])),
            Err(SpdyError::BadHeader(_))
        ));
        let mut trailing = block(&[("port", "80")]);
        trailing.push(0);
        assert!(matches!(decode(&trailing), Err(SpdyError::BadHeader(_))));
        assert_eq!(decode(&[0, 0, 0, 9]), Err(SpdyError::Truncated));
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
            Err(SpdyError::Truncated)
        );
        let multi = decode(&block(&[("x", "a\0b")])).unwrap();
        assert_eq!(multi.0[0].1, ["a", "b"]);
    }

    #[test]
    fn garbage_and_bombs_are_refused() {
        assert!(matches!(
            Decompressor::new().decompress(b"not zlib at all"),
            Err(SpdyError::Compression(_))
        ));
        // A block that inflates past the bound.
        let mut c = Compressor::new();
        let huge = Headers::from_pairs([("x", "a".repeat(MAX_BLOCK * 2).as_str())]);
        let block = c.compress(&huge);
        assert!(block.len() < 4096, "compresses well: {}", block.len());
        assert_eq!(
            Decompressor::new().decompress(&block),
            Err(SpdyError::BlockTooLarge(MAX_BLOCK))
        );
    }
}
