//! `POST /auth/token`: the web UI's login with a static token, for gateways with
//! `auth.tokens_file` and no OIDC login (`auth.oidc.login`).
//!
//! The token is checked by the static-token authenticator only (an OIDC token pasted here is
//! refused: those log in through `/auth/login`). The session cookie it sets is the one an OIDC
//! login sets (`podgate_session`, same key, `max_lifetime`, logout and Origin rule), but it
//! carries only the SHA-256 digest of the token, sealed: the token itself is never in a
//! cookie, so neither a stolen cookie nor a script in the page can recover it, and the cookie
//! is worth no more than `max_lifetime`. Each request looks the digest up in the tokens file in
//! force, so removing the token ends the login at once (and, on reload, its shells).
//!
//! Cross-site logins are refused before this runs (`Origin` must be the gateway's own, see
//! [`super::origin`]); the body is a form field or JSON, never a query string.

use super::{Pages, unix_now};
use crate::http::{Body, status};
use http::{Request, Response};
use podgate_auth::{AuthError, BrowserSession};
use podgate_protocol::Status;

/// What a person who typed a wrong token reads (nothing of the token is echoed).
pub const WRONG_TOKEN: &str = "That token is not valid on this gateway: check that you copied all \
                               of it, or ask the gateway's operator for a current one.";

pub async fn handle(pages: &Pages, req: Request<hyper::body::Incoming>) -> Response<Body> {
    if !pages.browser.token_login {
        return status(&Status::api_error(
            404,
            "NotFound",
            "token login is not offered on this gateway (it is, when auth.tokens_file is set and \
             auth.oidc.login is not)",
        ));
    }
    let token = match super::posted::token(req).await {
        Ok(t) => t,
        Err(answer) => return answer,
    };
    let authenticated = match pages.authenticator.authenticate(&token).await {
        Ok(a) => a,
        Err(AuthError::Unavailable(e)) => {
            tracing::warn!(
                reason = "unavailable",
                "token login: authentication unavailable: {e}"
            );
            pages.metrics.auth_failure("unavailable");
            return status(&Status::api_error(
                503,
                "ServiceUnavailable",
                "authentication is unavailable; try again shortly",
            ));
        }
        Err(e) => {
            tracing::info!(reason = e.reason(), "token login refused: {e}");
            pages.metrics.auth_failure(e.reason());
            return status(&Status::api_error(401, "Unauthorized", WRONG_TOKEN));
        }
    };
    // Only the tokens file's tokens: the cookie names one by digest.
    let Some(digest) = authenticated.static_token else {
        tracing::info!(
            reason = "token_login_not_static",
            "token login refused: the token is valid but not a static token"
        );
        pages.metrics.auth_failure("token_login_not_static");
        return status(&Status::api_error(401, "Unauthorized", WRONG_TOKEN));
    };
    let expires_at = unix_now().saturating_add(pages.browser.max_lifetime.as_secs());
    let session = BrowserSession::for_static_token(&digest, expires_at);
    tracing::info!(
        user = %authenticated.identity.user(),
        groups = ?authenticated.identity.groups(),
        "browser login with a static token"
    );
    super::logged_in(&pages.browser, session)
}
