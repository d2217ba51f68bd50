//! The shape of `podgate serve --config FILE`, with its defaults. Unknown fields are refused
//! everywhere so that a misspelt option fails loudly instead of silently keeping its default.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::size::ByteSize;

/// The whole gateway configuration.
///
/// After [`crate::parse`], `clusters` holds every cluster the gateway serves: the ones written
/// under `clusters`, followed by one per context expanded from `imports`, so the gateway only
/// needs to look at `clusters`. `imports` is kept as written, for display.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Public listener for kubectl and browsers. Default `0.0.0.0:8443`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Required: the gateway carries credentials and shells, it never speaks plain HTTP.
    pub tls: TlsConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub clusters: Vec<ClusterConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<ImportConfig>,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub sessions: SessionsConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub upstream: UpstreamConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub recording: crate::recording::RecordingConfig,
    #[serde(default)]
    pub operators: crate::recording::OperatorsConfig,
    #[serde(default)]
    pub files: FilesConfig,
    #[serde(default)]
    pub pod_index: PodIndexConfig,
}

impl Config {
    /// Settings the file sets that have no effect, each with why: to warn about.
    pub fn ignored_settings(&self) -> Vec<String> {
        let mut ignored = Vec::new();
        if self.limits.session_buffer_bytes.is_some() {
            ignored.push(
                "limits.session_buffer_bytes has no effect (the relay holds at most one message \
                 per direction, bounded by limits.max_message_bytes); remove it"
                    .to_string(),
            );
        }
        ignored
    }
}

/// How podgate writes its log (to standard error). The level filter is `PODGATE_LOG`
/// (`info` by default, `podgate=debug,info` and the like).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
}

/// One event per line either way; every value a client can influence is escaped, so no
/// request can start a line of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `2026-12-01T20:00:00.000Z  INFO podgate::...: message key=value`. Default.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

fn default_listen() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8443)
}

/// Certificate and key for the public listener. The gateway watches both files and reloads
/// them when they change, so certificate rotation needs no restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key matching the leaf.
    pub key_file: PathBuf,
}

/// The admin listener serves metrics, health and debug pages; it is kept on a separate,
/// by default loopback-only address because none of that is meant for the public.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Default `127.0.0.1:9090`.
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9090),
        }
    }
}

/// Prometheus exposition on the admin listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Export per-session series (`podgate_session_info`, bytes, start time) while a session
    /// lives. Default true; turn off where session ids and user names must not reach Prometheus.
    pub session_series: bool,
    /// At most this many sessions get per-session series at once (the rest are counted in
    /// `podgate_session_series_dropped_total`). Default 1000.
    pub max_session_series: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            session_series: true,
            max_session_series: 1000,
        }
    }
}

/// Where audit lines go: one JSON object per session start and end, and per proxied
/// mutating request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// `stdout` (default), `off`, or a file path (appended to; relative to this file).
    pub output: String,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            output: "stdout".into(),
        }
    }
}

/// One upstream cluster, addressed by clients as `/clusters/{id}/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Appears in URLs and metric labels, hence restricted to an RFC 1123 DNS label.
    pub id: String,
    /// Credentials and address of the cluster. Exactly one of `kubeconfig`, `in_cluster` and
    /// `agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    /// Context to use inside `kubeconfig`; its current-context when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Use the service account of the pod the gateway runs in.
    #[serde(default)]
    pub in_cluster: bool,
    /// The cluster is reached through the tunnels its `podgate agent`s open to the gateway
    /// (a cluster behind NAT): the gateway holds no credentials for it, only what an agent must
    /// show to serve it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentConfig>,
    /// Send `Impersonate-User`/`Impersonate-Group` so the cluster's RBAC judges each user.
    /// Default `true`; turning it off makes every user act with the gateway's own rights.
    #[serde(default = "default_true")]
    pub impersonate: bool,
    /// Who may use this cluster through the gateway, checked before any request reaches it.
    /// Default: every authenticated user, every namespace. The cluster's RBAC still applies
    /// behind it, through impersonation.
    #[serde(default, skip_serializing_if = "AccessPolicy::is_open")]
    pub access: AccessPolicy,
    /// What people read in the web UI's picker and `/podgate/clusters` (`Production EU 1`);
    /// the id when absent. At most 100 characters, no control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The kind of environment (`production`, `staging`, `development`, ...): a DNS label,
    /// shown with the cluster and searchable. `production` is marked as such in the UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Free labels as Kubernetes writes them (`region: eu-west-1`, `team: payments`):
    /// shown with the cluster and searchable. At most 32.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// `off`, `best_effort` or `required`; `recording.default` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<crate::recording::RecordingMode>,
    /// Record what people type here; `recording.input` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_input: Option<bool>,
}

