//! People in browsers: the session cookie, login and logout under `/auth/`, the Origin rule
//! that keeps other sites from using the cookie, and the embedded web UI ([`assets`]).
//!
//! The cookie carries a sealed [`BrowserSession`] (the bearer token itself), so a cookie
//! request is authenticated by exactly the authenticators a header request is, and any replica
//! with the same key can serve it. Logins: [`dev_login`] (the demo's tokens, loopback only),
//! [`oidc`] (Authorization Code with PKCE against the configured issuer) and [`token_login`]
//! (a static token typed into the page, where there is no OIDC login; its cookie carries the
//! token's digest, not the token).

pub mod assets;
pub mod cookies;
pub mod dev_login;
pub mod oidc;
pub mod origin;
pub mod posted;
pub mod session;
pub mod token_login;

use crate::http::{Body, json, status};
use http::header::{HeaderValue, LOCATION, SET_COOKIE};
use http::{Method, Request, Response, StatusCode};
use podgate_auth::{BrowserSession, SealError, SessionKey};
use podgate_protocol::Status;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the `/auth/` pages use.
pub struct Pages {
    pub browser: Arc<Browser>,
    /// Checks the demo's tokens at `/auth/dev-login`.
    pub authenticator: Arc<dyn podgate_auth::Authenticator>,
    pub metrics: podgate_metrics::Metrics,
    /// The public listener's certificate, for the CA in `/podgate/kubeconfig`.
    pub tls: Option<Arc<crate::edge::tls::ReloadingCert>>,
}

/// How browser sessions are sealed and what logins are offered.
pub struct Browser {
    pub key: SessionKey,
    /// Origins allowed to use the cookie; empty: the gateway's own.
    pub allowed_origins: Vec<String>,
    pub max_lifetime: Duration,
    /// `podgate demo`'s login with a demo token, from loopback only.
    pub dev_login: bool,
    pub oidc: Option<oidc::OidcLogin>,
    /// `POST /auth/token`: log in with a static token (`podgate serve` turns it on when
    /// `auth.tokens_file` is set and `auth.oidc.login` is not).
    pub token_login: bool,
}

impl Browser {
    /// Sessions with a fresh random key and default settings, no logins: what tests and
    /// embedders get unless they configure more.
    pub fn ephemeral() -> Result<Self, SealError> {
        Ok(Browser {
            key: SessionKey::generate()?,
            allowed_origins: Vec::new(),
            max_lifetime: podgate_config::BrowserSessionConfig::default()
                .max_lifetime
                .get(),
            dev_login: false,
            oidc: None,
            token_login: false,
        })
    }

    /// From `auth.session`: the key file when configured (a missing or bad file is an error,
    /// never a silent fallback), else a generated key, with a warning because every browser
    /// session then ends at restart and replicas cannot share sessions.
    pub fn from_config(config: &podgate_config::BrowserSessionConfig) -> anyhow::Result<Self> {
        let key = match &config.key_file {
            Some(path) => SessionKey::load(path)?,
            None => {
                tracing::warn!(
                    "auth.session.key_file is not set: browser sessions are sealed with a key \
                     generated now, so they end when podgate restarts and work on this replica \
                     only; set it to a file with 32 random bytes, base64"
                );
                SessionKey::generate()?
            }
        };
        Ok(Browser {
            key,
            allowed_origins: config.allowed_origins.clone(),
            max_lifetime: config.max_lifetime.get(),
            dev_login: false,
            oidc: None,
            token_login: false,
        })
    }

    /// The `Set-Cookie` for `session`: lives until the token expires, at most `max_lifetime`.
    pub fn session_cookie(&self, session: &BrowserSession) -> Result<HeaderValue, SealError> {
        let sealed = session.seal(&self.key)?;
        let mut max_age = self.max_lifetime.as_secs();
        if session.expires_at != 0 && session.refresh_token.is_none() {
            max_age = max_age.min(session.expires_at.saturating_sub(unix_now()));
        }
        Ok(cookies::set_cookie(
            cookies::SESSION_COOKIE,
            &sealed,
            "/",
            max_age,
        ))
    }
}

/// The answer to a posted login that succeeded: `session` sealed into the session cookie,
/// `204`, never cached. A session that cannot be made or sealed is a 500, logged.
pub(crate) fn logged_in(
    browser: &Browser,
    session: Result<BrowserSession, SealError>,
) -> Response<Body> {
    let cookie = match session.and_then(|s| browser.session_cookie(&s)) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("cannot seal a browser session: {e}");
            return status(&Status::api_error(
                500,
                "InternalError",
                "cannot create the session",
            ));
        }
    };
    let mut resp = Response::new(crate::http::full(""));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp.headers_mut().insert(SET_COOKIE, cookie);
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    resp
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Everything under `/auth/`; none of it needs a session.
pub async fn handle(
    pages: &Pages,
    req: Request<hyper::body::Incoming>,
    peer: Option<SocketAddr>,
) -> Response<Body> {
    let browser = &*pages.browser;
    let path = req.uri().path().to_string();
    // Logging someone in (or out) from another site is an attack too (login CSRF).
    if origin::needs_check(req.method(), req.headers())
        && let Err(refused) = origin::check(req.headers(), req.uri(), &browser.allowed_origins)
    {
        tracing::info!(reason = "cross_origin", "browser login refused: {refused}");
        pages.metrics.auth_failure("cross_origin");
        return status(&Status::api_error(403, "Forbidden", refused.to_string()));
    }
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/auth/methods") => {
            let mut methods =
                serde_json::json!({"dev": browser.dev_login, "oidc": browser.oidc.is_some()});
            // Named only where offered: clients that know two methods read the same answer.
            if browser.token_login {
                methods["token"] = serde_json::Value::Bool(true);
            }
            json(StatusCode::OK, &methods)
        }
        (Method::POST, "/auth/dev-login") => dev_login::handle(pages, req, peer).await,
        (Method::POST, "/auth/token") => token_login::handle(pages, req).await,
        (Method::GET | Method::POST, "/auth/logout") => logout(),
        (Method::GET, "/auth/login") => match &browser.oidc {
            Some(login) => login.login(pages, &req).await,
            None => not_configured(),
        },
        (Method::GET, "/auth/callback") => match &browser.oidc {
            Some(login) => login.callback(pages, &req).await,
            None => not_configured(),
        },
        _ => status(&Status::api_error(
            404,
            "NotFound",
            format!(
                "{} {path} is not a podgate login endpoint (there are GET /auth/methods, \
                 GET /auth/login, GET /auth/callback, POST /auth/dev-login, POST /auth/token, \
                 POST /auth/logout)",
                req.method()
            ),
        )),
    }
}

fn not_configured() -> Response<Body> {
    status(&Status::api_error(
        404,
        "NotFound",
        "browser login with OIDC is not configured on this gateway (auth.oidc.login)",
    ))
}

/// Ends the browser session. The token inside stays valid until it expires (it is a bearer
/// token, not ours to revoke); the browser just no longer holds it.
fn logout() -> Response<Body> {
    let mut resp = Response::new(crate::http::full(""));
    *resp.status_mut() = StatusCode::SEE_OTHER;
    resp.headers_mut()
        .insert(LOCATION, HeaderValue::from_static("/"));
    resp.headers_mut().insert(
        SET_COOKIE,
        cookies::clear_cookie(cookies::SESSION_COOKIE, "/"),
    );
    resp
}
