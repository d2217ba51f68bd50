//! Browser login with the OIDC Authorization Code flow (PKCE, state, nonce): the HTTP side of
//! [`podgate_auth::login`], which holds the protocol and is unit-tested there.
//!
//! `GET /auth/login?return_to=/path` seals a fresh login (state, nonce, PKCE verifier, where to
//! return) into the `podgate_login` cookie, sent only to `/auth/callback`, and redirects to the
//! provider. `GET /auth/callback` opens that cookie, checks `state`, exchanges the code, verifies
//! the ID token (nonce included) and turns it into the session cookie. Nothing is kept
//! server-side, so any replica with the same session key finishes a login another started.
//!
//! Failures show a short page saying what to do, are logged with a bounded reason (never a
//! code, token or cookie) and counted in `podgate_auth_failures_total{reason="login_..."}`.

use super::Pages;
use super::{Browser, cookies, unix_now};
use crate::http::{Body, full, with_type};
use http::header::{CACHE_CONTROL, HOST, HeaderValue, LOCATION, SET_COOKIE};
use http::{Request, Response, StatusCode};
use podgate_auth::BrowserSession;
use podgate_auth::login::{
    CALLBACK_PATH, LOGIN_COOKIE, LoginClient, LoginError, LoginState, parse_callback,
    return_to_from_query,
};
use podgate_auth::oidc::{OidcAuthenticator, OidcConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// Concurrent refreshes of one session (a page opening several requests as its token expires,
/// all with the same cookie) share one token request for this long: providers that rotate
/// refresh tokens would refuse the second use of the old one, and some revoke the whole grant
/// when they see it. Keyed by the expiring ID token, so a request with the refreshed cookie
/// never gets a stale result.
const REFRESH_SHARED_FOR: Duration = Duration::from_secs(30);
/// At most this many refreshes remembered at once (old ones are dropped first).
const MAX_REFRESHES: usize = 10_000;

type SharedRefresh = Arc<OnceCell<Result<BrowserSession, RefreshError>>>;

/// The browser login at the configured issuer.
pub struct OidcLogin {
    client: LoginClient,
    refreshes: Mutex<HashMap<String, (Instant, SharedRefresh)>>,
}

/// Why a session could not be refreshed (the router then treats it as expired).
#[derive(Debug, Clone, thiserror::Error)]
pub enum RefreshError {
    #[error("the session holds no refresh token")]
    NoRefreshToken,
    #[error(transparent)]
    Login(#[from] LoginError),
}

impl RefreshError {
    /// A bounded label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            RefreshError::NoRefreshToken => "refresh_no_token",
            RefreshError::Login(LoginError::Unavailable(_)) => "refresh_unavailable",
            RefreshError::Login(_) => "refresh_refused",
        }
    }
}

impl OidcLogin {
    pub fn new(client: LoginClient) -> Self {
        OidcLogin {
            client,
            refreshes: Mutex::new(HashMap::new()),
        }
    }

    /// The login of `auth.oidc.login`, if configured, at `authn`'s issuer (the same keys and
    /// connections as bearer tokens). Reads the client secret file.
    pub fn from_config(
        config: &OidcConfig,
        authn: &OidcAuthenticator,
    ) -> Result<Option<Self>, podgate_auth::oidc::InvalidConfig> {
        let Some(login) = &config.login else {
            return Ok(None);
        };
        Ok(Some(Self::new(LoginClient::new(login.clone(), authn)?)))
    }

    pub fn client(&self) -> &LoginClient {
        &self.client
    }

    /// `GET /auth/login?return_to=/path`: redirect to the provider.
    pub async fn login(
        &self,
        pages: &Pages,
        req: &Request<hyper::body::Incoming>,
    ) -> Response<Body> {
        match self.start(&pages.browser, req).await {
            Ok(resp) => resp,
            Err(error) => failed(pages, "browser login not started", &error),
        }
    }

    async fn start(
        &self,
        browser: &Browser,
        req: &Request<hyper::body::Incoming>,
    ) -> Result<Response<Body>, LoginError> {
        let return_to = return_to_from_query(req.uri().query())?;
        let redirect_uri = self.redirect_uri(req)?;
        let (login, url) = self
            .client
            .start(return_to, redirect_uri, unix_now())
            .await?;
        let sealed = login.seal(&browser.key)?;
        let location = HeaderValue::try_from(url).map_err(|_| {
            LoginError::Internal("the authorization URL is not a valid header".into())
        })?;
        let mut resp = redirect(location);
        resp.headers_mut().append(
            SET_COOKIE,
            cookies::set_cookie(
                LOGIN_COOKIE,
                &sealed,
                CALLBACK_PATH,
                self.client.config().login_timeout.get().as_secs(),
            ),
        );
        Ok(resp)
    }

