//! The login in progress, kept by the browser: a sealed `podgate_login` cookie (path
//! `/auth/callback`) holding the `state`, `nonce` and PKCE verifier podgate sent the browser to
//! the provider with. Nothing is stored server-side, so any replica can finish a login another
//! started, and an abandoned login costs nothing.
//!
//! Sealing (AES-GCM, purpose [`LOGIN_PURPOSE`]) keeps the verifier secret from page scripts and
//! network observers of the redirect, and keeps the cookie from being forged or replayed as a
//! session cookie. The callback's `state` must equal the cookie's: a callback crafted by
//! someone else (login CSRF) carries a state this browser never saw.

use serde::{Deserialize, Serialize};

use super::error::LoginError;
use super::pkce::{self, constant_time_eq};
use crate::session::SessionKey;

/// The purpose the login cookie is sealed for (bound as AES-GCM associated data).
pub const LOGIN_PURPOSE: &str = "podgate login v1";
/// The login cookie's name.
pub const LOGIN_COOKIE: &str = "podgate_login";
/// The only path the login cookie is sent to.
pub const CALLBACK_PATH: &str = "/auth/callback";

/// One login in progress.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    /// Echoed by the provider in the callback; must match.
    #[serde(rename = "s")]
    pub state: String,
    /// Must come back in the ID token's `nonce` claim, binding the token to this login.
    #[serde(rename = "n")]
    pub nonce: String,
    /// The PKCE code verifier; its S256 challenge went to the provider.
    #[serde(rename = "v")]
    pub verifier: String,
    /// A local path (checked by `check_return_to`), where the browser goes afterwards.
    #[serde(rename = "r")]
    pub return_to: String,
    /// The redirect URI of the authorization request; the token request must repeat it.
    #[serde(rename = "u")]
    pub redirect_uri: String,
    /// Unix seconds when the login started.
    #[serde(rename = "t")]
    pub issued_at: u64,
}

impl std::fmt::Debug for LoginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginState")
            .field("return_to", &self.return_to)
            .field("redirect_uri", &self.redirect_uri)
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

impl LoginState {
    /// A new login with fresh random `state`, `nonce` and verifier.
    pub fn new(return_to: String, redirect_uri: String, now: u64) -> Result<Self, LoginError> {
        Ok(LoginState {
            state: pkce::random_token()?,
            nonce: pkce::random_token()?,
            verifier: pkce::random_token()?,
            return_to,
            redirect_uri,
            issued_at: now,
        })
    }

    /// The S256 code challenge of this login's verifier.
    pub fn code_challenge(&self) -> String {
        pkce::challenge(&self.verifier)
    }

    /// The cookie value.
    pub fn seal(&self, key: &SessionKey) -> Result<String, LoginError> {
        let json = serde_json::to_vec(self).map_err(|e| LoginError::Internal(e.to_string()))?;
        key.seal(LOGIN_PURPOSE, &json)
            .map_err(|e| LoginError::Internal(e.to_string()))
    }

    /// Opens the cookie value and checks its age against `max_age` seconds at `now`.
    pub fn open(
        key: &SessionKey,
        sealed: Option<&str>,
        now: u64,
        max_age: u64,
    ) -> Result<Self, LoginError> {
        let sealed = sealed.ok_or(LoginError::NoLoginCookie)?;
        let json = key
            .open(LOGIN_PURPOSE, sealed)
            .map_err(|_| LoginError::BadLoginCookie)?;
        let state: LoginState =
            serde_json::from_slice(&json).map_err(|_| LoginError::BadLoginCookie)?;
        let age = now.saturating_sub(state.issued_at);
        if age > max_age {
            return Err(LoginError::LoginExpired {
                age,
                limit: max_age,
            });
        }
        Ok(state)
    }

    /// Checks the callback's `state` against this login's.
    pub fn check_state(&self, returned: &str) -> Result<(), LoginError> {
        if constant_time_eq(&self.state, returned) {
            Ok(())
        } else {
            Err(LoginError::StateMismatch)
        }
    }
}

/// What the provider sent the browser back with.
#[derive(Clone, PartialEq, Eq)]
pub struct Callback {
    pub code: String,
    pub state: String,
    /// The issuer, when the provider names it (RFC 9207): must be the one the login went to,
    /// which defeats mix-up attacks between several providers.
    pub iss: Option<String>,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Callback(<redacted>)")
    }
}

