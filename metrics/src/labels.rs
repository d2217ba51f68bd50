//! Label values from bounded sets. Every label podgate exports either comes from one of these
//! types or from the configured cluster ids, so no request can mint a new time series (the
//! per-session series are the one exception, and they are capped, see [`crate::SessionSeries`]).

use std::fmt;

/// How a session ended (or why it never started): the `outcome` label of
/// `podgate_sessions_total`, the `close_reason` of audit lines and the `outcome` of the
/// gateway's "session ended" log line. One vocabulary, defined here, documented in the README.
///
/// Dashboards and alerts match on these strings, so the set is closed: text from elsewhere goes
/// through [`Outcome::clamp`], which never yields a value outside it. New endings are added here
/// when the feature that produces them lands (an operator's `terminated`, resume's
/// `resume_window_expired`, `recording_failed`); existing values never change meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The command exited with status 0.
    Completed,
    /// The command exited with a non-zero status.
    ExitNonzero,
    /// The client closed the connection.
    ClientClosed,
    /// The client stopped answering pings and taking output.
    ClientUnresponsive,
    /// The client broke the protocol (a message over the size limit, a malformed frame).
    ClientError,
    /// The cluster closed the stream without an exit status.
    UpstreamClosed,
    /// The connection to the cluster died mid-session (reset, EOF without a close, TLS
    /// error); the client was told so.
    UpstreamLost,
    /// The cluster could not be reached or failed the exec/attach upgrade or the stream.
    UpstreamError,
    /// The gateway closed a session that was quiet for `sessions.idle_timeout`.
    IdleTimeout,
    /// The gateway closed a session that reached `sessions.max_duration`.
    MaxDuration,
    /// The gateway shut down while the session was open.
    Shutdown,
    /// The credential the session was opened with expired (past `sessions.credential_grace`).
    CredentialExpired,
    /// The person's right to the session ended: their static token was removed, or a reload
    /// changed the cluster's `access` so that it no longer admits them.
    AccessRevoked,
    /// An operator ended the session (`DELETE /podgate/sessions/{id}`).
    Terminated,
    /// The cluster records sessions as `required`, and the recording could not be started
    /// (the session was refused) or failed (I/O error, disk full, size cap).
    RecordingFailed,
    /// The client's connection dropped and its page did not resume the session within
    /// `sessions.resume_window`; the cluster connection was closed.
    ResumeWindowExpired,
    /// Refused by policy or by the cluster's RBAC.
    Denied,
    /// Refused because a session limit (total, per user, per cluster) was reached.
    LimitReached,
    /// Refused before it started: not a valid exec/attach upgrade (no WebSocket, no supported
    /// subprotocol, an unreadable path or query).
    BadRequest,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 19] = [
        Outcome::Completed,
        Outcome::ExitNonzero,
        Outcome::ClientClosed,
        Outcome::ClientUnresponsive,
        Outcome::ClientError,
        Outcome::UpstreamClosed,
        Outcome::UpstreamLost,
        Outcome::UpstreamError,
        Outcome::IdleTimeout,
        Outcome::MaxDuration,
        Outcome::Shutdown,
        Outcome::CredentialExpired,
        Outcome::AccessRevoked,
        Outcome::Terminated,
        Outcome::RecordingFailed,
        Outcome::ResumeWindowExpired,
        Outcome::Denied,
        Outcome::LimitReached,
        Outcome::BadRequest,
    ];

    /// What [`Outcome::clamp`] makes of text outside the set, and what a session dropped
    /// without [`crate::SessionMetrics::finish`] is counted as. A failure, so that a caller's
    /// mistake shows up on the failure-ratio alert instead of hiding among successes.
    pub const CLAMPED: Outcome = Outcome::UpstreamError;

    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::ExitNonzero => "exit_nonzero",
            Outcome::ClientClosed => "client_closed",
            Outcome::ClientUnresponsive => "client_unresponsive",
            Outcome::ClientError => "client_error",
            Outcome::UpstreamClosed => "upstream_closed",
            Outcome::UpstreamLost => "upstream_lost",
            Outcome::UpstreamError => "upstream_error",
            Outcome::IdleTimeout => "idle_timeout",
            Outcome::MaxDuration => "max_duration",
            Outcome::Shutdown => "shutdown",
            Outcome::CredentialExpired => "credential_expired",
            Outcome::AccessRevoked => "access_revoked",
            Outcome::Terminated => "terminated",
            Outcome::RecordingFailed => "recording_failed",
            Outcome::ResumeWindowExpired => "resume_window_expired",
            Outcome::Denied => "denied",
            Outcome::LimitReached => "limit_reached",
            Outcome::BadRequest => "bad_request",
        }
    }

    /// The outcome for a command's exit status.
    pub const fn from_exit_code(code: i32) -> Outcome {
        if code == 0 {
            Outcome::Completed
        } else {
            Outcome::ExitNonzero
        }
    }

    /// The outcome spelt `label`, if it is one.
    pub fn parse(label: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == label)
    }

    /// The outcome spelt `label`, or [`Outcome::CLAMPED`] for anything else.
    pub fn clamp(label: &str) -> Outcome {
        Outcome::parse(label).unwrap_or(Outcome::CLAMPED)
    }

    /// Whether this outcome says the session was refused before it started.
    pub const fn is_refusal(self) -> bool {
        matches!(
            self,
            Outcome::Denied | Outcome::LimitReached | Outcome::BadRequest
        )
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A session's byte streams: the `direction` label. Named after the remote-command channels,
/// so `stdin` is client → pod and `stdout`/`stderr` are pod → client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    Stdin,
    Stdout,
    Stderr,
}

