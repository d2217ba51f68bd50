//! The cluster registry: one [`kube::Client`] per upstream cluster, built once and shared by
//! every request and session to that cluster, plus its last known health.
//!
//! Clients are shared because each holds a connection pool and a TLS configuration; building
//! one per request would redo TLS handshakes and lose HTTP/2 multiplexing. Entries are
//! `Arc<Cluster>`: a session takes its own `Arc` when it starts, so a configuration reload
//! that replaces or removes the cluster never disturbs sessions already running on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use podgate_config::{ClusterConfig, ClusterSource, UpstreamConfig};
use tokio_util::sync::CancellationToken;

/// Why a cluster could not be set up. Every message names the cluster and, when there is one,
/// the kubeconfig file.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster {id}: kubeconfig {}: {}", path.display(), describe_kubeconfig_error(source))]
    Kubeconfig {
        id: String,
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("cluster {id}: in-cluster configuration: {source}")]
    InCluster {
        id: String,
        source: kube::config::InClusterError,
    },
    #[error("cluster {id}: cannot build a client for {server}: {source}")]
    Client {
        id: String,
        server: String,
        source: kube::Error,
    },
    #[error("cluster {id}: listed more than once")]
    Duplicate { id: String },
}

/// kube's read error repeats the path in Debug form (ours already names the file), and its
/// context errors do not say that the context is missing.
fn describe_kubeconfig_error(e: &kube::config::KubeconfigError) -> String {
    match e {
        kube::config::KubeconfigError::ReadConfig(io, _) => format!("cannot read: {io}"),
        kube::config::KubeconfigError::LoadContext(name) => format!("no context {name:?}"),
        kube::config::KubeconfigError::CurrentContextNotSet => {
            "no context given and no current-context".to_string()
        }
        e => e.to_string(),
    }
}

/// The last health check of a cluster. Before the first check it is "unknown": `up` false and
/// `checked_at` `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub up: bool,
    pub checked_at: Option<SystemTime>,
    /// Why the last check failed.
    pub error: Option<String>,
    /// `gitVersion` from the last successful `/version`.
    pub version: Option<String>,
}

/// One upstream cluster.
pub struct Cluster {
    pub id: String,
    pub client: kube::Client,
    /// Send the user's identity as `Impersonate-*` headers (see `ClusterConfig::impersonate`).
    pub impersonate: bool,
    /// Who may use this cluster through the gateway (checked before any upstream call).
    pub access: podgate_config::AccessPolicy,
    /// The apiserver URL, for messages and the dashboard; requests go through `client`.
    pub server: String,
    /// The streaming HTTP path the proxy and the exec relay use (same TLS, credentials and
    /// base URL as `client`).
    pub upstream: super::Upstream,
    /// When the client certificate the kubeconfig gives the gateway expires (Unix seconds),
    /// for `podgate_tls_certificate_expiry_timestamp_seconds`; `None` without one.
    pub client_cert_not_after: Option<u64>,
    /// To name it when it is what failed.
    connect_timeout: Option<Duration>,
    health: RwLock<Health>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("id", &self.id)
            .field("server", &self.server)
            .field("impersonate", &self.impersonate)
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Builds the cluster a config entry describes, from its kubeconfig (and context) or from
    /// the pod's service account. Needs a Tokio runtime: the client spawns its worker.
    pub async fn from_config(
        config: &ClusterConfig,
        upstream: &UpstreamConfig,
    ) -> Result<Cluster, ClusterError> {
        let id = config.id.clone();
        let mut kube_config = match config.source() {
            ClusterSource::Kubeconfig { path, context } => {
                let kubeconfig_error = |source| ClusterError::Kubeconfig {
                    id: id.clone(),
                    path: path.to_path_buf(),
                    source,
                };
                // `read_from` also resolves the file's relative certificate paths against its
                // directory, as kubectl does.
                let kc = kube::config::Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
                let options = kube::config::KubeConfigOptions {
                    context: context.map(str::to_string),
                    ..Default::default()
                };
                kube::Config::from_custom_kubeconfig(kc, &options)
                    .await
                    .map_err(kubeconfig_error)?
            }
            ClusterSource::InCluster => {
                kube::Config::incluster().map_err(|source| ClusterError::InCluster {
                    id: id.clone(),
                    source,
                })?
            }
        };
        kube_config.connect_timeout = Some(upstream.connect_timeout.get());
        let mut cluster = Cluster::from_kube_config(id, kube_config, config.impersonate)?;
        cluster.access = config.access.clone();
        Ok(cluster)
    }

