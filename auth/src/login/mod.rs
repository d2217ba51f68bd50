//! Browser login: the OpenID Connect authorization code flow with PKCE, `state` and `nonce`
//! (OpenID Connect Core §3.1, RFC 7636), ending in an ID token that the gateway seals into the
//! session cookie. The gateway's HTTP handlers are thin; what can be decided without IO is here
//! and unit-tested:
//!
//! - [`config`](LoginConfig): the `auth.oidc.login` section;
//! - [`LoginState`]: the sealed, short-lived `podgate_login` cookie with `state`, `nonce`, the
//!   PKCE verifier and where to return;
//! - [`check_return_to`]: only local paths, so login links are no open redirect;
//! - the authorization URL, token requests and responses, and the ID-token checks beyond the
//!   signature (`nonce`, `azp`);
//!
//! and [`LoginClient`] does the IO through the issuer's [`OidcIssuer`](crate::oidc::OidcIssuer).

mod client;
mod config;
mod error;
mod pkce;
mod protocol;
mod return_to;
mod state;

pub use client::{LoginClient, Tokens};
pub use config::{ClientSecret, LoginConfig, OPTIONAL_SCOPES};
pub use error::LoginError;
pub use pkce::{challenge, random_token};
pub use protocol::{ClientAuth, TokenResponse, authorize_url, check_id_token_claims};
pub use return_to::{MAX_RETURN_TO, check_return_to, return_to_from_query};
pub use state::{CALLBACK_PATH, Callback, LOGIN_COOKIE, LOGIN_PURPOSE, LoginState, parse_callback};