/// An edge policy for one cluster. A user may use the cluster when `users` and `groups` are
/// both empty, or when the user is listed or is in a listed group. With `namespaces` set, only
/// requests inside those namespaces (and API discovery) are allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessPolicy {
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub namespaces: Vec<String>,
}

impl AccessPolicy {
    /// Everyone, everywhere: the default.
    pub fn is_open(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty() && self.namespaces.is_empty()
    }
}

/// What an agent for one cluster must show: its token, kept in a file (the gateway reads it
/// at start and at every reload, so rotating it cuts the tunnels opened with the old one), or
/// only its SHA-256, so the gateway's config holds no usable secret. Exactly one of the two.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Lowercase or uppercase hex of the token's SHA-256 (`sha256sum` of the token, without
    /// a newline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
}

/// How an agent's token is known to the gateway (see [`AgentConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentToken<'a> {
    File(&'a std::path::Path),
    Sha256(&'a str),
}

/// Where a validated cluster gets its credentials from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterSource<'a> {
    Kubeconfig {
        path: &'a std::path::Path,
        context: Option<&'a str>,
    },
    InCluster,
    Agent(AgentToken<'a>),
}

impl ClusterConfig {
    /// Validation guarantees exactly one of `kubeconfig`/`in_cluster`/`agent` (and one token
    /// form for an agent), so this is total.
    pub fn source(&self) -> ClusterSource<'_> {
        match (&self.kubeconfig, &self.agent) {
            (Some(path), _) => ClusterSource::Kubeconfig {
                path,
                context: self.context.as_deref(),
            },
            (None, Some(agent)) => match (&agent.token_file, &agent.token_sha256) {
                (Some(file), _) => ClusterSource::Agent(AgentToken::File(file)),
                (None, hash) => {
                    ClusterSource::Agent(AgentToken::Sha256(hash.as_deref().unwrap_or_default()))
                }
            },
            (None, None) => ClusterSource::InCluster,
        }
    }
}

fn default_true() -> bool {
    true
}

/// Adds one cluster per context of a kubeconfig, for fleets where listing every cluster by
/// hand would drift from the kubeconfig that is already maintained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    pub kubeconfig: PathBuf,
    /// Default `true`, as for [`ClusterConfig::impersonate`].
    #[serde(default = "default_true")]
    pub impersonate: bool,
    /// Only these contexts; every context of the kubeconfig when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contexts: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Static bearer tokens (the auth crate's `parse_tokens`). Default: none, static tokens off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_file: Option<PathBuf>,
    /// OIDC bearer tokens. Its schema and validation belong to the auth crate (which depends on
    /// this one), so the section is carried as YAML and checked there (`podgate check-config`
    /// reports its problems with this file's name). Default: none, OIDC off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc: Option<serde_norway::Value>,
    /// Browser sessions (the `podgate_session` cookie set by the login flow).
    pub session: BrowserSessionConfig,
}

/// How browser sessions are sealed and which pages may use them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrowserSessionConfig {
    /// A file holding the cookie key: 32 random bytes, base64 (`head -c32 /dev/urandom |
    /// base64`). Every replica needs the same key. Default: unset, a key is generated at start
    /// and browser sessions end when podgate restarts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Pages allowed to open shells with the cookie, as origins (`https://podgate.example.com`).
    /// Browsers attach cookies to cross-site WebSocket upgrades, so an upgrade authenticated
    /// by cookie from any other origin is refused. Default: only the gateway's own origin
    /// (`https://` and the request's Host).
    pub allowed_origins: Vec<String>,
    /// The longest a browser session lasts, whatever the token's own expiry. Default `12h`.
    pub max_lifetime: Duration,
}