/// Longest provider `error` / `error_description` kept (they are shown in logs).
const MAX_ERROR_TEXT: usize = 200;

/// Parses the callback's query: `code` and `state`, or the provider's `error` (RFC 6749
/// §4.1.2.1). Each parameter must appear at most once.
pub fn parse_callback(query: Option<&str>) -> Result<Callback, LoginError> {
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut description = None;
    let mut iss = None;
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let slot = match &*name {
            "code" => &mut code,
            "state" => &mut state,
            "error" => &mut error,
            "error_description" => &mut description,
            "iss" => &mut iss,
            _ => continue,
        };
        if slot.is_some() {
            return Err(LoginError::BadCallback(format!("{name} is repeated")));
        }
        *slot = Some(value.into_owned());
    }
    if let Some(error) = error {
        return Err(LoginError::Provider {
            error: clean(&error),
            description: description.map(|d| clean(&d)),
        });
    }
    match (code, state) {
        (Some(code), Some(state)) if !code.is_empty() && !state.is_empty() => {
            Ok(Callback { code, state, iss })
        }
        _ if query.is_none_or(str::is_empty) => Err(LoginError::BadCallback(
            "no code and state (was /auth/callback opened directly?)".into(),
        )),
        _ => Err(LoginError::BadCallback("code or state is missing".into())),
    }
}

/// Provider text as it may appear in a log line: bounded, no control characters.
fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_ERROR_TEXT)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SessionKey {
        SessionKey::generate().expect("key")
    }

    fn login() -> LoginState {
        LoginState::new("/x".into(), "https://gw/auth/callback".into(), 1000).expect("state")
    }

    #[test]
    fn round_trip_and_age() {
        let key = key();
        let state = login();
        let sealed = state.seal(&key).expect("sealed");
        assert!(!sealed.contains(&state.verifier));
        assert_eq!(
            LoginState::open(&key, Some(&sealed), 1600, 600).ok(),
            Some(state.clone())
        );
        assert_eq!(
            LoginState::open(&key, Some(&sealed), 1601, 600).err(),
            Some(LoginError::LoginExpired {
                age: 601,
                limit: 600
            })
        );
        assert_eq!(
            LoginState::open(&key, None, 1000, 600).err(),
            Some(LoginError::NoLoginCookie)
        );
        assert_eq!(
            LoginState::open(&self::key(), Some(&sealed), 1000, 600).err(),
            Some(LoginError::BadLoginCookie)
        );
        assert!(!format!("{state:?}").contains(&state.verifier));
    }

    #[test]
    fn a_session_cookie_is_not_a_login_cookie() {
        let key = key();
        let session = crate::session::BrowserSession::new("t".into(), None, 0)
            .expect("session")
            .seal(&key)
            .expect("sealed");
        assert_eq!(
            LoginState::open(&key, Some(&session), 0, 600).err(),
            Some(LoginError::BadLoginCookie)
        );
        let login = login().seal(&key).expect("sealed");
        assert!(crate::session::BrowserSession::open(&key, &login).is_err());
    }

    #[test]
    fn state_must_match() {
        let state = login();
        assert_eq!(state.check_state(&state.state.clone()), Ok(()));
        assert_eq!(state.check_state("forged"), Err(LoginError::StateMismatch));
        assert_eq!(state.code_challenge(), pkce::challenge(&state.verifier));
    }

    #[test]
    fn callbacks() {
        assert_eq!(
            parse_callback(Some("code=c1&state=s1&iss=x")).ok(),
            Some(Callback {
                code: "c1".into(),
                state: "s1".into(),
                iss: Some("x".into()),
            })
        );
        assert_eq!(
            parse_callback(Some(
                "error=access_denied&error_description=no%0Away&state=s"
            ))
            .err(),
            Some(LoginError::Provider {
                error: "access_denied".into(),
                description: Some("noway".into())
            })
        );
        assert!(matches!(
            parse_callback(Some("code=a&code=b&state=s")),
            Err(LoginError::BadCallback(m)) if m.contains("repeated")
        ));
        assert!(matches!(
            parse_callback(Some("code=a")),
            Err(LoginError::BadCallback(_))
        ));
        assert!(matches!(
            parse_callback(Some("code=&state=s")),
            Err(LoginError::BadCallback(_))
        ));
        assert!(matches!(
            parse_callback(None),
            Err(LoginError::BadCallback(m)) if m.contains("directly")
        ));
    }
}
