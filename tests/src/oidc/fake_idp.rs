//! A scriptable stand-in for an OpenID provider's two documents (discovery and JWKS), on
//! 127.0.0.1, over plain HTTP or TLS. It counts requests and can be told to lie about its
//! issuer, answer slowly or fail, which a real provider will not do on demand. Tokens are signed
//! by the test itself with [`super::keys::TestKey`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[derive(Default)]
struct Script {
    /// Replaces the `issuer` of the discovery document.
    discovery_issuer: Option<String>,
    jwks: Value,
    delay: Duration,
    failing: bool,
}

pub struct FakeIdp {
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub issuer: String,
    /// With TLS: the CA that signed the server certificate, as PEM.
    pub ca_pem: Option<String>,
    script: Arc<Mutex<Script>>,
    discovery_hits: Arc<AtomicU64>,
    jwks_hits: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for FakeIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeIdp {
    /// Plain HTTP (the issuer config needs `insecure_http_for_loopback`).
    pub async fn start(jwks: Value) -> FakeIdp {
        Self::start_with(jwks, None).await
    }

    /// HTTPS with a certificate for 127.0.0.1 from a fresh CA (see `ca_pem`).
    pub async fn start_tls(jwks: Value) -> FakeIdp {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .expect("params")
            .signed_by(&key, &ca)
            .expect("certificate");
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        Self::start_with(jwks, Some((acceptor, ca.pem()))).await
    }

    async fn start_with(jwks: Value, tls: Option<(tokio_rustls::TlsAcceptor, String)>) -> FakeIdp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let port = listener.local_addr().expect("address").port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let issuer = format!("{scheme}://127.0.0.1:{port}");
        let script = Arc::new(Mutex::new(Script {
            jwks,
            ..Script::default()
        }));
        let discovery_hits = Arc::new(AtomicU64::new(0));
        let jwks_hits = Arc::new(AtomicU64::new(0));
        let (acceptor, ca_pem) = match tls {
            Some((acceptor, pem)) => (Some(acceptor), Some(pem)),
            None => (None, None),
        };
        let server = Server {
            issuer: issuer.clone(),
            script: Arc::clone(&script),
            discovery_hits: Arc::clone(&discovery_hits),
            jwks_hits: Arc::clone(&jwks_hits),
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let server = server.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                server.serve(stream).await;
                            }
                        }
                        None => server.serve(stream).await,
                    }
                });
            }
        });
        FakeIdp {
            issuer,
            ca_pem,
            script,
            discovery_hits,
            jwks_hits,
            task,
        }
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set_jwks(&self, jwks: Value) {
        self.script().jwks = jwks;
    }

    pub fn set_discovery_issuer(&self, issuer: &str) {
        self.script().discovery_issuer = Some(issuer.to_owned());
    }

    pub fn set_delay(&self, delay: Duration) {
        self.script().delay = delay;
    }

    /// Answer 500 to everything.
    pub fn set_failing(&self, failing: bool) {
        self.script().failing = failing;
    }

    pub fn jwks_hits(&self) -> u64 {
        self.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn discovery_hits(&self) -> u64 {
        self.discovery_hits.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct Server {
    issuer: String,
    script: Arc<Mutex<Script>>,
    discovery_hits: Arc<AtomicU64>,
    jwks_hits: Arc<AtomicU64>,
}

impl Server {
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&self, mut stream: S) {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
            if head.len() > 16 << 10 {
                return;
            }
        }
        let head = String::from_utf8_lossy(&head);
        let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
        let (delay, failing, jwks, discovery_issuer) = {
            let script = self.script.lock().unwrap_or_else(PoisonError::into_inner);
            (
                script.delay,
                script.failing,
                script.jwks.clone(),
                script.discovery_issuer.clone(),
            )
        };
        let (status, body) = match path.as_str() {
            "/.well-known/openid-configuration" => {
                self.discovery_hits.fetch_add(1, Ordering::SeqCst);
                let issuer = discovery_issuer.unwrap_or_else(|| self.issuer.clone());
                let document = json!({"issuer": issuer, "jwks_uri": format!("{}/jwks", self.issuer),
                                      "token_endpoint": format!("{}/token", self.issuer)});
                ("200 OK", document.to_string())
            }
            "/jwks" => {
                self.jwks_hits.fetch_add(1, Ordering::SeqCst);
                ("200 OK", jwks.to_string())
            }
            _ => ("404 Not Found", "{}".to_owned()),
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let (status, body) = if failing {
            ("500 Internal Server Error", "{}".to_owned())
        } else {
            (status, body)
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
}
