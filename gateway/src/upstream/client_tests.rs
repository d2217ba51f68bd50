//! The upstream client against a TLS server configured as the devcluster's (stateless
//! tickets, as kube-apiserver issues them), recording how each connection was handshaken.

use super::*;
use std::sync::Mutex;

/// A one-answer-per-connection HTTPS server: every connection gets `GET /version`'s answer
/// and is closed after it, as a probe with `Connection: close` asks. Records each accepted
/// connection's handshake kind (full or resumed) as the server saw it.
struct RecordingServer {
    url: String,
    ca_pem: String,
    config: Arc<rustls::ServerConfig>,
    kinds: Arc<Mutex<Vec<Option<rustls::HandshakeKind>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RecordingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn recording_server() -> RecordingServer {
    podgate_devcluster::install_crypto_provider();
    let material =
        podgate_devcluster::tls::generate(&["127.0.0.1".to_string()]).expect("tls material");
    serve(material).await
}

/// Serves `material` (its CA, certificate and ticket key) on a new address.
async fn serve(material: podgate_devcluster::tls::TlsMaterial) -> RecordingServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let addr = listener.local_addr().expect("addr");
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let config = material.server.clone();
    let acceptor = tokio_rustls::TlsAcceptor::from(material.server);
    let seen = kinds.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let Ok(tls) = acceptor.accept(tcp).await else {
                continue;
            };
            seen.lock()
                .expect("lock")
                .push(tls.get_ref().1.handshake_kind());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    let body = r#"{"gitVersion":"v1.32.0"}"#;
                    Ok::<_, std::convert::Infallible>(
                        http::Response::builder()
                            .header(http::header::CONTENT_TYPE, "application/json")
                            .body(http_body_util::Full::new(Bytes::from_static(
                                body.as_bytes(),
                            )))
                            .expect("response"),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    RecordingServer {
        url: format!("https://{addr}"),
        ca_pem: material.ca_pem,
        config,
        kinds,
        task,
    }
}

fn kube_config(server: &RecordingServer) -> kube::Config {
    use rustls::pki_types::pem::PemObject as _;
    let mut c = kube::Config::new(server.url.parse().expect("url"));
    let der = rustls::pki_types::CertificateDer::from_pem_slice(server.ca_pem.as_bytes())
        .expect("ca pem");
    c.root_cert = Some(vec![der.to_vec()]);
    c.auth_info.token = Some("t".to_string().into());
    c
}

async fn probe(upstream: &Upstream) {
    use http_body_util::BodyExt as _;
    let mut req = Request::new(empty_body());
    *req.uri_mut() = http::Uri::from_static("/version");
    let resp = upstream.probe(req).await.expect("probe answered");
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.into_body().collect().await.expect("body");
}

#[tokio::test]
async fn a_probe_after_a_closed_one_resumes_tls() {
    let server = recording_server().await;
    let upstream =
        Upstream::new(&kube_config(&server), &UpstreamOptions::default()).expect("client");
    probe(&upstream).await;
    probe(&upstream).await;
    probe(&upstream).await;
    let kinds = server.kinds.lock().expect("lock").clone();
    assert_eq!(
        kinds,
        [
            Some(rustls::HandshakeKind::Full),
            Some(rustls::HandshakeKind::Resumed),
            Some(rustls::HandshakeKind::Resumed)
        ],
        "one connection per probe (Connection: close), the later ones resumed"
    );
    assert_eq!(
        upstream.tls_handshakes(),
        (1, 2),
        "(full, resumed), as the client saw them"
    );
}

/// The same against the devcluster itself (its kubeconfig: an IP address as the server
/// name, a bearer token), counted on the gateway's side.
#[tokio::test]
async fn probes_of_a_devcluster_resume_tls() {
    podgate_devcluster::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let dc = podgate_devcluster::DevCluster::start(podgate_devcluster::Options::default())
        .await
        .expect("devcluster starts");
    let path = dir.path().join("kubeconfig");
    dc.kubeconfig().write(&path).expect("write kubeconfig");
    let kc = kube::config::Kubeconfig::read_from(&path).expect("read kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    let upstream = Upstream::new(&config, &UpstreamOptions::default()).expect("client");
    for _ in 0..3 {
        probe(&upstream).await;
    }
    assert_eq!(upstream.tls_handshakes(), (1, 2), "(full, resumed)");
    dc.shutdown().await;
}

/// Cluster ids naming one apiserver with one TLS key are one TLS peer: a ticket one of them
/// got resumes the other's first connection. Another apiserver gets none of it.
#[tokio::test]
async fn ids_of_one_apiserver_share_its_tickets_and_no_other() {
    let server = recording_server().await;
    // The same CA, certificate and ticket key on another address: it would accept a ticket
    // of the first, so only the client's choice keeps them apart.
    let other = serve(podgate_devcluster::tls::TlsMaterial {
        server: server.config.clone(),
        ca_pem: server.ca_pem.clone(),
    })
    .await;
    let options = UpstreamOptions::default();
    let a = Upstream::new(&kube_config(&server), &options).expect("client");
    let b = Upstream::new(&kube_config(&server), &options).expect("client");
    let c = Upstream::new(&kube_config(&other), &options).expect("client");
    assert!(a.shares_tls_with(&c), "one TLS key");
    probe(&a).await;
    probe(&b).await;
    probe(&c).await;
    assert_eq!(a.tls_handshakes(), (1, 0), "(full, resumed)");
    assert_eq!(b.tls_handshakes(), (0, 1), "resumed with the ticket a got");
    assert_eq!(
        c.tls_handshakes(),
        (1, 0),
        "another apiserver: a full handshake"
    );
}
