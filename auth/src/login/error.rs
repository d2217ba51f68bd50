//! Why a login, or a session refresh, failed: a bounded [`reason`](LoginError::reason) for the
//! `podgate_auth_failures_total` counter and the log, a detail for the log (never a code,
//! token, secret or cookie), and a short [`user_message`](LoginError::user_message) for the
//! page the browser is shown.

use crate::oidc::{FetchError, VerifyError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// `return_to` is not a local path (an open-redirect attempt, or a bad link).
    #[error("return_to refused: {0}")]
    BadReturnTo(String),
    /// The callback came without the login cookie: cookies blocked, another browser, or a
    /// callback URL opened twice.
    #[error("the callback came without the login cookie")]
    NoLoginCookie,
    /// The login cookie does not open: altered, or sealed with another key (a restart without a
    /// configured key).
    #[error("the login cookie is not valid (altered, or sealed with another key)")]
    BadLoginCookie,
    /// The login cookie is older than the login timeout.
    #[error("the login started {age}s ago, more than the {limit}s allowed")]
    LoginExpired { age: u64, limit: u64 },
    /// The `state` sent back is not the one in this browser's login cookie: a forged callback
    /// (login CSRF) or a second login started in another tab.
    #[error("the state in the callback does not match this browser's login")]
    StateMismatch,
    /// The callback lacks `code` or `state`, or repeats one.
    #[error("bad callback: {0}")]
    BadCallback(String),
    /// The provider answered the authorization request with an error, e.g. `access_denied`.
    #[error("the provider refused the login: {error}{}", .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Provider {
        error: String,
        description: Option<String>,
    },
    /// The token endpoint refused the code or the refresh token, or could not be reached.
    #[error("token request failed: {0}")]
    TokenRequest(FetchError),
    /// The token response lacks what podgate needs (an ID token).
    #[error("bad token response: {0}")]
    BadTokenResponse(String),
    /// The ID token failed verification (signature, issuer, audience, expiry, nonce, azp).
    #[error("ID token refused: {0}")]
    IdToken(String),
    /// Discovery or keys could not be fetched.
    #[error("the OpenID provider is unavailable: {0}")]
    Unavailable(String),
    /// Something in podgate itself (random numbers, sealing).
    #[error("{0}")]
    Internal(String),
}

impl LoginError {
    /// The metric and log label: a closed set.
    pub fn reason(&self) -> &'static str {
        match self {
            LoginError::BadReturnTo(_) => "login_bad_return_to",
            LoginError::NoLoginCookie => "login_no_cookie",
            LoginError::BadLoginCookie => "login_bad_cookie",
            LoginError::LoginExpired { .. } => "login_expired",
            LoginError::StateMismatch => "login_state_mismatch",
            LoginError::BadCallback(_) => "login_bad_callback",
            LoginError::Provider { error, .. } if error == "access_denied" => "login_denied",
            LoginError::Provider { .. } => "login_provider_error",
            LoginError::TokenRequest(_) | LoginError::BadTokenResponse(_) => "login_token_request",
            LoginError::IdToken(_) => "login_id_token",
            LoginError::Unavailable(_) => "login_unavailable",
            LoginError::Internal(_) => "login_internal",
        }
    }

    /// Every label [`reason`](Self::reason) can return, for pre-registering counters.
    pub const REASONS: [&'static str; 12] = [
        "login_bad_return_to",
        "login_no_cookie",
        "login_bad_cookie",
        "login_expired",
        "login_state_mismatch",
        "login_bad_callback",
        "login_denied",
        "login_provider_error",
        "login_token_request",
        "login_id_token",
        "login_unavailable",
        "login_internal",
    ];

    /// What the person at the browser is told: what happened and what to do, no internals.
    pub fn user_message(&self) -> &'static str {
        match self {
            LoginError::BadReturnTo(_) => {
                "The link asked to return to a page outside this gateway, so the login was not \
                 started."
            }
            LoginError::NoLoginCookie | LoginError::BadLoginCookie => {
                "This browser has no login in progress (cookies may be blocked, or the login \
                 was started elsewhere). Please start again."
            }
            LoginError::LoginExpired { .. } => "The login took too long. Please start again.",
            LoginError::StateMismatch => {
                "This login response does not belong to the login this browser started (was a \
                 second login started in another tab?). Please start again."
            }
            LoginError::BadCallback(_) => "The login response was incomplete. Please start again.",
            LoginError::Provider { error, .. } if error == "access_denied" => {
                "The identity provider denied the login."
            }
            LoginError::Provider { .. } => {
                "The identity provider could not complete the login. Please try again."
            }
            LoginError::TokenRequest(_)
            | LoginError::BadTokenResponse(_)
            | LoginError::IdToken(_) => {
                "The identity provider's answer could not be accepted. Please try again; if it \
                 keeps happening, tell the gateway's operators."
            }
            LoginError::Unavailable(_) => {
                "The identity provider cannot be reached right now. Please try again shortly."
            }
            LoginError::Internal(_) => "The gateway failed to start the login. Please try again.",
        }
    }

    /// The HTTP status of the error page: 400 for a bad request, 403 for a refused login, 502
    /// when the provider misbehaved, 503 when it is unreachable.
    pub fn status(&self) -> u16 {
        match self {
            LoginError::BadReturnTo(_)
            | LoginError::NoLoginCookie
            | LoginError::BadLoginCookie
            | LoginError::LoginExpired { .. }
            | LoginError::StateMismatch
            | LoginError::BadCallback(_) => 400,
            LoginError::Provider { .. } => 403,
            LoginError::TokenRequest(_)
            | LoginError::BadTokenResponse(_)
            | LoginError::IdToken(_) => 502,
            LoginError::Unavailable(_) => 503,
            LoginError::Internal(_) => 500,
        }
    }
}

impl From<VerifyError> for LoginError {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::Rejected(rejection) => LoginError::IdToken(rejection.to_string()),
            VerifyError::Unavailable(message) => LoginError::Unavailable(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_bounded_labels() {
        let samples = [
            LoginError::BadReturnTo("x".into()),
            LoginError::NoLoginCookie,
            LoginError::BadLoginCookie,
            LoginError::LoginExpired { age: 1, limit: 0 },
            LoginError::StateMismatch,
            LoginError::BadCallback("x".into()),
            LoginError::Provider {
                error: "access_denied".into(),
                description: None,
            },
            LoginError::Provider {
                error: "server_error".into(),
                description: Some("d".into()),
            },
            LoginError::BadTokenResponse("x".into()),
            LoginError::IdToken("x".into()),
            LoginError::Unavailable("x".into()),
            LoginError::Internal("x".into()),
        ];
        for error in &samples {
            let reason = error.reason();
            assert!(LoginError::REASONS.contains(&reason), "{reason}");
            assert!(
                reason.len() <= 32 && reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            );
            assert!(!error.user_message().is_empty());
        }
        assert_eq!(samples[6].reason(), "login_denied");
        assert_eq!(
            samples[7].to_string(),
            "the provider refused the login: server_error: d"
        );
    }
}
