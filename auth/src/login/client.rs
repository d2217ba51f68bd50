//! [`LoginClient`]: podgate as an OpenID Connect relying party at one issuer. The IO of the
//! code flow (discovery for the endpoints, the token endpoint, the keys) goes through the
//! same [`OidcIssuer`] the bearer-token authenticator uses, so both share one connection pool,
//! one key cache and one trust configuration.

use std::sync::Arc;

use crate::Identity;

use super::config::{ClientSecret, LoginConfig};
use super::error::LoginError;
use super::protocol::{self, ClientAuth, TokenRequest, TokenResponse};
use super::state::{Callback, LoginState};
use crate::oidc::{ConfigProblem, InvalidConfig, OidcAuthenticator, OidcIssuer, ProviderMetadata};

/// What a finished login or a refresh yields.
#[derive(Clone)]
pub struct Tokens {
    /// The verified ID token: what the session cookie carries.
    pub id_token: String,
    /// When granted (`offline_access`): for getting a new ID token when this one expires.
    pub refresh_token: Option<String>,
    /// The ID token's `exp`, Unix seconds.
    pub expires_at: u64,
    /// Who logged in, mapped as the bearer-token path maps the same token.
    pub identity: Identity,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("refresh_token", &self.refresh_token.is_some())
            .field("expires_at", &self.expires_at)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// The browser login at one issuer.
pub struct LoginClient {
    config: LoginConfig,
    secret: Option<ClientSecret>,
    issuer: Arc<OidcIssuer>,
}

impl std::fmt::Debug for LoginClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl LoginClient {
    /// The login of `config` through `authn`'s issuer of the same URL (validated by
    /// `OidcConfig::validate`); reads the client secret file. No network IO.
    pub fn new(config: LoginConfig, authn: &OidcAuthenticator) -> Result<Self, InvalidConfig> {
        let problem = |field: &str, message: String| {
            InvalidConfig(vec![ConfigProblem {
                field: format!("login.{field}"),
                message,
            }])
        };
        let issuer = authn
            .issuer(&config.issuer)
            .cloned()
            .ok_or_else(|| problem("issuer", "is not one of the configured issuers".into()))?;
        let secret = config
            .client_secret()
            .map_err(|why| problem("client_secret_file", why))?;
        Ok(LoginClient {
            config,
            secret,
            issuer,
        })
    }

    pub fn config(&self) -> &LoginConfig {
        &self.config
    }

    pub fn issuer(&self) -> &OidcIssuer {
        &self.issuer
    }

    async fn metadata(&self) -> Result<Arc<ProviderMetadata>, LoginError> {
        self.issuer.metadata().await.map_err(LoginError::from)
    }

    /// Starts a login: a fresh [`LoginState`] (to seal into the login cookie) and the URL to
    /// send the browser to.
    pub async fn start(
        &self,
        return_to: String,
        redirect_uri: String,
        now: u64,
    ) -> Result<(LoginState, String), LoginError> {
        let metadata = self.metadata().await?;
        let endpoint = metadata.authorization_endpoint.as_deref().ok_or_else(|| {
            LoginError::Unavailable(format!(
                "{} publishes no authorization_endpoint",
                self.issuer.issuer()
            ))
        })?;
        let login = LoginState::new(return_to, redirect_uri, now)?;
        let url = protocol::authorize_url(
            endpoint,
            &self.config.client_id,
            &self.config.scopes_for(&metadata),
            &login,
        );
        Ok((login, url))
    }

    /// Finishes a login: checks `state`, exchanges the code (with the PKCE verifier) and
    /// verifies the ID token, its nonce included.
    pub async fn finish(
        &self,
        login: &LoginState,
        callback: &Callback,
    ) -> Result<Tokens, LoginError> {
        login.check_state(&callback.state)?;
        if let Some(iss) = &callback.iss
            && iss != self.issuer.issuer()
        {
            return Err(LoginError::BadCallback(format!(
                "the callback names issuer {iss:?}, not {:?} (RFC 9207)",
                self.issuer.issuer()
            )));
        }
        let (metadata, auth) = self.token_endpoint().await?;
        let request = TokenRequest::code(
            &callback.code,
            login,
            &self.config.client_id,
            self.secret.as_ref(),
            auth,
        );
        let answer = self.post(&metadata, request).await?;
        self.verify(&answer, Some(&login.nonce), None).await
    }

    /// A new ID token for a session whose token expired, with its refresh token. The new
    /// token must be about the same subject as `previous_id_token`. A provider that does not
    /// rotate refresh tokens returns none; the old one is kept.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        previous_id_token: &str,
    ) -> Result<Tokens, LoginError> {
        let (metadata, auth) = self.token_endpoint().await?;
        let request = TokenRequest::refresh(
            refresh_token,
            &self.config.client_id,
            self.secret.as_ref(),
            auth,
        );
        let answer = self.post(&metadata, request).await?;
        let previous_sub = protocol::unverified_claims(previous_id_token)
            .and_then(|c| c.get("sub").and_then(|s| s.as_str().map(str::to_owned)));
        let mut tokens = self.verify(&answer, None, previous_sub.as_deref()).await?;
        if tokens.refresh_token.is_none() {
            tokens.refresh_token = Some(refresh_token.to_owned());
        }
        Ok(tokens)
    }

    async fn token_endpoint(&self) -> Result<(Arc<ProviderMetadata>, ClientAuth), LoginError> {
        let metadata = self.metadata().await?;
        if metadata.token_endpoint.is_none() {
            return Err(LoginError::Unavailable(format!(
                "{} publishes no token_endpoint",
                self.issuer.issuer()
            )));
        }
        let auth = ClientAuth::choose(
            self.secret.is_some(),
            &metadata.token_endpoint_auth_methods_supported,
        );
        Ok((metadata, auth))
    }

    async fn post(
        &self,
        metadata: &ProviderMetadata,
        request: TokenRequest<'_>,
    ) -> Result<TokenResponse, LoginError> {
        let endpoint = metadata.token_endpoint.as_deref().unwrap_or_default();
        let answer: TokenResponse = self
            .issuer
            .http()
            .post_form_json(endpoint, &request.form, request.basic)
            .await
            .map_err(LoginError::TokenRequest)?;
        answer.check_type()?;
        Ok(answer)
    }

    async fn verify(
        &self,
        answer: &TokenResponse,
        nonce: Option<&str>,
        same_subject: Option<&str>,
    ) -> Result<Tokens, LoginError> {
        let id_token = answer.id_token()?;
        let verified = self
            .issuer
            .verify(id_token, std::slice::from_ref(&self.config.client_id))
            .await?;
        protocol::check_id_token_claims(&verified.claims, &self.config.client_id, nonce)?;
        if let Some(sub) = same_subject
            && verified.claims.get("sub").and_then(|s| s.as_str()) != Some(sub)
        {
            return Err(LoginError::IdToken(
                "the refreshed ID token is about another subject".into(),
            ));
        }
        let identity = self
            .issuer
            .mapping()
            .map(&verified.claims)
            .map_err(|rejection| LoginError::IdToken(rejection.to_string()))?;
        Ok(Tokens {
            id_token: id_token.to_owned(),
            refresh_token: answer.refresh_token.clone().filter(|r| !r.is_empty()),
            expires_at: verified.expires_at,
            identity,
        })
    }
}