    /// Builds a cluster from a ready `kube::Config` (the demo makes them in memory).
    ///
    /// The config's read and write timeouts are removed. kube applies them per IO operation
    /// on every connection of the client, upgraded ones included, so a read timeout would cut
    /// an exec session or watch that is merely quiet, and a write timeout one whose pod is
    /// slow to read its stdin (back-pressure, which the relay relies on). Requests that must
    /// be bounded (health checks, proxied calls) are bounded by their caller; liveness of
    /// sessions is the relay's job. The connect timeout (TCP and TLS handshake) is kept.
    pub fn from_kube_config(
        id: impl Into<String>,
        mut config: kube::Config,
        impersonate: bool,
    ) -> Result<Cluster, ClusterError> {
        let id = id.into();
        config.read_timeout = None;
        config.write_timeout = None;
        let connect_timeout = config.connect_timeout;
        let client_cert_not_after = client_certificate(&config.auth_info)
            .as_deref()
            .and_then(crate::x509::pem_not_after);
        let server = config.cluster_url.to_string();
        let server = server
            .strip_suffix('/')
            .map(str::to_string)
            .unwrap_or(server);
        let upstream =
            super::Upstream::new(&config, connect_timeout.unwrap_or(Duration::from_secs(10)))
                .map_err(|source| ClusterError::Client {
                    id: id.clone(),
                    server: server.clone(),
                    source,
                })?;
        let client = kube::Client::try_from(config).map_err(|source| ClusterError::Client {
            id: id.clone(),
            server: server.clone(),
            source,
        })?;
        Ok(Cluster {
            id,
            client,
            impersonate,
            access: Default::default(),
            server,
            upstream,
            client_cert_not_after,
            connect_timeout,
            health: RwLock::new(Health::default()),
        })
    }

    /// The result of the last health check.
    pub fn health(&self) -> Health {
        self.health
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Asks the apiserver for `/version`, bounded by `timeout`, records the outcome and logs a
    /// change between up and down. Returns the new health.
    pub async fn check_health(&self, timeout: Duration) -> Health {
        let outcome = match tokio::time::timeout(timeout, self.client.apiserver_version()).await {
            Ok(Ok(info)) => Ok(info.git_version),
            Ok(Err(e)) => Err(describe_request_error(&e, self.connect_timeout)),
            Err(_) => Err(format!(
                "no answer to GET /version within {}",
                humanize(timeout)
            )),
        };
        let now = Health {
            up: outcome.is_ok(),
            checked_at: Some(SystemTime::now()),
            version: outcome.as_ref().ok().cloned(),
            error: outcome.err(),
        };
        let before = std::mem::replace(
            &mut *self.health.write().unwrap_or_else(PoisonError::into_inner),
            now.clone(),
        );
        let was = before.checked_at.map(|_| before.up);
        match (was, &now) {
            (Some(true), Health { up: true, .. }) | (Some(false), Health { up: false, .. }) => {}
            (
                _,
                Health {
                    up: true, version, ..
                },
            ) => tracing::info!(
                cluster = %self.id,
                server = %self.server,
                version = version.as_deref().unwrap_or(""),
                "cluster is up"
            ),
            (_, Health { error, .. }) => tracing::warn!(
                cluster = %self.id,
                server = %self.server,
                error = error.as_deref().unwrap_or(""),
                "cluster is down"
            ),
        }
        now
    }
}

/// The PEM of the client certificate a kubeconfig user authenticates with, inline or in a
/// file. Only its expiry is read from it (the client itself is built by kube).
fn client_certificate(auth: &kube::config::AuthInfo) -> Option<Vec<u8>> {
    use base64::Engine as _;
    if let Some(data) = &auth.client_certificate_data {
        return base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok();
    }
    std::fs::read(auth.client_certificate.as_deref()?).ok()
}

/// A failed request in words an operator can act on. kube's own messages say where it failed
/// ("ServiceError: client error (Connect)"); the causes say why, and a connect timeout surfaces
/// only as tokio's "deadline has elapsed", which we spell out.
fn describe_request_error(e: &kube::Error, connect_timeout: Option<Duration>) -> String {
    match e {
        kube::Error::Api(status) => {
            format!("HTTP {} {}: {}", status.code, status.reason, status.message)
        }
        kube::Error::Service(inner) => {
            let inner: &(dyn std::error::Error + 'static) = inner.as_ref();
            let timed_out = std::iter::successors(Some(inner), |e| e.source()).any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            });
            match (timed_out, connect_timeout) {
                (true, Some(t)) => format!(
                    "cannot connect within {} (TCP and TLS handshake)",
                    humanize(t)
                ),
                _ => error_chain(inner),
            }
        }
        e => error_chain(e),
    }
}

