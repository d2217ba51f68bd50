//! How a session ends, and which cause wins when several happen. Pure.
//!
//! The rules:
//! 1. The cluster's verdict wins. Once it has sent the command's exit status (or a failure
//!    `Status`) on the error stream, that is the ending, whatever happens to either connection
//!    afterwards: the command did exit with that code.
//! 2. Otherwise the first decisive event wins: the client leaving, the cluster's stream ending
//!    (cleanly or not), or the gateway's own policy (timeouts, shutdown, revoked access).
//! 3. Nothing on the client → cluster direction ends a session by itself except the client
//!    itself going: a failed write of stdin to a cluster that already finished is not an
//!    ending, so the output, the status and the close that follow it still reach the client.
//!
//! Every ending the client did not cause itself is told to it: a `Failure` `Status` on the
//! error stream, then a close frame (not 1000 when the cluster connection was lost, so no
//! client mistakes it for success).

use podgate_metrics::Outcome;
use podgate_protocol::Status;

/// The gateway's own reasons to end a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    IdleTimeout,
    MaxDuration,
    Shutdown,
    CredentialExpired,
    AccessRevoked,
    /// An operator ended it.
    Terminated,
    /// Its required recording failed.
    RecordingFailed,
}

impl Policy {
    fn outcome(self) -> Outcome {
        match self {
            Policy::IdleTimeout => Outcome::IdleTimeout,
            Policy::MaxDuration => Outcome::MaxDuration,
            Policy::Shutdown => Outcome::Shutdown,
            Policy::CredentialExpired => Outcome::CredentialExpired,
            Policy::AccessRevoked => Outcome::AccessRevoked,
            Policy::Terminated => Outcome::Terminated,
            Policy::RecordingFailed => Outcome::RecordingFailed,
        }
    }

    /// The `reason` of the `Status` the client is sent.
    pub fn status_reason(self) -> &'static str {
        match self {
            Policy::IdleTimeout | Policy::MaxDuration => "Timeout",
            Policy::Shutdown => "ServiceUnavailable",
            Policy::CredentialExpired => "Unauthorized",
            Policy::AccessRevoked | Policy::Terminated => "Forbidden",
            Policy::RecordingFailed => "ServiceUnavailable",
        }
    }
}

/// The cluster's verdict, read from the error stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The command's exit status.
    Exited(i32),
    /// A failure without an exit code (the container could not run the command, ...).
    Failed(String),
}

/// How a session ended, as the relay saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The cluster's verdict (rule 1).
    Cluster(Verdict),
    /// The cluster closed the stream cleanly without a verdict.
    UpstreamClosed,
    /// The connection to the cluster died (reset, EOF without a close, TLS error).
    UpstreamLost(String),
    /// The cluster broke the protocol (a message over the limit, bad fragmentation).
    UpstreamError(String),
    ClientClosed,
    /// The client stopped answering pings and taking output.
    ClientUnresponsive,
    /// The client broke the protocol: the close code it gets and why, and whether the
    /// offending frame was read whole (so the client's stream can be read on).
    ClientError {
        code: u16,
        reason: String,
        consumed: bool,
    },
    /// The client's connection dropped and no page resumed the session in time (or it gave
    /// way to a new session when the resume buffers were all taken); why, in words.
    ResumeWindowExpired(String),
    /// The gateway ended the session; `message` is what the person is told.
    Policy {
        policy: Policy,
        message: String,
    },
}

impl Ending {
    pub fn outcome(&self) -> Outcome {
        match self {
            Ending::Cluster(Verdict::Exited(code)) => Outcome::from_exit_code(*code),
            Ending::Cluster(Verdict::Failed(_)) | Ending::UpstreamError(_) => {
                Outcome::UpstreamError
            }
            Ending::UpstreamClosed => Outcome::UpstreamClosed,
            Ending::UpstreamLost(_) => Outcome::UpstreamLost,
            Ending::ClientClosed => Outcome::ClientClosed,
            Ending::ClientUnresponsive => Outcome::ClientUnresponsive,
            Ending::ClientError { .. } => Outcome::ClientError,
            Ending::ResumeWindowExpired(_) => Outcome::ResumeWindowExpired,
            Ending::Policy { policy, .. } => policy.outcome(),
        }
    }

    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Ending::Cluster(Verdict::Exited(code)) => Some(*code),
            _ => None,
        }
    }

    /// What the person was told, or the cause in words, for the log and audit line.
    pub fn message(&self) -> Option<&str> {
        match self {
            Ending::Cluster(Verdict::Failed(m))
            | Ending::UpstreamLost(m)
            | Ending::UpstreamError(m)
            | Ending::ClientError { reason: m, .. }
            | Ending::ResumeWindowExpired(m)
            | Ending::Policy { message: m, .. } => Some(m),
            _ => None,
        }
    }

    /// Rule 1, then rule 2: `first` happened first; `verdict` is what the cluster had said by
    /// the time the session was over.
    pub fn decide(first: Ending, verdict: Option<Verdict>) -> Ending {
        match verdict {
            Some(v) => Ending::Cluster(v),
            None => first,
        }
    }

    /// What the gateway must still tell the client, when the ending is not the client's own
    /// doing and not already told by the cluster: the `Status` for the error stream and the
    /// close frame's code and reason.
    pub fn notice(&self) -> Option<(Status, u16)> {
        let told =
            |(status, code): (Status, u16)| (super::super::told(status, self.outcome()), code);
        let notice = match self {
            Ending::UpstreamLost(m) => Some((
                Status {
                    reason: Some("ServiceUnavailable".into()),
                    ..Status::stream_failure(m.clone())
                },
                1011,
            )),
            Ending::UpstreamError(m) => Some((
                Status {
                    reason: Some("InternalError".into()),
                    ..Status::stream_failure(m.clone())
                },
                1011,
            )),
            Ending::Policy { policy, message } => Some((
                Status {
                    reason: Some(policy.status_reason().into()),
                    ..Status::stream_failure(message.clone())
                },
                1000,
            )),
            _ => None,
        };
        notice.map(told)
    }
}

