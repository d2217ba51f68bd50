//! The HTTP client podgate uses to talk to an OpenID provider: discovery, JWKS, and (for the
//! browser login) the token endpoint. hyper-util's pooled client over rustls with the ring
//! provider, bounded in time and size, trusting either the issuer's `ca_file` or the system
//! roots, and refusing plain http except on loopback when the issuer's config allows it.
//! Redirects are not followed: discovery and keys must come from where the config says.

use std::error::Error as _;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use rustls::{ClientConfig, RootCertStore};
use serde::de::DeserializeOwned;

use super::config::{IssuerConfig, check_url};

/// Provider documents are a few KiB; a megabyte is generous and still bounded.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// The whole exchange, connect to last byte. A slow provider must not hold requests forever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Provider error descriptions are echoed into our errors, cut to this many characters.
const MAX_ERROR_DESCRIPTION: usize = 200;

/// A client for one issuer's endpoints. Cheap to clone (shares the connection pool).
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    insecure_http_for_loopback: bool,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field(
                "insecure_http_for_loopback",
                &self.insecure_http_for_loopback,
            )
            .finish_non_exhaustive()
    }
}

/// A failed exchange with the provider. The message names the method, the URL and what went
/// wrong; it never holds request bodies (client secrets, codes) or response bodies beyond the
/// provider's `error` / `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{method} {url}: {problem}")]
pub struct FetchError {
    pub method: &'static str,
    pub url: String,
    /// The HTTP status, when the provider answered.
    pub status: Option<StatusCode>,
    pub problem: String,
}

impl HttpClient {
    /// A client for `config`'s issuer: trusting its `ca_file` if set, else the system roots.
    pub fn for_issuer(config: &IssuerConfig) -> Result<Self, String> {
        let roots = match &config.ca_file {
            Some(path) => Arc::new(load_ca_file(path)?),
            None => match system_roots() {
                Ok(roots) => roots,
                // A loopback-http test issuer needs no roots; anything https does.
                Err(_) if config.issuer.starts_with("http://") => Arc::new(RootCertStore::empty()),
                Err(why) => return Err(format!("{why}; set ca_file")),
            },
        };
        Self::new(roots, config.insecure_http_for_loopback)
    }

    /// A client trusting exactly `roots`.
    pub fn new(
        roots: Arc<RootCertStore>,
        insecure_http_for_loopback: bool,
    ) -> Result<Self, String> {
        let tls =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS setup: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        // Plain http is allowed at the connector so loopback test issuers work; every request
        // is checked against `check_url` first, which is where the policy lives.
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(HttpClient {
            client,
            insecure_http_for_loopback,
        })
    }

    /// GETs `url` and parses the JSON answer. Anything but 200 is an error.
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, FetchError> {
        let fail = fail("GET", url);
        let uri = check_url(url, self.insecure_http_for_loopback).map_err(|p| fail(None, p))?;
        let request = Request::get(uri)
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, "podgate")
            .body(Full::default())
            .map_err(|e| fail(None, e.to_string()))?;
        let (status, body) = self.send(request).await.map_err(|p| fail(None, p))?;
        if status != StatusCode::OK {
            return Err(fail(Some(status), format!("HTTP {status}")));
        }
        serde_json::from_slice(&body).map_err(|e| fail(Some(status), format!("bad JSON: {e}")))
    }

    /// POSTs a form (`application/x-www-form-urlencoded`) and parses the JSON answer, as OAuth
    /// token endpoints want. `basic_auth` is `client_secret_basic` (RFC 6749 §2.3.1); for
    /// `client_secret_post` put the client id and secret in `form` instead. On an error status
    /// the provider's `error` and `error_description` become the message.
    pub async fn post_form_json<T: DeserializeOwned>(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic_auth: Option<(&str, &str)>,
    ) -> Result<T, FetchError> {
        let fail = fail("POST", url);
        let uri = check_url(url, self.insecure_http_for_loopback).map_err(|p| fail(None, p))?;
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = Request::post(uri)
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, "podgate")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| fail(None, e.to_string()))?;
        if let Some((id, secret)) = basic_auth {
            let encode =
                |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                encode(id),
                encode(secret)
            ));
            let mut value = HeaderValue::try_from(format!("Basic {credentials}"))
                .map_err(|e| fail(None, e.to_string()))?;
            value.set_sensitive(true);
            request.headers_mut().insert(header::AUTHORIZATION, value);
        }
        let (status, body) = self.send(request).await.map_err(|p| fail(None, p))?;
        if !status.is_success() {
            return Err(fail(Some(status), oauth_error(status, &body)));
        }
        serde_json::from_slice(&body).map_err(|e| fail(Some(status), format!("bad JSON: {e}")))
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String> {
        let exchange = async {
            let response = self.client.request(request).await.map_err(chain)?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        format!("response larger than {} KiB", MAX_RESPONSE_BYTES >> 10)
                    } else {
                        format!("reading the response: {e}")
                    }
                })?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs())))
    }
}

