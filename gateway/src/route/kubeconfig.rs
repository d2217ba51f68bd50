//! `GET /podgate/kubeconfig`: a kubeconfig for the person asking, with a context per cluster
//! they may use (named by cluster id, server `https://<gateway>/clusters/<id>`), the gateway's
//! CA when the system's roots do not already trust its certificate, and a user entry that
//! holds no secret:
//!
//! - logged in with OIDC: kubectl's exec credential plugin entry for kubelogin
//!   (`kubectl oidc-login get-token --oidc-issuer-url=... --oidc-client-id=...`), with
//!   `auth.oidc.login.kubectl_client_id` (a public client: the browser login's secret never
//!   goes into a kubeconfig);
//! - logged in with a static token: no credentials, and a comment saying how to add the token.
//!   `POST /podgate/kubeconfig` with the token in the body (`token=` or JSON) embeds it, but
//!   only when it is the very token the request is authenticated by: the session cookie never
//!   gives the token back (it holds only its digest), so a page script cannot read a token out
//!   of a kubeconfig it did not already know.
//!
//! The answer is an attachment (`Content-Disposition`), never cached.

use crate::browser::Pages;
use crate::http::{Body, full, status, with_type};
use crate::upstream::Registry;
use base64::Engine as _;
use http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, HOST, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use podgate_auth::{Authenticated, TokenDigest};
use podgate_protocol::Status;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};

/// The user entry's name in every kubeconfig podgate hands out.
pub const USER: &str = "podgate";

/// How the kubeconfig's user authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// kubelogin at `issuer` as public client `client_id`, with `scopes` beyond `openid`.
    Kubelogin {
        issuer: String,
        client_id: String,
        scopes: Vec<String>,
    },
    /// A static token, embedded because its owner presented it.
    Token(String),
    /// Nothing: the person adds their token (`kubectl config set-credentials`).
    None,
}

/// Everything a kubeconfig is made of.
pub struct Parts<'a> {
    /// `https://host[:port]`, no trailing slash.
    pub base: &'a str,
    pub clusters: &'a [String],
    /// PEM of the CA to trust, when the system's roots would not.
    pub ca_pem: Option<&'a str>,
    pub credentials: &'a Credentials,
}

/// The kubeconfig as YAML, with a comment on top saying what it is and how to use it.
pub fn render(parts: &Parts<'_>) -> String {
    let ca = parts
        .ca_pem
        .map(|pem| base64::engine::general_purpose::STANDARD.encode(pem.as_bytes()));
    let clusters: Vec<Value> = parts
        .clusters
        .iter()
        .map(|id| {
            let mut cluster = json!({"server": format!("{}/clusters/{id}", parts.base)});
            if let Some(ca) = &ca {
                cluster["certificate-authority-data"] = json!(ca);
            }
            json!({"name": id, "cluster": cluster})
        })
        .collect();
    let contexts: Vec<Value> = parts
        .clusters
        .iter()
        .map(|id| json!({"name": id, "context": {"cluster": id, "user": USER}}))
        .collect();
    let user = match parts.credentials {
        Credentials::Kubelogin {
            issuer,
            client_id,
            scopes,
        } => {
            let mut args = vec![
                json!("oidc-login"),
                json!("get-token"),
                json!(format!("--oidc-issuer-url={issuer}")),
                json!(format!("--oidc-client-id={client_id}")),
            ];
            args.extend(
                scopes
                    .iter()
                    .map(|s| json!(format!("--oidc-extra-scope={s}"))),
            );
            json!({"exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "kubectl",
                "args": args,
                "interactiveMode": "IfAvailable",
                "provideClusterInfo": false,
                "installHint": "this kubeconfig logs in with kubelogin: install it \
                    (https://github.com/int128/kubelogin, `kubectl krew install oidc-login`)",
            }})
        }
        Credentials::Token(token) => json!({"token": token}),
        Credentials::None => json!({}),
    };
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters,
        "contexts": contexts,
        "users": [{"name": USER, "user": user}],
        "current-context": parts.clusters.first().cloned().unwrap_or_default(),
        "preferences": {},
    });
    let mut out = format!(
        "# podgate: a context per cluster you may use through {}\n\
         # (kubectl --kubeconfig FILE --context CLUSTER_ID ...)\n",
        parts.base
    );
    match parts.credentials {
        Credentials::None => out.push_str(&format!(
            "# It holds no credentials. Add your podgate token with\n\
             #   kubectl --kubeconfig FILE config set-credentials {USER} --token=YOUR_TOKEN\n"
        )),
        Credentials::Token(_) => {
            out.push_str("# It holds your token: keep this file private (chmod 600).\n")
        }
        Credentials::Kubelogin { .. } => out.push_str(
            "# kubectl logs you in through kubelogin (kubectl oidc-login) at first use.\n",
        ),
    }
    out.push_str(&serde_norway::to_string(&doc).unwrap_or_default());
    out
}

