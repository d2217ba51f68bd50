//! Where other parts of the gateway observe a session: recording, live observers and resume
//! plug in here, without touching the relay's per-frame path.
//!
//! A session has at most one tap (a fan-out tap can serve several observers). The relay calls
//! it with every output byte as the cluster sent it (stdout and stderr payloads, after
//! decoding, before re-encoding for the client) and a running byte offset over both streams,
//! so an observer that joins late, or a client that resumes, can address output exactly.
//! Text the gateway writes into the terminal itself (a notice) is reported apart and never
//! counted in the offsets. Without a tap the relay's cost is one branch per frame.
//!
//! Calls are made from the session's task while it holds the frame: a tap must not block
//! (copy into its own bounded buffer, or drop and account for it). A tap that must not drop
//! anything says so with [`Tap::backlog`], and the relay reads no further until it has room:
//! back-pressure reaches the pod, never a wait on a disk in the per-frame path.

use podgate_protocol::TerminalSize;

/// Which output stream a byte came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a session ended, for a tap's last record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub outcome: podgate_metrics::Outcome,
    pub exit_code: Option<i32>,
    /// The message the person was shown, if any.
    pub message: Option<String>,
}

pub trait Tap: Send + Sync {
    /// `data` was sent on `stream`; `offset` is the number of output bytes (stdout and stderr
    /// together) before it.
    fn output(&self, stream: Stream, offset: u64, data: &[u8]);
    /// The client sent `data` on stdin.
    fn input(&self, _data: &[u8]) {}
    /// The client resized its terminal.
    fn resize(&self, _size: TerminalSize) {}
    /// The gateway wrote `text` into the session itself (not counted in output offsets).
    fn notice(&self, _text: &str) {}
    /// The session is over; nothing follows.
    fn ended(&self, _ended: &Ended) {}
    /// `Some` while the tap cannot take more without losing it (a `required` recording whose
    /// disk is behind): the relay waits on the notify, checking again after each wake, before
    /// it reads the next message. Never asked while a frame is held.
    /// `for_input`: asked before reading the client's next message (stdin), rather than the
    /// cluster's.
    fn backlog(&self, _for_input: bool) -> Option<&tokio::sync::Notify> {
        None
    }
}
