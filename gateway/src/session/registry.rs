//! Live sessions, readable from outside the relay: `/debug/sessions`, the audit line at the
//! end, and tests that watch a session's byte counters.

use crate::audit::SessionRecord;
use podgate_metrics::{Direction, SessionMetrics};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
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

pub struct SessionInfo {
    /// Who, where, what: also the audit record.
    pub record: SessionRecord,
    /// Byte counters and Prometheus series of the session.
    pub metrics: SessionMetrics,
    /// Last stdin or output byte.
    pub activity: Clock,
}

impl SessionInfo {
    pub fn bytes(&self, d: Direction) -> u64 {
        self.metrics.bytes(d)
    }

    pub fn idle(&self) -> Duration {
        self.activity.get().elapsed()
    }

    /// The `/debug/sessions` entry.
    pub fn to_json(&self) -> serde_json::Value {
        let r = &self.record;
        serde_json::json!({
            "id": r.session_id, "user": r.user, "cluster": r.cluster, "namespace": r.namespace,
            "pod": r.pod, "container": r.container, "started": r.start,
            "bytes": {"stdin": self.bytes(Direction::Stdin), "stdout": self.bytes(Direction::Stdout),
                      "stderr": self.bytes(Direction::Stderr)},
            "idle_seconds": self.idle().as_secs_f64(),
        })
    }
}

#[derive(Default)]
pub struct Sessions {
    live: Mutex<BTreeMap<String, Arc<SessionInfo>>>,
}

impl Sessions {
    /// Registers a session until the returned guard is dropped.
    pub fn register(self: &Arc<Self>, info: SessionInfo) -> (Arc<SessionInfo>, Registered) {
        let info = Arc::new(info);
        let id = info.record.session_id.clone();
        self.lock().insert(id.clone(), info.clone());
        (
            info,
            Registered {
                sessions: self.clone(),
                id,
            },
        )
    }

    pub fn list(&self) -> Vec<Arc<SessionInfo>> {
        self.lock().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<SessionInfo>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct Registered {
    sessions: Arc<Sessions>,
    id: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.sessions.lock().remove(&self.id);
    }
}
