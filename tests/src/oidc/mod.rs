//! OpenID Connect for tests: signing keys and tokens made here ([`keys`]), a real provider
//! (panva's oidc-provider, [`provider`]) and a scriptable stand-in for its two documents
//! ([`fake_idp`]); and reading a JWT's parts.

/// The file stays in the auth crate: its own unit tests (`auth/src/oidc/mod.rs`) include it
/// by path, since they cannot depend on this crate (which depends on theirs). It is the one
/// copy.
#[path = "../../../auth/tests/support/keys.rs"]
pub mod keys;

pub mod fake_idp;
pub mod provider;

use base64::Engine as _;

/// Part `index` of a JWT (0: header, 1: claims) as JSON.
pub fn segment(token: &str, index: usize) -> serde_json::Value {
    let part = token.split('.').nth(index).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("a JSON segment")
}

/// The `kid` a JWT's header names.
pub fn kid(token: &str) -> String {
    segment(token, 0)["kid"].as_str().expect("a kid").to_owned()
}
