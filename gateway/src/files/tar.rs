//! The few tar rules a one-file copy needs, as pure functions: the archive podgate writes into
//! a container's `tar -xmf -` (one regular file: a ustar header, a pax `path` record first
//! when the name does not fit), and the first entry of what a container's `tar cf -` writes
//! (ustar, GNU and pax headers, as GNU tar and BusyBox produce them).

/// A tar block.
pub const BLOCK: usize = 512;
/// tar's default record (20 blocks): writers pad the archive to a whole one.
pub const RECORD: usize = 20 * BLOCK;
/// The most an extended header (pax or GNU long name) may hold before podgate refuses it.
pub const MAX_EXTENSION: u64 = 64 << 10;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TarError {
    #[error("the tar header's checksum does not match: this is not a tar archive")]
    Checksum,
    #[error("the tar header's {0} field is not a number")]
    Number(&'static str),
    #[error("an extended tar header of {0} bytes is larger than podgate reads")]
    ExtensionTooLarge(u64),
    #[error("a pax extended header is malformed")]
    Pax,
    #[error("a file name must not be empty nor contain '/' or NUL")]
    Name,
}

/// What kind of entry a header names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Regular,
    Directory,
    Symlink,
    HardLink,
    /// Devices, FIFOs and the like: the typeflag byte.
    Other(u8),
}

impl Kind {
    fn of(typeflag: u8) -> Kind {
        match typeflag {
            b'0' | 0 | b'7' => Kind::Regular,
            b'5' => Kind::Directory,
            b'2' => Kind::Symlink,
            b'1' => Kind::HardLink,
            other => Kind::Other(other),
        }
    }
}

/// An archive member's header, with its extensions applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    /// Bytes of content that follow the header (then padding to a whole block).
    pub size: u64,
    /// A link's target.
    pub link: String,
}

/// The archive holding one regular file `name` (no directory part) of `size` bytes: its
/// header blocks. The content follows, then [`trailer`].
pub fn file_header(name: &str, size: u64, mtime: u64) -> Result<Vec<u8>, TarError> {
    if name.is_empty() || name.contains('/') || name.contains('\0') || name == "." || name == ".." {
        return Err(TarError::Name);
    }
    let mut out = Vec::with_capacity(3 * BLOCK);
    let mut records = String::new();
    if name.len() > 100 {
        records.push_str(&pax_record("path", name));
    }
    // ustar's size field holds 11 octal digits (8 GiB - 1).
    let size_fits = size < (1 << 33);
    if !size_fits {
        records.push_str(&pax_record("size", &size.to_string()));
    }
    if !records.is_empty() {
        let short = truncate(name, 80);
        out.extend(header_block(
            &format!("PaxHeaders/{short}"),
            records.len() as u64,
            mtime,
            b'x',
            0o644,
        ));
        out.extend_from_slice(records.as_bytes());
        out.resize(out.len() + padding(records.len() as u64), 0);
    }
    out.extend(header_block(
        truncate(name, 100),
        if size_fits { size } else { 0 },
        mtime,
        b'0',
        0o644,
    ));
    Ok(out)
}

/// What follows `size` bytes of content: its padding, the two zero blocks that end an
/// archive, and zeros to the end of the record, so a reader that reads whole records never
/// waits for more. `header_len` is what [`file_header`] gave.
pub fn trailer(header_len: usize, size: u64) -> Vec<u8> {
    let pad = padding(size);
    let so_far = (header_len as u64 + size + pad as u64 + 2 * BLOCK as u64) % RECORD as u64;
    let to_record = if so_far == 0 {
        0
    } else {
        RECORD - so_far as usize
    };
    vec![0; pad + 2 * BLOCK + to_record]
}

/// Zeros after `size` bytes of content to the end of its last block.
pub fn padding(size: u64) -> usize {
    let rem = (size % BLOCK as u64) as usize;
    if rem == 0 { 0 } else { BLOCK - rem }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `"%d key=value\n"`, where the length counts the whole record, itself included.
fn pax_record(key: &str, value: &str) -> String {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while (body + len.to_string().len()) != len {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n")
}

fn header_block(name: &str, size: u64, mtime: u64, typeflag: u8, mode: u32) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let n = name.as_bytes();
    h[..n.len().min(100)].copy_from_slice(&n[..n.len().min(100)]);
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime.min(0o77777777777));
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let digits = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(digits.as_bytes());
    h
}

/// Writes `value` as zero-padded octal digits and a NUL filling `field`.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let digits = format!("{value:0width$o}");
    let digits = digits.as_bytes();
    let start = digits.len().saturating_sub(width);
    field[..width].copy_from_slice(&digits[start..]);
    field[width] = 0;
}

