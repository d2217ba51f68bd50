//! The OAuth 2.0 / OpenID Connect messages of the code flow, built and checked without IO:
//! the authorization URL (RFC 6749 §4.1.1 with PKCE, RFC 7636 §4.3), the token requests
//! (§4.1.3 and §6), their response (§5.1), and the ID-token checks the bearer-token path does
//! not make (OpenID Connect Core §3.1.3.7: `nonce`, `azp`).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::config::ClientSecret;
use super::error::LoginError;
use super::state::LoginState;

/// The authorization request URL for `login`.
pub fn authorize_url(
    endpoint: &str,
    client_id: &str,
    scopes: &[String],
    login: &LoginState,
) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", &login.redirect_uri)
        .append_pair("scope", &scopes.join(" "))
        .append_pair("state", &login.state)
        .append_pair("nonce", &login.nonce)
        .append_pair("code_challenge", &login.code_challenge())
        .append_pair("code_challenge_method", "S256")
        .finish();
    let separator = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{separator}{query}")
}

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret.
    Basic,
    /// The client id and secret in the form.
    Post,
    /// A public client: the client id in the form, no secret.
    None,
}

impl ClientAuth {
    /// The method for a client with or without a secret, given the provider's
    /// `token_endpoint_auth_methods_supported` (absent means `client_secret_basic`, RFC 8414).
    pub fn choose(has_secret: bool, supported: &[String]) -> ClientAuth {
        let supports = |m: &str| supported.iter().any(|s| s == m);
        match has_secret {
            false => ClientAuth::None,
            true if supported.is_empty() || supports("client_secret_basic") => ClientAuth::Basic,
            true if supports("client_secret_post") => ClientAuth::Post,
            true => ClientAuth::Basic,
        }
    }
}

/// A token request's form and Basic credentials, ready for `HttpClient::post_form_json`.
pub struct TokenRequest<'a> {
    pub form: Vec<(&'static str, &'a str)>,
    pub basic: Option<(&'a str, &'a str)>,
}

impl<'a> TokenRequest<'a> {
    fn with_client(
        mut form: Vec<(&'static str, &'a str)>,
        client_id: &'a str,
        secret: Option<&'a ClientSecret>,
        auth: ClientAuth,
    ) -> Self {
        let basic = match (auth, secret) {
            (ClientAuth::Basic, Some(secret)) => Some((client_id, secret.expose())),
            (ClientAuth::Post, Some(secret)) => {
                form.push(("client_id", client_id));
                form.push(("client_secret", secret.expose()));
                None
            }
            _ => {
                form.push(("client_id", client_id));
                None
            }
        };
        TokenRequest { form, basic }
    }

    /// `grant_type=authorization_code` with the PKCE verifier.
    pub fn code(
        code: &'a str,
        login: &'a LoginState,
        client_id: &'a str,
        secret: Option<&'a ClientSecret>,
        auth: ClientAuth,
    ) -> Self {
        let form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", login.redirect_uri.as_str()),
            ("code_verifier", login.verifier.as_str()),
        ];
        Self::with_client(form, client_id, secret, auth)
    }

    /// `grant_type=refresh_token`.
    pub fn refresh(
        refresh_token: &'a str,
        client_id: &'a str,
        secret: Option<&'a ClientSecret>,
        auth: ClientAuth,
    ) -> Self {
        let form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        Self::with_client(form, client_id, secret, auth)
    }
}

/// The token endpoint's answer. Only what podgate uses; never printed.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub id_token: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub token_type: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("id_token", &self.id_token.as_ref().map(|_| "<redacted>"))
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("token_type", &self.token_type)
            .finish()
    }
}

impl TokenResponse {
    /// The ID token, which podgate needs (it is what the session carries).
    pub fn id_token(&self) -> Result<&str, LoginError> {
        match self.id_token.as_deref() {
            Some(token) if !token.is_empty() => Ok(token),
            _ => Err(LoginError::BadTokenResponse(
                "no id_token in the answer (is the openid scope granted?)".into(),
            )),
        }
    }

    /// `token_type` is `Bearer` (case-insensitively, RFC 6749 §5.1) when given.
    pub fn check_type(&self) -> Result<(), LoginError> {
        match self.token_type.as_deref() {
            None => Ok(()),
            Some(t) if t.eq_ignore_ascii_case("bearer") || t.eq_ignore_ascii_case("dpop") => Ok(()),
            Some(_) => Err(LoginError::BadTokenResponse(
                "token_type is not Bearer".into(),
            )),
        }
    }
}

/// The ID-token checks of OpenID Connect Core §3.1.3.7 beyond signature, `iss`, `aud`, `exp`
/// (done by `OidcIssuer::verify` with the client id as the audience): the `nonce` must be this
/// login's (when one is expected: not on refresh), and `azp`, if present or if there are several
/// audiences, must be the client id.
pub fn check_id_token_claims(
    claims: &Map<String, Value>,
    client_id: &str,
    nonce: Option<&str>,
) -> Result<(), LoginError> {
    if let Some(expected) = nonce {
        match claims.get("nonce").and_then(Value::as_str) {
            Some(found) if super::pkce::constant_time_eq(found, expected) => {}
            Some(_) => {
                return Err(LoginError::IdToken(
                    "the nonce is not this login's (a replayed or injected ID token)".into(),
                ));
            }
            None => return Err(LoginError::IdToken("the ID token has no nonce".into())),
        }
    }
    let several_audiences = claims
        .get("aud")
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() > 1);
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == client_id => Ok(()),
        Some(_) => Err(LoginError::IdToken(
            "the ID token was issued to another client (azp)".into(),
        )),
        None if several_audiences => Err(LoginError::IdToken(
            "the ID token has several audiences and no azp".into(),
        )),
        None => Ok(()),
    }
}

