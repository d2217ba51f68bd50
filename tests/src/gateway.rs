//! A gateway in front of devclusters, running in this process: `podgate demo` itself
//! ([`demo`]), or the same assembly as `podgate serve` makes it with what a test changes
//! ([`Builder`]): clusters and their protocols and access policies, people, session settings,
//! limits, per-session series, the admin listener, browser logins, audit, and a dial hook to
//! put a [`crate::link::Link`] between the gateway and a cluster.

use crate::kubectl::Kubectl;
use crate::tls::Endpoint;
use crate::wait::wait_for;
use crate::ws::{self, Ws};
use base64::Engine as _;
use podgate::app::demo::CLUSTER_IDS;
use podgate::app::{Running, StartOptions};
use podgate::browser::Browser;
use podgate::browser::oidc::OidcLogin;
use podgate::edge::listener::ConnectionLimits;
use podgate::session::audit::Audit;
use podgate::session::limits::SessionLimits;
use podgate::session::{SessionSettings, Sessions};
use podgate_auth::oidc::{OidcAuthenticator, OidcConfig};
use podgate_auth::{Authenticator, SessionKey};
use podgate_config::AccessPolicy;
use podgate_devcluster::{DevCluster, Options, Topology};
use podgate_metrics::SessionSeries;
use podgate_protocol::Protocol;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The demo's people (as `podgate demo` has them): admin (`system:masters`), alice (group
/// `dev`: exec in `default` only on the devclusters), bob (group `viewers`: may list, not exec).
pub const ADMIN: &str = podgate::app::demo::ADMIN_TOKEN;
pub const ALICE: &str = "podgate-demo-alice";
pub const BOB: &str = "podgate-demo-bob";

/// The static tokens file of the demo's people.
pub fn people() -> String {
    [
        (ADMIN, "admin", "system:masters"),
        (ALICE, "alice", "dev"),
        (BOB, "bob", "viewers"),
    ]
    .iter()
    .map(|(token, user, group)| format!("- token: {token}\n  user: {user}\n  groups: [{group}]\n"))
    .collect()
}

/// Where the gateway dials a cluster, given its id and its devcluster's address (a test may
/// return a [`crate::link::Link`]'s address instead); the devcluster's own by default.
pub type Dial = Box<dyn FnMut(&str, SocketAddr) -> SocketAddr + Send>;

/// One cluster behind the gateway: a devcluster, and how the gateway treats it.
pub struct Cluster {
    id: String,
    topology: Topology,
    access: AccessPolicy,
}

impl Cluster {
    /// Cluster `id`: a devcluster with the built-in topology (every protocol), open to all.
    pub fn new(id: &str) -> Cluster {
        Cluster {
            id: id.into(),
            topology: Topology::builtin(),
            access: AccessPolicy::default(),
        }
    }

    /// The devcluster speaks only `protocols` (every one when empty).
    pub fn protocols(mut self, protocols: &[Protocol]) -> Cluster {
        self.topology.protocols = protocols.iter().map(|p| p.name().to_string()).collect();
        self
    }

    pub fn topology(mut self, topology: Topology) -> Cluster {
        self.topology = topology;
        self
    }

    /// The gateway's own access policy for the cluster (`clusters[].access`).
    pub fn access(mut self, access: AccessPolicy) -> Cluster {
        self.access = access;
        self
    }
}

/// A gateway to assemble: the config file's defaults, the demo's people, no admin listener
/// (tests count the gateway's tasks), audit off, browser logins off.
pub struct Builder {
    clusters: Vec<Cluster>,
    tokens: String,
    authenticator: Option<Arc<dyn Authenticator>>,
    browser: Browser,
    session_key: String,
    sessions: SessionSettings,
    limits: SessionLimits,
    connections: ConnectionLimits,
    session_series: SessionSeries,
    admin: bool,
    audit: Audit,
    dial: Dial,
    recording: Arc<podgate::recording::Recording>,
    operators: podgate_config::OperatorsConfig,
    files: podgate::files::FileLimits,
    pod_index: podgate_config::PodIndexConfig,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// No clusters yet ([`Builder::cluster`] adds them).
    pub fn new() -> Builder {
        let (limits, sessions, connections) =
            StartOptions::settings_from(&Default::default(), &Default::default());
        let session_key = fresh_key();
        Builder {
            clusters: Vec::new(),
            tokens: people(),
            authenticator: None,
            browser: Browser {
                key: SessionKey::from_base64(&session_key).expect("a session key"),
                ..Browser::ephemeral().expect("browser settings")
            },
            session_key,
            sessions,
            limits,
            connections,
            session_series: SessionSeries::default(),
            admin: false,
            audit: Audit::off(),
            dial: Box::new(|_, addr| addr),
            recording: Arc::new(podgate::recording::Recording::off()),
            operators: Default::default(),
            files: Default::default(),
            pod_index: podgate::app::demo::pod_index(),
        }
    }

