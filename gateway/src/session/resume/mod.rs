//! Shells that survive a dropped connection (docs/protocol.md, "Resume").
//!
//! A browser that offers `podgate.resume.v1` gets a session whose output goes through a
//! bounded, offset-addressed buffer ([`ring`]) instead of straight to its socket, so that when
//! the connection drops without a close, the cluster side carries on and a new connection
//! that presents the session's credential ([`key`]) continues exactly after the last byte
//! the page rendered ([`relay`]). [`control`] is the in-band vocabulary, [`store`] the
//! sessions that can be resumed on this replica and their global memory budget. kubectl and
//! every client that does not opt in never reach this module.

pub mod control;
pub mod key;
pub mod relay;
pub mod ring;
pub mod store;

use std::net::SocketAddr;
use std::time::Duration;

/// The `sessions.resume_*` settings.
#[derive(Debug, Clone, Copy)]
pub struct ResumeSettings {
    /// How long a dropped session waits for its page; `None`: resume is off.
    pub window: Option<Duration>,
    /// One session's buffer.
    pub buffer: usize,
    /// `resume_overflow: overwrite` (drop the oldest) rather than back-pressure.
    pub overwrite: bool,
    pub heartbeat: Duration,
    /// All buffers together.
    pub total: u64,
}

impl ResumeSettings {
    /// Resume off (tests that do not exercise it).
    pub fn off() -> ResumeSettings {
        ResumeSettings {
            window: None,
            buffer: ring::PIECE,
            overwrite: false,
            heartbeat: Duration::from_secs(5),
            total: 0,
        }
    }

    pub fn from_config(s: &podgate_config::SessionsConfig) -> ResumeSettings {
        ResumeSettings {
            window: s.resume_window.enabled(),
            buffer: s.resume_buffer.as_usize().max(ring::PIECE),
            overwrite: s.resume_overflow == podgate_config::ResumeOverflow::Overwrite,
            heartbeat: s.resume_heartbeat.get().max(Duration::from_millis(100)),
            total: s.resume_buffer_total.bytes(),
        }
    }
}

/// A page's new connection to a session, as the resume route hands it over.
pub struct Attach<C> {
    pub client: fastwebsockets::WebSocket<C>,
    /// The output offset the page rendered.
    pub offset: u64,
    /// Where it came from, for the audit line.
    pub source: Option<SocketAddr>,
}

/// The client connection type of production sessions.
pub type ClientIo = hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>;
/// The resumable sessions of this replica.
pub type Store = store::Resumables<ClientIo>;
