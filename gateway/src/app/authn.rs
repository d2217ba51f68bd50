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

pub fn from_config(path: &Path, config: &podgate_config::Config) -> anyhow::Result<Authn> {
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
    if let Some((oidc, browser_login)) = oidc(path, config)? {
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

/// The `auth.oidc` section, checked by the auth crate, and its browser login (`login`);
/// errors name the file and the field.
pub fn oidc(
    path: &Path,
    config: &podgate_config::Config,
) -> anyhow::Result<Option<(OidcAuthenticator, Option<OidcLogin>)>> {
    let Some(section) = &config.auth.oidc else {
        return Ok(None);
    };
    let file = path.display();
    let mut oidc: podgate_auth::OidcConfig = serde_norway::from_value(section.clone())
        .map_err(|e| anyhow::anyhow!("{file}: auth.oidc: {e}"))?;
    let base = path.parent().unwrap_or(Path::new("."));
    for issuer in &mut oidc.issuers {
        if let Some(ca) = &mut issuer.ca_file
            && ca.is_relative()
        {
            *ca = base.join(&*ca);
        }
    }
    if let Some(login) = &mut oidc.login {
        login.resolve_paths(base);
    }
    let problems = |e: podgate_auth::oidc::InvalidConfig| {
        let lines: Vec<String> =
            e.0.iter()
                .map(|p| format!("{file}: auth.oidc.{}: {}", p.field, p.message))
                .collect();
        anyhow::anyhow!("{}", lines.join("\n"))
    };
    let authn = OidcAuthenticator::new(&oidc).map_err(problems)?;
    let login = OidcLogin::from_config(&oidc, &authn).map_err(problems)?;
    Ok(Some((authn, login)))
}