    fn redirect_uri(&self, req: &Request<hyper::body::Incoming>) -> Result<String, LoginError> {
        redirect_uri(
            self.client.config().redirect_url.as_deref(),
            req.uri(),
            req.headers(),
        )
    }

    /// `GET /auth/callback?code&state`: exchange the code, set the session cookie, redirect to
    /// `return_to`.
    pub async fn callback(
        &self,
        pages: &Pages,
        req: &Request<hyper::body::Incoming>,
    ) -> Response<Body> {
        let mut resp = match self.finish(pages, req).await {
            Ok(resp) => resp,
            Err(error) => failed(pages, "browser login failed", &error),
        };
        // The login cookie is single-use, whatever happened.
        resp.headers_mut().append(
            SET_COOKIE,
            cookies::clear_cookie(LOGIN_COOKIE, CALLBACK_PATH),
        );
        resp
    }

    async fn finish(
        &self,
        pages: &Pages,
        req: &Request<hyper::body::Incoming>,
    ) -> Result<Response<Body>, LoginError> {
        let browser = &pages.browser;
        // A provider error (the person said no) is reported even without the login cookie.
        let callback = parse_callback(req.uri().query())?;
        let sealed = cookies::read_cookie(req.headers(), LOGIN_COOKIE);
        let login = LoginState::open(
            &browser.key,
            sealed.as_deref(),
            unix_now(),
            self.client.config().login_timeout.get().as_secs(),
        )?;
        let tokens = self.client.finish(&login, &callback).await?;
        let session = BrowserSession::new(tokens.id_token, tokens.refresh_token, tokens.expires_at)
            .map_err(|e| LoginError::Internal(format!("cannot make the session: {e}")))?;
        let cookie = browser
            .session_cookie(&session)
            .map_err(|e| LoginError::Internal(format!("cannot seal the session: {e}")))?;
        tracing::info!(
            user = %tokens.identity.user(),
            groups = ?tokens.identity.groups(),
            refresh = session.refresh_token.is_some(),
            "browser login"
        );
        let location = HeaderValue::try_from(login.return_to)
            .unwrap_or_else(|_| HeaderValue::from_static("/"));
        let mut resp = redirect(location);
        resp.headers_mut().append(SET_COOKIE, cookie);
        Ok(resp)
    }

    /// A fresh session from `session`'s refresh token: a new ID token about the same subject
    /// (and the rotated refresh token, when the provider rotates them).
    pub async fn refresh(&self, session: &BrowserSession) -> Result<BrowserSession, RefreshError> {
        let refresh_token = session
            .refresh_token
            .clone()
            .ok_or(RefreshError::NoRefreshToken)?;
        let shared = self.shared_refresh(&session.token);
        shared
            .get_or_init(|| async {
                let tokens = self.client.refresh(&refresh_token, &session.token).await?;
                tracing::debug!(user = %tokens.identity.user(), "browser session refreshed");
                Ok(BrowserSession {
                    token: tokens.id_token,
                    refresh_token: tokens.refresh_token,
                    expires_at: tokens.expires_at,
                    // The same login, refreshed: its shells carry on.
                    id: session.id.clone(),
                    static_token: None,
                })
            })
            .await
            .clone()
    }

    /// The one refresh of the session holding `token` in flight or just done, or a new one. A
    /// finished refresh whose token has expired meanwhile is not reused.
    fn shared_refresh(&self, token: &str) -> SharedRefresh {
        let now = Instant::now();
        let unix = unix_now();
        let usable = |at: &Instant, cell: &SharedRefresh| {
            now.duration_since(*at) < REFRESH_SHARED_FOR
                && !matches!(cell.get(), Some(Ok(s)) if s.expires_within(unix, 0))
        };
        let mut map = self
            .refreshes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, cell)) = map.get(token)
            && usable(at, cell)
        {
            return cell.clone();
        }
        map.retain(|_, (at, cell)| usable(at, cell));
        if map.len() >= MAX_REFRESHES
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        let cell = SharedRefresh::default();
        map.insert(token.to_owned(), (now, cell.clone()));
        cell
    }
}