/// An error and its causes on one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        // Many layers repeat their cause in their own message; keep each fact once.
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// What [`Registry::apply`] is given for one cluster.
pub enum ClusterSpec {
    /// Built by the registry, and rebuilt when the entry or its kubeconfig file changes.
    Config(ClusterConfig),
    /// Built by the caller; replaced when a different `Arc` is given.
    Prebuilt(Arc<Cluster>),
}

impl From<ClusterConfig> for ClusterSpec {
    fn from(c: ClusterConfig) -> Self {
        ClusterSpec::Config(c)
    }
}

impl From<Arc<Cluster>> for ClusterSpec {
    fn from(c: Arc<Cluster>) -> Self {
        ClusterSpec::Prebuilt(c)
    }
}

impl ClusterSpec {
    fn id(&self) -> &str {
        match self {
            ClusterSpec::Config(c) => &c.id,
            ClusterSpec::Prebuilt(c) => &c.id,
        }
    }
}

/// Identifies one version of a kubeconfig file without reading it, so that a rotated file
/// (new token, new CA) is picked up by the next `apply` even when the entry is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    ino: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            ino: meta.ino(),
        })
    }
}

/// What an entry was built from, kept to decide on the next `apply` whether to rebuild it.
#[derive(Debug, Clone, PartialEq)]
enum Origin {
    Config {
        config: ClusterConfig,
        connect_timeout: Duration,
        kubeconfig: Option<FileStamp>,
    },
    Prebuilt,
}

impl Origin {
    fn of(config: &ClusterConfig, upstream: &UpstreamConfig) -> Origin {
        Origin::Config {
            config: config.clone(),
            connect_timeout: upstream.connect_timeout.get(),
            kubeconfig: config.kubeconfig.as_deref().and_then(FileStamp::of),
        }
    }
}

struct Entry {
    cluster: Arc<Cluster>,
    origin: Origin,
}

/// What an [`Registry::apply`] did, for the log.
#[derive(Debug, Default)]
pub struct ApplySummary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Rebuilt because their entry, their kubeconfig file or the connect timeout changed.
    pub changed: Vec<String>,
    /// Clusters that could not be built. They are not served (a changed cluster that fails
    /// to rebuild is removed rather than kept with its old settings: the operator asked for
    /// something else, and the old settings may be the reason for the change); such a
    /// cluster is also listed in `removed`.
    pub failed: Vec<ClusterError>,
}

impl ApplySummary {
    /// True when nothing was added, removed, changed or refused.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.failed.is_empty()
    }
}

#[derive(Default)]
struct Inner {
    entries: RwLock<BTreeMap<String, Entry>>,
    /// One `apply` at a time: two interleaved reloads could otherwise each build and insert.
    applying: tokio::sync::Mutex<()>,
    /// Wakes the health loop when clusters were added or rebuilt, so they do not stay
    /// "unknown" for a whole interval.
    fresh: tokio::sync::Notify,
}

/// All clusters the gateway serves, by id. Cloning is cheap and clones share the clusters.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.list().iter().map(|c| &c.id))
            .finish()
    }
}