    /// The demo's clusters: `dev-east` and `dev-west`, built-in topology.
    pub fn demo() -> Builder {
        CLUSTER_IDS
            .iter()
            .fold(Builder::new(), |b, id| b.cluster(Cluster::new(id)))
    }

    pub fn cluster(mut self, cluster: Cluster) -> Builder {
        self.clusters.push(cluster);
        self
    }

    /// The static tokens file (YAML, as `auth.tokens_file`) instead of the demo's people.
    pub fn tokens(mut self, yaml: &str) -> Builder {
        self.tokens = yaml.into();
        self
    }

    /// Who is asking, decided by this instead of the static tokens (OIDC, say).
    pub fn authenticator(mut self, authenticator: Arc<dyn Authenticator>) -> Builder {
        self.authenticator = Some(authenticator);
        self
    }

    /// OIDC as `auth.oidc` has it: bearer tokens from its issuers (instead of the static
    /// tokens), and its browser login when `oidc.login` is set.
    pub fn oidc(mut self, oidc: &OidcConfig) -> Builder {
        let authenticator = Arc::new(OidcAuthenticator::new(oidc).expect("a valid OIDC config"));
        self.browser.oidc = OidcLogin::from_config(oidc, &authenticator).expect("a valid login");
        self.authenticator = Some(authenticator);
        self
    }

    /// Browser sessions and logins: `dev_login`, `oidc`, ... The key that seals cookies is the
    /// kit's ([`Env::session_key`]), unless changed here.
    pub fn browser(mut self, change: impl FnOnce(&mut Browser)) -> Builder {
        change(&mut self.browser);
        self
    }

    pub fn sessions(mut self, change: impl FnOnce(&mut SessionSettings)) -> Builder {
        change(&mut self.sessions);
        self
    }

    pub fn limits(mut self, change: impl FnOnce(&mut SessionLimits)) -> Builder {
        change(&mut self.limits);
        self
    }

    pub fn connections(mut self, change: impl FnOnce(&mut ConnectionLimits)) -> Builder {
        change(&mut self.connections);
        self
    }

    /// Per-session Prometheus series (`metrics.session_series`, `metrics.max_session_series`).
    pub fn session_series(mut self, series: SessionSeries) -> Builder {
        self.session_series = series;
        self
    }

    /// The admin listener (`/metrics`, ...) on `127.0.0.1:0`; its address is then
    /// `env.gateway.admin_addr`.
    pub fn admin(mut self, on: bool) -> Builder {
        self.admin = on;
        self
    }

    /// Audit lines as JSON to the file at `path`.
    pub fn audit_file(mut self, path: &Path) -> Builder {
        let name = path.to_str().expect("a UTF-8 audit path");
        self.audit = Audit::open(name).unwrap_or_else(|e| panic!("audit file {name}: {e}"));
        self
    }

    /// Session recording (default: off), e.g. into a directory with
    /// `podgate::recording::Recording::new(Recording::dir_sink(&config), &config, &[], name)`.
    pub fn recording(mut self, recording: podgate::recording::Recording) -> Builder {
        self.recording = Arc::new(recording);
        self
    }

    /// Who may see, watch, end and replay others' sessions (default: nobody).
    /// `files.max_upload` and `files.max_download`.
    pub fn files(mut self, files: podgate::files::FileLimits) -> Builder {
        self.files = files;
        self
    }

    /// `pod_index` (default: the demo's, fed as a reader of every namespace).
    pub fn pod_index(
        mut self,
        change: impl FnOnce(&mut podgate_config::PodIndexConfig),
    ) -> Builder {
        change(&mut self.pod_index);
        self
    }

    pub fn operators(mut self, operators: podgate_config::OperatorsConfig) -> Builder {
        self.operators = operators;
        self
    }

    /// See [`Dial`].
    pub fn dial(mut self, dial: Dial) -> Builder {
        self.dial = dial;
        self
    }