impl Direction {
    pub const ALL: [Direction; 3] = [Direction::Stdin, Direction::Stdout, Direction::Stderr];

    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::Stdin => "stdin",
            Direction::Stdout => "stdout",
            Direction::Stderr => "stderr",
        }
    }

    /// The direction of a remote-command channel (0 stdin, 1 stdout, 2 stderr); `None` for the
    /// error (3) and resize (4) channels, which carry no terminal bytes.
    pub const fn from_channel(channel: u8) -> Option<Direction> {
        match channel {
            0 => Some(Direction::Stdin),
            1 => Some(Direction::Stdout),
            2 => Some(Direction::Stderr),
            _ => None,
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `use` label of `podgate_tls_certificate_expiry_timestamp_seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertificateUse {
    /// The public listener's certificate.
    Serving,
    /// The client certificate a cluster's kubeconfig gives the gateway.
    ClusterClient,
}

impl CertificateUse {
    pub const fn as_str(self) -> &'static str {
        match self {
            CertificateUse::Serving => "serving",
            CertificateUse::ClusterClient => "cluster_client",
        }
    }
}

/// The `result` label of `podgate_config_reloads_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReloadResult {
    /// The new config was loaded and applied.
    Success,
    /// The new config was refused; the running config stays.
    Failure,
}

impl ReloadResult {
    pub const ALL: [ReloadResult; 2] = [ReloadResult::Success, ReloadResult::Failure];

    pub const fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Success => "success",
            ReloadResult::Failure => "failure",
        }
    }
}

/// The `cluster` label used for a cluster id that is not configured (see
/// [`crate::Metrics::set_clusters`]). Not a valid cluster id (ids are DNS labels, without `_`),
/// so it cannot be mistaken for a real cluster.
pub const UNKNOWN_CLUSTER: &str = "_unknown";

/// The `reason` label used for an auth failure reason that is not a plain identifier.
pub const OTHER_REASON: &str = "other";

/// The `code` label of `podgate_upstream_requests_total` when no response came back
/// (connection refused, TLS failure, timeout).
pub const NO_RESPONSE_CODE: &str = "error";

/// Auth failure reasons are `&'static str` (so they come from code, not from requests) and must
/// be short identifiers; anything else is reported as [`OTHER_REASON`].
pub(crate) fn auth_reason(reason: &'static str) -> &'static str {
    let ok = !reason.is_empty()
        && reason.len() <= 48
        && reason
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok { reason } else { OTHER_REASON }
}

/// The `code` label for an upstream HTTP status: the three digits, [`NO_RESPONSE_CODE`] when
/// there was no response, and `other` for numbers that are no HTTP status.
pub(crate) fn status_code(code: Option<u16>) -> std::borrow::Cow<'static, str> {
    match code {
        None => NO_RESPONSE_CODE.into(),
        Some(c @ 100..=599) => c.to_string().into(),
        Some(_) => "other".into(),
    }
}