impl Registry {
    /// An empty registry; fill it with [`Registry::apply`].
    pub fn new() -> Registry {
        Registry::default()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Cluster>> {
        self.read().get(id).map(|e| e.cluster.clone())
    }

    /// Every cluster, sorted by id.
    pub fn list(&self) -> Vec<Arc<Cluster>> {
        self.read().values().map(|e| e.cluster.clone()).collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        self.inner
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the registry serve exactly `specs`: adds new clusters, removes missing ones,
    /// rebuilds changed ones, and leaves unchanged ones as they are (the same `Arc`, so their
    /// connection pools and sessions are untouched). Sessions holding a removed or replaced
    /// cluster keep using it until they end.
    ///
    /// Clients are built before anything is swapped, so lookups never see a half-applied
    /// state. Needs a Tokio runtime.
    pub async fn apply<S: Into<ClusterSpec>>(
        &self,
        specs: impl IntoIterator<Item = S>,
        upstream: &UpstreamConfig,
    ) -> ApplySummary {
        let _one_at_a_time = self.inner.applying.lock().await;
        let mut summary = ApplySummary::default();
        let old: BTreeMap<String, (Arc<Cluster>, Origin)> = self
            .read()
            .iter()
            .map(|(id, e)| (id.clone(), (e.cluster.clone(), e.origin.clone())))
            .collect();

        let mut next: BTreeMap<String, Entry> = BTreeMap::new();
        for spec in specs {
            let spec = spec.into();
            let id = spec.id().to_string();
            if next.contains_key(&id) || summary.failed.iter().any(|e| failed_id(e) == id) {
                summary.failed.push(ClusterError::Duplicate { id });
                continue;
            }
            let previous = old.get(&id);
            let built = match spec {
                ClusterSpec::Prebuilt(cluster) => match previous {
                    Some((c, _)) if Arc::ptr_eq(c, &cluster) => {
                        next.insert(
                            id,
                            Entry {
                                cluster,
                                origin: Origin::Prebuilt,
                            },
                        );
                        continue;
                    }
                    _ => Ok(Entry {
                        cluster,
                        origin: Origin::Prebuilt,
                    }),
                },
                ClusterSpec::Config(config) => {
                    // Stamp before building: a write in between reads as a change next time.
                    let origin = Origin::of(&config, upstream);
                    match previous {
                        Some((c, o)) if *o == origin => {
                            next.insert(
                                id,
                                Entry {
                                    cluster: c.clone(),
                                    origin,
                                },
                            );
                            continue;
                        }
                        _ => Cluster::from_config(&config, upstream)
                            .await
                            .map(|c| Entry {
                                cluster: Arc::new(c),
                                origin,
                            }),
                    }
                }
            };
            match built {
                Ok(entry) => {
                    if previous.is_some() {
                        summary.changed.push(id.clone());
                    } else {
                        summary.added.push(id.clone());
                    }
                    next.insert(id, entry);
                }
                Err(e) => summary.failed.push(e),
            }
        }
        summary.removed = old
            .keys()
            .filter(|id| !next.contains_key(*id))
            .cloned()
            .collect();
        *self
            .inner
            .entries
            .write()
            .unwrap_or_else(PoisonError::into_inner) = next;
        if !summary.added.is_empty() || !summary.changed.is_empty() {
            self.inner.fresh.notify_one();
        }
        summary
    }
}

fn failed_id(e: &ClusterError) -> &str {
    match e {
        ClusterError::Kubeconfig { id, .. }
        | ClusterError::InCluster { id, .. }
        | ClusterError::Client { id, .. }
        | ClusterError::Duplicate { id } => id,
    }
}

/// Checks every cluster concurrently, each bounded by `timeout`.
pub async fn check_all(clusters: &[Arc<Cluster>], timeout: Duration) {
    futures_util::future::join_all(clusters.iter().map(|c| c.check_health(timeout))).await;
}

/// Probes every cluster's `/version` at once, then every `interval`, each probe bounded by
/// `timeout`, until `shutdown`. Clusters added or rebuilt by [`Registry::apply`] are probed
/// right away instead of waiting for the next round.
///
/// A round waits for its slowest probe, so rounds never overlap; with `timeout` at most
/// `interval` (the config validates it) they keep their rhythm.
pub fn spawn_health_checks(
    registry: Registry,
    interval: Duration,
    timeout: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // tokio's interval refuses zero; the config never gives it, a caller might.
        let mut tick = tokio::time::interval(interval.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // The first tick completes at once: the initial check.
            let clusters = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => registry.list(),
                _ = registry.inner.fresh.notified() => registry
                    .list()
                    .into_iter()
                    .filter(|c| c.health().checked_at.is_none())
                    .collect(),
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = check_all(&clusters, timeout) => {}
            }
        }
    })
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
