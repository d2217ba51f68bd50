//! Sealed browser sessions: what the `podgate_session` cookie carries, encrypted and
//! authenticated so the browser can hold it but neither read nor change it.
//!
//! The cookie holds the bearer token itself (an OIDC ID token, or in the demo a static token)
//! or, for the token login, only the SHA-256 digest of the static token (the token itself is
//! never in that cookie, sealed or not; the digest is looked up in the tokens file in force on
//! each request, so the session ends when the token is removed), rather than a reference to
//! server-side state: any replica with the same key can serve the
//! next request, a restart with a configured key keeps everyone logged in, and the token is
//! verified on every request by the same authenticators as a bearer header, so a session can
//! never be worth more than the token inside it.
//!
//! AES-256-GCM with a random 96-bit nonce per seal; the *purpose* ("session", "login", ...) is
//! bound as associated data, so a value sealed for one cookie is rejected as another.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// Key length in bytes (AES-256).
pub const KEY_LEN: usize = 32;

/// Sealed values longer than this are refused before decoding: browsers cap a cookie near
/// 4 KiB, so anything longer did not come from us.
pub const MAX_SEALED_LEN: usize = 8192;

/// Why a key could not be made or a sealed value opened. Messages name the problem, never a key
/// or a token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error(
        "the session key must be {KEY_LEN} bytes, base64-encoded (make one with \
         `head -c32 /dev/urandom | base64`); this one decodes to {0} bytes"
    )]
    KeyLength(usize),
    #[error(
        "the session key is not valid base64 (make one with `head -c32 /dev/urandom | base64`)"
    )]
    KeyEncoding,
    #[error("cannot read the session key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("the system random number generator failed")]
    Random,
    /// Not ours, altered, sealed for another purpose, or sealed with another key (after a
    /// restart without a configured key, or a key rotation).
    #[error("the sealed value is not valid (altered, or sealed with another key)")]
    Invalid,
}

/// The key that seals browser cookies.
pub struct SessionKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

impl SessionKey {
    fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        if bytes.len() != KEY_LEN {
            return Err(SealError::KeyLength(bytes.len()));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SealError::KeyLength(0))?;
        Ok(SessionKey {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    /// A fresh random key: sessions sealed with it end when the process does.
    pub fn generate() -> Result<Self, SealError> {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SealError::Random)?;
        Self::from_bytes(&bytes)
    }

    /// A key given as base64 (standard or URL-safe, padded or not; surrounding whitespace is
    /// ignored so `head -c32 /dev/urandom | base64 > key` works as is).
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| SealError::KeyEncoding)?;
        Self::from_bytes(&bytes)
    }

    /// A key from a file holding its base64 form.
    pub fn load(path: &Path) -> Result<Self, SealError> {
        let text = std::fs::read_to_string(path).map_err(|e| SealError::KeyFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_base64(&text).map_err(|e| SealError::KeyFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Encrypts and authenticates `plaintext` for `purpose`; the result is cookie-safe
    /// (base64url, no padding).
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SealError::Invalid)?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// The plaintext of a value [`seal`](Self::seal)ed with this key for `purpose`.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        if sealed.len() > MAX_SEALED_LEN {
            return Err(SealError::Invalid);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| SealError::Invalid)?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(SealError::Invalid);
        }
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Invalid)?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut body)
            .map_err(|_| SealError::Invalid)?;
        Ok(plain.to_vec())
    }
}

/// The purpose a [`BrowserSession`] is sealed for.
pub const SESSION_PURPOSE: &str = "podgate session v1";

/// What the session cookie holds.
#[derive(Clone, Serialize, Deserialize)]
pub struct BrowserSession {
    /// The bearer token requests are authenticated with.
    pub token: String,
    /// Granted by an OIDC provider with `offline_access`; used when `token` expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Unix seconds after which `token` is no longer accepted (0: no expiry known).
    #[serde(default)]
    pub expires_at: u64,
    /// Names this login across its refreshes: shells opened from it live as long as its
    /// tokens are refreshed (see [`BrowserSession::login_id`]). Empty in cookies sealed before
    /// it existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// For the token login: the hex SHA-256 of the static token it was made with, and `token`
    /// is empty. Requests are authenticated by looking the digest up in the tokens in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_token: Option<String>,
}

