//! What every request handler shares.

use crate::access::Access;
use crate::store::Store;
use crate::topology::Topology;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub struct State {
    pub topology: Topology,
    pub store: Store,
    pub access: Access,
    pub configmaps: crate::configmaps::ConfigMaps,
    /// Containers' working directories live below this.
    pub state_dir: PathBuf,
    /// Cancelled at shutdown: every connection and session watches it.
    pub shutdown: CancellationToken,
    /// Every connection and session task, so shutdown can wait for all of them.
    pub tasks: TaskTracker,
    pub active_sessions: AtomicUsize,
    pub total_sessions: AtomicU64,
}

impl State {
    pub fn new(topology: Topology, state_dir: PathBuf) -> State {
        State {
            store: Store::new(&topology),
            access: Access::new(topology.users.clone(), topology.rules.clone()),
            configmaps: Default::default(),
            topology,
            state_dir,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            active_sessions: AtomicUsize::new(0),
            total_sessions: AtomicU64::new(0),
        }
    }

    /// Counts a session for as long as the guard lives.
    pub fn session_guard(&self) -> SessionGuard<'_> {
        self.active_sessions.fetch_add(1, Ordering::Relaxed);
        self.total_sessions.fetch_add(1, Ordering::Relaxed);
        SessionGuard(&self.active_sessions)
    }
}

pub struct SessionGuard<'a>(&'a AtomicUsize);

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