    /// Starts the devclusters and the gateway on `127.0.0.1:0`.
    pub async fn start(mut self) -> Env {
        podgate_devcluster::install_crypto_provider();
        assert!(!self.clusters.is_empty(), "a gateway needs a cluster");
        let upstream = podgate_config::UpstreamConfig::default();
        let mut clusters = Vec::new();
        let mut ids = Vec::new();
        let mut specs = Vec::new();
        for c in self.clusters {
            let dc = DevCluster::start(Options {
                name: c.id.clone(),
                topology: c.topology,
                ..Options::default()
            })
            .await
            .unwrap_or_else(|e| panic!("devcluster {} starts: {e}", c.id));
            let mut config = podgate::app::demo::kube_config_for(&dc)
                .await
                .expect("the devcluster's kube config");
            let dial = (self.dial)(&c.id, dc.addr());
            if dial != dc.addr() {
                config.cluster_url = format!("https://{dial}").parse().expect("cluster url");
            }
            // As `podgate serve` builds clusters from its config (`upstream.connect_timeout`).
            config.connect_timeout = Some(upstream.connect_timeout.get());
            let mut cluster = podgate::upstream::Cluster::from_kube_config(&c.id, config, true)
                .expect("a cluster");
            cluster.access = c.access;
            specs.push(podgate::upstream::ClusterSpec::Prebuilt(Arc::new(cluster)));
            clusters.push(dc);
            ids.push(c.id);
        }
        let registry = podgate::upstream::Registry::new();
        let summary = registry.apply(specs, &Default::default()).await;
        assert!(summary.failed.is_empty(), "{:?}", summary.failed);
        let (tls, ca_pem) = podgate::app::demo::self_signed_tls(&[]).expect("a certificate");
        let authenticator = self.authenticator.unwrap_or_else(|| {
            let tokens = podgate_auth::parse_tokens(Path::new("<test tokens>"), &self.tokens)
                .expect("the tokens parse");
            Arc::new(podgate_auth::StaticTokens::new(tokens))
        });
        let gateway = podgate::app::start(StartOptions {
            listen: "127.0.0.1:0".parse().expect("addr"),
            tls,
            clusters: registry,
            authenticator,
            browser: Some(self.browser),
            session_limits: self.limits,
            sessions: self.sessions,
            connections: self.connections,
            session_series: self.session_series,
            audit: self.audit,
            admin_listen: self.admin.then(|| "127.0.0.1:0".parse().expect("addr")),
            recording: self.recording,
            operators: Arc::new(podgate::route::operators::Operators::new(self.operators)),
            files: self.files,
            pod_index: self.pod_index,
        })
        .await
        .expect("the gateway starts");
        Env {
            gateway,
            clusters,
            running: ids.clone(),
            ids,
            ca_pem,
            dir: tempfile::tempdir().expect("a temp dir"),
            session_key: Some(self.session_key),
        }
    }
}

