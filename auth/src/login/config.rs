//! The `login` section of the OIDC config (`auth.oidc.login`): the OAuth client podgate is at
//! the provider for the browser login.
//!
//! The session cookie's lifetime is `auth.session.max_lifetime`, and no longer than the ID
//! token's unless a refresh token was granted.
//!
//! ```yaml
//! oidc:
//!   issuers:
//!     - issuer: https://login.example.com/realms/eng
//!       audiences: [podgate]            # must include login.client_id: the session cookie
//!                                       # carries the ID token, verified like a bearer token
//!   login:
//!     issuer: https://login.example.com/realms/eng
//!     client_id: podgate
//!     client_secret_file: /etc/podgate/oidc/client-secret
//!     # scopes: [openid, profile, email, groups, offline_access]
//!     # redirect_url: https://podgate.example.com/auth/callback
//!     login_timeout: 10m
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use podgate_config::Duration;

use super::state::CALLBACK_PATH;
use crate::oidc::{ConfigProblem, IssuerConfig, ProviderMetadata, check_url};

/// Scopes asked for when `scopes` is unset, each only if the provider lists it in
/// `scopes_supported` (some providers refuse a login asking for a scope they do not know).
/// `offline_access` gets a refresh token, so sessions outlive the ID token.
pub const OPTIONAL_SCOPES: [&str; 4] = ["profile", "email", "groups", "offline_access"];

/// How podgate logs browsers in at one of the configured issuers.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginConfig {
    /// One of `issuers[].issuer`, exactly.
    pub issuer: String,
    /// The client registered at the provider for podgate, with redirect URI
    /// `https://<gateway host>/auth/callback`. Must be among that issuer's `audiences`.
    pub client_id: String,
    /// The client secret, inline. Prefer `client_secret_file`. Neither: a public client
    /// (PKCE alone protects the code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// A file holding the client secret (surrounding whitespace ignored), e.g. a mounted
    /// Kubernetes Secret. Relative paths are relative to the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    /// Scopes requested; must include `openid`. Default: `openid` plus those of `profile`,
    /// `email`, `groups` and `offline_access` the provider supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// The callback URL registered at the provider. Default: `https://<Host>/auth/callback`
    /// from the login request, which is right unless a proxy in front rewrites the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// The time allowed between starting a login and coming back to `/auth/callback`. Default
    /// `10m`.
    #[serde(default = "default_login_timeout")]
    pub login_timeout: Duration,
    /// The public client (no secret; `http://localhost:8000` and `:18000` redirects, as
    /// kubelogin uses) that kubectl logs in with through kubelogin, named in the kubeconfigs
    /// `/podgate/kubeconfig` hands out. Must be among the issuer's `audiences`. Unset: those
    /// kubeconfigs use `client_id` (which then must be a public client too for kubelogin to
    /// work); the browser login's secret never goes into a kubeconfig.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubectl_client_id: Option<String>,
}

impl std::fmt::Debug for LoginConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("client_secret_file", &self.client_secret_file)
            .field("scopes", &self.scopes)
            .field("redirect_url", &self.redirect_url)
            .field("login_timeout", &self.login_timeout)
            .field("kubectl_client_id", &self.kubectl_client_id)
            .finish()
    }
}

fn default_login_timeout() -> Duration {
    Duration::from_secs(600)
}

