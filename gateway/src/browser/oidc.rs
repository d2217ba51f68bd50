//! Browser login with the OIDC Authorization Code flow (PKCE, state, nonce).
//!
//! STUB: the contract the router and [`super::session`] use; the flow itself lands separately.

use crate::gateway::Gateway;
use crate::http::{Body, status};
use http::{Request, Response};
use podgate_auth::BrowserSession;
use podgate_protocol::Status;
use std::sync::Arc;

pub struct OidcLogin {
    _private: (),
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("OIDC browser login is not implemented yet")]
    NotImplemented,
}

impl OidcLogin {
    /// `GET /auth/login?return_to=/path`: redirect to the provider.
    pub async fn login(
        &self,
        _gw: &Arc<Gateway>,
        _req: &Request<hyper::body::Incoming>,
    ) -> Response<Body> {
        status(&Status::api_error(
            501,
            "NotImplemented",
            "OIDC login is not implemented yet",
        ))
    }

    /// `GET /auth/callback`: exchange the code, set the session cookie, back to `return_to`.
    pub async fn callback(
        &self,
        _gw: &Arc<Gateway>,
        _req: &Request<hyper::body::Incoming>,
    ) -> Response<Body> {
        status(&Status::api_error(
            501,
            "NotImplemented",
            "OIDC login is not implemented yet",
        ))
    }

    /// A fresh session from `session`'s refresh token.
    pub async fn refresh(
        &self,
        _session: &BrowserSession,
    ) -> Result<BrowserSession, RefreshError> {
        Err(RefreshError::NotImplemented)
    }
}
