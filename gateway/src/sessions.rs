//! Live sessions, readable from outside the relay: for `/debug/sessions`, metrics, and tests
//! that watch a session's byte counters.

use crate::relay::pump::Counters;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub struct SessionInfo {
    pub id: String,
    pub user: String,
    pub cluster: String,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub started: SystemTime,
    pub counters: Counters,
}

#[derive(Default)]
pub struct Sessions {
    live: Mutex<BTreeMap<String, Arc<SessionInfo>>>,
}

impl Sessions {
    /// Registers a session until the returned guard is dropped.
    pub fn register(self: &Arc<Self>, info: SessionInfo) -> (Arc<SessionInfo>, Registered) {
        let info = Arc::new(info);
        self.lock().insert(info.id.clone(), info.clone());
        let guard = Registered {
            sessions: self.clone(),
            id: info.id.clone(),
        };
        (info, guard)
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
