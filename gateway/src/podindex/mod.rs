//! The pod search's index: per cluster, a watch-fed copy of what search needs of its pods,
//! opened when someone searches that cluster and closed after `pod_index.idle_timeout` without
//! a search. Nothing here fans out: only the clusters a search names are opened.
//!
//! - [`summary`]: the fields kept of one pod, read from the API's JSON;
//! - [`matcher`]: which pods a search matches, and their order (pure);
//! - [`store`]: one cluster's pods, bounded by `pod_index.max_pods`;
//! - [`feeder`]: the list-then-watch task that fills a store;
//! - [`access`]: which namespaces a person may list, as the cluster answers for them;
//! - [`wire`]: the requests all of these make.

pub mod access;
pub mod feeder;
pub mod matcher;
pub mod store;
pub mod summary;
pub mod wire;

use crate::upstream::Registry;
use podgate_auth::Identity;
use podgate_metrics::{Metrics, PodIndexMetrics};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};
use store::{PodStore, SyncState};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// `pod_index` settings as the gateway uses them.
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_pods: usize,
    pub idle_timeout: Duration,
    pub max_clusters_per_search: usize,
    pub access_ttl: Duration,
    pub feed_as: Option<Identity>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_config(&Default::default())
    }
}

impl Settings {
    /// From the config (a `feed_as` that is not a valid identity is left out, with a warning:
    /// `check-config` refuses it).
    pub fn from_config(c: &podgate_config::PodIndexConfig) -> Settings {
        let feed_as = c.feed_as.as_ref().and_then(|f| {
            Identity::new(f.user.clone(), f.groups.clone())
                .inspect_err(|e| tracing::warn!("pod_index.feed_as is not used: {e}"))
                .ok()
        });
        Settings {
            max_pods: c.max_pods,
            idle_timeout: c.idle_timeout.get(),
            max_clusters_per_search: c.max_clusters_per_search,
            access_ttl: c.access_ttl.get(),
            feed_as,
        }
    }
}

struct Inner {
    store: PodStore,
    state: SyncState,
}

/// One cluster's index.
pub struct ClusterIndex {
    pub id: String,
    inner: RwLock<Inner>,
    /// The state's name, for searches waiting for the first list.
    state_name: tokio::sync::watch::Sender<&'static str>,
    last_used: Mutex<Instant>,
}

impl ClusterIndex {
    fn new(id: &str, max: usize) -> ClusterIndex {
        ClusterIndex {
            id: id.to_string(),
            inner: RwLock::new(Inner {
                store: PodStore::new(max),
                state: SyncState::Syncing,
            }),
            state_name: tokio::sync::watch::channel("syncing").0,
            last_used: Mutex::new(Instant::now()),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_state(&self, state: SyncState) {
        let name = state.as_str();
        self.write().state = state;
        self.state_name.send_replace(name);
    }

    pub(crate) fn replace(&self, store: PodStore, state: SyncState) {
        let name = state.as_str();
        {
            let mut inner = self.write();
            inner.store = store;
            inner.state = state;
        }
        self.state_name.send_replace(name);
    }

    pub(crate) fn update(&self, change: impl FnOnce(&mut PodStore)) {
        change(&mut self.write().store);
    }

    pub fn len(&self) -> usize {
        self.read(|s, _| s.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the store and state together.
    pub fn read<T>(&self, f: impl FnOnce(&PodStore, &SyncState) -> T) -> T {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        f(&inner.store, &inner.state)
    }

    /// Waits at most `limit` for the first list to end (either way).
    pub async fn settled(&self, limit: Duration) {
        let mut rx = self.state_name.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|s| *s != "syncing")).await;
    }
}

/// Every open cluster index, and what opens and closes them.
pub struct PodIndex {
    pub settings: Settings,
    registry: Registry,
    metrics: Metrics,
    pub index_metrics: PodIndexMetrics,
    pub access: access::AccessCache,
    open: Arc<Mutex<HashMap<String, Arc<ClusterIndex>>>>,
    /// The gateway's tracker: shutdown waits for every feeder to end.
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl PodIndex {
    pub fn new(
        settings: Settings,
        registry: Registry,
        metrics: Metrics,
        index_metrics: PodIndexMetrics,
        shutdown: CancellationToken,
        tasks: TaskTracker,
    ) -> PodIndex {
        PodIndex {
            access: access::AccessCache::new(settings.access_ttl),
            settings,
            registry,
            metrics,
            index_metrics,
            open: Default::default(),
            tasks,
            shutdown,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// How many cluster indexes are open.
    pub fn open_count(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Cluster `id`'s index, opened (its feeder started) when it was not, and marked used.
    pub fn use_cluster(&self, id: &str) -> Arc<ClusterIndex> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = open.get(id) {
            *index
                .last_used
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Instant::now();
            return index.clone();
        }
        let index = Arc::new(ClusterIndex::new(id, self.settings.max_pods));
        open.insert(id.to_string(), index.clone());
        drop(open);
        self.index_metrics.index_open(id, true);
        let feeder = feeder::Feeder {
            registry: self.registry.clone(),
            index: index.clone(),
            metrics: self.metrics.clone(),
            index_metrics: self.index_metrics.clone(),
            feed_as: self.settings.feed_as.clone(),
            max_pods: self.settings.max_pods,
        };
        let idle = idle(self.open.clone(), index.clone(), self.settings.idle_timeout);
        let shutdown = self.shutdown.clone();
        let open = self.open.clone();
        let metrics = self.index_metrics.clone();
        let closing = index.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = feeder.run() => {}
                _ = idle => {}
                _ = shutdown.cancelled() => {}
            }
            let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
            if open
                .get(&closing.id)
                .is_some_and(|i| Arc::ptr_eq(i, &closing))
            {
                open.remove(&closing.id);
            }
            drop(open);
            metrics.index_open(&closing.id, false);
            tracing::debug!(cluster = %closing.id, "pod index closed");
        });
        index
    }
}

/// Resolves once `index` went unused for `timeout`, having removed it from `open` (under the
/// lock that [`PodIndex::use_cluster`] marks use under, so a search never gets a closing one).
async fn idle(
    open: Arc<Mutex<HashMap<String, Arc<ClusterIndex>>>>,
    index: Arc<ClusterIndex>,
    timeout: Duration,
) {
    loop {
        let last = *index
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        tokio::time::sleep_until((last + timeout).into()).await;
        let mut map = open.lock().unwrap_or_else(PoisonError::into_inner);
        let last = *index
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.elapsed() >= timeout {
            if map.get(&index.id).is_some_and(|i| Arc::ptr_eq(i, &index)) {
                map.remove(&index.id);
            }
            return;
        }
    }
}
