//! `podgate demo`: the gateway in front of two in-process devclusters, ready for kubectl.
//!
//! The demo's pods are processes on this machine, run as whoever started the demo, and its
//! tokens are printed in the README: it is a remote shell on the host for anyone who can reach
//! it. So it listens on loopback only, and refuses any other address.

use crate::app::{Running, StartOptions};
use podgate_devcluster::kubeconfig::{KubeCluster, KubeContext, KubeUser, Kubeconfig};
use podgate_devcluster::{DevCluster, Options};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub const CLUSTER_IDS: [&str; 2] = ["dev-east", "dev-west"];
/// The demo's people. Tokens are fixed so the README can show them; the demo listens on
/// loopback only by default.
const TOKENS: &str = "\
- token: podgate-demo-admin
  user: admin
  groups: [system:masters]
- token: podgate-demo-alice
  user: alice
  groups: [dev]
- token: podgate-demo-bob
  user: bob
  groups: [viewers]
";
pub const ADMIN_TOKEN: &str = "podgate-demo-admin";

pub struct DemoOptions {
    pub listen: SocketAddr,
    /// `/metrics`, `/healthz`, `/readyz`, `/debug/sessions`; none when `None`.
    pub admin_listen: Option<SocketAddr>,
    /// Where to write the kubeconfig; the gateway's CA certificate is written next to it
    /// ([`ca_path`]), for clients that take a CA file (`podgate-load --gateway-ca`, `curl`).
    pub kubeconfig_out: Option<PathBuf>,
    /// Where audit lines go (JSON lines, appended); off when `None`.
    pub audit_out: Option<PathBuf>,
    /// Where sessions are recorded (best effort; the admin may watch and replay them); no
    /// recording when `None`.
    pub recordings: Option<PathBuf>,
}

/// The demo's limits: the config file's defaults are sized for a production replica and
/// would need more open files than a workstation grants; a demo needs far fewer.
pub fn limits() -> podgate_config::LimitsConfig {
    podgate_config::LimitsConfig {
        max_sessions: 1000,
        max_sessions_per_user: 100,
        max_sessions_per_cluster: 1000,
        max_connections: 2000,
        ..Default::default()
    }
}

/// The demo records every session, best effort, into `dir` (when given).
fn recording(dir: Option<&std::path::Path>) -> crate::recording::Recording {
    let Some(dir) = dir else {
        return crate::recording::Recording::off();
    };
    let config = podgate_config::RecordingConfig {
        default: podgate_config::RecordingMode::BestEffort,
        dir: Some(dir.to_path_buf()),
        ..Default::default()
    };
    crate::recording::Recording::new(
        crate::recording::Recording::dir_sink(&config),
        &config,
        &[],
        crate::recording::replica_name(),
    )
}

/// The demo's admin (group `system:masters`) may see, watch, end and replay every session.
/// The demo's pod index: the devclusters let podgate's own identity only impersonate, so the
/// index is fed as a reader of every namespace's pods (their `dev` group may list and watch
/// pods everywhere); what each person sees is still the cluster's answer for them.
pub fn pod_index() -> podgate_config::PodIndexConfig {
    podgate_config::PodIndexConfig {
        feed_as: Some(podgate_config::PodIndexIdentity {
            user: "podgate:pod-index".into(),
            groups: vec!["dev".into()],
        }),
        ..Default::default()
    }
}

pub fn operators() -> podgate_config::OperatorsConfig {
    let admins = podgate_config::Principals {
        users: Vec::new(),
        groups: vec!["system:masters".into()],
    };
    podgate_config::OperatorsConfig {
        sessions: admins.clone(),
        observe: admins.clone(),
        terminate: admins.clone(),
        replay: admins,
    }
}

/// The CA certificate written next to the kubeconfig at `kubeconfig`: `NAME.ca.crt` for
/// `NAME.kubeconfig`.
pub fn ca_path(kubeconfig: &std::path::Path) -> PathBuf {
    kubeconfig.with_extension("ca.crt")
}

