//! SPDY/3 frames: the 8-byte header every frame starts with, control frames read from their
//! whole payload, and every frame written whole.
//!
//! The layouts are those moby/spdystream reads and writes (`spdy/read.go`, `spdy/write.go`),
//! which is what kubectl, the kubelet and kube-apiserver run:
//!
//! ```text
//! control: |1| version (15) | type (16) | flags (8) | length (24) | payload ...
//! data:    |0| stream id (31)           | flags (8) | length (24) | payload ...
//! ```
//!
//! Header blocks inside `SYN_STREAM`, `SYN_REPLY` and `HEADERS` stay compressed here; see
//! [`super::headers`]. Pure: no IO.

use super::SpdyError;

/// The protocol version every control frame carries.
pub const VERSION: u16 = 3;
/// The size of every frame header.
pub const HEADER_LEN: usize = 8;
/// `FLAG_FIN` on data frames, `SYN_STREAM`, `SYN_REPLY` and `HEADERS`: the sender's last frame
/// on that stream (a half-close).
pub const FLAG_FIN: u8 = 0x01;
/// `SYN_STREAM`: the receiver may not send on the stream.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// The largest payload a frame's 24-bit length can say.
pub const MAX_LENGTH: usize = (1 << 24) - 1;

/// Control frame types.
pub const SYN_STREAM: u16 = 1;
pub const SYN_REPLY: u16 = 2;
pub const RST_STREAM: u16 = 3;
pub const SETTINGS: u16 = 4;
pub const PING: u16 = 6;
pub const GOAWAY: u16 = 7;
pub const HEADERS: u16 = 8;
pub const WINDOW_UPDATE: u16 = 9;

/// `RST_STREAM` status codes (spdystream's `RstStreamStatus`).
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_INVALID_STREAM: u32 = 2;
pub const RST_REFUSED_STREAM: u32 = 3;
pub const RST_CANCEL: u32 = 5;
pub const RST_INTERNAL_ERROR: u32 = 6;

/// `GOAWAY` status codes.
pub const GOAWAY_OK: u32 = 0;
pub const GOAWAY_PROTOCOL_ERROR: u32 = 1;

/// What the first 8 bytes of a frame say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    Control {
        version: u16,
        kind: u16,
        flags: u8,
        length: usize,
    },
    Data {
        stream_id: u32,
        flags: u8,
        length: usize,
    },
}

impl Head {
    pub fn parse(b: [u8; HEADER_LEN]) -> Head {
        let first = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let flags = b[4];
        let length = u32::from_be_bytes([0, b[5], b[6], b[7]]) as usize;
        if first & 0x8000_0000 != 0 {
            Head::Control {
                version: ((first >> 16) & 0x7fff) as u16,
                kind: (first & 0xffff) as u16,
                flags,
                length,
            }
        } else {
            Head::Data {
                stream_id: first & 0x7fff_ffff,
                flags,
                length,
            }
        }
    }

    /// The payload length after the header.
    pub fn length(&self) -> usize {
        match self {
            Head::Control { length, .. } | Head::Data { length, .. } => *length,
        }
    }
}

/// A control frame, read from its whole payload. Header blocks are borrowed, still compressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control<'a> {
    SynStream {
        stream_id: u32,
        associated_to: u32,
        priority: u8,
        flags: u8,
        header_block: &'a [u8],
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        header_block: &'a [u8],
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        /// (flags, id, value) per entry.
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        header_block: &'a [u8],
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
}

impl Control<'_> {
    /// The header block this frame carries, which must go through the connection's
    /// decompressor (in order) whether or not the reader cares for it: the zlib stream is one
    /// per direction.
    pub fn header_block(&self) -> Option<&[u8]> {
        match self {
            Control::SynStream { header_block, .. }
            | Control::SynReply { header_block, .. }
            | Control::Headers { header_block, .. } => Some(header_block),
            _ => None,
        }
    }
}

fn be32(b: &[u8], at: usize) -> Result<u32, SpdyError> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(SpdyError::Truncated)
}

