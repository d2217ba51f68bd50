//! The cluster registry: one [`Cluster`] per upstream cluster, built once and shared by
//! every request and session to that cluster, plus its last known health.
//!
//! Clusters are shared because each holds a connection pool and a TLS configuration; building
//! one per request would redo TLS handshakes. Entries are `Arc<Cluster>`: a session takes its
//! own `Arc` when it starts, so a configuration reload that replaces or removes the cluster
//! never disturbs sessions already running on it.
//!
//! Sized for fleets: lookups go through a hash map in an immutable snapshot (constant time,
//! no lock held while a request uses the cluster); a reload builds only the clusters whose
//! entry or kubeconfig changed, reads each kubeconfig file once however many clusters name
//! it, and swaps the snapshot in one step, so requests to the other clusters never wait.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use podgate_config::{ClusterConfig, ClusterSource, UpstreamConfig};

pub use super::health::spawn_health_checks;

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
    #[error("cluster {id}: {source}")]
    AgentToken {
        id: String,
        source: crate::tunnel::token::TokenError,
    },
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
    /// Send the user's identity as `Impersonate-*` headers (see `ClusterConfig::impersonate`).
    pub impersonate: bool,
    /// Who may use this cluster through the gateway (checked before any upstream call).
    pub access: podgate_config::AccessPolicy,
    /// What people read: `display_name`, `environment` and `labels` from the config.
    pub meta: ClusterMeta,
    /// The apiserver URL, for messages and the dashboard; requests go through `upstream`.
    pub server: String,
    /// The streaming HTTP path the proxy, the exec relay and the health probe use (TLS,
    /// credentials and base URL from the kubeconfig).
    pub upstream: super::Upstream,
    /// When the client certificate the kubeconfig gives the gateway expires (Unix seconds),
    /// for `podgate_tls_certificate_expiry_timestamp_seconds`; `None` without one.
    pub client_cert_not_after: Option<u64>,
    /// For a cluster reached through agent tunnels: what its agents must show, and the
    /// tunnels they opened.
    pub agent: Option<AgentAccess>,
    /// To name it when it is what failed.
    connect_timeout: Option<Duration>,
    health: RwLock<Health>,
}

/// How agents reach a cluster: the digest of its token, and its tunnels (kept across reloads
/// that do not change the token, so editing a display name cuts nothing).
#[derive(Clone)]
pub struct AgentAccess {
    pub token: crate::tunnel::token::TokenDigest,
    pub links: Arc<crate::tunnel::links::Links>,
}

