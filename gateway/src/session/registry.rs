//! Live sessions, readable and stoppable from outside the relay: `/debug/sessions`, the
//! revocation of access on reload, and tests that watch a session's counters.
//!
//! The relay never looks here per frame; it holds its own `Arc<LiveSession>` and touches only
//! atomics on it. Ending a session from outside goes through its [`Control`]: the relay's
//! timers wait on it and end the session with the reason, as they do for a timeout.

use super::audit::SessionRecord;
use podgate_auth::{Identity, TokenDigest};
use podgate_metrics::{Direction, SessionMetrics};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// A moment within a session, as milliseconds since it started: one atomic store per frame.
pub struct Clock {
    started: Instant,
    ms: AtomicU64,
}

impl Clock {
    pub fn new(started: Instant) -> Clock {
        Clock {
            started,
            ms: AtomicU64::new(0),
        }
    }

    pub fn touch(&self) {
        self.ms
            .store(self.started.elapsed().as_millis() as u64, Relaxed);
    }

    pub fn get(&self) -> Instant {
        self.started + Duration::from_millis(self.ms.load(Relaxed))
    }
}

/// Why a session is ended from outside the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The person's right to the session ended (token removed, access policy changed).
    AccessRevoked,
    /// An operator ended it.
    Terminated,
    /// Its cluster records as `required`, and the recording failed.
    RecordingFailed,
}

/// The most notices waiting for the relay to tell the person; more are dropped (they are
/// courtesy, not record: the audit log has who watched).
const NOTICES: usize = 16;

/// What can end a session from outside, and when its credential stops being valid.
pub struct Control {
    stop: Mutex<Option<(Stop, String)>>,
    stopped: tokio::sync::Notify,
    /// Text for the person, written into their terminal by the relay.
    notices: Mutex<std::collections::VecDeque<String>>,
    noticed: tokio::sync::Notify,
    /// Unix seconds from which the credential is no longer valid; 0: it does not expire.
    /// Moved later when a browser session refreshes its token.
    expires_at: AtomicU64,
}

impl Control {
    pub fn new(expires_at: Option<u64>) -> Control {
        Control {
            stop: Mutex::new(None),
            stopped: tokio::sync::Notify::new(),
            notices: Mutex::default(),
            noticed: tokio::sync::Notify::new(),
            expires_at: AtomicU64::new(expires_at.unwrap_or(0)),
        }
    }

    /// Ends the session with `why` (a message for the person). The first stop wins.
    pub fn stop(&self, stop: Stop, why: String) {
        let mut slot = self.stop.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some((stop, why));
            self.stopped.notify_one();
        }
    }

    /// Resolves once [`stop`](Self::stop) was called; returns the reason.
    pub async fn stopped(&self) -> (Stop, String) {
        loop {
            let notified = self.stopped.notified();
            if let Some(s) = self
                .stop
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
            {
                return s;
            }
            notified.await;
        }
    }

    /// Tells the person `text` in their terminal (someone started watching, ...).
    pub fn tell(&self, text: String) {
        {
            let mut q = self.notices.lock().unwrap_or_else(PoisonError::into_inner);
            if q.len() >= NOTICES {
                return;
            }
            q.push_back(text);
        }
        self.noticed.notify_one();
    }

    /// The next notice to tell, once there is one.
    pub async fn next_notice(&self) -> String {
        loop {
            let notified = self.noticed.notified();
            if let Some(t) = self
                .notices
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop_front()
            {
                return t;
            }
            notified.await;
        }
    }

    pub fn expires_at(&self) -> Option<u64> {
        match self.expires_at.load(Relaxed) {
            0 => None,
            t => Some(t),
        }
    }

    /// A later expiry (a refreshed token); an earlier one is ignored, and a credential that
    /// does not expire stays so.
    pub fn extend(&self, expires_at: u64) {
        let _ = self.expires_at.fetch_update(Relaxed, Relaxed, |now| {
            (now != 0 && expires_at > now).then_some(expires_at)
        });
    }
}

/// What a session was opened with, to tell later whether it still holds.
#[derive(Clone, Debug)]
pub struct Credential {
    pub identity: Identity,
    /// A static token's digest: still in the tokens file?
    pub static_token: Option<TokenDigest>,
    /// The browser session it came from (cookie sessions), whose refreshes extend it.
    pub browser_session: Option<String>,
}

/// One live session as the rest of the gateway sees it.
pub struct LiveSession {
    /// Who, where, what: also the audit record.
    pub record: SessionRecord,
    pub credential: Credential,
    /// Byte counters and Prometheus series of the session.
    pub metrics: SessionMetrics,
    /// Last stdin or output byte.
    pub activity: Clock,
    pub control: Arc<Control>,
    /// Its recording, when its cluster records (and the recording started).
    pub recording: Option<crate::recording::Handle>,
    /// `browser` or `kubectl`.
    pub client: &'static str,
}

impl LiveSession {
    pub fn bytes(&self, d: Direction) -> u64 {
        self.metrics.bytes(d)
    }