/// Reads a control frame of type `kind` from its whole `payload`, with spdystream's checks:
/// stream id 0 and a zero `RST_STREAM` status are refused, `PING`, `GOAWAY` and `WINDOW_UPDATE`
/// carry no flags, and their lengths are exact.
pub fn parse_control(
    version: u16,
    kind: u16,
    flags: u8,
    payload: &[u8],
) -> Result<Control<'_>, SpdyError> {
    if version != VERSION {
        return Err(SpdyError::Version(version));
    }
    let nonzero = |id: u32| {
        if id & 0x7fff_ffff == 0 {
            Err(SpdyError::ZeroStreamId)
        } else {
            Ok(id & 0x7fff_ffff)
        }
    };
    let exact = |n: usize| {
        if payload.len() == n {
            Ok(())
        } else {
            Err(SpdyError::BadLength {
                kind,
                length: payload.len(),
            })
        }
    };
    let no_flags = || {
        if flags == 0 {
            Ok(())
        } else {
            Err(SpdyError::BadFlags { kind, flags })
        }
    };
    Ok(match kind {
        SYN_STREAM => {
            if payload.len() < 10 {
                return Err(SpdyError::Truncated);
            }
            Control::SynStream {
                stream_id: nonzero(be32(payload, 0)?)?,
                associated_to: be32(payload, 4)? & 0x7fff_ffff,
                priority: payload[8] >> 5,
                flags,
                header_block: &payload[10..],
            }
        }
        SYN_REPLY | HEADERS => {
            let stream_id = nonzero(be32(payload, 0)?)?;
            let header_block = &payload[4..];
            if kind == SYN_REPLY {
                Control::SynReply {
                    stream_id,
                    flags,
                    header_block,
                }
            } else {
                Control::Headers {
                    stream_id,
                    flags,
                    header_block,
                }
            }
        }
        RST_STREAM => {
            exact(8)?;
            let status = be32(payload, 4)?;
            if status == 0 {
                return Err(SpdyError::BadRstStatus);
            }
            Control::RstStream {
                stream_id: nonzero(be32(payload, 0)?)?,
                status,
            }
        }
        SETTINGS => {
            let n = be32(payload, 0)? as usize;
            if payload.len() != 4 + n.saturating_mul(8) {
                return Err(SpdyError::BadLength {
                    kind,
                    length: payload.len(),
                });
            }
            let entries = (0..n)
                .map(|i| {
                    let flag_id = be32(payload, 4 + i * 8)?;
                    Ok((
                        (flag_id >> 24) as u8,
                        flag_id & 0xff_ffff,
                        be32(payload, 8 + i * 8)?,
                    ))
                })
                .collect::<Result<_, SpdyError>>()?;
            Control::Settings { flags, entries }
        }
        PING => {
            exact(4)?;
            no_flags()?;
            let id = be32(payload, 0)?;
            if id == 0 {
                return Err(SpdyError::ZeroStreamId);
            }
            Control::Ping { id }
        }
        GOAWAY => {
            exact(8)?;
            no_flags()?;
            Control::GoAway {
                last_good_stream_id: be32(payload, 0)? & 0x7fff_ffff,
                status: be32(payload, 4)?,
            }
        }
        WINDOW_UPDATE => {
            exact(8)?;
            no_flags()?;
            Control::WindowUpdate {
                stream_id: be32(payload, 0)? & 0x7fff_ffff,
                delta: be32(payload, 4)? & 0x7fff_ffff,
            }
        }
        other => return Err(SpdyError::UnknownType(other)),
    })
}

fn control(kind: u16, flags: u8, payload: &[&[u8]]) -> Vec<u8> {
    let length: usize = payload.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(HEADER_LEN + length);
    out.extend_from_slice(&(0x8000u16 | VERSION).to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(length as u32).to_be_bytes()[1..]);
    for p in payload {
        out.extend_from_slice(p);
    }
    out
}

/// Why a frame cannot be written: its payload does not fit the 24-bit length.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a SPDY frame payload of {0} bytes does not fit in one frame (at most 16777215)")]
pub struct TooLong(pub usize);

/// A data frame: `data` on `stream_id`, with `FLAG_FIN` when `fin`.
pub fn data(stream_id: u32, fin: bool, data: &[u8]) -> Result<Vec<u8>, TooLong> {
    if data.len() > MAX_LENGTH {
        return Err(TooLong(data.len()));
    }
    let mut out = Vec::with_capacity(HEADER_LEN + data.len());
    out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
    out.push(if fin { FLAG_FIN } else { 0 });
    out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(data);
    Ok(out)
}

/// A `SYN_STREAM` carrying an already compressed header block.
pub fn syn_stream(stream_id: u32, flags: u8, compressed: &[u8]) -> Vec<u8> {
    control(
        SYN_STREAM,
        flags,
        &[
            &stream_id.to_be_bytes(),
            &0u32.to_be_bytes(),
            &[0, 0],
            compressed,
        ],
    )
}

/// A `SYN_REPLY` carrying an already compressed header block.
pub fn syn_reply(stream_id: u32, fin: bool, compressed: &[u8]) -> Vec<u8> {
    control(
        SYN_REPLY,
        if fin { FLAG_FIN } else { 0 },
        &[&stream_id.to_be_bytes(), compressed],
    )
}

pub fn rst_stream(stream_id: u32, status: u32) -> Vec<u8> {
    control(
        RST_STREAM,
        0,
        &[&stream_id.to_be_bytes(), &status.to_be_bytes()],
    )
}

pub fn ping(id: u32) -> Vec<u8> {
    control(PING, 0, &[&id.to_be_bytes()])
}

