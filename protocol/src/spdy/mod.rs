//! SPDY/3.1 as Kubernetes port-forward speaks it: frames, header blocks and their zlib
//! stream, and a scanner that finds frames in a byte stream cut anywhere. Pure, shared by the
//! devcluster (which serves port-forward) and the gateway (which relays it and reads just
//! enough: the forwarded ports in `SYN_STREAM` headers, data bytes per stream, pings).
//!
//! Kubernetes runs moby/spdystream, whose framer is the old Go `spdy` package; everything here
//! is read from it (`spdy/read.go`, `spdy/write.go`, `spdy/types.go`, `connection.go`). It
//! ignores `WINDOW_UPDATE` (flow control is TCP's), and so does everything built on this.

pub mod dictionary;
pub mod frame;
pub mod headers;
pub mod scanner;

pub use frame::{Control, Head};
pub use headers::{Compressor, Decompressor, Headers};
pub use scanner::{Event, Scanner};

/// The headers kubectl names each port-forward stream with (`k8s.io/api/core/v1`:
/// `StreamType`, `PortHeader`, `PortForwardRequestIDHeader`), lower case as they travel.
pub const STREAM_TYPE: &str = "streamtype";
pub const PORT: &str = "port";
pub const REQUEST_ID: &str = "requestid";
/// `streamType` values.
pub const STREAM_TYPE_DATA: &str = "data";
pub const STREAM_TYPE_ERROR: &str = "error";

/// Why a SPDY byte stream cannot be read on. Every one ends the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpdyError {
    #[error("SPDY version {0} is not 3")]
    Version(u16),
    #[error("unknown SPDY control frame type {0}")]
    UnknownType(u16),
    #[error("a SPDY frame is shorter than its fields")]
    Truncated,
    #[error("a SPDY frame names stream 0")]
    ZeroStreamId,
    #[error("a SPDY RST_STREAM has status 0")]
    BadRstStatus,
    #[error("a SPDY control frame of type {kind} has length {length}")]
    BadLength { kind: u16, length: usize },
    #[error("a SPDY control frame of type {kind} has flags {flags:#04x}, which it may not carry")]
    BadFlags { kind: u16, flags: u8 },
    #[error("a SPDY control frame of {length} bytes is over the {limit} byte limit")]
    ControlTooLarge { length: usize, limit: usize },
    #[error("a SPDY header block decompresses to more than {0} bytes")]
    BlockTooLarge(usize),
    #[error("a SPDY header block cannot be decompressed: {0}")]
    Compression(String),
    #[error("a SPDY header block is malformed: {0}")]
    BadHeader(String),
}
