//! OpenID Connect Discovery 1.0: the provider's metadata from
//! `{issuer}/.well-known/openid-configuration`. The bearer-token path needs only `jwks_uri`;
//! the endpoints are kept for the browser login (authorization code + PKCE), which reuses this.

use serde::{Deserialize, Serialize};

use super::config::check_url;
use super::http::{FetchError, HttpClient};

/// The provider metadata podgate reads. Unknown fields are ignored (providers add many).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub jwks_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_types_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_types_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_token_signing_alg_values_supported: Vec<String>,
}

/// Where the discovery document of `issuer` lives (a trailing slash on the issuer is not
/// doubled, as in OpenID Connect Discovery §4).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Why discovery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The document names another issuer: a misconfiguration (often a trailing slash, or an
    /// internal vs public hostname) that would make every token fail, so it is reported plainly.
    #[error(
        "the discovery document at {url} names issuer {found:?}, but the configured issuer is \
         {configured:?}; set issuer to exactly the provider's value (a trailing slash counts)"
    )]
    IssuerMismatch {
        url: String,
        found: String,
        configured: String,
    },
    /// `jwks_uri` is not a URL podgate may fetch (not https, or plain http off loopback).
    #[error("the discovery document at {url} has an unusable jwks_uri: {problem}")]
    BadJwksUri { url: String, problem: String },
}

/// Fetches and checks the metadata of `issuer`.
pub async fn discover(
    http: &HttpClient,
    issuer: &str,
    insecure_http_for_loopback: bool,
) -> Result<ProviderMetadata, DiscoveryError> {
    let url = discovery_url(issuer);
    let metadata: ProviderMetadata = http.get_json(&url).await?;
    check(metadata, issuer, &url, insecure_http_for_loopback)
}

fn check(
    metadata: ProviderMetadata,
    issuer: &str,
    url: &str,
    insecure_http_for_loopback: bool,
) -> Result<ProviderMetadata, DiscoveryError> {
    if metadata.issuer != issuer {
        return Err(DiscoveryError::IssuerMismatch {
            url: url.to_owned(),
            found: metadata.issuer,
            configured: issuer.to_owned(),
        });
    }
    check_url(&metadata.jwks_uri, insecure_http_for_loopback).map_err(|problem| {
        DiscoveryError::BadJwksUri {
            url: url.to_owned(),
            problem,
        }
    })?;
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(issuer: &str, jwks_uri: &str) -> ProviderMetadata {
        serde_json::from_value(serde_json::json!({
            "issuer": issuer,
            "jwks_uri": jwks_uri,
            "token_endpoint": format!("{issuer}/token"),
            "code_challenge_methods_supported": ["S256"],
            "something_new": {"nested": true},
        }))
        .expect("parses")
    }

    #[test]
    fn discovery_url_does_not_double_slashes() {
        assert_eq!(
            discovery_url("https://idp.example"),
            "https://idp.example/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://idp.example/realms/eng/"),
            "https://idp.example/realms/eng/.well-known/openid-configuration"
        );
    }

    #[test]
    fn the_issuer_must_match_exactly() {
        let url = discovery_url("https://idp.example");
        let ok = check(
            metadata("https://idp.example", "https://idp.example/keys"),
            "https://idp.example",
            &url,
            false,
        )
        .expect("matches");
        assert_eq!(
            ok.token_endpoint.as_deref(),
            Some("https://idp.example/token")
        );
        assert_eq!(ok.code_challenge_methods_supported, ["S256"]);

        let error = check(
            metadata("https://idp.example/", "https://idp.example/keys"),
            "https://idp.example",
            &url,
            false,
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, DiscoveryError::IssuerMismatch { .. }));
        assert!(
            message.contains("names issuer \"https://idp.example/\"")
                && message.contains("configured issuer is \"https://idp.example\"")
                && message.contains("trailing slash"),
            "{message}"
        );
    }

    #[test]
    fn jwks_uri_follows_the_url_policy() {
        let url = discovery_url("https://idp.example");
        let error = check(
            metadata("https://idp.example", "http://idp.example/keys"),
            "https://idp.example",
            &url,
            false,
        )
        .unwrap_err();
        assert!(error.to_string().contains("unusable jwks_uri"), "{error}");
        assert!(
            check(
                metadata("http://127.0.0.1:1", "http://127.0.0.1:1/jwks"),
                "http://127.0.0.1:1",
                &url,
                true
            )
            .is_ok()
        );
    }
}
