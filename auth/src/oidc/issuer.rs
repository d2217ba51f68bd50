//! One trusted OpenID provider: its config, HTTP client, discovery and keys, and the full
//! verification of a JWT it signed. The bearer-token authenticator uses it with the configured
//! audiences; the browser login will use the same object for the provider's endpoints
//! ([`OidcIssuer::metadata`]), its token endpoint ([`OidcIssuer::http`]) and ID-token checks
//! ([`OidcIssuer::verify`] with the client id as audience).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::claims::{self, Expectations};
use super::config::{ConfigProblem, InvalidConfig, IssuerConfig};
use super::discovery::ProviderMetadata;
use super::http::HttpClient;
use super::jwt::{self, UnverifiedJwt};
use super::key_store::{KeyStats, KeyStore};
use super::mapping::ClaimMapping;
use super::rejection::{Reason, Rejection, VerifyError};
use super::verify::{self, KeyMatch};

/// A token whose signature and registered claims checked out.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    pub claims: Map<String, Value>,
    /// `exp`, Unix seconds.
    pub expires_at: u64,
}

/// A configured issuer, ready to verify its tokens.
pub struct OidcIssuer {
    config: IssuerConfig,
    mapping: ClaimMapping,
    http: HttpClient,
    keys: Arc<KeyStore>,
}

impl std::fmt::Debug for OidcIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcIssuer")
            .field("issuer", &self.config.issuer)
            .field("keys", &self.keys.stats())
            .finish_non_exhaustive()
    }
}

impl OidcIssuer {
    /// Validates `config`, reads its `ca_file` and builds the HTTP client. Does no network IO:
    /// discovery happens on first use (or [`refresh`](Self::refresh)).
    pub fn new(config: IssuerConfig) -> Result<Self, InvalidConfig> {
        let problems = config.validate();
        if !problems.is_empty() {
            return Err(InvalidConfig(problems));
        }
        let http = HttpClient::for_issuer(&config).map_err(|message| {
            InvalidConfig(vec![ConfigProblem {
                field: "ca_file".to_owned(),
                message,
            }])
        })?;
        let keys = Arc::new(KeyStore::new(
            config.issuer.clone(),
            http.clone(),
            config.insecure_http_for_loopback,
            config.jwks_refresh_interval.get(),
            config.min_refetch_interval.get(),
        ));
        Ok(OidcIssuer {
            mapping: ClaimMapping::from_config(&config),
            config,
            http,
            keys,
        })
    }

    /// The issuer URL, exactly as configured (and as found in `iss`).
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// The client for this issuer's endpoints (its TLS trust, its http policy).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    pub fn mapping(&self) -> &ClaimMapping {
        &self.mapping
    }

    /// The provider's discovery document, fetched on first use.
    pub async fn metadata(&self) -> Result<Arc<ProviderMetadata>, VerifyError> {
        let snapshot = self.keys.get().await.map_err(VerifyError::Unavailable)?;
        Ok(Arc::clone(&snapshot.metadata))
    }

    /// Fetches discovery and keys now (subject to `min_refetch_interval`): for warming up at
    /// startup, readiness checks, or a reload signal.
    pub async fn refresh(&self) -> Result<KeyStats, VerifyError> {
        let seen = self.keys.current().map(|s| s.generation);
        self.keys
            .refetch(seen)
            .await
            .map_err(VerifyError::Unavailable)?;
        Ok(self.keys.stats())
    }

    pub fn key_stats(&self) -> KeyStats {
        self.keys.stats()
    }

    pub(crate) fn key_epoch(&self) -> u64 {
        self.keys.epoch()
    }

    /// Verifies a JWT from this issuer for one of `audiences` (the configured ones for bearer
    /// tokens; the client id for an ID token) at the current time. Required claims apply too.
    pub async fn verify(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<VerifiedToken, VerifyError> {
        if jwt::peek_header(token).is_none() {
            return Err(Rejection::malformed("not a JWT").into());
        }
        let parsed = jwt::parse(token)?;
        self.verify_parsed(&parsed, audiences, unix_now()).await
    }

    /// [`verify`](Self::verify), then the identity its claims map to.
    pub async fn authenticate(
        &self,
        token: &str,
    ) -> Result<(VerifiedToken, crate::Identity), VerifyError> {
        let verified = self.verify(token, &self.config.audiences).await?;
        let identity = self.mapping.map(&verified.claims)?;
        Ok((verified, identity))
    }

    pub(crate) async fn verify_parsed(
        &self,
        jwt: &UnverifiedJwt<'_>,
        audiences: &[String],
        now: u64,
    ) -> Result<VerifiedToken, VerifyError> {
        let alg = verify::check_alg(&jwt.header.alg, &self.config.algorithms)?;
        if jwt.header.crit.is_some() {
            return Err(Rejection::malformed(
                "the header has critical extensions (crit), which podgate does not support",
            )
            .into());
        }
        let signature = jwt.decode_signature()?;
        let kid = jwt.header.kid.as_deref();
        let message = jwt.signing_input.as_bytes();

        let snapshot = self.keys.get().await.map_err(VerifyError::Unavailable)?;
        let mut found = verify::find_and_verify(&snapshot.keys, kid, alg, message, &signature);
        let retry = match found {
            KeyMatch::NoKey => true,
            // Without a kid, a failure with every key may mean a rotation: look again.
            KeyMatch::BadSignature => kid.is_none(),
            KeyMatch::Verified | KeyMatch::AlgMismatch(_) => false,
        };
        if retry {
            let fresh = self
                .keys
                .refetch(Some(snapshot.generation))
                .await
                .map_err(VerifyError::Unavailable)?;
            if fresh.generation != snapshot.generation {
                found = verify::find_and_verify(&fresh.keys, kid, alg, message, &signature);
            }
        }
        match found {
            KeyMatch::Verified => {}
            KeyMatch::BadSignature => {
                return Err(Rejection::new(
                    Reason::BadSignature,
                    format!("the signature does not verify with {}'s key", self.issuer()),
                )
                .into());
            }
            KeyMatch::AlgMismatch(kind) => {
                return Err(Rejection::new(
                    Reason::AlgNotAllowed,
                    format!("the token's kid names {kind}, which cannot verify {alg}"),
                )
                .into());
            }
            KeyMatch::NoKey => {
                let which = if kid.is_some() {
                    "has the token's kid".to_owned()
                } else {
                    format!("fits {alg} (the token has no kid)")
                };
                return Err(Rejection::new(
                    Reason::UnknownKid,
                    format!(
                        "no key published by {} {which}, even after refetching its keys (at \
                         most every {})",
                        self.issuer(),
                        self.config.min_refetch_interval
                    ),
                )
                .into());
            }
        }

        let expires_at = claims::check(
            &jwt.claims,
            &Expectations {
                issuer: &self.config.issuer,
                audiences,
                leeway: self.config.leeway.get().as_secs(),
                required_claims: &self.config.required_claims,
            },
            now,
        )?;
        Ok(VerifiedToken {
            claims: jwt.claims.clone(),
            expires_at,
        })
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
