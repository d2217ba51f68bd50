//! `podgate agent`: runs in a cluster the gateway cannot reach, dials out to the gateway and
//! serves the gateway's requests for that cluster over the tunnel (see `crate::tunnel`).
//!
//! The cluster's credentials never leave it: the agent forwards at the HTTP layer with its
//! own ServiceAccount token (kube re-reads the projected token as it rotates) and verifies
//! the apiserver with the in-cluster CA; what comes through the tunnel brings no credentials
//! and must impersonate a person. The agent resolves the gateway's name to every address it
//! has (a headless Service in front of the replicas) and keeps one tunnel to each, following
//! changes, so any replica can route to the cluster.
//!
//! - [`dial`]: one tunnel to one address, dialled again after every ending;
//! - [`forward`]: the HTTP/2 server that forwards each request to the apiserver;
//! - [`backoff`]: when to dial again.

pub mod backoff;
pub mod dial;
pub mod forward;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often the gateway's name is resolved again (new replicas, replicas gone).
pub const RESOLVE_EVERY: Duration = Duration::from_secs(30);

/// What `podgate agent` is told (its command-line flags).
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The gateway, `https://HOST[:PORT]`; one tunnel to every address HOST resolves to.
    #[arg(long)]
    pub gateway: String,
    /// The cluster id this agent serves (as in the gateway's config).
    #[arg(long)]
    pub cluster: String,
    /// The cluster's agent token (re-read at every dial, so a rotated Secret is used).
    #[arg(long)]
    pub token_file: PathBuf,
    /// The CA certificate (PEM) that verifies the gateway; the system's roots without it.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// The apiserver and credentials to forward with; the pod's ServiceAccount without it.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The context in --kubeconfig; its current-context without it.
    #[arg(long, requires = "kubeconfig")]
    pub context: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("--gateway {0:?}: {1}")]
    Gateway(String, String),
    #[error("--ca-file {path}: {1}", path = .0.display())]
    Ca(PathBuf, String),
    #[error("the system's root certificates: {0}")]
    Roots(String),
    #[error("the cluster's configuration: {0}")]
    Cluster(String),
    #[error("--token-file {path}: {1}", path = .0.display())]
    Token(PathBuf, String),
}