impl fmt::Debug for BrowserSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserSession")
            .field("token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at", &self.expires_at)
            .field("id", &self.id)
            .field(
                "static_token",
                &self.static_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl BrowserSession {
    /// A new login's session, with a fresh random id.
    pub fn new(
        token: String,
        refresh_token: Option<String>,
        expires_at: u64,
    ) -> Result<Self, SealError> {
        let mut id = [0u8; 16];
        SystemRandom::new()
            .fill(&mut id)
            .map_err(|_| SealError::Random)?;
        Ok(BrowserSession {
            token,
            refresh_token,
            expires_at,
            id: id.iter().map(|b| format!("{b:02x}")).collect(),
            static_token: None,
        })
    }

    /// A token login's session: the digest of the static token, no token, a fresh id.
    pub fn for_static_token(
        digest: &crate::TokenDigest,
        expires_at: u64,
    ) -> Result<Self, SealError> {
        let mut session = Self::new(String::new(), None, expires_at)?;
        session.static_token = Some(digest.to_hex());
        Ok(session)
    }

    /// The static token digest of a token login's session.
    pub fn static_digest(&self) -> Option<crate::TokenDigest> {
        self.static_token
            .as_deref()
            .and_then(crate::TokenDigest::from_hex)
    }

    /// The id of the login this session belongs to, if it has one.
    pub fn login_id(&self) -> Option<&str> {
        (!self.id.is_empty()).then_some(self.id.as_str())
    }

    pub fn seal(&self, key: &SessionKey) -> Result<String, SealError> {
        let json = serde_json::to_vec(self).map_err(|_| SealError::Invalid)?;
        key.seal(SESSION_PURPOSE, &json)
    }

    pub fn open(key: &SessionKey, sealed: &str) -> Result<Self, SealError> {
        let json = key.open(SESSION_PURPOSE, sealed)?;
        serde_json::from_slice(&json).map_err(|_| SealError::Invalid)
    }

    /// Whether the token is past its expiry, or within `margin` seconds of it, at `now`.
    pub fn expires_within(&self, now: u64, margin: u64) -> bool {
        self.expires_at != 0 && now.saturating_add(margin) >= self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SessionKey {
        SessionKey::generate().expect("key")
    }

    #[test]
    fn round_trip() {
        let k = key();
        let sealed = k.seal("p", b"hello").expect("sealed");
        assert!(
            sealed
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(k.open("p", &sealed).expect("opened"), b"hello");
    }

    #[test]
    fn nonces_differ() {
        let k = key();
        assert_ne!(k.seal("p", b"x").ok(), k.seal("p", b"x").ok());
    }

    #[test]
    fn purpose_is_bound() {
        let k = key();
        let sealed = k.seal("login", b"x").expect("sealed");
        assert_eq!(k.open("session", &sealed), Err(SealError::Invalid));
    }

    #[test]
    fn other_key_altered_or_garbage_refused() {
        let (a, b) = (key(), key());
        let sealed = a.seal("p", b"secret").expect("sealed");
        assert_eq!(b.open("p", &sealed), Err(SealError::Invalid));
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed).expect("b64");
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert_eq!(
            a.open("p", &URL_SAFE_NO_PAD.encode(raw)),
            Err(SealError::Invalid)
        );
        for junk in ["", "!!", "AAAA", &"A".repeat(MAX_SEALED_LEN + 1)] {
            assert_eq!(a.open("p", junk), Err(SealError::Invalid));
        }
    }

    #[test]
    fn keys_from_base64() {
        let b64 = STANDARD.encode([7u8; 32]);
        let a = SessionKey::from_base64(&format!("{b64}\n")).expect("standard");
        let b = SessionKey::from_base64(&URL_SAFE_NO_PAD.encode([7u8; 32])).expect("url-safe");
        let sealed = a.seal("p", b"x").expect("sealed");
        assert_eq!(b.open("p", &sealed).expect("same key"), b"x");
        assert_eq!(
            SessionKey::from_base64(&STANDARD.encode([1u8; 16])).err(),
            Some(SealError::KeyLength(16))
        );
        assert_eq!(
            SessionKey::from_base64("not base64 at all!").err(),
            Some(SealError::KeyEncoding)
        );
    }

    #[test]
    fn session_round_trip_and_expiry() {
        let k = key();
        let s = BrowserSession::new("t".into(), Some("r".into()), 100).expect("session");
        assert_eq!(s.login_id().map(str::len), Some(32));
        assert_ne!(
            BrowserSession::new("t".into(), None, 0)
                .expect("session")
                .id,
            s.id
        );
        let opened = BrowserSession::open(&k, &s.seal(&k).expect("sealed")).expect("opened");
        assert_eq!(opened.token, "t");
        assert_eq!(opened.refresh_token.as_deref(), Some("r"));
        assert_eq!(opened.id, s.id);
        assert!(!opened.expires_within(50, 10));
        assert!(opened.expires_within(95, 10));
        assert!(opened.expires_within(100, 0));
        let forever = BrowserSession {
            expires_at: 0,
            ..opened
        };
        assert!(!forever.expires_within(u64::MAX, 10));
        let secret = BrowserSession::new(
            "secret-token-value".into(),
            Some("secret-refresh-value".into()),
            0,
        )
        .expect("session");
        assert!(!format!("{secret:?}").contains("secret-"));
    }

    #[test]
    fn token_login_sessions_carry_the_digest_only() {
        let k = key();
        let digest = crate::TokenDigest::of("s3cr3t-static-token");
        let s = BrowserSession::for_static_token(&digest, 100).expect("session");
        let sealed = s.seal(&k).expect("sealed");
        let opened = BrowserSession::open(&k, &sealed).expect("opened");
        assert_eq!(opened.static_digest(), Some(digest));
        assert!(opened.token.is_empty() && opened.refresh_token.is_none());
        let plain = k.open(SESSION_PURPOSE, &sealed).expect("plain");
        let plain = String::from_utf8(plain).expect("json");
        assert!(!plain.contains("s3cr3t"), "{plain}");
        assert!(!format!("{opened:?}").contains(&digest.to_hex()));
        // A cookie sealed before the field existed opens without it.
        let old = BrowserSession::new("t".into(), None, 0).expect("session");
        let reopened = BrowserSession::open(&k, &old.seal(&k).expect("sealed")).expect("opened");
        assert_eq!(reopened.static_digest(), None);
    }
}