impl Default for BrowserSessionConfig {
    fn default() -> Self {
        BrowserSessionConfig {
            key_file: None,
            allowed_origins: Vec::new(),
            max_lifetime: Duration::from_secs(12 * 3600),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    /// Ping interval toward the client, so proxies and load balancers with idle timeouts keep
    /// the WebSocket open and dead clients are noticed. Default `20s`.
    pub keepalive: Duration,
    /// Close a session with no traffic in either direction for this long. Default `30m`;
    /// `0s` disables.
    pub idle_timeout: Duration,
    /// Close any session after this long, so credentials and policy changes eventually apply
    /// to every shell. Default `12h`; `0s` disables.
    pub max_duration: Duration,
    /// How long a session may outlive the expiry of the token it was opened with (an OIDC
    /// token's `exp`); a browser session whose token is refreshed meanwhile carries on.
    /// Default `5m`; `0s` ends it at the expiry itself.
    pub credential_grace: Duration,
    /// How long a browser session whose connection dropped (without a clean close) waits for
    /// its page to come back (docs/protocol.md, "Resume"): the process in the pod keeps
    /// running, its output is kept. Only clients that offer `podgate.resume.v1` get this.
    /// Default `2m`; `0s` disables resume.
    pub resume_window: Duration,
    /// Output of one resumable session kept until its page acknowledges it. Default `256KiB`.
    pub resume_buffer: ByteSize,
    /// What a full resume buffer does: `backpressure` (default: the program waits, as on a
    /// paused terminal; nothing is lost) or `overwrite` (the oldest output is dropped and a
    /// resume reports the gap).
    pub resume_overflow: ResumeOverflow,
    /// How often podgate tells an attached page it is alive (a browser cannot see WebSocket
    /// pings); a page that hears nothing for twice this plus 2 s resumes. Default `5s`.
    pub resume_heartbeat: Duration,
    /// All resume buffers together (each session reserves `resume_buffer` of it while it
    /// runs). When it is taken, the oldest sessions waiting for their page give way first; a
    /// new session that still finds no room runs without resume. Default `256MiB`.
    pub resume_buffer_total: ByteSize,
}

/// What a resumable session's full output buffer does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResumeOverflow {
    /// Stop reading the cluster until the page acknowledges output: nothing is lost.
    #[default]
    Backpressure,
    /// Drop the oldest output; a resume reports how many bytes it skipped.
    Overwrite,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            keepalive: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(30 * 60),
            max_duration: Duration::from_secs(12 * 3600),
            credential_grace: Duration::from_secs(5 * 60),
            resume_window: Duration::from_secs(120),
            resume_buffer: ByteSize(256 << 10),
            resume_overflow: ResumeOverflow::Backpressure,
            resume_heartbeat: Duration::from_secs(5),
            resume_buffer_total: ByteSize(256 << 20),
        }
    }
}

/// Bounds that keep one user, one cluster or a flood of connections from exhausting the
/// gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Concurrent exec/attach sessions in total. Default 20000.
    pub max_sessions: usize,
    /// Default 100.
    pub max_sessions_per_user: usize,
    /// Default 10000.
    pub max_sessions_per_cluster: usize,
    /// Open client connections, sessions or not. Default 40000.
    pub max_connections: usize,
    /// Time a client gets to send its request headers (slowloris). Default `10s`.
    pub header_read_timeout: Duration,
    /// Default `64KiB`; at least `8KiB` (hyper's minimum buffer).
    pub max_header_bytes: ByteSize,
    /// Largest WebSocket message, assembled from all its fragments, in either direction (a
    /// client's, or a cluster's). Default `1MiB`.
    pub max_message_bytes: ByteSize,
    /// Has no effect, and is accepted so older files still load (podgate warns): the relay
    /// holds at most one message per direction, bounded by `max_message_bytes`, and a slow
    /// reader applies back-pressure from there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_buffer_bytes: Option<ByteSize>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_sessions: 20_000,
            max_sessions_per_user: 100,
            max_sessions_per_cluster: 10_000,
            max_connections: 40_000,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: ByteSize(64 << 10),
            max_message_bytes: ByteSize(1 << 20),
            session_buffer_bytes: None,
        }
    }
}

