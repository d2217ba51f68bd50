//! What every request shares: clusters, authentication, limits, settings, and the owner of
//! every task (so shutdown can end them all and wait).

use crate::clusters::Registry;
use crate::limits::Limits;
use crate::relay::pump;
use podgate_auth::Authenticator;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub struct SessionSettings {
    pub keepalive: Duration,
    pub idle_timeout: Option<Duration>,
    pub max_duration: Option<Duration>,
    pub max_message: usize,
}

pub struct Gateway {
    pub clusters: Registry,
    pub authenticator: Arc<dyn Authenticator>,
    pub limits: Arc<Limits>,
    pub sessions_live: Arc<crate::sessions::Sessions>,
    pub sessions: SessionSettings,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
}

impl Gateway {
    pub fn session_settings(&self) -> pump::Settings {
        pump::Settings {
            keepalive: self.sessions.keepalive,
            idle_timeout: self.sessions.idle_timeout,
            max_duration: self.sessions.max_duration,
            max_message: self.sessions.max_message,
        }
    }
}

/// A process-unique, sortable session id: start time in ms and a counter.
pub fn session_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{ms:x}-{n:x}")
}
