//! The one owner of a running session's resources.
//!
//! A [`SessionGuard`] is made when a session is accepted (the cluster said yes, the client got
//! its 101) and holds everything that must end with it: the limit permit, the live-registry
//! entry, the per-session metric series and the audit record. Dropping it closes them all
//! exactly once, in that order of record (metrics, log line, audit line, registry, permit),
//! with the session's [`Ending`], whatever ended it: the relay, a failed upgrade, a panic or
//! the task being dropped. Nothing registers or unregisters by hand.

use super::Sessions;
use super::audit::{Audit, SessionEnd, SessionRecord, timestamp};
use super::handshake::Caller;
use super::limits::SessionPermit;
use super::log_scope::session_log;
use super::registry::{Clock, Control, LiveSession, Registered, Stop};
use super::relay::Ending;
use crate::recording::{Prepared, Recorder};
use podgate_metrics::{Direction, Outcome};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub struct SessionGuard {
    session: Arc<LiveSession>,
    audit: Audit,
    ending: Option<Ending>,
    /// A port-forward's ports and connection count, for the end line.
    forwarded: Option<(Vec<u16>, u64)>,
    // Dropped after `drop` has run, in this order: out of the registry, then the slot.
    _registered: Registered,
    _permit: SessionPermit,
}

impl SessionGuard {
    /// Registers an accepted session and writes its start line; starts its recording, if it
    /// has one (the returned tap, for the relay).
    pub fn open(
        ctx: &Sessions,
        permit: SessionPermit,
        record: SessionRecord,
        caller: Caller,
        recording: Option<Prepared>,
    ) -> (SessionGuard, Option<Recorder>) {
        let Caller {
            credential,
            expires_at,
            client,
            ..
        } = caller;
        let metrics = ctx.metrics.session_started(podgate_metrics::SessionLabels {
            session_id: &record.session_id,
            user: &record.user,
            cluster: &record.cluster,
            namespace: &record.namespace,
            pod: &record.pod,
            container: &record.container,
        });
        let control = Arc::new(Control::new(expires_at));
        let (recorder, handle) = match recording {
            Some(prepared) => {
                let c = control.clone();
                let (recorder, handle) = prepared.start(
                    &ctx.tasks,
                    Box::new(move |why| c.stop(Stop::RecordingFailed, why)),
                );
                (Some(recorder), Some(handle))
            }
            None => (None, None),
        };
        let session = Arc::new(LiveSession {
            record,
            credential,
            metrics,
            activity: Clock::new(tokio::time::Instant::now()),
            control,
            recording: handle,
            client,
        });
        let registered = ctx.live.register(session.clone());
        ctx.audit.session_start(&session.record);
        (
            SessionGuard {
                session,
                audit: ctx.audit.clone(),
                ending: None,
                forwarded: None,
                _registered: registered,
                _permit: permit,
            },
            recorder,
        )
    }

    pub fn session(&self) -> &Arc<LiveSession> {
        &self.session
    }

    /// Both upgrades are done and frames flow.
    pub fn established(&self, setup: Duration) {
        self.session.metrics.established(setup);
        session_log!(INFO, setup_ms = setup.as_millis() as u64, "session started");
    }

    /// A port-forward session's ports and forwarded connections, for its end line.
    pub fn forwarded(&mut self, ports: Vec<u16>, connections: u64) {
        self.forwarded = Some((ports, connections));
    }