/// File upload and download into a container (`/podgate/clusters/{id}/namespaces/{ns}/pods/
/// {pod}/file`, done as `kubectl cp` does: tar over exec). The gateway enforces both bounds
/// itself, whatever the page or client says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// The largest file one upload may carry; larger ones are refused (413) before anything
    /// runs in the container. `0` turns uploads off. Default `100MiB`.
    pub max_upload: ByteSize,
    /// The largest file one download may carry; larger ones are refused (413) as soon as the
    /// container's tar names the size, and the exec is stopped. `0` turns downloads off.
    /// Default `100MiB`.
    pub max_download: ByteSize,
    /// A transfer whose container, or whose client, moves nothing for this long ends and gives
    /// its exec and session slot back. Default `60s`.
    pub idle_timeout: Duration,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            max_upload: ByteSize(100 << 20),
            max_download: ByteSize(100 << 20),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// The pod search (`/podgate/pods/search`): a watch-fed index of one cluster's pods, kept
/// while people search it and closed when they stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PodIndexConfig {
    /// Most pods kept per cluster; past it the index says `truncated`. Default 50000.
    pub max_pods: usize,
    /// A cluster's index (its list and watch) is closed after nobody searched it for this
    /// long. Default `10m`.
    pub idle_timeout: Duration,
    /// Most clusters one search may name; more is a 400. Default 5.
    pub max_clusters_per_search: usize,
    /// How long a person's per-namespace answer (may they list pods there) is reused.
    /// Default `30s`.
    pub access_ttl: Duration,
    /// Whom podgate impersonates to list and watch every pod of a cluster, when its own
    /// identity there may not (`None`: its own identity, no impersonation). Never a person:
    /// what each person sees is decided by the cluster for that person.
    pub feed_as: Option<PodIndexIdentity>,
}

/// The identity the pod index is fed as (`Impersonate-User`, `Impersonate-Group`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodIndexIdentity {
    pub user: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

impl Default for PodIndexConfig {
    fn default() -> Self {
        PodIndexConfig {
            max_pods: 50_000,
            idle_timeout: Duration::from_secs(10 * 60),
            max_clusters_per_search: 5,
            access_ttl: Duration::from_secs(30),
            feed_as: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// How long connecting to an apiserver may take before the cluster is reported
    /// unreachable. Default `5s`.
    pub connect_timeout: Duration,
    /// How often each cluster is probed for `/readyz` and the dashboard. Default `15s`.
    /// The shortest time between two probes of one cluster: with more clusters than
    /// `health_max_rate` allows in that time, the interval stretches to
    /// clusters / `health_max_rate`.
    pub health_interval: Duration,
    /// Default `5s`; at most `health_interval` so probes never overlap.
    pub health_timeout: Duration,
    /// Health probes started per second at most, over all clusters, after the first probe of
    /// each (which runs at start, bounded by the two concurrency settings). Default 30: a
    /// probe of a cluster nobody uses is a new (resumed) TLS connection, about 1.2 ms of CPU,
    /// so this bounds health checking at about 4 % of a core whatever the fleet's size
    /// (BENCHMARKS.md, "Fleet scale"); 10,000 clusters are then probed every 333 s.
    pub health_max_rate: u32,
    /// Health probes in flight at once, over all clusters. Default 64.
    pub health_concurrency: usize,
    /// Health probes in flight at once to one apiserver address (many cluster ids may share
    /// one). Default 8.
    pub health_concurrency_per_server: usize,
    /// A cluster that keeps failing its probe is probed less often: the interval doubles
    /// with each failure, up to this (or the interval itself, when longer). Default `5m`.
    pub health_backoff_max: Duration,
    /// An upstream connection nobody used for this long is closed, so an unused cluster holds
    /// no file descriptor; health probes do not count as use. Default `90s`.
    pub idle_timeout: Duration,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            connect_timeout: Duration::from_secs(5),
            health_interval: Duration::from_secs(15),
            health_timeout: Duration::from_secs(5),
            health_max_rate: 30,
            health_concurrency: 64,
            health_concurrency_per_server: 8,
            health_backoff_max: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(90),
        }
    }
}
