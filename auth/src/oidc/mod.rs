//! OpenID Connect bearer tokens: JWTs signed by a trusted provider, verified locally against its
//! published keys and mapped to a Kubernetes identity the way kube-apiserver's OIDC flags do.
//!
//! Pure parts, each in its own file and tested without sockets (as kube-core is to
//! kube-client): compact JWS parsing (`jwt`), algorithm rules ([`Algorithm`]), key sets
//! ([`KeySet`]), signature checks (`verify`), registered-claim checks (`claims`), identity
//! mapping ([`ClaimMapping`]) and the verified-token cache. IO parts: the [`HttpClient`],
//! [`discover`]y and the per-issuer key store (fetch on first use, periodic and
//! on-unknown-`kid` refetch, single-flight and rate-limited).
//!
//! [`OidcIssuer`] ties one provider together and is the piece the browser login reuses
//! (endpoints from [`OidcIssuer::metadata`], ID tokens through [`OidcIssuer::verify`] with the
//! client id as audience); [`OidcAuthenticator`] is the bearer-token [`Authenticator`] over all
//! configured issuers.
//!
//! [`Authenticator`]: crate::Authenticator

mod alg;
mod authenticator;
mod cache;
mod claims;
mod config;
mod discovery;
mod http;
mod issuer;
mod jwk;
mod jwt;
mod key_store;
mod mapping;
mod rejection;
mod verify;

pub use alg::{Algorithm, ParseAlgorithmError};
pub use authenticator::OidcAuthenticator;
pub use cache::CacheStats;
pub use config::{
    ConfigProblem, DEFAULT_TOKEN_CACHE_ENTRIES, InvalidConfig, IssuerConfig, MAX_LEEWAY,
    MAX_TOKEN_CACHE_ENTRIES, OidcConfig, check_url,
};
pub use discovery::{DiscoveryError, ProviderMetadata, discover, discovery_url};
pub use http::{FetchError, HttpClient, MAX_RESPONSE_BYTES, REQUEST_TIMEOUT, load_ca_file};
pub use issuer::{OidcIssuer, VerifiedToken};
pub use jwk::KeySet;
pub use jwt::MAX_TOKEN_BYTES;
pub use key_store::KeyStats;
pub use mapping::ClaimMapping;
pub use rejection::{Reason, Rejection, VerifyError};

#[cfg(test)]
#[path = "../../tests/support/keys.rs"]
pub(crate) mod test_keys;
