//! `POST /auth/dev-login`: `podgate demo`'s way into the web UI with one of its printed tokens.
//!
//! Off unless the demo turns it on, and only from loopback: it turns a static token typed into
//! a form into a session cookie, which is fine on a developer's machine and nowhere else.

use super::Pages;
use super::unix_now;
use crate::http::{Body, status};
use http::{Request, Response};
use podgate_auth::BrowserSession;
use podgate_protocol::Status;
use std::net::SocketAddr;

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
    let token = match super::posted::token(req).await {
        Ok(t) => t,
        Err(answer) => return answer,
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
    );
    tracing::info!(user = %identity.user(), "dev login");
    super::logged_in(&pages.browser, session)
}
