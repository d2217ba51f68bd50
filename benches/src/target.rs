//! Where sessions go: podgate (`--gateway URL --cluster ID --token T`) or a cluster directly
//! (`--direct KUBECONFIG`), each with its TLS trust and bearer token.

use anyhow::{Context as _, bail};
use base64::Engine as _;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Gateway,
    Direct,
    /// The reference relay in front of the cluster ([`crate::relay`]).
    ReferenceRelay,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Gateway => "gateway",
            Kind::Direct => "direct",
            Kind::ReferenceRelay => "reference_relay",
        }
    }
}

/// One endpoint sessions are opened against.
pub struct Target {
    pub kind: Kind,
    pub addr: SocketAddr,
    /// `Host` header value.
    pub authority: String,
    pub server_name: ServerName<'static>,
    /// Path before `/api/v1/...`: `/clusters/{id}` through podgate, empty directly.
    pub prefix: String,
    pub token: String,
    pub tls: tokio_rustls::TlsConnector,
    pub sources: Arc<SourceAddrs>,
}

/// TLS settings shared by every target of a run.
#[derive(Clone, Copy, Debug)]
pub struct TlsOptions {
    /// Let clients resume TLS sessions. Off by default: every `kubectl exec` is a new process
    /// with a full handshake, and that is the cost a gateway must carry.
    pub resumption: bool,
}

impl Target {
    /// Through podgate: `url` is its base (`https://127.0.0.1:8443`), `ca_pem` the CA that
    /// signed its certificate.
    pub async fn gateway(
        url: &str,
        cluster: &str,
        token: &str,
        ca_pem: &str,
        tls: TlsOptions,
        sources: Arc<SourceAddrs>,
    ) -> anyhow::Result<Target> {
        let (addr, authority, host) = resolve(url).await?;
        Ok(Target {
            kind: Kind::Gateway,
            addr,
            authority,
            server_name: server_name(&host)?,
            prefix: format!("/clusters/{cluster}"),
            token: token.to_string(),
            tls: connector(ca_pem, tls)?,
            sources,
        })
    }

    /// Straight to a cluster, from a kubeconfig's context (its current one by default).
    pub async fn direct(
        kubeconfig: &Kubeconfig,
        tls: TlsOptions,
        sources: Arc<SourceAddrs>,
    ) -> anyhow::Result<Target> {
        let (addr, authority, host) = resolve(&kubeconfig.server).await?;
        // A server URL may carry a path (a kubeconfig written for podgate has
        // `/clusters/{id}`); requests go below it, as kubectl sends them.
        let prefix = kubeconfig
            .server
            .parse::<http::Uri>()
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default();
        Ok(Target {
            kind: Kind::Direct,
            addr,
            authority,
            server_name: server_name(&host)?,
            prefix,
            token: kubeconfig.token.clone(),
            tls: connector(&kubeconfig.ca_pem, tls)?,
            sources,
        })
    }
}

impl Target {
    /// Through the reference relay at `url` (whose certificate `ca_pem` signed) to the
    /// cluster of `kubeconfig`, with its token: the direct requests over one more TLS hop.
    pub async fn relay(
        url: &str,
        ca_pem: &str,
        kubeconfig: &Kubeconfig,
        tls: TlsOptions,
        sources: Arc<SourceAddrs>,
    ) -> anyhow::Result<Target> {
        let (addr, authority, host) = resolve(url).await?;
        let mut t = Target::direct(kubeconfig, tls, sources).await?;
        t.kind = Kind::ReferenceRelay;
        t.addr = addr;
        t.authority = authority;
        t.server_name = server_name(&host)?;
        t.tls = connector(ca_pem, tls)?;
        Ok(t)
    }
}

/// Host and port of an `https://` URL, resolved. Only loopback addresses are accepted: this
/// tool floods what it points at, and load stays on this machine.
async fn resolve(url: &str) -> anyhow::Result<(SocketAddr, String, String)> {
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("{url:?} is not a URL"))?;
    if uri.scheme_str() != Some("https") {
        bail!("{url}: only https:// targets are supported (podgate and clusters speak TLS)");
    }
    let authority = uri
        .authority()
        .with_context(|| format!("{url}: no host"))?
        .clone();
    let host = authority.host().trim_matches(['[', ']']).to_string();
    let port = authority.port_u16().unwrap_or(443);
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .with_context(|| format!("{url}: cannot resolve {host}"))?
        .find(SocketAddr::is_ipv4)
        .with_context(|| format!("{url}: {host} has no IPv4 address"))?;
    if !addr.ip().is_loopback() {
        bail!(
            "{url}: {} is not a loopback address; podgate-load only sends load to this machine",
            addr.ip()
        );
    }
    Ok((addr, authority.to_string(), host))
}

fn server_name(host: &str) -> anyhow::Result<ServerName<'static>> {
    ServerName::try_from(host.to_string()).with_context(|| format!("{host:?} is not a TLS name"))
}

/// ring with AES-128-GCM first, as kubectl offers it (Go's crypto/tls prefers AES-128-GCM on
/// CPUs with AES instructions). podgate's listener picks AES-128-GCM whatever the client's
/// order; without this the direct path would run AES-256-GCM-SHA384 and the gateway's client
/// leg AES-128, so the two paths would not do the same work.
pub fn client_provider() -> rustls::crypto::CryptoProvider {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites
        .sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    p
}

