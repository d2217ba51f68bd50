//! Who is asking: the bearer token a request carries, or the browser's session cookie, checked
//! by the authenticators. Every refusal is a generic 401 (the reason goes to the log and to
//! `podgate_auth_failures_total{reason}`, never the token).

use crate::browser::session::FromCookie;
use crate::browser::{Browser, cookies, origin};
use crate::http::{Body, status};
use crate::session::registry::LiveSessions;
use http::{Request, Response, header};
use podgate_auth::{AuthError, Authenticated, Authenticator, Credential, CredentialSource};
use podgate_protocol::Status;
use std::sync::Arc;

/// What identification uses.
pub struct Identify {
    pub authenticator: Arc<dyn Authenticator>,
    pub browser: Arc<Browser>,
    pub metrics: podgate_metrics::Metrics,
    /// Shells opened from a browser login live on while its token is refreshed.
    pub live: Arc<LiveSessions>,
}

/// An authenticated request's caller.
pub struct Who {
    pub authenticated: Authenticated,
    pub source: CredentialSource,
    /// The browser login a cookie belongs to.
    pub login: Option<String>,
    /// A refreshed browser session's new cookie, to send with the answer.
    pub set_cookie: Option<header::HeaderValue>,
}

impl Identify {
    pub async fn who<B>(&self, req: &Request<B>) -> Result<Who, Response<Body>> {
        let unauthorized = || status(&Status::unauthorized());
        let mut set_cookie = None;
        let mut login = None;
        let mut digest = None;
        let credential = match podgate_auth::extract(req.headers(), req.uri()) {
            Ok(Some(c)) => c,
            // No bearer token: the browser session cookie, the lowest-precedence source.
            Ok(None) => match crate::browser::session::read(&self.browser, req.headers()).await {
                FromCookie::Token {
                    token,
                    login: l,
                    set_cookie: c,
                } => {
                    set_cookie = c;
                    login = l;
                    Credential {
                        token,
                        source: CredentialSource::Cookie,
                    }
                }
                FromCookie::StaticToken {
                    digest: d,
                    login: l,
                } => {
                    // The token login: the cookie names a static token by its digest.
                    digest = Some(d);
                    login = l;
                    Credential {
                        token: String::new(),
                        source: CredentialSource::Cookie,
                    }
                }
                FromCookie::Absent => {
                    // No credential at all (a logged-out page asking who it is, a client
                    // without a token): not a failed login, so not an auth failure either.
                    tracing::debug!("no credential");
                    self.metrics.unauthenticated_request();
                    return Err(unauthorized());
                }
                FromCookie::Refused { reason } => {
                    tracing::info!(reason, "authentication failed: unusable session cookie");
                    self.metrics.auth_failure(reason);
                    let mut resp = unauthorized();
                    resp.headers_mut()
                        .insert(header::SET_COOKIE, clear_session());
                    return Err(resp);
                }
            },
            Err(e) => {
                tracing::info!(reason = e.reason(), "authentication failed: {e}");
                self.metrics.auth_failure(e.reason());
                return Err(status(&Status::api_error(
                    401,
                    "Unauthorized",
                    format!("Unauthorized: {e}"),
                )));
            }
        };
        // Browsers attach the cookie to requests from any site: only our own pages may use it
        // to open shells or change things.
        if credential.source == CredentialSource::Cookie
            && origin::needs_check(req.method(), req.headers())
            && let Err(refused) =
                origin::check(req.headers(), req.uri(), &self.browser.allowed_origins)
        {
            tracing::info!(reason = "cross_origin", "request refused: {refused}");
            self.metrics.auth_failure("cross_origin");
            return Err(status(&Status::api_error(
                403,
                "Forbidden",
                refused.to_string(),
            )));
        }
        let authenticated = match &digest {
            Some(d) => self.authenticator.authenticate_digest(d).await,
            None => self.authenticator.authenticate(&credential.token).await,
        };
        match authenticated {
            Ok(authenticated) => {
                if let (Some(login), Some(expires_at)) = (&login, authenticated.expires_at) {
                    self.live.extend_browser_session(login, expires_at);
                }
                Ok(Who {
                    authenticated,
                    source: credential.source,
                    login,
                    set_cookie,
                })
            }
            Err(AuthError::Unavailable(e)) => {
                tracing::warn!(
                    reason = "unavailable",
                    "authentication backend unavailable: {e}"
                );
                self.metrics.auth_failure("unavailable");
                Err(status(&Status::api_error(
                    503,
                    "ServiceUnavailable",
                    "authentication is unavailable; try again shortly",
                )))
            }
            Err(e) => {
                tracing::info!(reason = e.reason(), source = %credential.source, "authentication failed: {e}");
                self.metrics.auth_failure(e.reason());
                let mut resp = unauthorized();
                // A session whose token is no longer accepted is over: the browser drops it
                // and the UI offers a new login.
                if credential.source == CredentialSource::Cookie {
                    resp.headers_mut()
                        .insert(header::SET_COOKIE, clear_session());
                }
                Err(resp)
            }
        }
    }
}

fn clear_session() -> header::HeaderValue {
    cookies::clear_cookie(cookies::SESSION_COOKIE, "/")
}
