//! What every request shares: clusters, authentication, limits, settings, and the owner of
//! every task (so shutdown can end them all and wait).

use crate::clusters::Registry;
use crate::limits::Limits;
pub use crate::relay::pump::SessionSettings;
use podgate_auth::Authenticator;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub struct Gateway {
    pub clusters: Registry,
    pub authenticator: Arc<dyn Authenticator>,
    /// Browser sessions: the cookie key, allowed origins, logins on offer.
    pub browser: Arc<crate::browser::Browser>,
    pub limits: Arc<Limits>,
    pub metrics: podgate_metrics::Metrics,
    pub audit: crate::audit::Audit,
    /// Live exec/attach sessions (for `/debug/sessions` and tests).
    pub sessions_live: Arc<crate::sessions::Sessions>,
    pub sessions: SessionSettings,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
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