/// The claims of a JWT without verifying it. Only for tokens podgate itself sealed into a
/// session after verifying them (to compare `sub` across a refresh).
pub fn unverified_claims(token: &str) -> Option<Map<String, Value>> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn login() -> LoginState {
        LoginState {
            state: "st".into(),
            nonce: "no".into(),
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
            return_to: "/".into(),
            redirect_uri: "https://gw.example/auth/callback".into(),
            issued_at: 0,
        }
    }

    #[test]
    fn the_authorization_url() {
        let url = authorize_url(
            "https://idp.example/auth",
            "pod gate",
            &["openid".into(), "email".into()],
            &login(),
        );
        assert_eq!(
            url,
            "https://idp.example/auth?response_type=code&client_id=pod+gate&redirect_uri=\
             https%3A%2F%2Fgw.example%2Fauth%2Fcallback&scope=openid+email&state=st&nonce=no&\
             code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&\
             code_challenge_method=S256"
        );
        let url = authorize_url("https://idp.example/auth?tenant=a", "c", &[], &login());
        assert!(url.starts_with("https://idp.example/auth?tenant=a&response_type=code"));
    }

    #[test]
    fn client_authentication_follows_the_provider() {
        let list = |m: &[&str]| m.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(ClientAuth::choose(true, &[]), ClientAuth::Basic);
        assert_eq!(
            ClientAuth::choose(true, &list(&["client_secret_post", "client_secret_basic"])),
            ClientAuth::Basic
        );
        assert_eq!(
            ClientAuth::choose(true, &list(&["private_key_jwt", "client_secret_post"])),
            ClientAuth::Post
        );
        assert_eq!(
            ClientAuth::choose(false, &list(&["none"])),
            ClientAuth::None
        );

        let secret = ClientSecret::new("s".into());
        let login = login();
        let basic = TokenRequest::code("c", &login, "id", Some(&secret), ClientAuth::Basic);
        assert_eq!(basic.basic, Some(("id", "s")));
        assert_eq!(
            basic.form,
            [
                ("grant_type", "authorization_code"),
                ("code", "c"),
                ("redirect_uri", "https://gw.example/auth/callback"),
                (
                    "code_verifier",
                    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
                ),
            ]
        );
        let post = TokenRequest::refresh("r", "id", Some(&secret), ClientAuth::Post);
        assert_eq!(post.basic, None);
        assert_eq!(
            post.form,
            [
                ("grant_type", "refresh_token"),
                ("refresh_token", "r"),
                ("client_id", "id"),
                ("client_secret", "s"),
            ]
        );
        let public = TokenRequest::refresh("r", "id", None, ClientAuth::None);
        assert_eq!(public.form.last(), Some(&("client_id", "id")));
    }

    #[test]
    fn token_responses() {
        let answer: TokenResponse = serde_json::from_value(json!({
            "access_token": "a", "id_token": "i.d.t", "refresh_token": "r",
            "token_type": "Bearer", "expires_in": 60, "scope": "openid"
        }))
        .expect("parses");
        assert_eq!(answer.id_token(), Ok("i.d.t"));
        assert_eq!(answer.check_type(), Ok(()));
        assert!(!format!("{answer:?}").contains("i.d.t"));
        let bare: TokenResponse =
            serde_json::from_value(json!({"access_token": "a", "token_type": "mac"}))
                .expect("parses");
        assert!(matches!(
            bare.id_token(),
            Err(LoginError::BadTokenResponse(_))
        ));
        assert!(bare.check_type().is_err());
    }

    #[test]
    fn nonce_and_azp() {
        let claims = |v: Value| v.as_object().cloned().expect("object");
        let ok = claims(json!({"nonce": "n1", "aud": "web"}));
        assert_eq!(check_id_token_claims(&ok, "web", Some("n1")), Ok(()));
        assert_eq!(check_id_token_claims(&ok, "web", None), Ok(()));
        assert!(matches!(
            check_id_token_claims(&ok, "web", Some("n2")),
            Err(LoginError::IdToken(m)) if m.contains("nonce")
        ));
        let none = claims(json!({"aud": "web"}));
        assert!(check_id_token_claims(&none, "web", Some("n1")).is_err());
        let several = claims(json!({"nonce": "n", "aud": ["web", "api"]}));
        assert!(check_id_token_claims(&several, "web", Some("n")).is_err());
        let with_azp = claims(json!({"nonce": "n", "aud": ["web", "api"], "azp": "web"}));
        assert_eq!(check_id_token_claims(&with_azp, "web", Some("n")), Ok(()));
        let other_azp = claims(json!({"nonce": "n", "aud": "web", "azp": "api"}));
        assert!(check_id_token_claims(&other_azp, "web", Some("n")).is_err());
    }

    #[test]
    fn unverified_claims_of_our_own_tokens() {
        use base64::Engine as _;
        let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let token = format!("{}.{}.sig", b64("{}"), b64(r#"{"sub":"ann"}"#));
        assert_eq!(
            unverified_claims(&token).and_then(|c| c.get("sub").cloned()),
            Some(json!("ann"))
        );
        assert_eq!(unverified_claims("opaque"), None);
    }
}
