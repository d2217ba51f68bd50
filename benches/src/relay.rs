//! The reference relay: the floor for a user-space relay that terminates TLS on both sides.
//!
//! It accepts TLS (podgate's provider and suite order, so AES-128-GCM, as podgate's listener),
//! opens TLS to the cluster with the same provider, and copies bytes both ways: one task per
//! direction, 16 KiB reads (one full TLS record per write), no HTTP, no WebSocket. What
//! podgate spends per relayed byte above this is its own work (framing, copies, wakeups); the
//! throughput, churn and interactive scenarios run through it in the same run as through
//! podgate and directly (`scenarios.{throughput,churn,interactive}.reference_relay` in
//! `summary.json`): the floor for CPU per byte, CPU per session setup and the echo's extra
//! hop.

use anyhow::Context as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject as _};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// One TLS record's plaintext: each read fills at most one record on the other leg.
pub const CHUNK: usize = 16 << 10;

/// Where the relay forwards to and how it proves itself.
pub struct Relay {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub connector: tokio_rustls::TlsConnector,
    pub upstream: SocketAddr,
    pub upstream_name: ServerName<'static>,
}

impl Relay {
    /// A relay serving `cert_pem`/`key_pem` and trusting `upstream_ca_pem` for `upstream`.
    pub fn new(
        cert_pem: &str,
        key_pem: &str,
        upstream: SocketAddr,
        upstream_name: &str,
        upstream_ca_pem: &str,
    ) -> anyhow::Result<Relay> {
        let provider = Arc::new(podgate::edge::tls::provider());
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .context("the relay's certificate PEM")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("the relay's key")?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .context("the relay's certificate and key")?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        server.ignore_client_order = true;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(upstream_ca_pem.as_bytes()) {
            roots
                .add(c.context("the upstream CA PEM")?)
                .context("the upstream CA")?;
        }
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Relay {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
            upstream,
            upstream_name: ServerName::try_from(upstream_name.to_string())
                .with_context(|| format!("{upstream_name:?} is not a TLS name"))?,
        })
    }

    /// Serves `listener` until the future is dropped, which ends every connection with it
    /// (each is a task of its own, owned here).
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => {
                        let relay = self.clone();
                        connections.spawn(async move {
                            if let Err(e) = relay.connection(tcp).await {
                                eprintln!("podgate-refrelay: {e:#}");
                            }
                        });
                    }
                    // Out of fds, say: a pause, not a spin.
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    }

    async fn connection(&self, tcp: TcpStream) -> anyhow::Result<()> {
        tcp.set_nodelay(true)?;
        let client = self
            .acceptor
            .accept(tcp)
            .await
            .context("client handshake")?;
        let up = TcpStream::connect(self.upstream)
            .await
            .context("connect upstream")?;
        up.set_nodelay(true)?;
        let up = self
            .connector
            .connect(self.upstream_name.clone(), up)
            .await
            .context("upstream handshake")?;
        let (cr, cw) = tokio::io::split(client);
        let (ur, uw) = tokio::io::split(up);
        // One task per direction; the other direction's is aborted if this one is dropped.
        let mut down = tokio::task::JoinSet::new();
        down.spawn(pipe(ur, cw));
        pipe(cr, uw).await;
        let _ = down.join_next().await;
        Ok(())
    }
}

/// Copies until end of stream or an error, then shuts the writer (a half close travels on).
async fn pipe(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) -> u64 {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() || to.flush().await.is_err() {
                    break;
                }
                total += n as u64;
            }
        }
    }
    let _ = to.shutdown().await;
    total
}
