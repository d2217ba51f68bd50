//! Label values from bounded sets. Every label podgate exports either comes from one of these
//! types or from the configured cluster ids, so no request can mint a new time series (the
//! per-session series are the one exception, and they are capped, see [`crate::SessionSeries`]).

use std::fmt;

/// How a session ended (or why it never started): the `outcome` label of
/// `podgate_sessions_total`.
///
/// Dashboards and alerts match on these strings, so the set is closed: text from elsewhere goes
/// through [`Outcome::clamp`], which never yields a value outside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The command exited with status 0.
    Completed,
    /// The command exited with a non-zero status.
    ExitNonzero,
    /// The client closed the connection (or stopped answering pings).
    ClientClosed,
    /// The cluster closed the stream without an exit status.
    UpstreamClosed,
    /// The gateway closed a session that was quiet for `sessions.idle_timeout`.
    IdleTimeout,
    /// The gateway closed a session that reached `sessions.max_duration`.
    MaxDuration,
    /// Refused by policy or by the cluster's RBAC.
    Denied,
    /// The cluster could not be reached or failed the exec/attach upgrade or the stream.
    UpstreamError,
    /// Refused because a session limit (total, per user, per cluster) was reached.
    LimitReached,
}

impl Outcome {
    /// Every outcome, in the order of the issue that defined them.
    pub const ALL: [Outcome; 9] = [
        Outcome::Completed,
        Outcome::ExitNonzero,
        Outcome::ClientClosed,
        Outcome::UpstreamClosed,
        Outcome::IdleTimeout,
        Outcome::MaxDuration,
        Outcome::Denied,
        Outcome::UpstreamError,
        Outcome::LimitReached,
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
            Outcome::UpstreamClosed => "upstream_closed",
            Outcome::IdleTimeout => "idle_timeout",
            Outcome::MaxDuration => "max_duration",
            Outcome::Denied => "denied",
            Outcome::UpstreamError => "upstream_error",
            Outcome::LimitReached => "limit_reached",
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