/// 32 random bytes, base64: a session key the kit can hand out again.
fn fresh_key() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("random bytes");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `podgate demo` as its command starts it (both devclusters, the demo's people, dev login,
/// health checks, audit off), on `127.0.0.1:0` without an admin listener (tests count
/// the gateway's tasks, and it would be one).
pub async fn demo() -> Env {
    podgate_devcluster::install_crypto_provider();
    let demo = podgate::app::demo::start(podgate::app::demo::DemoOptions {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: None,
        kubeconfig_out: None,
        audit_out: None,
        recordings: None,
    })
    .await
    .expect("the demo starts");
    Env {
        gateway: demo.gateway,
        clusters: demo.clusters,
        ids: CLUSTER_IDS.iter().map(|id| id.to_string()).collect(),
        running: CLUSTER_IDS.iter().map(|id| id.to_string()).collect(),
        ca_pem: demo.ca_pem,
        dir: tempfile::tempdir().expect("a temp dir"),
        session_key: None,
    }
}

/// A running gateway, its devclusters, and a private directory (kubeconfigs, kubectl's cache
/// and HOME, whatever a test writes).
pub struct Env {
    pub gateway: Running,
    /// The devclusters still running, in the order of `ids`.
    pub clusters: Vec<DevCluster>,
    /// The cluster ids the gateway serves (`/clusters/{id}/`), stopped ones included.
    pub ids: Vec<String>,
    /// The ids of `clusters`.
    running: Vec<String>,
    /// The PEM of the CA that signed the gateway's certificate.
    pub ca_pem: String,
    pub dir: tempfile::TempDir,
    session_key: Option<String>,
}

impl Endpoint for Env {
    fn addr(&self) -> SocketAddr {
        self.gateway.addr
    }

    fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

impl Env {
    pub fn addr(&self) -> SocketAddr {
        self.gateway.addr
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.gateway.url()
    }

    /// `https://127.0.0.1:PORT`, as a browser's `Origin` for the gateway's own page.
    pub fn origin(&self) -> String {
        format!("https://{}", self.gateway.addr)
    }

    /// The gateway's sessions: limits, live registry, and the tracker of every task.
    pub fn sessions(&self) -> &Arc<Sessions> {
        &self.gateway.sessions
    }

    /// The devcluster behind cluster `id`.
    pub fn cluster(&self, id: &str) -> &DevCluster {
        let i = self.index(id);
        &self.clusters[i]
    }

    fn index(&self, id: &str) -> usize {
        self.running
            .iter()
            .position(|c| c == id)
            .unwrap_or_else(|| panic!("no running cluster {id} in {:?}", self.running))
    }

    /// The key that seals the gateway's browser cookies (gateways from the [`Builder`]).
    pub fn session_key(&self) -> SessionKey {
        let key = self
            .session_key
            .as_deref()
            .expect("the demo's session key is its own");
        SessionKey::from_base64(key).expect("the kit's session key")
    }

    /// A kubeconfig for the gateway with `token`, a context per cluster (named by its id),
    /// written once into the env's directory.
    pub fn kubeconfig(&self, token: &str) -> PathBuf {
        let ids: Vec<&str> = self.ids.iter().map(String::as_str).collect();
        let kc = crate::kubeconfig::for_gateway(&self.url(), &self.ca_pem, &ids, token);
        crate::kubeconfig::write_for(&kc, self.dir.path(), token)
    }

    /// kubectl `bin` as `token` in `context`, HOME and cache in the env's directory.
    pub fn kubectl(&self, bin: &Path, token: &str, context: &str) -> Kubectl {
        Kubectl::new(bin, self.kubeconfig(token), self.dir.path()).context(context)
    }

    /// A kube-rs client as `token` for cluster `context`.
    pub async fn kube_client(&self, token: &str, context: &str) -> kube::Client {
        crate::kubeconfig::client(&self.kubeconfig(token), Some(context)).await
    }

    /// An exec WebSocket (v5) as `token` on `namespace/pod` of `cluster` with `query`, or the
    /// refusal's status and body.
    pub async fn exec(
        &self,
        token: &str,
        cluster: &str,
        namespace: &str,
        pod: &str,
        query: &str,
    ) -> Result<Ws, (u16, String)> {
        let path =
            format!("/clusters/{cluster}/api/v1/namespaces/{namespace}/pods/{pod}/exec?{query}");
        let (ws, chosen) = ws::open(self, token, &path, &[ws::V5], &[]).await?;
        assert_eq!(chosen.as_deref(), Some(ws::V5), "{path}");
        Ok(ws)
    }

    /// [`Env::exec`] as admin on the first cluster, or a panic with the refusal.
    pub async fn admin_exec(&self, namespace: &str, pod: &str, query: &str) -> Ws {
        self.exec(ADMIN, &self.ids[0], namespace, pod, query)
            .await
            .unwrap_or_else(|(code, body)| {
                panic!("exec on {namespace}/{pod} refused: {code} {body}")
            })
    }

    /// Waits until no session is open, at the gateway (its count and its live registry) nor
    /// on any cluster; whether that happened within `limit`.
    pub async fn sessions_end(&self, limit: Duration) -> bool {
        let sessions = self.sessions();
        wait_for(limit, || {
            sessions.limits.active() == 0
                && sessions.live.is_empty()
                && self.clusters.iter().all(|c| c.active_sessions() == 0)
        })
        .await
    }

    /// Stops one devcluster; the gateway keeps it in its registry, as when a cluster dies.
    pub async fn stop_cluster(&mut self, id: &str) {
        let i = self.index(id);
        self.running.remove(i);
        self.clusters.remove(i).shutdown().await;
    }

    /// Shuts the gateway down (every session and task ends), then the devclusters.
    pub async fn shutdown(self) {
        self.gateway.shutdown().await;
        for c in self.clusters {
            c.shutdown().await;
        }
    }
}