/// The configured redirect URL, else `https://<Host>/auth/callback` for the host the browser
/// addressed (the provider only redirects to registered URLs, so a forged Host gains nothing;
/// one that is not a plain `host[:port]` is refused rather than put into a URL).
fn redirect_uri(
    configured: Option<&str>,
    uri: &http::Uri,
    headers: &http::HeaderMap,
) -> Result<String, LoginError> {
    if let Some(url) = configured {
        return Ok(url.to_owned());
    }
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .filter(|h| {
            h.parse::<http::uri::Authority>()
                .is_ok_and(|a| a.as_str() == h && !h.contains('@'))
        })
        .ok_or_else(|| {
            LoginError::BadCallback(
                "the request has no usable Host to build the callback URL from; set \
                 auth.oidc.login.redirect_url"
                    .into(),
            )
        })?;
    Ok(format!("https://{host}{CALLBACK_PATH}"))
}

fn redirect(location: HeaderValue) -> Response<Body> {
    let mut resp = Response::new(full(""));
    *resp.status_mut() = StatusCode::SEE_OTHER;
    resp.headers_mut().insert(LOCATION, location);
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Logs and counts `error`, and renders the page the person sees.
fn failed(pages: &Pages, what: &str, error: &LoginError) -> Response<Body> {
    let reason = error.reason();
    match error {
        LoginError::Unavailable(_) | LoginError::Internal(_) => {
            tracing::warn!(reason, "{what}: {error}");
        }
        _ => tracing::info!(reason, "{what}: {error}"),
    }
    pages.metrics.auth_failure(reason);
    let code = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = with_type(code, "text/html; charset=utf-8", full(error_page(error)));
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A page with the message and a way to start again. Only fixed text: nothing from the request
/// or the provider is echoed into HTML.
fn error_page(error: &LoginError) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>podgate: login failed\
         </title></head>\n<body><h1>Login failed</h1>\n<p>{}</p>\n<p><a href=\"/auth/login\">\
         Log in again</a></p>\n<p><small>reason: {}</small></p></body></html>\n",
        error.user_message(),
        error.reason()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_pages_show_fixed_text_only() {
        let error = LoginError::Provider {
            error: "<script>alert(1)</script>".into(),
            description: Some("<b>".into()),
        };
        let page = error_page(&error);
        assert!(
            !page.contains("<script>") && !page.contains("<b>"),
            "{page}"
        );
        assert!(page.contains("login_provider_error"));
        assert!(page.contains("href=\"/auth/login\""));
    }

    #[test]
    fn the_callback_url_comes_from_the_host() {
        let uri: http::Uri = "/auth/login".parse().expect("uri");
        let with_host = |host: &'static str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(HOST, HeaderValue::from_static(host));
            headers
        };
        assert_eq!(
            redirect_uri(None, &uri, &with_host("podgate.example:8443")).ok(),
            Some("https://podgate.example:8443/auth/callback".to_owned())
        );
        assert_eq!(
            redirect_uri(
                Some("https://public.example/auth/callback"),
                &uri,
                &with_host("internal:8443")
            )
            .ok(),
            Some("https://public.example/auth/callback".to_owned())
        );
        // HTTP/2 carries the authority in the URI.
        let absolute: http::Uri = "https://h2.example/auth/login".parse().expect("uri");
        assert_eq!(
            redirect_uri(None, &absolute, &http::HeaderMap::new()).ok(),
            Some("https://h2.example/auth/callback".to_owned())
        );
        for bad in ["evil.example/x", "user@evil.example", "a b", ""] {
            let mut headers = http::HeaderMap::new();
            headers.insert(HOST, HeaderValue::from_str(bad).expect("header"));
            assert!(
                matches!(
                    redirect_uri(None, &uri, &headers),
                    Err(LoginError::BadCallback(_))
                ),
                "{bad:?}"
            );
        }
        assert!(redirect_uri(None, &uri, &http::HeaderMap::new()).is_err());
    }

    #[test]
    fn refresh_reasons_are_bounded() {
        assert_eq!(RefreshError::NoRefreshToken.reason(), "refresh_no_token");
        assert_eq!(
            RefreshError::from(LoginError::Unavailable("x".into())).reason(),
            "refresh_unavailable"
        );
        assert_eq!(
            RefreshError::from(LoginError::IdToken("x".into())).reason(),
            "refresh_refused"
        );
    }
}
