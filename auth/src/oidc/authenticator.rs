//! [`OidcAuthenticator`]: bearer JWTs from the configured issuers, as an [`Authenticator`].

use std::collections::HashMap;
use std::sync::Arc;

use super::cache::{CacheStats, Entry, TokenCache};
use super::config::{InvalidConfig, OidcConfig};
use super::issuer::{OidcIssuer, unix_now};
use super::jwt;
use super::rejection::{Reason, Rejection, VerifyError};
use crate::{AuthError, AuthFuture, Authenticated, Authenticator};

/// Verifies OIDC JWTs from one or more issuers and maps them to identities.
///
/// - A token that is not a JWT, or whose `iss` is none of the configured issuers, is
///   [`AuthError::Unknown`]: not ours, so a [`Chain`](crate::Chain) asks the next authenticator.
/// - A token naming a configured issuer is verified by that issuer only, and any problem is
///   [`AuthError::Rejected`] with a [`Reason`] label, or [`AuthError::Unavailable`] when the
///   provider's keys cannot be fetched.
/// - Verified tokens are cached until `exp` (see [`CacheStats`]).
pub struct OidcAuthenticator {
    issuers: Vec<Arc<OidcIssuer>>,
    by_url: HashMap<String, usize>,
    cache: TokenCache,
}

impl std::fmt::Debug for OidcAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcAuthenticator")
            .field(
                "issuers",
                &self.issuers.iter().map(|i| i.issuer()).collect::<Vec<_>>(),
            )
            .field("cache", &self.cache.stats())
            .finish()
    }
}

impl OidcAuthenticator {
    /// Validates the config and builds one [`OidcIssuer`] per entry. Reads `ca_file`s; does no
    /// network IO (see [`warm_up`](Self::warm_up)).
    pub fn new(config: &OidcConfig) -> Result<Self, InvalidConfig> {
        let problems = config.validate();
        if !problems.is_empty() {
            return Err(InvalidConfig(problems));
        }
        let mut issuers = Vec::with_capacity(config.issuers.len());
        let mut by_url = HashMap::new();
        let mut problems = Vec::new();
        for (index, issuer) in config.issuers.iter().enumerate() {
            match OidcIssuer::new(issuer.clone()) {
                Ok(built) => {
                    by_url.insert(issuer.issuer.clone(), issuers.len());
                    issuers.push(Arc::new(built));
                }
                Err(InvalidConfig(found)) => {
                    problems.extend(found.into_iter().map(|mut p| {
                        p.field = format!("issuers[{index}].{}", p.field);
                        p
                    }));
                }
            }
        }
        if !problems.is_empty() {
            return Err(InvalidConfig(problems));
        }
        Ok(OidcAuthenticator {
            issuers,
            by_url,
            cache: TokenCache::new(config.token_cache_entries),
        })
    }

    /// The issuers, in config order.
    pub fn issuers(&self) -> &[Arc<OidcIssuer>] {
        &self.issuers
    }

    /// The issuer configured with exactly this URL.
    pub fn issuer(&self, url: &str) -> Option<&Arc<OidcIssuer>> {
        self.by_url.get(url).map(|&i| &self.issuers[i])
    }

    /// Fetches every issuer's discovery document and keys now, so the first user does not wait
    /// and a misconfiguration shows at startup. Errors are per issuer, one per line; the
    /// authenticator works regardless and retries on use.
    pub async fn warm_up(&self) -> Result<(), String> {
        let mut errors = Vec::new();
        for issuer in &self.issuers {
            if let Err(error) = issuer.metadata().await {
                errors.push(error.to_string());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Verifies `token` and returns its identity and expiry; what
    /// [`Authenticator::authenticate`] does.
    pub async fn verify(&self, token: &str) -> Result<Authenticated, AuthError> {
        let authenticated = |identity, expires_at| Authenticated {
            identity,
            expires_at: Some(expires_at),
            static_token: None,
        };
        let now = unix_now();
        let key = TokenCache::key(token);
        if let Some((identity, expires_at)) = self.cache.get(&key, now, |entry| {
            self.issuers[entry.issuer].key_epoch() == entry.epoch
        }) {
            return Ok(authenticated(identity, expires_at));
        }

        if jwt::peek_header(token).is_none() {
            return Err(AuthError::Unknown);
        }
        let parsed = jwt::parse(token)?;
        let Some(iss) = parsed.issuer() else {
            return Err(AuthError::Unknown);
        };
        let Some(&index) = self.by_url.get(iss) else {
            return Err(match self.near_miss(iss) {
                Some(configured) => Rejection::new(
                    Reason::WrongIssuer,
                    format!(
                        "the token's issuer differs from the configured {configured:?} only in \
                         letter case or a trailing slash; issuers must match exactly"
                    ),
                )
                .into(),
                None => AuthError::Unknown,
            });
        };
        let issuer = &self.issuers[index];
        // Read before verifying: a key withdrawn meanwhile makes this entry stale at once.
        let epoch = issuer.key_epoch();
        let verified = issuer
            .verify_parsed(&parsed, &issuer.config().audiences, now)
            .await
            .map_err(|error| {
                // The key store logs fetch failures once per attempt; this is per request.
                if let VerifyError::Unavailable(message) = &error {
                    tracing::debug!(issuer = issuer.issuer(), "OIDC unavailable: {message}");
                }
                AuthError::from(error)
            })?;
        let identity = issuer.mapping().map(&verified.claims)?;
        self.cache.insert(
            key,
            Entry {
                identity: identity.clone(),
                expires_at: verified.expires_at,
                issuer: index,
                epoch,
            },
            now,
        );
        Ok(authenticated(identity, verified.expires_at))
    }

    /// A configured issuer equal to `iss` but for ASCII case and trailing slashes: a config
    /// mistake worth a precise rejection rather than "unknown token".
    fn near_miss(&self, iss: &str) -> Option<&str> {
        let normal = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
        let wanted = normal(iss);
        self.issuers
            .iter()
            .map(|i| i.issuer())
            .find(|configured| normal(configured) == wanted)
    }
}

impl Authenticator for OidcAuthenticator {
    fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a> {
        Box::pin(self.verify(token))
    }

    fn name(&self) -> &'static str {
        "oidc"
    }
}
