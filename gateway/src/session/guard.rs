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
use super::limits::SessionPermit;
use super::registry::{Clock, Control, Credential, LiveSession, Registered};
use super::relay::Ending;
use podgate_metrics::{Direction, Outcome};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub struct SessionGuard {
    session: Arc<LiveSession>,
    audit: Audit,
    ending: Option<Ending>,
    // Dropped after `drop` has run, in this order: out of the registry, then the slot.
    _registered: Registered,
    _permit: SessionPermit,
}

impl SessionGuard {
    /// Registers an accepted session and writes its start line.
    pub fn open(
        ctx: &Sessions,
        permit: SessionPermit,
        record: SessionRecord,
        credential: Credential,
        expires_at: Option<u64>,
    ) -> SessionGuard {
        let metrics = ctx.metrics.session_started(podgate_metrics::SessionLabels {
            session_id: &record.session_id,
            user: &record.user,
            cluster: &record.cluster,
            namespace: &record.namespace,
            pod: &record.pod,
            container: &record.container,
        });
        let session = Arc::new(LiveSession {
            record,
            credential,
            metrics,
            activity: Clock::new(tokio::time::Instant::now()),
            control: Control::new(expires_at),
        });
        let registered = ctx.live.register(session.clone());
        ctx.audit.session_start(&session.record);
        SessionGuard {
            session,
            audit: ctx.audit.clone(),
            ending: None,
            _registered: registered,
            _permit: permit,
        }
    }

    pub fn session(&self) -> &Arc<LiveSession> {
        &self.session
    }

    /// Both upgrades are done and frames flow.
    pub fn established(&self, setup: Duration) {
        self.session.metrics.established(setup);
        tracing::info!(setup_ms = setup.as_millis() as u64, "session started");
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
        tracing::info!(
            outcome = outcome.as_str(),
            exit_code,
            stdin_bytes = stdin,
            stdout_bytes = stdout,
            stderr_bytes = stderr,
            message = message.as_deref().unwrap_or(""),
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
        });
    }
}