fn connector(ca_pem: &str, opts: TlsOptions) -> anyhow::Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.context("reading the CA certificate")?)
            .context("adding the CA certificate")?;
    }
    if roots.is_empty() {
        bail!("no CA certificate found in the given PEM");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(client_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // WebSocket upgrades are HTTP/1.1 (podgate also offers h2).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !opts.resumption {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Client source addresses spread over 127.1.0.1 and up: each address has its own ~28,000
/// ephemeral ports, so tens of thousands of connections (and the TIME_WAIT sockets churn
/// leaves behind) never exhaust them.
pub struct SourceAddrs {
    next: AtomicUsize,
    count: usize,
}

impl SourceAddrs {
    /// At most 254 * 256 addresses (127.1.0.1 to 127.1.255.254).
    pub const MAX: usize = 254 * 256;

    pub fn new(count: usize) -> SourceAddrs {
        SourceAddrs {
            next: AtomicUsize::new(0),
            count: count.clamp(1, Self::MAX),
        }
    }

    pub fn next(&self) -> IpAddr {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.count;
        IpAddr::V4(Ipv4Addr::new(127, 1, (i / 254) as u8, (i % 254 + 1) as u8))
    }
}

/// What podgate-load needs of a kubeconfig: server, CA and token of one context.
#[derive(Debug, Clone, PartialEq)]
pub struct Kubeconfig {
    pub server: String,
    pub ca_pem: String,
    pub token: String,
}

impl Kubeconfig {
    pub fn load(path: &std::path::Path, context: Option<&str>) -> anyhow::Result<Kubeconfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
        Kubeconfig::parse(&text, context, path.parent())
            .with_context(|| format!("kubeconfig {}", path.display()))
    }

    pub fn parse(
        text: &str,
        context: Option<&str>,
        dir: Option<&std::path::Path>,
    ) -> anyhow::Result<Kubeconfig> {
        let doc: serde_json::Value = serde_norway::from_str(text).context("not YAML")?;
        let named = |list: &str, name: &str| {
            doc[list]
                .as_array()
                .and_then(|l| l.iter().find(|e| e["name"] == name))
                .cloned()
                .with_context(|| format!("no {list} entry named {name:?}"))
        };
        let ctx_name = match context {
            Some(c) => c.to_string(),
            None => doc["current-context"]
                .as_str()
                .filter(|s| !s.is_empty())
                .context("no current-context; pass --direct-context")?
                .to_string(),
        };
        let ctx = named("contexts", &ctx_name)?;
        let cluster_name = ctx["context"]["cluster"]
            .as_str()
            .context("context without cluster")?;
        let user_name = ctx["context"]["user"]
            .as_str()
            .context("context without user")?;
        let cluster = named("clusters", cluster_name)?;
        let user = named("users", user_name)?;
        let server = cluster["cluster"]["server"]
            .as_str()
            .context("cluster without server")?
            .trim_end_matches('/')
            .to_string();
        let ca_pem = if let Some(data) = cluster["cluster"]["certificate-authority-data"].as_str() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .context("certificate-authority-data is not base64")?;
            String::from_utf8(bytes).context("certificate-authority-data is not PEM")?
        } else if let Some(file) = cluster["cluster"]["certificate-authority"].as_str() {
            let p = dir.unwrap_or(std::path::Path::new(".")).join(file);
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?
        } else {
            bail!("cluster {cluster_name:?} has no certificate authority")
        };
        let token = user["user"]["token"]
            .as_str()
            .with_context(|| {
                format!("user {user_name:?} has no token (only tokens are supported)")
            })?
            .to_string();
        Ok(Kubeconfig {
            server,
            ca_pem,
            token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_cycle_within_127_1() {
        let s = SourceAddrs::new(300);
        let first = s.next();
        assert_eq!(first, IpAddr::V4(Ipv4Addr::new(127, 1, 0, 1)));
        let mut last = first;
        for _ in 1..300 {
            last = s.next();
        }
        assert_eq!(last, IpAddr::V4(Ipv4Addr::new(127, 1, 1, 46)));
        assert_eq!(s.next(), first);
        let all = SourceAddrs::new(usize::MAX);
        assert_eq!(all.count, SourceAddrs::MAX);
    }

    #[test]
    fn kubeconfig_context_server_ca_token() {
        let text = r#"
apiVersion: v1
kind: Config
clusters:
- name: dc
  cluster: {server: "https://127.0.0.1:6443/", certificate-authority-data: UEVN}
users:
- {name: admin, user: {token: t-admin}}
- {name: podgate, user: {token: t-podgate}}
contexts:
- {name: admin, context: {cluster: dc, user: admin}}
- {name: podgate, context: {cluster: dc, user: podgate}}
current-context: admin
"#;
        let k = Kubeconfig::parse(text, None, None).unwrap();
        assert_eq!(
            k,
            Kubeconfig {
                server: "https://127.0.0.1:6443".into(),
                ca_pem: "PEM".into(),
                token: "t-admin".into()
            }
        );
        assert_eq!(
            Kubeconfig::parse(text, Some("podgate"), None)
                .unwrap()
                .token,
            "t-podgate"
        );
        let err = Kubeconfig::parse(text, Some("nope"), None).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[tokio::test]
    async fn only_loopback_targets() {
        assert!(resolve("https://127.0.0.1:1").await.is_ok());
        assert!(resolve("http://127.0.0.1:1").await.is_err());
        let e = resolve("https://10.1.2.3:443").await.unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
    }
}