/// A cluster's description for people (the web UI, `/podgate/clusters`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterMeta {
    pub display_name: Option<String>,
    pub environment: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl ClusterMeta {
    fn of(config: &ClusterConfig) -> ClusterMeta {
        ClusterMeta {
            display_name: config.display_name.clone(),
            environment: config.environment.clone(),
            labels: config.labels.clone(),
        }
    }
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

/// Parsed kubeconfig files by path, for one `apply`: a fleet names a few files many times.
#[derive(Default)]
struct Kubeconfigs {
    files: HashMap<PathBuf, (Option<FileStamp>, kube::config::Kubeconfig)>,
}

impl Kubeconfigs {
    /// The file at `path`, read once per version (its stamp) however often it is asked for.
    fn read(
        &mut self,
        path: &Path,
    ) -> Result<kube::config::Kubeconfig, kube::config::KubeconfigError> {
        let stamp = FileStamp::of(path);
        if let Some((seen, kc)) = self.files.get(path)
            && stamp.is_some()
            && *seen == stamp
        {
            return Ok(kc.clone());
        }
        // `read_from` also resolves the file's relative certificate paths against its
        // directory, as kubectl does.
        let kc = kube::config::Kubeconfig::read_from(path)?;
        self.files.insert(path.to_path_buf(), (stamp, kc.clone()));
        Ok(kc)
    }
}

impl Cluster {
    /// Builds the cluster a config entry describes, from its kubeconfig (and context) or from
    /// the pod's service account. Needs a Tokio runtime.
    pub async fn from_config(
        config: &ClusterConfig,
        upstream: &UpstreamConfig,
    ) -> Result<Cluster, ClusterError> {
        Cluster::from_config_with(config, upstream, &mut Kubeconfigs::default(), None).await
    }

    async fn from_config_with(
        config: &ClusterConfig,
        upstream: &UpstreamConfig,
        files: &mut Kubeconfigs,
        previous: Option<&Arc<Cluster>>,
    ) -> Result<Cluster, ClusterError> {
        let id = config.id.clone();
        let mut kube_config = match config.source() {
            ClusterSource::Agent(token) => {
                return Cluster::through_agents(config, upstream, token, previous);
            }
            ClusterSource::Kubeconfig { path, context } => {
                let kubeconfig_error = |source| ClusterError::Kubeconfig {
                    id: id.clone(),
                    path: path.to_path_buf(),
                    source,
                };
                let kc = files.read(path).map_err(kubeconfig_error)?;
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
        let options = super::UpstreamOptions::from(upstream);
        let mut cluster = Cluster::build(id, kube_config, config.impersonate, &options)?;
        cluster.access = config.access.clone();
        cluster.meta = ClusterMeta::of(config);
        Ok(cluster)
    }

    /// A cluster reached through its agents' tunnels: no credentials, only the digest of what
    /// its agents must show. The tunnels of `previous` are kept when the token is the same.
    fn through_agents(
        config: &ClusterConfig,
        upstream: &UpstreamConfig,
        token: podgate_config::AgentToken<'_>,
        previous: Option<&Arc<Cluster>>,
    ) -> Result<Cluster, ClusterError> {
        use crate::tunnel::token::TokenDigest;
        let id = config.id.clone();
        let token = match token {
            podgate_config::AgentToken::File(path) => TokenDigest::from_file(path),
            podgate_config::AgentToken::Sha256(hex) => TokenDigest::from_hex(hex),
        }
        .map_err(|source| ClusterError::AgentToken {
            id: id.clone(),
            source,
        })?;
        let links = previous
            .and_then(|c| c.agent.as_ref())
            .filter(|a| a.token == token && !a.links.is_closed())
            .map(|a| a.links.clone())
            .unwrap_or_default();
        let options = super::UpstreamOptions::from(upstream);
        Ok(Cluster {
            server: format!("agent://{id}"),
            upstream: super::Upstream::tunnel(links.clone(), &options),
            id,
            impersonate: true,
            access: config.access.clone(),
            meta: ClusterMeta::of(config),
            client_cert_not_after: None,
            agent: Some(AgentAccess { token, links }),
            connect_timeout: None,
            health: RwLock::new(Health::default()),
        })
    }

    /// Builds a cluster from a ready `kube::Config` (the demo makes them in memory), with the
    /// default idle timeout.
    ///
    /// The config's read and write timeouts are not used: they would apply per IO operation
    /// on every connection, upgraded ones included, so a read timeout would cut an exec
    /// session or watch that is merely quiet, and a write timeout one whose pod is slow to
    /// read its stdin (back-pressure, which the relay relies on). Requests that must be
    /// bounded (health checks, proxied calls) are bounded by their caller; liveness of
    /// sessions is the relay's job. The connect timeout (TCP and TLS handshake) is kept.
    pub fn from_kube_config(
        id: impl Into<String>,
        config: kube::Config,
        impersonate: bool,
    ) -> Result<Cluster, ClusterError> {
        let options = super::UpstreamOptions {
            connect_timeout: config
                .connect_timeout
                .unwrap_or(super::UpstreamOptions::default().connect_timeout),
            ..super::UpstreamOptions::default()
        };
        Cluster::build(id.into(), config, impersonate, &options)
    }

    fn build(
        id: String,
        config: kube::Config,
        impersonate: bool,
        options: &super::UpstreamOptions,
    ) -> Result<Cluster, ClusterError> {
        let client_cert_not_after = client_certificate(&config.auth_info)
            .as_deref()
            .and_then(crate::x509::pem_not_after);
        let server = config.cluster_url.to_string();
        let server = server
            .strip_suffix('/')
            .map(str::to_string)
            .unwrap_or(server);
        let upstream =
            super::Upstream::new(&config, options).map_err(|source| ClusterError::Client {
                id: id.clone(),
                server: server.clone(),
                source,
            })?;
        Ok(Cluster {
            id,
            impersonate,
            access: Default::default(),
            meta: ClusterMeta::default(),
            server,
            upstream,
            client_cert_not_after,
            agent: None,
            connect_timeout: Some(options.connect_timeout),
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

    /// Whether the last health check succeeded (without copying the rest).
    pub fn is_up(&self) -> bool {
        self.health
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .up
    }

    /// Where the health scheduler counts concurrent probes: the apiserver's address (scheme,
    /// host and port), shared by every cluster id that names it.
    pub fn server_address(&self) -> &str {
        let rest = self
            .server
            .split_once("://")
            .map_or(self.server.as_str(), |(_, r)| r);
        let end = rest.find('/').unwrap_or(rest.len());
        &self.server[..self.server.len() - rest.len() + end]
    }

    /// Asks the apiserver for `/version`, bounded by `timeout`, records the outcome and logs a
    /// change between up and down. Returns the new health.
    ///
    /// The probe does not count as use of the cluster: when nobody used it within the idle
    /// timeout, its connection is closed after the answer (see [`super::Upstream::probe`]).
    pub async fn check_health(&self, timeout: Duration) -> Health {
        let outcome = match tokio::time::timeout(timeout, self.version()).await {
            Ok(outcome) => outcome,
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

    /// `GET /version`: the `gitVersion`, or why not.
    async fn version(&self) -> Result<String, String> {
        use http_body_util::BodyExt as _;
        /// A version answer is a few hundred bytes; anything near this is not one.
        const MAX_VERSION_BYTES: usize = 64 << 10;
        let mut req = http::Request::new(super::empty_body());
        *req.uri_mut() = http::Uri::from_static("/version");
        req.headers_mut().insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/json"),
        );
        let resp = self
            .upstream
            .probe(req)
            .await
            .map_err(|e| describe_probe_error(e.as_ref(), self.connect_timeout))?;
        let code = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), MAX_VERSION_BYTES)
            .collect()
            .await
            .map_err(|e| {
                format!(
                    "reading the answer to GET /version: {}",
                    error_chain(e.as_ref())
                )
            })?
            .to_bytes();
        if !code.is_success() {
            let status: Option<podgate_protocol::Status> = serde_json::from_slice(&body).ok();
            let reason = code.canonical_reason().unwrap_or("");
            return Err(match status {
                Some(s) => format!(
                    "HTTP {} {}: {}",
                    code.as_u16(),
                    s.reason.as_deref().unwrap_or(reason),
                    s.message.unwrap_or_default()
                ),
                None => format!("HTTP {} {reason}", code.as_u16()),
            });
        }
        #[derive(serde::Deserialize)]
        struct Version {
            #[serde(rename = "gitVersion")]
            git_version: String,
        }
        serde_json::from_slice::<Version>(&body)
            .map(|v| v.git_version)
            .map_err(|e| format!("the answer to GET /version is not a version: {e}"))
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

/// A failed probe in words an operator can act on. hyper's own messages say where it failed
/// ("client error (Connect)"); the causes say why, and a connect timeout surfaces only as
/// "deadline has elapsed", which we spell out.
fn describe_probe_error(
    e: &(dyn std::error::Error + Send + Sync + 'static),
    connect_timeout: Option<Duration>,
) -> String {
    let e: &(dyn std::error::Error + 'static) = e;
    let timed_out = std::iter::successors(Some(e), |e| e.source()).any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    });
    match (timed_out, connect_timeout) {
        (true, Some(t)) => format!(
            "cannot connect within {} (TCP and TLS handshake)",
            humanize(t)
        ),
        _ => error_chain(e),
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
// Specs live only for one `apply`, and nearly all are `Config`: boxing would add an
// allocation each for nothing.
#[allow(clippy::large_enum_variant)]
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
// Nearly every entry is `Config`; `Prebuilt` is the demo's and the tests'.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
enum Origin {
    Config {
        config: ClusterConfig,
        connect_timeout: Duration,
        idle_timeout: Duration,
        kubeconfig: Option<FileStamp>,
        /// An agent cluster's token file: a new token is a new cluster (its tunnels cut).
        token_file: Option<FileStamp>,
    },
    Prebuilt,
}

impl Origin {
    fn of(config: &ClusterConfig, upstream: &UpstreamConfig) -> Origin {
        Origin::Config {
            config: config.clone(),
            connect_timeout: upstream.connect_timeout.get(),
            idle_timeout: upstream.idle_timeout.get(),
            kubeconfig: config.kubeconfig.as_deref().and_then(FileStamp::of),
            token_file: config
                .agent
                .as_ref()
                .and_then(|a| a.token_file.as_deref())
                .and_then(FileStamp::of),
        }
    }
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

/// The clusters served at one moment: immutable, replaced whole by `apply`. Readers hold an
/// `Arc` of it for as long as they like without holding any lock.
#[derive(Default)]
pub struct Snapshot {
    by_id: HashMap<String, Arc<Cluster>>,
    /// The same clusters, sorted by id (for listing and paging).
    sorted: Vec<Arc<Cluster>>,
}

impl Snapshot {
    /// Cluster `id`: one hash lookup, whatever the number of clusters.
    pub fn get(&self, id: &str) -> Option<&Arc<Cluster>> {
        self.by_id.get(id)
    }

    /// Every cluster, sorted by id.
    pub fn sorted(&self) -> &[Arc<Cluster>] {
        &self.sorted
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    fn from_sorted(sorted: Vec<Arc<Cluster>>) -> Snapshot {
        let by_id = sorted.iter().map(|c| (c.id.clone(), c.clone())).collect();
        Snapshot { by_id, sorted }
    }
}

#[derive(Default)]
struct Inner {
    snapshot: RwLock<Arc<Snapshot>>,
    /// What each entry was built from. Its lock also makes `apply` one at a time: two
    /// interleaved reloads could otherwise each build and insert.
    origins: tokio::sync::Mutex<HashMap<String, Origin>>,
    /// The `upstream` settings of the last `apply` (the health scheduler's policy).
    upstream: RwLock<UpstreamConfig>,
    /// Wakes the health loop when clusters were added, rebuilt or removed, so new ones do
    /// not stay "unknown" for a whole interval and removed ones are no longer probed.
    changed: tokio::sync::Notify,
    probes: podgate_metrics::ProbeMetrics,
}

/// All clusters the gateway serves, by id. Cloning is cheap and clones share the clusters.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.snapshot().sorted().iter().map(|c| &c.id))
            .finish()
    }
}

impl Registry {
    /// An empty registry; fill it with [`Registry::apply`].
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Cluster `id`, in constant time.
    pub fn get(&self, id: &str) -> Option<Arc<Cluster>> {
        self.snapshot().get(id).cloned()
    }

    /// Every cluster, sorted by id. With a fleet prefer [`Registry::snapshot`], which copies
    /// nothing.
    pub fn list(&self) -> Vec<Arc<Cluster>> {
        self.snapshot().sorted().to_vec()
    }

    /// The clusters served now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner
            .snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The probe series (`podgate_cluster_probes_total`, ...), to register with the gateway's
    /// metrics.
    pub fn probe_metrics(&self) -> &podgate_metrics::ProbeMetrics {
        &self.inner.probes
    }

    /// The `upstream` settings last applied.
    pub fn upstream_config(&self) -> UpstreamConfig {
        self.inner
            .upstream
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn changed(&self) -> &tokio::sync::Notify {
        &self.inner.changed
    }

    /// Makes the registry serve exactly `specs`: adds new clusters, removes missing ones,
    /// rebuilds changed ones, and leaves unchanged ones as they are (the same `Arc`, so their
    /// connection pools, health and sessions are untouched). Sessions holding a removed or
    /// replaced cluster keep using it until they end.
    ///
    /// Clients are built before anything is swapped, so lookups never see a half-applied
    /// state, and never wait for the build. Needs a Tokio runtime.
    pub async fn apply<S: Into<ClusterSpec>>(
        &self,
        specs: impl IntoIterator<Item = S>,
        upstream: &UpstreamConfig,
    ) -> ApplySummary {
        let mut origins = self.inner.origins.lock().await;
        let mut summary = ApplySummary::default();
        let old = self.snapshot();
        let mut files = Kubeconfigs::default();
        let mut next: BTreeMap<String, Arc<Cluster>> = BTreeMap::new();
        let mut next_origins: HashMap<String, Origin> = HashMap::with_capacity(origins.len());
        for spec in specs {
            let spec = spec.into();
            let id = spec.id().to_string();
            if next.contains_key(&id) || summary.failed.iter().any(|e| failed_id(e) == id) {
                summary.failed.push(ClusterError::Duplicate { id });
                continue;
            }
            let previous = old.get(&id);
            let (built, origin) = match spec {
                ClusterSpec::Prebuilt(cluster) => match previous {
                    Some(c) if Arc::ptr_eq(c, &cluster) => {
                        next.insert(id.clone(), cluster);
                        next_origins.insert(id, Origin::Prebuilt);
                        continue;
                    }
                    _ => (Ok(cluster), Origin::Prebuilt),
                },
                ClusterSpec::Config(config) => {
                    // Stamp before building: a write in between reads as a change next time.
                    let origin = Origin::of(&config, upstream);
                    match previous {
                        Some(c) if origins.get(&id) == Some(&origin) => {
                            next.insert(id.clone(), c.clone());
                            next_origins.insert(id, origin);
                            continue;
                        }
                        _ => (
                            Cluster::from_config_with(&config, upstream, &mut files, previous)
                                .await
                                .map(Arc::new),
                            origin,
                        ),
                    }
                }
            };
            match built {
                Ok(cluster) => {
                    if previous.is_some() {
                        summary.changed.push(id.clone());
                    } else {
                        summary.added.push(id.clone());
                    }
                    next.insert(id.clone(), cluster);
                    next_origins.insert(id, origin);
                }
                Err(e) => summary.failed.push(e),
            }
        }
        // Tunnels not carried into the new clusters (removed, failed, or a new token) are cut
        // now, and their links take no more: an agent with the old token is out at once.
        for c in old.sorted() {
            let Some(agent) = &c.agent else { continue };
            let kept = next
                .get(&c.id)
                .and_then(|n| n.agent.as_ref())
                .is_some_and(|a| Arc::ptr_eq(&a.links, &agent.links));
            if !kept {
                agent.links.close();
            }
        }
        summary.removed = old
            .sorted()
            .iter()
            .filter(|c| !next.contains_key(&c.id))
            .map(|c| c.id.clone())
            .collect();
        *self
            .inner
            .upstream
            .write()
            .unwrap_or_else(PoisonError::into_inner) = upstream.clone();
        let touched =
            !summary.added.is_empty() || !summary.changed.is_empty() || !summary.removed.is_empty();
        if touched {
            let snapshot = Arc::new(Snapshot::from_sorted(next.into_values().collect()));
            *self
                .inner
                .snapshot
                .write()
                .unwrap_or_else(PoisonError::into_inner) = snapshot;
            self.inner.changed.notify_one();
        }
        *origins = next_origins;
        summary
    }
}

fn failed_id(e: &ClusterError) -> &str {
    match e {
        ClusterError::Kubeconfig { id, .. }
        | ClusterError::InCluster { id, .. }
        | ClusterError::Client { id, .. }
        | ClusterError::Duplicate { id }
        | ClusterError::AgentToken { id, .. } => id,
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