/// The gateway's host and port from `--gateway`.
pub fn gateway_address(url: &str) -> Result<(String, u16), AgentError> {
    let bad = |why: &str| AgentError::Gateway(url.to_string(), why.to_string());
    let uri: http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
    if uri.scheme_str() != Some("https") {
        return Err(bad("must be https://HOST[:PORT] (the tunnel is TLS)"));
    }
    if uri.path() != "/" && !uri.path().is_empty() {
        return Err(bad("must not have a path"));
    }
    let host = uri.host().ok_or_else(|| bad("has no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok((host, uri.port_u16().unwrap_or(443)))
}

fn tls(options: &Options) -> Result<tokio_rustls::TlsConnector, AgentError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    match &options.ca_file {
        Some(path) => {
            let ca = |e: String| AgentError::Ca(path.clone(), e);
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| ca(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| ca(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca("holds no certificate".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| ca(e.to_string()))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            if native.certs.is_empty() {
                return Err(AgentError::Roots(format!(
                    "none found ({} errors); give --ca-file",
                    native.errors.len()
                )));
            }
            for cert in native.certs {
                let _ = roots.add(cert);
            }
        }
    }
    let mut config =
        rustls::ClientConfig::builder_with_provider(Arc::new(crate::edge::tls::provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| AgentError::Roots(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    // The tunnel request is HTTP/1.1 (an upgrade); HTTP/2 runs inside it afterwards.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn cluster_config(options: &Options) -> Result<kube::Config, AgentError> {
    let err = |e: String| AgentError::Cluster(e);
    match &options.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| err(format!("{}: {e}", path.display())))?;
            let opts = kube::config::KubeConfigOptions {
                context: options.context.clone(),
                ..Default::default()
            };
            kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .map_err(|e| err(format!("{}: {e}", path.display())))
        }
        None => kube::Config::incluster().map_err(|e| err(format!("in-cluster: {e}"))),
    }
}

/// The addresses of the gateway's host and port, asked again every `every`.
#[derive(Clone)]
pub struct Resolver {
    pub every: Duration,
    #[allow(clippy::type_complexity)]
    pub resolve: Arc<
        dyn Fn(
                String,
                u16,
            )
                -> std::pin::Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>
            + Send
            + Sync,
    >,
}

impl Resolver {
    /// The system's resolver (`/etc/hosts`, DNS: a headless Service gives every replica),
    /// every [`RESOLVE_EVERY`].
    pub fn system() -> Resolver {
        Resolver {
            every: RESOLVE_EVERY,
            resolve: Arc::new(|host, port| {
                Box::pin(async move {
                    Ok(tokio::net::lookup_host((host.as_str(), port))
                        .await?
                        .collect())
                })
            }),
        }
    }
}

/// Runs the agent until `stop`: one tunnel per address of the gateway's name.
pub async fn run(options: Options, stop: CancellationToken) -> Result<(), AgentError> {
    run_with(options, stop, Resolver::system()).await
}

/// [`run`] with the gateway's addresses from `resolver` (tests give replicas that no name
/// resolves to).
pub async fn run_with(
    options: Options,
    stop: CancellationToken,
    resolver: Resolver,
) -> Result<(), AgentError> {
    let (host, port) = gateway_address(&options.gateway)?;
    let server_name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|e| AgentError::Gateway(options.gateway.clone(), e.to_string()))?;
    // Read once now so a wrong path fails at start, not at every dial.
    std::fs::read(&options.token_file)
        .map_err(|e| AgentError::Token(options.token_file.clone(), e.to_string()))?;
    let config = cluster_config(&options).await?;
    let upstream = crate::upstream::Upstream::new(&config, &Default::default())
        .map_err(|e| AgentError::Cluster(e.to_string()))?;
    let tasks = TaskTracker::new();
    let dialer = Arc::new(dial::Dialer {
        host: host.clone(),
        port,
        cluster: options.cluster.clone(),
        token_file: options.token_file.clone(),
        tls: tls(&options)?,
        server_name: server_name.to_owned(),
        forward: forward::Forward {
            upstream,
            tasks: tasks.clone(),
            cluster: options.cluster.as_str().into(),
        },
    });
    tracing::info!(cluster = %options.cluster, gateway = %options.gateway, apiserver = %config.cluster_url, "podgate agent starting");
    let mut dialling: HashMap<SocketAddr, CancellationToken> = HashMap::new();
    loop {
        match (resolver.resolve)(host.clone(), port).await {
            Ok(found) => {
                dialling.retain(|addr, token| {
                    let keep = found.contains(addr);
                    if !keep {
                        tracing::info!(gateway = %addr, "gateway address gone: closing its tunnel");
                        token.cancel();
                    }
                    keep
                });
                for addr in found {
                    if dialling.contains_key(&addr) {
                        continue;
                    }
                    let token = stop.child_token();
                    dialling.insert(addr, token.clone());
                    tasks.spawn(dialer.clone().keep(addr, token));
                }
            }
            Err(e) => {
                tracing::warn!(gateway = %host, "cannot resolve the gateway (keeping the tunnels there are): {e}")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(resolver.every) => {}
            () = stop.cancelled() => break,
        }
    }
    tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(10), tasks.wait()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_is_an_https_origin() {
        assert_eq!(
            gateway_address("https://gw.example:8443").expect("valid"),
            ("gw.example".to_string(), 8443)
        );
        assert_eq!(
            gateway_address("https://gw.example").expect("valid"),
            ("gw.example".to_string(), 443)
        );
        assert_eq!(
            gateway_address("https://[::1]:9").expect("valid"),
            ("::1".to_string(), 9)
        );
        for bad in ["http://gw:80", "gw:443", "https://gw/path", "https://"] {
            assert!(gateway_address(bad).is_err(), "{bad}");
        }
    }
}