pub async fn answer(
    pages: &Pages,
    clusters: &Registry,
    req: Request<hyper::body::Incoming>,
    authenticated: &Authenticated,
) -> Response<Body> {
    let method = req.method().clone();
    if method != Method::GET && method != Method::POST {
        return status(&Status::api_error(
            405,
            "MethodNotAllowed",
            "GET /podgate/kubeconfig, or POST it with your token to have it embedded",
        ));
    }
    let Some(base) = base_url(pages, &req) else {
        return status(&Status::bad_request(
            "the request has no usable Host to build the gateway's URL from",
        ));
    };
    let host = base
        .trim_start_matches("https://")
        .rsplit_once(':')
        .map_or(base.trim_start_matches("https://"), |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let identity = &authenticated.identity;
    let credentials = if method == Method::POST {
        match presented_token(req, authenticated).await {
            Ok(token) => Credentials::Token(token),
            Err(refused) => return refused,
        }
    } else if authenticated.static_token.is_some() {
        Credentials::None
    } else if let Some(login) = &pages.browser.oidc {
        let config = login.client().config();
        Credentials::Kubelogin {
            issuer: config.issuer.clone(),
            client_id: config.kubectl_client().to_string(),
            scopes: config
                .scopes
                .iter()
                .flatten()
                .filter(|s| s.as_str() != "openid")
                .cloned()
                .collect(),
        }
    } else {
        Credentials::None
    };
    let snapshot = clusters.snapshot();
    let ids: Vec<String> = snapshot
        .sorted()
        .iter()
        .filter(|c| podgate_auth::policy::may_use(&c.access, identity))
        .map(|c| c.id.clone())
        .collect();
    let ca_pem = pages
        .tls
        .as_ref()
        .and_then(|tls| ca_to_embed(&tls.current().cert, &host));
    let yaml = render(&Parts {
        base: &base,
        clusters: &ids,
        ca_pem: ca_pem.as_deref(),
        credentials: &credentials,
    });
    tracing::info!(
        user = %identity.user(),
        clusters = ids.len(),
        embedded_token = matches!(credentials, Credentials::Token(_)),
        "kubeconfig handed out"
    );
    let mut resp = with_type(
        StatusCode::OK,
        "application/yaml; charset=utf-8",
        full(yaml),
    );
    let filename = format!(
        "attachment; filename=\"podgate-{}.kubeconfig\"",
        host.replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-',
            "_"
        )
    );
    resp.headers_mut().insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_str(&filename).unwrap_or(HeaderValue::from_static(
            "attachment; filename=\"podgate.kubeconfig\"",
        )),
    );
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The token a POST presents, if it is the one the request is authenticated by.
async fn presented_token(
    req: Request<hyper::body::Incoming>,
    authenticated: &Authenticated,
) -> Result<String, Response<Body>> {
    let Some(own) = authenticated.static_token else {
        return Err(status(&Status::api_error(
            400,
            "BadRequest",
            "only a login with a static token can have its token embedded; an OIDC login's \
             kubeconfig (GET /podgate/kubeconfig) logs kubectl in through kubelogin",
        )));
    };
    let token = crate::browser::posted::token(req).await?;
    // Digests compare in constant time; the token itself is never compared or logged here.
    if !podgate_auth::ct_eq(
        TokenDigest::of(&token).to_hex().as_bytes(),
        own.to_hex().as_bytes(),
    ) {
        tracing::info!(
            reason = "kubeconfig_token_mismatch",
            "kubeconfig: the token presented is not the login's"
        );
        return Err(status(&Status::api_error(
            403,
            "Forbidden",
            "that is not the token you logged in with: only your own token can be embedded",
        )));
    }
    Ok(token)
}

/// `https://host[:port]` as the person reaches the gateway: the origin of
/// `auth.oidc.login.redirect_url` when configured (behind a proxy that rewrites `Host`), else
/// the Host the request addressed (refused unless a plain `host[:port]`).
fn base_url<B>(pages: &Pages, req: &Request<B>) -> Option<String> {
    if let Some(url) = pages
        .browser
        .oidc
        .as_ref()
        .and_then(|o| o.client().config().redirect_url.as_deref())
        && let Ok(uri) = url.parse::<http::Uri>()
        && let Some(authority) = uri.authority()
    {
        return Some(format!("https://{authority}"));
    }
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })?;
    let ok = host
        .parse::<http::uri::Authority>()
        .is_ok_and(|a| a.as_str() == host && !host.contains('@'));
    ok.then(|| format!("https://{host}"))
}

