//! One exec/attach or port-forward ([`portforward`]) session, from the handshake to its last
//! byte.
//!
//! - [`handshake`]: a request becomes either an [`Established`](handshake::Established)
//!   session or a [`Refusal`](refusal::Refusal), one type, so no refusal path can forget its
//!   metric, audit line or log line;
//! - [`guard`]: the one owner of everything a running session holds (limit permit, live
//!   registry entry, per-session metric series, audit record), released exactly once with the
//!   outcome whatever ends it;
//! - [`relay`]: the frames, both ways, with keepalive, timers and the ending rules;
//! - [`limits`], [`registry`] (live sessions, revocation, what ends a session from outside),
//!   [`audit`], [`refusal`], [`log_scope`] (the session fields on a running session's log
//!   lines).
//!
//! A session's recording ([`crate::recording`]) is started in the handshake (a `required` one
//! that cannot start refuses the session) and fed by the relay through the [`crate::tap`].
//!
//! The outcome vocabulary is [`podgate_metrics::Outcome`], shared by metrics, audit and logs.
//! This layer uses `upstream` to reach clusters and nothing above it; the route layer hands it
//! a [`SessionRequest`](handshake::SessionRequest) with the caller already authenticated and
//! admitted by the edge policy.

pub mod audit;
pub mod guard;
pub mod handshake;
pub mod limits;
pub mod log_scope;
pub mod portforward;
pub mod refusal;
pub mod registry;
pub mod relay;
pub mod resume;

use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The `details.causes[].reason` under which every `Status` podgate writes itself names the
/// outcome (`{"reason": "podgate.io/outcome", "message": "idle_timeout"}`), so clients (the web
/// UI) tell endings and refusals apart without reading English.
pub const OUTCOME_CAUSE: &str = "podgate.io/outcome";

/// `status`, marked with podgate's `outcome`.
pub fn told(
    status: podgate_protocol::Status,
    outcome: podgate_metrics::Outcome,
) -> podgate_protocol::Status {
    status.with_cause(OUTCOME_CAUSE, outcome.as_str())
}

/// Per-session timing and size settings (from the config's `sessions` and `limits`).
#[derive(Clone, Copy, Debug)]
pub struct SessionSettings {
    pub keepalive: Duration,
    pub idle_timeout: Option<Duration>,
    pub max_duration: Option<Duration>,
    /// The largest WebSocket message, assembled, in either direction.
    pub max_message: usize,
    /// How long a session outlives the expiry of the credential it was opened with.
    pub credential_grace: Duration,
    /// Resume after a dropped connection, for clients that opt in.
    pub resume: resume::ResumeSettings,
}

impl SessionSettings {
    /// The settings of a config file (defaults when it says nothing).
    pub fn from_config(
        limits: &podgate_config::LimitsConfig,
        sessions: &podgate_config::SessionsConfig,
    ) -> SessionSettings {
        SessionSettings {
            keepalive: sessions.keepalive.get(),
            idle_timeout: sessions.idle_timeout.enabled(),
            max_duration: sessions.max_duration.enabled(),
            max_message: limits.max_message_bytes.as_usize(),
            credential_grace: sessions.credential_grace.get(),
            resume: resume::ResumeSettings::from_config(sessions),
        }
    }
}

/// What sessions use of the gateway, and nothing else.
pub struct Sessions {
    pub settings: SessionSettings,
    pub limits: Arc<limits::Limits>,
    pub metrics: podgate_metrics::Metrics,
    pub audit: audit::Audit,
    /// Live sessions: `/debug/sessions`, revocation on reload, tests.
    pub live: Arc<registry::LiveSessions>,
    /// Cancelled when the gateway shuts down: every session is told why and closed.
    pub shutdown: CancellationToken,
    /// Owns every session task, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Recordings: the sink and each cluster's mode.
    pub recording: Arc<crate::recording::Recording>,
    /// Sessions a page can resume after its connection dropped.
    pub resume: Arc<resume::Store>,
}
