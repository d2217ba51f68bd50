#![forbid(unsafe_code)]
//! Who is asking. The gateway authenticates in two steps, kept apart so each is tested alone:
//!
//! 1. [`extract`] finds the bearer token a request carries (`Authorization` header, or the
//!    `Sec-WebSocket-Protocol` entry browsers use) and refuses ambiguous or leaky ways of
//!    sending one. Pure: no IO, no secrets compared.
//! 2. An [`Authenticator`] turns that token into an [`Identity`], which travels upstream as
//!    `Impersonate-User` / `Impersonate-Group` so each cluster's RBAC decides. An identity
//!    exists only when each of its names can travel byte for byte (see [`identity`]). [`StaticTokens`]
//!    reads a tokens file; [`OidcAuthenticator`] verifies JWTs from OpenID providers (see
//!    [`oidc`]); a [`Chain`] tries several authenticators in order.
//!
//! [`login`] is the browser's way in: the OpenID Connect code flow with PKCE whose ID token
//! the gateway seals into a [`session`] cookie.
//!
//! 3. [`policy`] decides at the edge whether that identity may use a cluster, and which of its
//!    namespaces, before any request leaves the gateway.
//!
//! Tokens are secrets throughout: no `Debug`, `Display` or error in this crate prints one, and
//! every error has a bounded `reason()` for metrics.

mod authenticator;
mod credentials;
pub mod identity;
pub mod login;
pub mod oidc;
pub mod policy;
pub mod session;
mod tokens;

pub use authenticator::{AuthError, AuthFuture, Authenticated, Authenticator, Chain, StaticTokens};
pub use credentials::{Credential, CredentialError, CredentialSource, extract};
pub use identity::{Identity, IdentityError, Name, NameError};
pub use oidc::{OidcAuthenticator, OidcConfig};
pub use session::{BrowserSession, SealError, SessionKey};
pub use tokens::{MIN_TOKEN_CHARS, TokenDigest, TokenTable, ct_eq, load_tokens, parse_tokens};