/// The PEM of the certificate kubectl should trust for `chain` (leaf first): none when the
/// system's roots already trust the chain for `host` (a publicly trusted certificate: pinning
/// it would replace the system roots in kubectl), else the topmost certificate the gateway
/// serves (the private CA when the chain includes it, or a self-signed certificate itself).
pub fn ca_to_embed(chain: &[CertificateDer<'static>], host: &str) -> Option<String> {
    let (leaf, rest) = chain.split_first()?;
    if publicly_trusted(leaf, rest, host) {
        return None;
    }
    let top = chain.last()?;
    Some(pem(top.as_ref()))
}

fn publicly_trusted(leaf: &CertificateDer<'_>, rest: &[CertificateDer<'_>], host: &str) -> bool {
    use rustls::client::danger::ServerCertVerifier as _;
    let Some(roots) = system_roots() else {
        return false;
    };
    let Ok(name) = ServerName::try_from(host.to_string()) else {
        return false;
    };
    let Ok(verifier) = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots,
        Arc::new(crate::edge::tls::provider()),
    )
    .build() else {
        return false;
    };
    verifier
        .verify_server_cert(leaf, rest, &name, &[], UnixTime::now())
        .is_ok()
}

/// The system's trust store (`SSL_CERT_FILE`, else the usual bundle paths), read once.
fn system_roots() -> Option<Arc<rustls::RootCertStore>> {
    static ROOTS: OnceLock<Option<Arc<rustls::RootCertStore>>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let candidates = std::env::var_os("SSL_CERT_FILE")
                .map(std::path::PathBuf::from)
                .into_iter()
                .chain(
                    [
                        "/etc/ssl/certs/ca-certificates.crt",
                        "/etc/pki/tls/certs/ca-bundle.crt",
                        "/etc/ssl/cert.pem",
                    ]
                    .map(std::path::PathBuf::from),
                );
            for path in candidates {
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                let mut store = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(&bytes).flatten() {
                    let _ = store.add(cert);
                }
                if !store.is_empty() {
                    return Some(Arc::new(store));
                }
            }
            None
        })
        .clone()
}

fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Value {
        serde_norway::from_str(yaml).expect("the kubeconfig is YAML")
    }

    #[test]
    fn contexts_per_cluster_and_no_secret() {
        let ids = vec!["dev-east".to_string(), "dev-west".to_string()];
        let yaml = render(&Parts {
            base: "https://gw.example:8443",
            clusters: &ids,
            ca_pem: Some("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"),
            credentials: &Credentials::None,
        });
        let doc = parse(&yaml);
        assert_eq!(doc["current-context"], "dev-east");
        assert_eq!(
            doc["clusters"][1]["cluster"]["server"],
            "https://gw.example:8443/clusters/dev-west"
        );
        assert!(doc["clusters"][0]["cluster"]["certificate-authority-data"].is_string());
        assert_eq!(doc["contexts"][1]["context"]["user"], USER);
        assert_eq!(doc["users"][0]["user"], json!({}));
        assert!(yaml.contains("set-credentials podgate --token="), "{yaml}");
    }

    #[test]
    fn kubelogin_entry() {
        let ids = vec!["a".to_string()];
        let creds = Credentials::Kubelogin {
            issuer: "https://idp.example/realms/x".into(),
            client_id: "kubectl".into(),
            scopes: vec!["email".into()],
        };
        let doc = parse(&render(&Parts {
            base: "https://gw",
            clusters: &ids,
            ca_pem: None,
            credentials: &creds,
        }));
        let exec = &doc["users"][0]["user"]["exec"];
        assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1");
        assert_eq!(exec["command"], "kubectl");
        assert_eq!(
            exec["args"],
            json!([
                "oidc-login",
                "get-token",
                "--oidc-issuer-url=https://idp.example/realms/x",
                "--oidc-client-id=kubectl",
                "--oidc-extra-scope=email"
            ])
        );
        assert!(doc["clusters"][0]["cluster"]["certificate-authority-data"].is_null());
    }

    #[test]
    fn a_self_signed_certificate_is_embedded() {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("cert");
        let der = CertificateDer::from(cert.cert.der().to_vec());
        let pem_text = ca_to_embed(&[der], "127.0.0.1").expect("embedded");
        assert!(pem_text.starts_with("-----BEGIN CERTIFICATE-----\n"));
        let back: Vec<_> = CertificateDer::pem_slice_iter(pem_text.as_bytes())
            .flatten()
            .collect();
        assert_eq!(
            back.first().map(|c| c.as_ref()),
            Some(cert.cert.der().as_ref())
        );
        assert_eq!(ca_to_embed(&[], "x"), None);
    }
}
