//! The resume credential: unguessable, bound to one session and to the person who opened it.
//!
//! podgate keeps only its SHA-256 (a memory dump or a debug page shows no usable credential)
//! and the owner's user name; a resume must present both the credential and be authenticated
//! as that user, so neither a stolen credential alone (another person's login) nor a session
//! id and offset alone resume anything.

use podgate_auth::TokenDigest;
use podgate_metrics::ResumeFailure;

pub struct ResumeKey {
    owner: String,
    digest: TokenDigest,
}

impl ResumeKey {
    /// A fresh credential for `owner`'s session: the key kept, and the credential to hand the
    /// page once (43 base64url characters, 256 random bits).
    pub fn issue(owner: &str) -> Result<(ResumeKey, String), podgate_auth::login::LoginError> {
        let credential = podgate_auth::login::random_token()?;
        Ok((ResumeKey::of(owner, &credential), credential))
    }

    fn of(owner: &str, credential: &str) -> ResumeKey {
        ResumeKey {
            owner: owner.to_string(),
            digest: TokenDigest::of(credential),
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Whether `user` presenting `credential` may resume. The credential is judged first,
    /// so a wrong one says nothing about whose session the id names.
    pub fn check(&self, user: &str, credential: &str) -> Result<(), ResumeFailure> {
        if TokenDigest::of(credential) != self.digest {
            return Err(ResumeFailure::BadCredential);
        }
        if user != self.owner {
            return Err(ResumeFailure::Forbidden);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_to_the_credential_and_the_owner() {
        let (key, credential) = ResumeKey::issue("alice").expect("randomness");
        assert_eq!(credential.len(), 43);
        let (_, other) = ResumeKey::issue("alice").expect("randomness");
        assert_ne!(credential, other, "fresh each time");
        assert_eq!(key.check("alice", &credential), Ok(()));
        assert_eq!(
            key.check("mallory", &credential),
            Err(ResumeFailure::Forbidden)
        );
        assert_eq!(
            key.check("alice", &other),
            Err(ResumeFailure::BadCredential)
        );
        assert_eq!(
            key.check("mallory", "guess"),
            Err(ResumeFailure::BadCredential)
        );
        assert_eq!(key.check("alice", ""), Err(ResumeFailure::BadCredential));
    }
}
