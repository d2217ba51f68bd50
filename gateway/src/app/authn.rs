//! The authenticators a config file asks for: static tokens first (break-glass access keeps
//! working when the identity provider is down), then OIDC; and the browser login at the OIDC
//! issuer when configured.

use crate::browser::oidc::OidcLogin;
use podgate_auth::{Authenticator, Chain, OidcAuthenticator, StaticTokens};
use std::path::Path;
use std::sync::Arc;

/// What [`from_config`] builds.
pub struct Authn {
    pub authenticator: Arc<dyn Authenticator>,
    /// The static-token table a reload refreshes.
    pub static_tokens: Option<Arc<StaticTokens>>,
    pub login: Option<OidcLogin>,
}

pub fn from_config(path: &Path, loaded: &super::config::Loaded) -> anyhow::Result<Authn> {
    let config = &loaded.config;
    let mut chain: Vec<Arc<dyn Authenticator>> = Vec::new();
    let static_tokens = match &config.auth.tokens_file {
        Some(f) => {
            let t = Arc::new(StaticTokens::load(f)?);
            chain.push(t.clone());
            Some(t)
        }
        None => None,
    };
    let mut login = None;
    if let Some((oidc, browser_login)) = oidc(path, loaded.oidc.as_ref())? {
        login = browser_login;
        let oidc = Arc::new(oidc);
        let warm = oidc.clone();
        tokio::spawn(async move {
            if let Err(e) = warm.warm_up().await {
                tracing::warn!(
                    "OIDC issuer not reachable yet (tokens will be retried on use): {e}"
                );
            }
        });
        chain.push(oidc);
    }
    if chain.is_empty() {
        tracing::warn!(
            "no authenticator is configured (auth.tokens_file, auth.oidc): every request will be refused with 401"
        );
    }
    Ok(Authn {
        authenticator: Arc::new(Chain::new(chain)),
        static_tokens,
        login,
    })
}

/// The OIDC authenticator and its browser login (`login`) for the typed `auth.oidc` section;
/// errors name the file and the field.
pub fn oidc(
    path: &Path,
    oidc: Option<&podgate_auth::OidcConfig>,
) -> anyhow::Result<Option<(OidcAuthenticator, Option<OidcLogin>)>> {
    let Some(oidc) = oidc else {
        return Ok(None);
    };
    let file = path.display();
    let problems = |e: podgate_auth::oidc::InvalidConfig| {
        let lines: Vec<String> =
            e.0.iter()
                .map(|p| format!("{file}: auth.oidc.{}: {}", p.field, p.message))
                .collect();
        anyhow::anyhow!("{}", lines.join("\n"))
    };
    let authn = OidcAuthenticator::new(oidc).map_err(problems)?;
    let login = OidcLogin::from_config(oidc, &authn).map_err(problems)?;
    Ok(Some((authn, login)))
}