    pub fn idle(&self) -> Duration {
        self.activity.get().elapsed()
    }

    /// The `/debug/sessions` and `/podgate/sessions` entry.
    pub fn to_json(&self) -> serde_json::Value {
        let r = &self.record;
        serde_json::json!({
            "id": r.session_id, "user": r.user, "cluster": r.cluster, "namespace": r.namespace,
            "pod": r.pod, "container": r.container, "command": r.command, "tty": r.tty,
            "started": r.start, "client": self.client,
            "bytes": {"stdin": self.bytes(Direction::Stdin), "stdout": self.bytes(Direction::Stdout),
                      "stderr": self.bytes(Direction::Stderr)},
            "idle_seconds": self.idle().as_secs_f64(),
            "recording": self.recording.as_ref().map(|h| h.key.to_string()),
            "observable": self.recording.is_some(),
            "observers": self.recording.as_ref().map_or(0, |h| h.observers()),
        })
    }
}

#[derive(Default)]
pub struct LiveSessions {
    live: Mutex<Live>,
}

#[derive(Default)]
struct Live {
    by_id: BTreeMap<String, Arc<LiveSession>>,
    /// Sessions opened from each browser login, so a cookie request (the web UI asks every
    /// 30 s while a terminal is open) touches only its own sessions.
    by_login: HashMap<String, Vec<Arc<LiveSession>>>,
}

impl LiveSessions {
    /// Registers a session until the returned guard is dropped.
    pub fn register(self: &Arc<Self>, session: Arc<LiveSession>) -> Registered {
        let id = session.record.session_id.clone();
        let mut live = self.lock();
        if let Some(login) = &session.credential.browser_session {
            live.by_login
                .entry(login.clone())
                .or_default()
                .push(session.clone());
        }
        live.by_id.insert(id.clone(), session);
        Registered {
            sessions: self.clone(),
            id,
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<LiveSession>> {
        self.lock().by_id.get(id).cloned()
    }

    pub fn list(&self) -> Vec<Arc<LiveSession>> {
        self.lock().by_id.values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Asks `judge` about every live session and stops those it has a reason for; returns
    /// how many were stopped.
    pub fn revalidate(&self, judge: impl Fn(&LiveSession) -> Option<(Stop, String)>) -> usize {
        let mut stopped = 0;
        for s in self.list() {
            if let Some((stop, why)) = judge(&s) {
                s.control.stop(stop, why);
                stopped += 1;
            }
        }
        stopped
    }

    /// A browser session refreshed its token: sessions opened from it may live on until
    /// `expires_at` (plus the grace).
    pub fn extend_browser_session(&self, browser_session: &str, expires_at: u64) {
        if let Some(sessions) = self.lock().by_login.get(browser_session) {
            for s in sessions {
                s.control.extend(expires_at);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Removes its session from the registry when dropped.
pub struct Registered {
    sessions: Arc<LiveSessions>,
    id: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut live = self.sessions.lock();
        let Some(session) = live.by_id.remove(&self.id) else {
            return;
        };
        if let Some(login) = &session.credential.browser_session
            && let Some(list) = live.by_login.get_mut(login)
        {
            list.retain(|s| !Arc::ptr_eq(s, &session));
            if list.is_empty() {
                live.by_login.remove(login);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_stop_wins_and_is_seen_by_a_later_waiter() {
        let c = Control::new(None);
        c.stop(Stop::AccessRevoked, "first".into());
        c.stop(Stop::AccessRevoked, "second".into());
        let (stop, why) = c.stopped().await;
        assert_eq!((stop, why.as_str()), (Stop::AccessRevoked, "first"));
    }

    fn session(id: &str, login: Option<&str>, expires_at: u64) -> Arc<LiveSession> {
        crate::session::relay::tests::live_session_as(id, login, Some(expires_at))
    }

    #[test]
    fn a_login_refresh_extends_its_own_sessions_only() {
        let live = Arc::new(LiveSessions::default());
        let a = session("a", Some("login-1"), 100);
        let b = session("b", Some("login-2"), 100);
        let c = session("c", None, 100);
        let (ra, _rb, _rc) = (
            live.register(a.clone()),
            live.register(b.clone()),
            live.register(c.clone()),
        );
        live.extend_browser_session("login-1", 500);
        assert_eq!(a.control.expires_at(), Some(500));
        assert_eq!(b.control.expires_at(), Some(100));
        assert_eq!(c.control.expires_at(), Some(100));
        drop(ra);
        assert_eq!(live.len(), 2);
        assert!(
            !live.lock().by_login.contains_key("login-1"),
            "the index follows the registry"
        );
    }

    #[test]
    fn expiry_only_moves_later() {
        let c = Control::new(Some(100));
        c.extend(50);
        assert_eq!(c.expires_at(), Some(100));
        c.extend(200);
        assert_eq!(c.expires_at(), Some(200));
        let never = Control::new(None);
        never.extend(300);
        assert_eq!(never.expires_at(), None);
    }
}
