//! Why a token was refused: a bounded [`Reason`] for metrics and logs, plus a detail message for
//! the log. Neither ever holds the token or a string copied out of an unverified one.

use std::fmt;

use crate::AuthError;

/// The reason label of a rejected OIDC token. A closed set, so a metric labelled by it has a
/// fixed number of series; [`Reason::ALL`] lets a counter pre-register them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `exp` is past (beyond the leeway).
    Expired,
    /// `nbf`, or `iat`, is in the future (beyond the leeway).
    NotYetValid,
    /// No `aud` entry is one of the issuer's configured audiences.
    WrongAudience,
    /// `iss` is almost a configured issuer (letter case, trailing slash) but not exactly it, or
    /// is not the issuer the token was checked against.
    WrongIssuer,
    /// The signature does not verify with the key the token names.
    BadSignature,
    /// No published key has the token's `kid`, even after refetching the issuer's JWKS.
    UnknownKid,
    /// `alg: none`, an unsigned token.
    AlgNone,
    /// `alg: HS256/384/512`: a MAC, typically computed with the issuer's public key as the
    /// secret (algorithm confusion).
    AlgHs,
    /// An asymmetric algorithm outside the issuer's allow-list, or one the key named by `kid`
    /// cannot verify (its `kty`, curve or `alg` differ).
    AlgNotAllowed,
    /// Not a well-formed signed JWT: bad base64url, bad JSON, wrong number of segments, a claim
    /// of the wrong type, an unsupported `crit` header.
    Malformed,
    /// A claim the issuer's config requires (or `exp`, or the username claim) is absent or,
    /// for `required_claims`, has another value.
    MissingClaim,
    /// The username claim is `email` and `email_verified` is present but not `true`.
    UnverifiedEmail,
    /// The mapped user or a group starts with `system:`, which Kubernetes reserves for its own
    /// components; impersonating it would hand out their powers.
    ReservedIdentity,
    /// The mapped user or a group cannot reach a cluster byte for byte (a control character,
    /// leading or trailing whitespace): sending it would drop or change the identity.
    InvalidName,
}

impl Reason {
    pub const ALL: [Reason; 14] = [
        Reason::Expired,
        Reason::NotYetValid,
        Reason::WrongAudience,
        Reason::WrongIssuer,
        Reason::BadSignature,
        Reason::UnknownKid,
        Reason::AlgNone,
        Reason::AlgHs,
        Reason::AlgNotAllowed,
        Reason::Malformed,
        Reason::MissingClaim,
        Reason::UnverifiedEmail,
        Reason::ReservedIdentity,
        Reason::InvalidName,
    ];

    /// The metric/log label, as found in `AuthError::Rejected { reason }`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::WrongAudience => "wrong_audience",
            Reason::WrongIssuer => "wrong_issuer",
            Reason::BadSignature => "bad_signature",
            Reason::UnknownKid => "unknown_kid",
            Reason::AlgNone => "alg_none",
            Reason::AlgHs => "alg_hs",
            Reason::AlgNotAllowed => "alg_not_allowed",
            Reason::Malformed => "malformed",
            Reason::MissingClaim => "missing_claim",
            Reason::UnverifiedEmail => "unverified_email",
            Reason::ReservedIdentity => "reserved_identity",
            Reason::InvalidName => "invalid_name",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused token: why, and what an operator reading the log needs to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Rejection {
    pub reason: Reason,
    pub detail: String,
}

impl Rejection {
    pub(crate) fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }

    pub(crate) fn malformed(detail: impl Into<String>) -> Self {
        Rejection::new(Reason::Malformed, detail)
    }
}

impl From<Rejection> for AuthError {
    fn from(rejection: Rejection) -> Self {
        AuthError::Rejected {
            reason: rejection.reason.as_str(),
            detail: rejection.detail,
        }
    }
}

/// Why a token could not be verified: refused, or undecidable because the provider is down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("token rejected: {0}")]
    Rejected(#[from] Rejection),
    /// Discovery or JWKS could not be fetched, so the token may well be fine (answer 503).
    #[error("{0}")]
    Unavailable(String),
}

impl From<VerifyError> for AuthError {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::Rejected(rejection) => rejection.into(),
            VerifyError::Unavailable(message) => AuthError::Unavailable(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_snake_case() {
        let labels: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        let mut unique = labels.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), labels.len());
        for label in labels {
            assert!(
                label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{label}"
            );
        }
    }

    #[test]
    fn converts_to_auth_errors() {
        let error: AuthError = Rejection::new(Reason::Expired, "expired 3m ago").into();
        assert_eq!(
            error,
            AuthError::Rejected {
                reason: "expired",
                detail: "expired 3m ago".to_owned()
            }
        );
        assert_eq!(error.reason(), "expired");
        let error: AuthError = VerifyError::Unavailable("idp down".to_owned()).into();
        assert_eq!(error, AuthError::Unavailable("idp down".to_owned()));
        let error: AuthError = VerifyError::from(Rejection::malformed("bad base64")).into();
        assert_eq!(error.reason(), "malformed");
    }
}