pub struct Demo {
    pub gateway: Running,
    pub clusters: Vec<DevCluster>,
    /// PEM of the CA that signed the gateway's certificate.
    pub ca_pem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "the demo listens on loopback only, not {0}: its pods are processes on this machine, run \
         as you, and its tokens are public (README), so anyone reaching it would get a shell \
         here; use `podgate serve` with your own clusters and tokens to serve others"
    )]
    NotLoopback(SocketAddr),
    #[error("starting devcluster {0}: {1}")]
    Cluster(&'static str, String),
    #[error("gateway certificate: {0}")]
    Tls(String),
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub async fn start(opts: DemoOptions) -> Result<Demo, DemoError> {
    for addr in std::iter::once(opts.listen).chain(opts.admin_listen) {
        if !addr.ip().is_loopback() {
            return Err(DemoError::NotLoopback(addr));
        }
    }
    podgate_devcluster::install_crypto_provider();
    let mut clusters = Vec::new();
    let registry = crate::upstream::Registry::new();
    let mut specs = Vec::new();
    let defaults = podgate_config::UpstreamConfig::default();
    for id in CLUSTER_IDS {
        let dc = DevCluster::start(Options {
            name: id.into(),
            ..Options::default()
        })
        .await
        .map_err(|e| DemoError::Cluster(id, e.to_string()))?;
        let config = kube_config_for(&dc)
            .await
            .map_err(|e| DemoError::Cluster(id, e))?;
        let cluster = crate::upstream::Cluster::from_kube_config(id, config, true)
            .map_err(|e| DemoError::Cluster(id, e.to_string()))?;
        specs.push(crate::upstream::ClusterSpec::Prebuilt(Arc::new(cluster)));
        clusters.push(dc);
    }
    let summary = registry.apply(specs, &defaults).await;
    if let Some(e) = summary.failed.into_iter().next() {
        return Err(DemoError::Cluster("registry", e.to_string()));
    }
    let (tls, ca_pem) = self_signed_tls(&[opts.listen.ip().to_string()]).map_err(DemoError::Tls)?;
    let tokens = podgate_auth::parse_tokens(std::path::Path::new("<demo tokens>"), TOKENS)
        .map_err(|e| DemoError::Tls(e.to_string()))?;
    let (session_limits, sessions, connections) =
        StartOptions::settings_from(&limits(), &Default::default());
    let gateway = crate::app::start(StartOptions {
        listen: opts.listen,
        tls,
        clusters: registry,
        authenticator: Arc::new(podgate_auth::StaticTokens::new(tokens)),
        // The web UI's login with a demo token, answered on loopback only.
        browser: Some(crate::browser::Browser {
            dev_login: true,
            ..crate::browser::Browser::ephemeral().map_err(|e| DemoError::Setup(e.to_string()))?
        }),
        session_limits,
        sessions,
        connections,
        session_series: Default::default(),
        audit: match &opts.audit_out {
            Some(path) => crate::session::audit::Audit::open(&path.display().to_string())
                .map_err(|e| DemoError::Setup(e.to_string()))?,
            None => crate::session::audit::Audit::off(),
        },
        admin_listen: opts.admin_listen,
        recording: Arc::new(recording(opts.recordings.as_deref())),
        operators: Arc::new(crate::route::operators::Operators::new(operators())),
        files: Default::default(),
        pod_index: pod_index(),
    })
    .await?;
    // As `serve` does, so cluster health shows in /podgate/clusters and podgate_cluster_up.
    let upstream = podgate_config::UpstreamConfig::default();
    crate::upstream::registry::spawn_health_checks(
        gateway.clusters().clone(),
        upstream.health_interval.get(),
        upstream.health_timeout.get(),
        gateway.shutdown_token().clone(),
    );
    let demo = Demo {
        gateway,
        clusters,
        ca_pem,
    };
    if let Some(path) = &opts.kubeconfig_out {
        demo.kubeconfig(ADMIN_TOKEN).write(path)?;
        std::fs::write(ca_path(path), &demo.ca_pem)?;
    }
    Ok(demo)
}

/// How a gateway reaches a devcluster: the `podgate` context of its kubeconfig, a user who may
/// only impersonate, so the cluster's own rules decide what each person may do.
pub async fn kube_config_for(dc: &DevCluster) -> Result<kube::Config, String> {
    let kc = kube::config::Kubeconfig::from_yaml(&dc.kubeconfig().to_yaml())
        .map_err(|e| e.to_string())?;
    let opts = kube::config::KubeConfigOptions {
        context: Some("podgate".into()),
        ..Default::default()
    };
    kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .map_err(|e| e.to_string())
}

/// A fresh CA and a certificate for loopback (and `extra_hosts`): the listener's certificate
/// and the CA's PEM for clients. The demo's listener, and the tests', use it.
pub fn self_signed_tls(
    extra_hosts: &[String],
) -> Result<(Arc<crate::edge::tls::ReloadingCert>, String), String> {
    let mut hosts = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    hosts.extend(
        extra_hosts
            .iter()
            .filter(|h| !hosts.contains(h))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let pem = podgate_devcluster::tls::generate_pem(&hosts).map_err(|e| e.to_string())?;
    let cert =
        crate::edge::tls::ReloadingCert::from_pem(pem.cert_pem.as_bytes(), pem.key_pem.as_bytes())
            .map_err(|e| e.to_string())?;
    Ok((Arc::new(cert), pem.ca_pem))
}

impl Demo {
    /// Contexts `dev-east` and `dev-west`, each a cluster at `https://HOST:PORT/clusters/<id>`.
    pub fn kubeconfig(&self, token: &str) -> Kubeconfig {
        let base = self.gateway.url();
        Kubeconfig {
            clusters: CLUSTER_IDS
                .iter()
                .map(|id| KubeCluster {
                    name: id.to_string(),
                    server: format!("{base}/clusters/{id}"),
                    ca_pem: self.ca_pem.clone(),
                })
                .collect(),
            users: vec![KubeUser {
                name: "podgate-demo".into(),
                token: token.into(),
            }],
            contexts: CLUSTER_IDS
                .iter()
                .map(|id| KubeContext {
                    name: id.to_string(),
                    cluster: id.to_string(),
                    user: "podgate-demo".into(),
                    namespace: Some("default".into()),
                })
                .collect(),
            current_context: CLUSTER_IDS[0].into(),
        }
    }

    pub async fn shutdown(self) {
        self.gateway.shutdown().await;
        for c in self.clusters {
            c.shutdown().await;
        }
    }
}