/// A numeric field: octal ASCII (spaces and NULs around it), or GNU's base-256 (high bit set).
fn number(field: &[u8], what: &'static str) -> Result<u64, TarError> {
    if let Some(&first) = field.first()
        && first & 0x80 != 0
    {
        if first & 0x40 != 0 {
            return Err(TarError::Number(what)); // negative
        }
        let mut v: u64 = u64::from(first & 0x3f);
        for &b in &field[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or(TarError::Number(what))?;
        }
        return Ok(v);
    }
    let text: &[u8] = {
        let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
        &field[..end]
    };
    let text = std::str::from_utf8(text).map_err(|_| TarError::Number(what))?;
    let text = text.trim_matches(' ');
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).map_err(|_| TarError::Number(what))
}

fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

fn checksum_ok(h: &[u8]) -> bool {
    let Ok(stored) = number(&h[148..156], "chksum") else {
        return false;
    };
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed)
}

/// Reads the first entry of an archive as its bytes arrive.
#[derive(Debug, Default)]
pub struct FirstEntry {
    buf: Vec<u8>,
    long_name: Option<String>,
    long_link: Option<String>,
    pax_path: Option<String>,
    pax_link: Option<String>,
    pax_size: Option<u64>,
}

/// What [`FirstEntry::push`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Not a whole header yet.
    More,
    /// The entry, and the bytes already received after its header (the start of its content).
    Entry(Entry, Vec<u8>),
    /// The archive ended (a zero block) before any entry.
    End,
}

impl FirstEntry {
    /// Feeds the next bytes of the archive.
    pub fn push(&mut self, data: &[u8]) -> Result<Step, TarError> {
        self.buf.extend_from_slice(data);
        loop {
            if self.buf.len() < BLOCK {
                return Ok(Step::More);
            }
            let h = &self.buf[..BLOCK];
            if h.iter().all(|&b| b == 0) {
                return Ok(Step::End);
            }
            if !checksum_ok(h) {
                return Err(TarError::Checksum);
            }
            let size = number(&h[124..136], "size")?;
            let typeflag = h[156];
            match typeflag {
                b'x' | b'g' | b'L' | b'K' => {
                    if size > MAX_EXTENSION {
                        return Err(TarError::ExtensionTooLarge(size));
                    }
                    let need = BLOCK + size as usize + padding(size);
                    if self.buf.len() < need {
                        return Ok(Step::More);
                    }
                    let body = self.buf[BLOCK..BLOCK + size as usize].to_vec();
                    match typeflag {
                        b'x' => self.pax(&body)?,
                        b'L' => self.long_name = Some(String::from_utf8_lossy(cstr(&body)).into()),
                        b'K' => self.long_link = Some(String::from_utf8_lossy(cstr(&body)).into()),
                        _ => {} // global pax headers: nothing a single file needs
                    }
                    self.buf.drain(..need);
                }
                _ => {
                    let ustar = &h[257..262] == b"ustar";
                    let mut name = String::from_utf8_lossy(cstr(&h[..100])).into_owned();
                    let prefix = cstr(&h[345..500]);
                    if ustar && !prefix.is_empty() && h[263..265] == *b"00" {
                        name = format!("{}/{name}", String::from_utf8_lossy(prefix));
                    }
                    let link = String::from_utf8_lossy(cstr(&h[157..257])).into_owned();
                    let entry = Entry {
                        name: self
                            .pax_path
                            .take()
                            .or_else(|| self.long_name.take())
                            .unwrap_or(name),
                        kind: Kind::of(typeflag),
                        size: self.pax_size.take().unwrap_or(size),
                        link: self
                            .pax_link
                            .take()
                            .or_else(|| self.long_link.take())
                            .unwrap_or(link),
                    };
                    let rest = self.buf.split_off(BLOCK);
                    self.buf.clear();
                    return Ok(Step::Entry(entry, rest));
                }
            }
        }
    }