    /// Ends the session with `ending`.
    pub fn finish(mut self, ending: Ending) {
        self.ending = Some(ending);
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        // No ending: the task was dropped or panicked mid-session, which is the gateway's
        // failure, counted as one.
        let ending = self.ending.take();
        let outcome = ending
            .as_ref()
            .map_or(Outcome::UpstreamError, Ending::outcome);
        let exit_code = ending.as_ref().and_then(Ending::exit_code);
        let message = match &ending {
            Some(e) => e.message().map(str::to_string),
            None => Some("podgate: the session ended unexpectedly (its task was cancelled)".into()),
        };
        let s = &self.session;
        let duration = s.metrics.elapsed();
        s.metrics.finish(outcome, duration);
        let (stdin, stdout, stderr) = (
            s.bytes(Direction::Stdin),
            s.bytes(Direction::Stdout),
            s.bytes(Direction::Stderr),
        );
        session_log!(
            INFO,
            outcome = outcome.as_str(),
            exit_code,
            stdin_bytes = stdin,
            stdout_bytes = stdout,
            stderr_bytes = stderr,
            // Not `message`: that is the event's own text in JSON logs.
            detail = message.as_deref(),
            "session ended"
        );
        self.audit.session_end(&SessionEnd {
            session: &s.record,
            end: timestamp(SystemTime::now()),
            duration_seconds: duration.as_secs_f64(),
            stdin_bytes: stdin,
            stdout_bytes: stdout,
            stderr_bytes: stderr,
            exit_code,
            close_reason: outcome.as_str(),
            message: message.as_deref(),
            ports: self.forwarded.as_ref().map(|(p, _)| p.as_slice()),
            connections: self.forwarded.as_ref().map(|(_, n)| *n),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::limits::{Limits, SessionLimits};
    use crate::session::registry::Credential;
    use crate::session::relay::Verdict;
    use crate::session::{SessionSettings, registry::LiveSessions};

    fn sessions(audit: Audit) -> Sessions {
        Sessions {
            settings: SessionSettings {
                resume: crate::session::resume::ResumeSettings::off(),
                keepalive: Duration::from_secs(20),
                idle_timeout: None,
                max_duration: None,
                max_message: 1 << 20,
                credential_grace: Duration::from_secs(300),
            },
            limits: Limits::new(SessionLimits {
                global: 10,
                per_user: 10,
                per_cluster: 10,
            }),
            metrics: podgate_metrics::Metrics::new(["c"], Default::default()),
            audit,
            live: Arc::new(LiveSessions::default()),
            shutdown: Default::default(),
            tasks: Default::default(),
            recording: Arc::new(crate::recording::Recording::off()),
            resume: Arc::new(crate::session::resume::store::Resumables::new(
                crate::session::resume::ResumeSettings::off(),
                podgate_metrics::ResumeMetrics::new(),
            )),
        }
    }

    fn record(id: &str) -> SessionRecord {
        SessionRecord {
            session_id: id.into(),
            user: "alice".into(),
            groups: vec!["dev".into()],
            source: String::new(),
            cluster: "c".into(),
            namespace: "default".into(),
            pod: "shell-0".into(),
            container: String::new(),
            command: vec!["sh".into()],
            tty: false,
            protocol: "v5.channel.k8s.io".into(),
            start: String::new(),
            recording: None,
        }
    }

    fn open(ctx: &Sessions, id: &str) -> SessionGuard {
        let permit = ctx.limits.acquire("alice", "c").expect("a slot");
        let credential = Credential {
            identity: podgate_auth::Identity::new("alice", ["dev"]).expect("identity"),
            static_token: None,
            browser_session: None,
        };
        let caller = Caller {
            credential,
            expires_at: None,
            source: None,
            client: "kubectl",
        };
        SessionGuard::open(ctx, permit, record(id), caller, None).0
    }

    fn outcome_count(ctx: &Sessions, outcome: &str) -> f64 {
        let text = ctx.metrics.render();
        let needle = format!("podgate_sessions_total{{cluster=\"c\",outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&needle))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    fn audit_lines(path: &std::path::Path, event: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
            .filter(|l| l["event"] == event)
            .collect()
    }

    /// Wait for the audit writer thread (a bounded wait on a condition).
    fn audited(path: &std::path::Path, event: &str, n: usize) -> Vec<serde_json::Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let lines = audit_lines(path, event);
            if lines.len() >= n || std::time::Instant::now() > deadline {
                return lines;
            }
            std::thread::yield_now();
        }
    }

    #[tokio::test]
    async fn everything_a_session_holds_is_released_once_with_its_ending() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("audit.jsonl");
        let ctx = sessions(Audit::open(path.to_str().expect("utf-8")).expect("audit file"));
        let guard = open(&ctx, "s-1");
        assert_eq!((ctx.limits.active(), ctx.live.len()), (1, 1));
        guard.finish(Ending::Cluster(Verdict::Exited(3)));
        assert_eq!((ctx.limits.active(), ctx.live.len()), (0, 0));
        assert_eq!(outcome_count(&ctx, "exit_nonzero"), 1.0);
        let end = audited(&path, "session_end", 1);
        assert_eq!(end.len(), 1);
        assert_eq!(end[0]["close_reason"], "exit_nonzero");
        assert_eq!(end[0]["exit_code"], 3);
        assert_eq!(audited(&path, "session_start", 1).len(), 1);
    }

    #[tokio::test]
    async fn a_session_dropped_without_an_ending_is_counted_as_a_failure() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("audit.jsonl");
        let ctx = sessions(Audit::open(path.to_str().expect("utf-8")).expect("audit file"));
        // A task dropped mid-session (cancelled), or one that panicked.
        let guard = open(&ctx, "s-2");
        drop(guard);
        let ctx = std::sync::Arc::new(ctx);
        let c = ctx.clone();
        let panicked = tokio::spawn(async move {
            let _guard = open(&c, "s-3");
            panic!("a bug in the session's task");
        })
        .await;
        assert!(panicked.is_err());
        assert_eq!((ctx.limits.active(), ctx.live.len()), (0, 0));
        assert_eq!(outcome_count(&ctx, "upstream_error"), 2.0);
        let ends = audited(&path, "session_end", 2);
        assert_eq!(ends.len(), 2, "{ends:?}");
        for end in ends {
            assert_eq!(end["close_reason"], "upstream_error");
            assert!(
                end["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("ended unexpectedly"),
                "{end}"
            );
        }
    }
}