pub fn goaway(last_good_stream_id: u32, status: u32) -> Vec<u8> {
    control(
        GOAWAY,
        0,
        &[&last_good_stream_id.to_be_bytes(), &status.to_be_bytes()],
    )
}

pub fn settings(entries: &[(u8, u32, u32)]) -> Vec<u8> {
    let mut payload = (entries.len() as u32).to_be_bytes().to_vec();
    for (flags, id, value) in entries {
        payload.extend_from_slice(&((u32::from(*flags) << 24) | (id & 0xff_ffff)).to_be_bytes());
        payload.extend_from_slice(&value.to_be_bytes());
    }
    control(SETTINGS, 0, &[&payload])
}

pub fn window_update(stream_id: u32, delta: u32) -> Vec<u8> {
    control(
        WINDOW_UPDATE,
        0,
        &[&stream_id.to_be_bytes(), &delta.to_be_bytes()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(frame: &[u8]) -> (Head, &[u8]) {
        let head = Head::parse(frame[..8].try_into().expect("8 bytes"));
        assert_eq!(head.length(), frame.len() - 8);
        (head, &frame[8..])
    }

    fn read(frame: &[u8]) -> Control<'_> {
        match split(frame) {
            (
                Head::Control {
                    version,
                    kind,
                    flags,
                    ..
                },
                payload,
            ) => parse_control(version, kind, flags, payload).expect("a valid control frame"),
            other => panic!("not a control frame: {other:?}"),
        }
    }

    #[test]
    fn data_frames_round_trip() {
        let f = data(3, true, b"hello").unwrap();
        assert_eq!(&f[..8], &[0, 0, 0, 3, FLAG_FIN, 0, 0, 5]);
        assert_eq!(
            split(&f).0,
            Head::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                length: 5
            }
        );
        assert_eq!(data(1, false, &[]).unwrap(), [0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(
            data(1, false, &vec![0; MAX_LENGTH + 1]),
            Err(TooLong(MAX_LENGTH + 1))
        );
    }

    #[test]
    fn control_frames_round_trip() {
        // As spdystream writes a PING: 0x8003 0x0006, no flags, length 4, the id.
        assert_eq!(ping(1), [0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]);
        assert_eq!(read(&ping(7)), Control::Ping { id: 7 });
        assert_eq!(
            read(&rst_stream(5, RST_CANCEL)),
            Control::RstStream {
                stream_id: 5,
                status: RST_CANCEL
            }
        );
        assert_eq!(
            read(&goaway(3, GOAWAY_OK)),
            Control::GoAway {
                last_good_stream_id: 3,
                status: 0
            }
        );
        assert_eq!(
            read(&syn_stream(1, FLAG_FIN, b"zz")),
            Control::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                flags: FLAG_FIN,
                header_block: b"zz"
            }
        );
        assert_eq!(
            read(&syn_reply(1, false, b"yy")),
            Control::SynReply {
                stream_id: 1,
                flags: 0,
                header_block: b"yy"
            }
        );
        assert_eq!(
            read(&settings(&[(1, 7, 65536)])),
            Control::Settings {
                flags: 0,
                entries: vec![(1, 7, 65536)]
            }
        );
        assert_eq!(
            read(&window_update(1, 1024)),
            Control::WindowUpdate {
                stream_id: 1,
                delta: 1024
            }
        );
    }

    #[test]
    fn what_spdystream_refuses_is_refused() {
        let payload = |f: &[u8]| f[8..].to_vec();
        assert_eq!(
            parse_control(3, PING, 0, &0u32.to_be_bytes()),
            Err(SpdyError::ZeroStreamId)
        );
        assert_eq!(
            parse_control(3, PING, 1, &1u32.to_be_bytes()),
            Err(SpdyError::BadFlags {
                kind: PING,
                flags: 1
            })
        );
        assert_eq!(
            parse_control(3, RST_STREAM, 0, &[0, 0, 0, 1, 0, 0, 0, 0]),
            Err(SpdyError::BadRstStatus)
        );
        assert_eq!(
            parse_control(3, SYN_STREAM, 0, &payload(&syn_stream(0, 0, b""))),
            Err(SpdyError::ZeroStreamId)
        );
        assert_eq!(
            parse_control(3, SYN_STREAM, 0, &[0, 0, 0, 1]),
            Err(SpdyError::Truncated)
        );
        assert_eq!(
            parse_control(2, PING, 0, &[0, 0, 0, 1]),
            Err(SpdyError::Version(2))
        );
        assert_eq!(parse_control(3, 5, 0, &[]), Err(SpdyError::UnknownType(5)));
        assert!(matches!(
            parse_control(3, GOAWAY, 0, &[0; 4]),
            Err(SpdyError::BadLength { .. })
        ));
        assert!(matches!(
            parse_control(3, SETTINGS, 0, &[0, 0, 0, 2, 0, 0, 0, 0]),
            Err(SpdyError::BadLength { .. })
        ));
    }
}
