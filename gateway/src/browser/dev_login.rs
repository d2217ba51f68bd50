//! `POST /auth/dev-login`: `podgate demo`'s way into the web UI with one of its printed tokens.
//!
//! Off unless the demo turns it on, and only from loopback: it turns a static token typed into
//! a form into a session cookie, which is fine on a developer's machine and nowhere else.

use super::Pages;
use super::unix_now;
use crate::http::{Body, status};
use http::header::{CONTENT_TYPE, SET_COOKIE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use podgate_auth::BrowserSession;
use podgate_protocol::Status;
use std::net::SocketAddr;

/// A token form is a few hundred bytes; anything bigger is not one.
const MAX_BODY: usize = 8 * 1024;

pub async fn handle(
    pages: &Pages,
    req: Request<hyper::body::Incoming>,
    peer: Option<SocketAddr>,
) -> Response<Body> {
    if !pages.browser.dev_login {
        return status(&Status::api_error(
            404,
            "NotFound",
            "the dev login exists only in `podgate demo`",
        ));
    }
    if !peer.is_some_and(|p| p.ip().is_loopback()) {
        return status(&Status::api_error(
            403,
            "Forbidden",
            "the dev login answers only on loopback",
        ));
    }
    let json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return status(&Status::api_error(
                400,
                "BadRequest",
                format!("the login form must be under {MAX_BODY} bytes"),
            ));
        }
    };
    let Some(token) = token_of(&body, json) else {
        return status(&Status::api_error(
            400,
            "BadRequest",
            "send the token as a form field `token=` or as JSON {\"token\": \"...\"}",
        ));
    };
    let identity = match pages.authenticator.authenticate(&token).await {
        Ok(a) => a.identity,
        Err(e) => {
            tracing::info!(reason = e.reason(), "dev login refused: {e}");
            pages.metrics.auth_failure(e.reason());
            return status(&Status::unauthorized());
        }
    };
    let session = BrowserSession::new(
        token,
        None,
        unix_now().saturating_add(pages.browser.max_lifetime.as_secs()),
    )
    .and_then(|session| pages.browser.session_cookie(&session));
    let cookie = match session {
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
    tracing::info!(user = %identity.user(), "dev login");
    let mut resp = Response::new(crate::http::full(""));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp.headers_mut().insert(SET_COOKIE, cookie);
    resp
}

/// The token of a `token=...` form or a `{"token": "..."}` body.
pub(crate) fn token_of(body: &[u8], json: bool) -> Option<String> {
    let token = if json {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()?
            .get("token")?
            .as_str()?
            .to_string()
    } else {
        form_urlencoded::parse(body)
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())?
    };
    let token = token.trim().to_string();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::token_of;

    #[test]
    fn forms_and_json() {
        assert_eq!(token_of(b"token=abc%2B1", false).as_deref(), Some("abc+1"));
        assert_eq!(
            token_of(br#"{"token":" abc "}"#, true).as_deref(),
            Some("abc")
        );
        assert_eq!(token_of(b"token=", false), None);
        assert_eq!(token_of(b"user=x", false), None);
        assert_eq!(token_of(b"{not json", true), None);
        assert_eq!(token_of(br#"{"token": 5}"#, true), None);
    }
}
