//! The Kubernetes remote-command protocol (`pods/exec`, `pods/attach` over WebSocket), as pure
//! functions and types with no IO, shared by the devcluster (the server end) and the gateway
//! (which relays it). See `docs/protocol.md` for the byte-level description.
//!
//! Keeping this free of sockets is deliberate, as kube-core is for kube-client: every rule of the
//! wire format is unit-tested here, and the IO crates only move bytes.
#![forbid(unsafe_code)]

pub mod frame;
#[cfg(feature = "http")]
pub mod http;
pub mod message;
pub mod path;
pub mod portforward;
pub mod query;
pub mod review;
pub mod spdy;
pub mod status;
pub mod subprotocol;

pub use frame::{
    CLOSE_SIGNAL, ChannelFrame, FrameError, RESIZE, STATUS, STDERR, STDIN, STDOUT, TerminalSize,
};
pub use message::{AssembleError, Assembler};
pub use path::{ApiPath, PathError};
pub use query::{ExecOptions, QueryError, Subresource};
pub use status::Status;
pub use subprotocol::{Negotiation, Protocol};
