//! A TLS connection to a server whose CA the test holds: the gateway or a devcluster.

use rustls::pki_types::pem::PemObject as _;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A TLS server on loopback: where it listens, and the PEM of the CA that signed its
/// certificate (for `127.0.0.1`).
pub trait Endpoint {
    fn addr(&self) -> SocketAddr;
    fn ca_pem(&self) -> &str;
}

impl Endpoint for podgate_devcluster::DevCluster {
    fn addr(&self) -> SocketAddr {
        podgate_devcluster::DevCluster::addr(self)
    }

    fn ca_pem(&self) -> &str {
        podgate_devcluster::DevCluster::ca_pem(self)
    }
}

/// A TLS connection to `to` with nothing sent yet (ALPN `http/1.1`, as WebSocket upgrades and
/// raw HTTP/1.1 need).
pub async fn connect(to: &impl Endpoint) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(to.ca_pem().as_bytes()) {
        roots
            .add(cert.expect("the CA PEM parses"))
            .expect("the CA is a usable root");
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(to.addr())
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", to.addr()));
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("server name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap_or_else(|e| panic!("TLS handshake with {}: {e}", to.addr()))
}