/// The client secret, kept out of `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: String) -> Self {
        ClientSecret(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

impl LoginConfig {
    /// A login at `issuer` as `client_id`, everything else at its default.
    pub fn new(issuer: impl Into<String>, client_id: impl Into<String>) -> Self {
        LoginConfig {
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret: None,
            client_secret_file: None,
            scopes: None,
            redirect_url: None,
            login_timeout: default_login_timeout(),
            kubectl_client_id: None,
        }
    }

    /// The client id kubectl's kubeconfigs name: `kubectl_client_id`, else `client_id`.
    pub fn kubectl_client(&self) -> &str {
        self.kubectl_client_id.as_deref().unwrap_or(&self.client_id)
    }

    /// Every problem, `field` relative to this section; `issuers` are the configured ones.
    pub fn validate(&self, issuers: &[IssuerConfig]) -> Vec<ConfigProblem> {
        let mut found = Vec::new();
        let mut push = |field: &str, message: String| {
            found.push(ConfigProblem {
                field: field.to_owned(),
                message,
            });
        };
        match issuers.iter().find(|i| i.issuer == self.issuer) {
            None => push(
                "issuer",
                format!(
                    "{:?} is not one of the configured issuers ({}); the login must be at an \
                     issuer whose ID tokens podgate accepts",
                    self.issuer,
                    issuers
                        .iter()
                        .map(|i| format!("{:?}", i.issuer))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Some(issuer) if !issuer.audiences.contains(&self.client_id) => push(
                "client_id",
                format!(
                    "{:?} is not among the audiences of issuer {:?}: the session cookie holds \
                     the ID token, whose aud is the client id, so add it there",
                    self.client_id, self.issuer
                ),
            ),
            Some(_) => {}
        }
        if let Some(kubectl) = &self.kubectl_client_id {
            let audiences = issuers
                .iter()
                .find(|i| i.issuer == self.issuer)
                .map(|i| i.audiences.as_slice())
                .unwrap_or_default();
            if kubectl.is_empty() {
                push("kubectl_client_id", "must not be empty".to_owned());
            } else if !audiences.is_empty() && !audiences.contains(kubectl) {
                push(
                    "kubectl_client_id",
                    format!(
                        "{kubectl:?} is not among the audiences of issuer {:?}: kubectl sends \
                         the ID token kubelogin gets for this client, so add it there",
                        self.issuer
                    ),
                );
            }
        }
        if self.client_id.is_empty() {
            push("client_id", "must not be empty".to_owned());
        }
        if self.client_secret.is_some() && self.client_secret_file.is_some() {
            push(
                "client_secret",
                "set client_secret or client_secret_file, not both".to_owned(),
            );
        }
        if self.client_secret.as_deref() == Some("") {
            push(
                "client_secret",
                "is empty: omit it for a public client".to_owned(),
            );
        }
        if self
            .client_secret_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            push("client_secret_file", "is empty".to_owned());
        }
        if let Some(scopes) = &self.scopes
            && !scopes.iter().any(|s| s == "openid")
        {
            push(
                "scopes",
                "must include openid (without it there is no ID token)".to_owned(),
            );
        }
        if let Some(scopes) = &self.scopes
            && scopes.iter().any(|s| s.is_empty() || s.contains(' '))
        {
            push("scopes", "a scope is empty or contains a space".to_owned());
        }
        if let Some(url) = &self.redirect_url {
            match check_url(url, false) {
                Err(why) => push("redirect_url", why),
                Ok(uri) if uri.path() != CALLBACK_PATH || uri.query().is_some() => push(
                    "redirect_url",
                    format!("must end in {CALLBACK_PATH}, where podgate takes the callback"),
                ),
                Ok(_) => {}
            }
        }
        if self.login_timeout.is_zero() {
            push("login_timeout", "must be more than 0s".to_owned());
        }
        found
    }

    /// Makes a relative `client_secret_file` relative to `base` (the config file's directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(file) = &mut self.client_secret_file
            && file.is_relative()
        {
            *file = base.join(&*file);
        }
    }

    /// The client secret from the config or its file; `None` for a public client.
    pub fn client_secret(&self) -> Result<Option<ClientSecret>, String> {
        if let Some(secret) = &self.client_secret {
            return Ok(Some(ClientSecret(secret.clone())));
        }
        let Some(path) = &self.client_secret_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let secret = text.trim();
        if secret.is_empty() {
            return Err(format!("{} is empty", path.display()));
        }
        Ok(Some(ClientSecret(secret.to_owned())))
    }

    /// The scopes to request from a provider with this `metadata`.
    pub fn scopes_for(&self, metadata: &ProviderMetadata) -> Vec<String> {
        if let Some(scopes) = &self.scopes {
            return scopes.clone();
        }
        let supported = &metadata.scopes_supported;
        std::iter::once("openid")
            .chain(OPTIONAL_SCOPES.into_iter().filter(|s| {
                supported.iter().any(|x| x == s)
                    || (supported.is_empty() && matches!(*s, "profile" | "email"))
            }))
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuers() -> Vec<IssuerConfig> {
        vec![IssuerConfig::new(
            "https://idp.example",
            vec!["podgate".to_owned()],
        )]
    }

    fn problems(config: &LoginConfig) -> Vec<String> {
        config
            .validate(&issuers())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn defaults_and_a_good_config() {
        let config: LoginConfig = serde_norway::from_str(
            "issuer: https://idp.example\nclient_id: podgate\nclient_secret_file: s\n",
        )
        .expect("parses");
        assert_eq!(config.login_timeout, Duration::from_secs(600));
        assert!(problems(&config).is_empty(), "{:?}", problems(&config));
        let mut secret = LoginConfig::new("https://idp.example", "podgate");
        secret.client_secret = Some("very-secret".into());
        assert!(!format!("{secret:?}").contains("very-secret"));
    }

    #[test]
    fn problems_are_named() {
        let mut config = LoginConfig::new("https://other.example", "web");
        config.client_secret = Some(String::new());
        config.client_secret_file = Some(PathBuf::new());
        config.scopes = Some(vec!["profile".into(), "a b".into()]);
        config.redirect_url = Some("https://gw.example/callback".into());
        config.login_timeout = Duration::ZERO;
        let found = problems(&config);
        for want in [
            "issuer: \"https://other.example\" is not one of the configured issuers",
            "client_secret: set client_secret or client_secret_file, not both",
            "client_secret: is empty",
            "client_secret_file: is empty",
            "scopes: must include openid",
            "scopes: a scope is empty or contains a space",
            "redirect_url: must end in /auth/callback",
            "login_timeout: must be more than 0s",
        ] {
            assert!(
                found.iter().any(|p| p.starts_with(want)),
                "{want}: {found:#?}"
            );
        }
        let wrong_client = LoginConfig::new("https://idp.example", "web");
        assert!(
            problems(&wrong_client)[0].starts_with("client_id: \"web\" is not among the audiences")
        );
        let mut kubectl = LoginConfig::new("https://idp.example", "podgate");
        assert_eq!(kubectl.kubectl_client(), "podgate");
        kubectl.kubectl_client_id = Some("kubectl-cli".into());
        assert_eq!(kubectl.kubectl_client(), "kubectl-cli");
        assert!(
            problems(&kubectl)
                .iter()
                .any(|p| p.starts_with("kubectl_client_id: \"kubectl-cli\" is not among")),
            "{:?}",
            problems(&kubectl)
        );
        kubectl.kubectl_client_id = Some(String::new());
        assert!(
            problems(&kubectl)
                .iter()
                .any(|p| p == "kubectl_client_id: must not be empty")
        );
        let mut http = LoginConfig::new("https://idp.example", "podgate");
        http.redirect_url = Some("http://gw.example/auth/callback".into());
        assert!(problems(&http)[0].contains("plain http"));
    }

    #[test]
    fn secrets_from_files() {
        let dir = tempdir();
        let mut config = LoginConfig::new("https://idp.example", "podgate");
        assert_eq!(config.client_secret(), Ok(None));
        config.client_secret_file = Some("secret".into());
        config.resolve_paths(&dir);
        assert_eq!(config.client_secret_file, Some(dir.join("secret")));
        assert!(
            config
                .client_secret()
                .unwrap_err()
                .starts_with("cannot read")
        );
        std::fs::write(dir.join("secret"), "s3cret\n").expect("write");
        assert_eq!(
            config
                .client_secret()
                .map(|s| s.map(|s| s.expose().to_owned())),
            Ok(Some("s3cret".to_owned()))
        );
        std::fs::write(dir.join("secret"), "\n").expect("write");
        assert!(config.client_secret().unwrap_err().ends_with("is empty"));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("podgate-login-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn default_scopes_follow_the_provider() {
        let metadata = |supported: &[&str]| ProviderMetadata {
            issuer: "https://idp.example".into(),
            jwks_uri: "https://idp.example/jwks".into(),
            authorization_endpoint: None,
            token_endpoint: None,
            userinfo_endpoint: None,
            end_session_endpoint: None,
            revocation_endpoint: None,
            scopes_supported: supported.iter().map(|s| (*s).to_owned()).collect(),
            response_types_supported: vec![],
            grant_types_supported: vec![],
            code_challenge_methods_supported: vec![],
            token_endpoint_auth_methods_supported: vec![],
            id_token_signing_alg_values_supported: vec![],
        };
        let config = LoginConfig::new("https://idp.example", "podgate");
        assert_eq!(
            config.scopes_for(&metadata(&["openid", "email", "offline_access", "phone"])),
            ["openid", "email", "offline_access"]
        );
        assert_eq!(
            config.scopes_for(&metadata(&[])),
            ["openid", "profile", "email"]
        );
        let mut fixed = config.clone();
        fixed.scopes = Some(vec!["openid".into(), "groups".into()]);
        assert_eq!(fixed.scopes_for(&metadata(&[])), ["openid", "groups"]);
    }
}