    fn pax(&mut self, mut body: &[u8]) -> Result<(), TarError> {
        while !body.is_empty() {
            let space = body.iter().position(|&b| b == b' ').ok_or(TarError::Pax)?;
            let len: usize = std::str::from_utf8(&body[..space])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(TarError::Pax)?;
            if len <= space + 1 || len > body.len() || body[len - 1] != b'\n' {
                return Err(TarError::Pax);
            }
            let record = &body[space + 1..len - 1];
            let eq = record
                .iter()
                .position(|&b| b == b'=')
                .ok_or(TarError::Pax)?;
            let (key, value) = (&record[..eq], &record[eq + 1..]);
            let value = String::from_utf8_lossy(value).into_owned();
            match key {
                b"path" => self.pax_path = Some(value),
                b"linkpath" => self.pax_link = Some(value),
                b"size" => self.pax_size = Some(value.parse().map_err(|_| TarError::Pax)?),
                _ => {}
            }
            body = &body[len..];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(name: &str, content: &[u8]) -> Vec<u8> {
        let mut a = file_header(name, content.len() as u64, 1_700_000_000).expect("a header");
        let h = a.len();
        a.extend_from_slice(content);
        a.extend(trailer(h, content.len() as u64));
        a
    }

    fn first(bytes: &[u8], chunk: usize) -> Result<Step, TarError> {
        let mut r = FirstEntry::default();
        for c in bytes.chunks(chunk.max(1)) {
            match r.push(c)? {
                Step::More => continue,
                done => return Ok(done),
            }
        }
        Ok(Step::More)
    }

    #[test]
    fn what_podgate_writes_it_reads_back_in_any_chunking() {
        let content: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        let a = archive("data.bin", &content);
        assert_eq!(a.len() % RECORD, 0);
        for chunk in [1, 7, 512, 100_000] {
            let Step::Entry(e, rest) = first(&a, chunk).expect("parses") else {
                panic!("no entry");
            };
            assert_eq!(e.name, "data.bin");
            assert_eq!(e.kind, Kind::Regular);
            assert_eq!(e.size, 3000);
            // What arrived after the header starts the content.
            assert!(content.starts_with(&rest[..rest.len().min(3000)]));
        }
    }

    #[test]
    fn long_names_travel_in_a_pax_record() {
        let name = "é".repeat(80); // 160 bytes
        let a = archive(&name, b"x");
        let Step::Entry(e, _) = first(&a, 512).expect("parses") else {
            panic!("no entry");
        };
        assert_eq!(e.name, name);
        assert_eq!(e.size, 1);
        assert_eq!(pax_record("path", "abc"), "12 path=abc\n");
        // The length may gain a digit by counting itself.
        let r = pax_record("path", &"a".repeat(91));
        assert_eq!(r.len(), 101);
        assert!(r.starts_with("101 "));
        for n in 80..110 {
            let r = pax_record("path", &"a".repeat(n));
            assert!(r.starts_with(&format!("{} ", r.len())), "{r}");
        }
    }

    #[test]
    fn names_with_a_directory_part_are_refused() {
        for bad in ["", "a/b", ".", "..", "a\0b"] {
            assert_eq!(file_header(bad, 1, 0), Err(TarError::Name), "{bad:?}");
        }
    }

    #[test]
    fn gnu_long_names_base256_sizes_and_link_kinds_are_read() {
        let mut a = Vec::new();
        let long = "n".repeat(150);
        a.extend(header_block(
            "././@LongLink",
            long.len() as u64 + 1,
            0,
            b'L',
            0o644,
        ));
        let mut body = long.clone().into_bytes();
        body.push(0);
        body.resize(BLOCK, 0);
        a.extend(body);
        let mut h = header_block("short", 0, 0, b'2', 0o777);
        h[157..160].copy_from_slice(b"abc");
        // GNU base-256 size: 2^40.
        h[124..136].fill(0);
        h[124] = 0x80;
        h[130] = 1;
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        a.extend(h);
        let Step::Entry(e, _) = first(&a, 300).expect("parses") else {
            panic!("no entry");
        };
        assert_eq!(e.name, long);
        assert_eq!(e.kind, Kind::Symlink);
        assert_eq!(e.link, "abc");
        assert_eq!(e.size, 1 << 40);
    }

    #[test]
    fn an_empty_archive_ends_and_garbage_is_refused() {
        assert_eq!(first(&[0u8; 1024], 100), Ok(Step::End));
        assert_eq!(first(&[0u8; 100], 100), Ok(Step::More));
        let mut junk = [b'a'; BLOCK];
        junk[148..156].copy_from_slice(b"0000000\0");
        assert_eq!(first(&junk, BLOCK), Err(TarError::Checksum));
        let mut h = header_block("x", 0, 0, b'x', 0o644);
        h[124..136].copy_from_slice(b"77777777777\0");
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert!(matches!(
            first(&h, BLOCK),
            Err(TarError::ExtensionTooLarge(_))
        ));
    }

    #[test]
    fn malformed_pax_is_refused() {
        let mut r = FirstEntry::default();
        assert_eq!(r.pax(b"5 a=bc\n"), Err(TarError::Pax));
        assert_eq!(r.pax(b"x path=a\n"), Err(TarError::Pax));
        assert_eq!(r.pax(b"99 path=a\n"), Err(TarError::Pax));
        assert_eq!(r.pax(b"9 size=z\n"), Err(TarError::Pax));
        assert_eq!(r.pax(b"9 size=7\n"), Ok(()));
        assert_eq!(r.pax_size, Some(7));
    }

    #[test]
    fn trailer_pads_to_a_record() {
        for size in [0u64, 1, 511, 512, 513, 10_000, 1 << 20] {
            let h = file_header("f", size, 0).expect("a header");
            let total = h.len() as u64 + size + trailer(h.len(), size).len() as u64;
            assert_eq!(total % RECORD as u64, 0, "{size}");
            assert!(trailer(h.len(), size).len() >= 2 * BLOCK);
        }
    }

    #[test]
    fn numbers_are_octal_or_base256() {
        assert_eq!(number(b"0000644\0", "mode"), Ok(0o644));
        assert_eq!(number(b"  644 \0", "mode"), Ok(0o644));
        assert_eq!(number(b"\0\0\0", "mode"), Ok(0));
        assert_eq!(number(b"9\0", "mode"), Err(TarError::Number("mode")));
        assert_eq!(number(&[0xff, 0, 0], "size"), Err(TarError::Number("size")));
    }
}