fn fail(method: &'static str, url: &str) -> impl Fn(Option<StatusCode>, String) -> FetchError {
    move |status, problem| FetchError {
        method,
        url: url.to_owned(),
        status,
        problem,
    }
}

/// hyper-util's errors say "client error (Connect)"; the cause is further down the chain.
fn chain(error: hyper_util::client::legacy::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn oauth_error(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct OAuthError {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    match serde_json::from_slice::<OAuthError>(body) {
        Ok(OAuthError {
            error,
            error_description,
        }) => {
            let mut message = format!("HTTP {status}: {}", cut(&error));
            if let Some(description) = error_description {
                message.push_str(": ");
                message.push_str(&cut(&description));
            }
            message
        }
        Err(_) => format!("HTTP {status}"),
    }
}

fn cut(text: &str) -> String {
    text.chars()
        .take(MAX_ERROR_DESCRIPTION)
        .filter(|c| !c.is_control())
        .collect()
}

/// The system's trust roots, read once per process.
fn system_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
                Err(format!(
                    "no system CA certificates found{}",
                    if errors.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", errors.join("; "))
                    }
                ))
            } else {
                Ok(Arc::new(store))
            }
        })
        .clone()
}

/// Reads a PEM bundle of CA certificates.
pub fn load_ca_file(path: &Path) -> Result<RootCertStore, String> {
    let shown = path.display();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {shown}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{shown}: bad PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{shown} holds no PEM certificate"));
    }
    let mut store = RootCertStore::empty();
    for (index, cert) in certs.into_iter().enumerate() {
        store
            .add(cert)
            .map_err(|e| format!("{shown}: certificate {index} is not usable as a CA: {e}"))?;
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_errors_are_short_and_clean() {
        let body =
            br#"{"error":"invalid_client","error_description":"client authentication failed"}"#;
        assert_eq!(
            oauth_error(StatusCode::UNAUTHORIZED, body),
            "HTTP 401 Unauthorized: invalid_client: client authentication failed"
        );
        assert_eq!(
            oauth_error(StatusCode::BAD_GATEWAY, b"<html>"),
            "HTTP 502 Bad Gateway"
        );
        let long = format!(r#"{{"error":"x\n{}"}}"#, "y".repeat(500));
        let message = oauth_error(StatusCode::BAD_REQUEST, long.as_bytes());
        assert!(message.len() < 250 && !message.contains('\n'), "{message}");
    }

    #[test]
    fn ca_files_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("podgate-auth-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let missing = load_ca_file(&dir.join("missing.pem")).unwrap_err();
        assert!(missing.starts_with("cannot read"), "{missing}");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        assert!(
            load_ca_file(&empty)
                .unwrap_err()
                .contains("no PEM certificate")
        );
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["idp.test".to_owned()]).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("self-signed");
        let good = dir.join("ca.pem");
        std::fs::write(&good, cert.pem()).expect("write");
        assert_eq!(load_ca_file(&good).map(|s| s.len()), Ok(1));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[tokio::test]
    async fn refuses_plain_http_unless_loopback_is_allowed() {
        let strict = HttpClient::new(Arc::new(RootCertStore::empty()), false).expect("client");
        let error = strict
            .get_json::<serde_json::Value>("http://127.0.0.1:9/x")
            .await
            .unwrap_err();
        assert!(error.problem.contains("plain http"), "{error}");
        assert_eq!(error.to_string().split(':').next(), Some("GET http"));
        let relaxed = HttpClient::new(Arc::new(RootCertStore::empty()), true).expect("client");
        let error = relaxed
            .get_json::<serde_json::Value>("http://10.1.2.3/x")
            .await
            .unwrap_err();
        assert!(error.problem.contains("loopback"), "{error}");
        // Allowed, and nobody listens on port 9 (discard): a connection error, named.
        let error = relaxed
            .get_json::<serde_json::Value>("http://127.0.0.1:9/x")
            .await
            .unwrap_err();
        assert_eq!(error.status, None);
        assert!(error.problem.contains("onnect"), "{error}");
    }
}