/// Reads the verdict from a message on the error stream. v1–v3 carry only a failure's text;
/// v4 and v5 a `metav1.Status`.
pub fn verdict(has_status_json: bool, data: &[u8]) -> Verdict {
    if !has_status_json {
        return Verdict::Failed(String::from_utf8_lossy(data).into_owned());
    }
    match serde_json::from_slice::<Status>(data) {
        Ok(s) => match s.exit_code_value() {
            Some(code) => Verdict::Exited(code),
            None => Verdict::Failed(
                s.message
                    .unwrap_or_else(|| "the cluster reported a failure".into()),
            ),
        },
        Err(_) => Verdict::Failed("the cluster sent an unreadable status".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost() -> Ending {
        Ending::UpstreamLost("connection reset".into())
    }

    #[test]
    fn the_clusters_verdict_wins_over_anything_after_it() {
        for first in [
            lost(),
            Ending::UpstreamClosed,
            Ending::ClientClosed,
            Ending::ClientUnresponsive,
            Ending::Policy {
                policy: Policy::IdleTimeout,
                message: "idle".into(),
            },
        ] {
            assert_eq!(
                Ending::decide(first.clone(), Some(Verdict::Exited(3))),
                Ending::Cluster(Verdict::Exited(3)),
                "{first:?}"
            );
            assert_eq!(Ending::decide(first.clone(), None), first);
        }
    }

    #[test]
    fn outcomes_and_exit_codes() {
        let cases = [
            (
                Ending::Cluster(Verdict::Exited(0)),
                Outcome::Completed,
                Some(0),
            ),
            (
                Ending::Cluster(Verdict::Exited(7)),
                Outcome::ExitNonzero,
                Some(7),
            ),
            (
                Ending::Cluster(Verdict::Failed("no such container".into())),
                Outcome::UpstreamError,
                None,
            ),
            (Ending::UpstreamClosed, Outcome::UpstreamClosed, None),
            (lost(), Outcome::UpstreamLost, None),
            (Ending::ClientClosed, Outcome::ClientClosed, None),
            (
                Ending::ClientUnresponsive,
                Outcome::ClientUnresponsive,
                None,
            ),
            (
                Ending::ClientError {
                    code: 1009,
                    reason: "too big".into(),
                    consumed: true,
                },
                Outcome::ClientError,
                None,
            ),
            (
                Ending::Policy {
                    policy: Policy::AccessRevoked,
                    message: "revoked".into(),
                },
                Outcome::AccessRevoked,
                None,
            ),
        ];
        for (ending, outcome, code) in cases {
            assert_eq!(ending.outcome(), outcome, "{ending:?}");
            assert_eq!(ending.exit_code(), code, "{ending:?}");
        }
    }

    #[test]
    fn a_lost_cluster_is_told_as_a_failure_never_as_success() {
        let (status, code) = lost().notice().expect("told");
        assert_eq!(status.status, "Failure");
        assert_eq!(status.message.as_deref(), Some("connection reset"));
        assert_eq!(
            status.cause(crate::session::OUTCOME_CAUSE),
            Some("upstream_lost")
        );
        assert_ne!(code, 1000);
        assert!(Ending::ClientClosed.notice().is_none());
        assert!(Ending::Cluster(Verdict::Exited(0)).notice().is_none());
        let (status, _) = Ending::Policy {
            policy: Policy::CredentialExpired,
            message: "expired".into(),
        }
        .notice()
        .expect("told");
        assert_eq!(status.reason.as_deref(), Some("Unauthorized"));
    }

    #[test]
    fn verdicts_are_read_from_the_error_stream() {
        assert_eq!(
            verdict(true, &Status::success().to_json()),
            Verdict::Exited(0)
        );
        assert_eq!(
            verdict(true, &Status::exit_code(7, "x").to_json()),
            Verdict::Exited(7)
        );
        assert_eq!(
            verdict(
                true,
                &Status::stream_failure("container not found").to_json()
            ),
            Verdict::Failed("container not found".into())
        );
        assert!(matches!(verdict(true, b"garbage"), Verdict::Failed(_)));
        assert_eq!(
            verdict(false, b"command terminated"),
            Verdict::Failed("command terminated".into())
        );
    }
}
