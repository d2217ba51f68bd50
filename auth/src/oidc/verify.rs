//! Signature checks with ring. Pure: given a header, the issuer's allow-list and a key set, says
//! whether the signature holds and which key made it.
//!
//! The order matters and is the defence against algorithm confusion: the header's `alg` is
//! classified first (`none` and `HS*` die here, before any key is touched), then held against
//! the issuer's allow-list, and finally a key is used only if its own type (and pinned `alg`)
//! fits that algorithm. The header never chooses which maths runs on a key.

use ring::signature::{self, UnparsedPublicKey};

use super::alg::{self, Algorithm, HeaderAlg};
use super::jwk::{Jwk, KeySet, PublicKey};
use super::rejection::{Reason, Rejection};

/// Resolves the header's `alg` against the issuer's allow-list.
pub(crate) fn check_alg(alg: &str, allowed: &[Algorithm]) -> Result<Algorithm, Rejection> {
    match alg::classify(alg) {
        HeaderAlg::None => Err(Rejection::new(
            Reason::AlgNone,
            "the token is unsigned (alg none)",
        )),
        HeaderAlg::Hmac => Err(Rejection::new(
            Reason::AlgHs,
            "the token is HMAC-signed (alg HS*); an OpenID provider's keys are public, so such \
             a token could have been made by anyone",
        )),
        HeaderAlg::Known(alg) if allowed.contains(&alg) => Ok(alg),
        HeaderAlg::Known(alg) => Err(Rejection::new(
            Reason::AlgNotAllowed,
            format!(
                "alg {alg} is not in this issuer's allowed algorithms ({})",
                allowed
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        HeaderAlg::Unsupported => Err(Rejection::new(
            Reason::AlgNotAllowed,
            "the token's alg is not a supported signature algorithm",
        )),
    }
}

/// Verifies one signature with one key. The caller has checked `key.accepts(alg)`.
pub(crate) fn verify_with(key: &Jwk, alg: Algorithm, message: &[u8], sig: &[u8]) -> bool {
    match (&key.key, alg) {
        (PublicKey::Rsa { n, e }, _) => {
            let params = match alg {
                Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
                _ => return false,
            };
            signature::RsaPublicKeyComponents { n, e }
                .verify(params, message, sig)
                .is_ok()
        }
        (PublicKey::P256(point), Algorithm::ES256) => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, sig)
                .is_ok()
        }
        (PublicKey::P384(point), Algorithm::ES384) => {
            UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                .verify(message, sig)
                .is_ok()
        }
        (PublicKey::Ed25519(x), Algorithm::EdDSA) => UnparsedPublicKey::new(&signature::ED25519, x)
            .verify(message, sig)
            .is_ok(),
        _ => false,
    }
}

/// What trying a key set on a token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyMatch {
    /// A key verified the signature.
    Verified,
    /// Keys that fit were tried and none verified.
    BadSignature,
    /// Keys with this `kid` exist but none can verify this algorithm.
    AlgMismatch(&'static str),
    /// No key with this `kid` (or, without a `kid`, no key fitting the algorithm).
    NoKey,
}

/// Tries the keys a token may have been signed with.
pub(crate) fn find_and_verify(
    keys: &KeySet,
    kid: Option<&str>,
    alg: Algorithm,
    message: &[u8],
    sig: &[u8],
) -> KeyMatch {
    let mut named = None;
    let mut tried = false;
    for key in keys.candidates(kid) {
        if !key.accepts(alg) {
            named.get_or_insert(key.key.kind().describe());
            continue;
        }
        tried = true;
        if verify_with(key, alg, message, sig) {
            return KeyMatch::Verified;
        }
    }
    match (tried, named, kid) {
        (true, _, _) => KeyMatch::BadSignature,
        (false, Some(kind), Some(_)) => KeyMatch::AlgMismatch(kind),
        (false, _, _) => KeyMatch::NoKey,
    }
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

    use super::*;

    fn ec_key(kid: &str) -> (EcdsaKeyPair, Jwk) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("generates");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("loads");
        let jwk = Jwk {
            kid: Some(kid.to_owned()),
            alg: None,
            key: PublicKey::P256(pair.public_key().as_ref().to_vec()),
        };
        (pair, jwk)
    }

    fn sign(pair: &EcdsaKeyPair, message: &[u8]) -> Vec<u8> {
        pair.sign(&SystemRandom::new(), message)
            .expect("signs")
            .as_ref()
            .to_vec()
    }

    fn set(keys: Vec<Jwk>) -> KeySet {
        let jwks = serde_json::json!({"keys": keys.iter().map(|k| {
            use base64::Engine as _;
            let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
            let PublicKey::P256(p) = &k.key else { panic!("P-256 only here") };
            serde_json::json!({"kty": "EC", "crv": "P-256", "kid": k.kid, "alg": k.alg,
                "x": b64(&p[1..33]), "y": b64(&p[33..])})
        }).collect::<Vec<_>>()});
        KeySet::parse(jwks.to_string().as_bytes()).expect("parses")
    }

    #[test]
    fn none_and_hmac_are_refused_whatever_the_allow_list() {
        let all = Algorithm::ALL;
        assert_eq!(
            check_alg("none", &all).map_err(|r| r.reason),
            Err(Reason::AlgNone)
        );
        assert_eq!(
            check_alg("None", &all).map_err(|r| r.reason),
            Err(Reason::AlgNone)
        );
        for hs in ["HS256", "HS384", "HS512", "hs256"] {
            assert_eq!(
                check_alg(hs, &all).map_err(|r| r.reason),
                Err(Reason::AlgHs)
            );
        }
    }

    #[test]
    fn the_allow_list_decides() {
        let default = Algorithm::DEFAULT;
        assert_eq!(check_alg("RS256", &default), Ok(Algorithm::RS256));
        assert_eq!(check_alg("ES256", &default), Ok(Algorithm::ES256));
        let refused = check_alg("PS256", &default).unwrap_err();
        assert_eq!(refused.reason, Reason::AlgNotAllowed);
        assert!(
            refused.detail.contains("RS256, ES256"),
            "{}",
            refused.detail
        );
        let unknown = check_alg("XYZ", &default).unwrap_err();
        assert_eq!(unknown.reason, Reason::AlgNotAllowed);
        assert!(!unknown.detail.contains("XYZ"), "no echo of token data");
        assert_eq!(
            check_alg("ES384", &[Algorithm::ES384]),
            Ok(Algorithm::ES384)
        );
    }

    #[test]
    fn verifies_es256_and_finds_the_key() {
        let (pair, jwk) = ec_key("k1");
        let (other, other_jwk) = ec_key("k2");
        let keys = set(vec![jwk.clone(), other_jwk]);
        let message = b"header.claims";
        let sig = sign(&pair, message);
        assert!(verify_with(&jwk, Algorithm::ES256, message, &sig));
        assert!(!verify_with(&jwk, Algorithm::ES256, b"header.claimz", &sig));
        let alg = Algorithm::ES256;
        assert_eq!(
            find_and_verify(&keys, Some("k1"), alg, message, &sig),
            KeyMatch::Verified
        );
        // Signed by k2 but claiming to be k1: no second chance with other keys.
        let by_other = sign(&other, message);
        assert_eq!(
            find_and_verify(&keys, Some("k1"), alg, message, &by_other),
            KeyMatch::BadSignature
        );
        // Without a kid every fitting key is tried.
        assert_eq!(
            find_and_verify(&keys, None, alg, message, &by_other),
            KeyMatch::Verified
        );
        assert_eq!(
            find_and_verify(&keys, Some("k3"), alg, message, &sig),
            KeyMatch::NoKey
        );
        // The header says RS256 for an EC key: the key decides, and refuses.
        assert_eq!(
            find_and_verify(&keys, Some("k1"), Algorithm::RS256, message, &sig),
            KeyMatch::AlgMismatch("an EC P-256 key")
        );
        assert_eq!(
            find_and_verify(&keys, None, Algorithm::RS256, message, &sig),
            KeyMatch::NoKey
        );
        // Garbage signatures are just bad signatures.
        assert_eq!(
            find_and_verify(&keys, Some("k1"), alg, message, b""),
            KeyMatch::BadSignature
        );
    }

    #[test]
    fn verifies_rs256_from_a_published_jwk() {
        use crate::oidc::test_keys::{TestKey, available};
        let key = TestKey::rs256("r1");
        if !available(key.is_some(), "openssl or node, to generate an RSA key") {
            return;
        }
        let key = key.expect("checked");
        let jwks = serde_json::json!({"keys": [key.public_jwk()]});
        let keys = KeySet::from_value(jwks).expect("parses");
        let message = b"header.claims";
        let sig = key.sign_bytes(message);
        let check = |alg, msg: &[u8], sig: &[u8]| find_and_verify(&keys, Some("r1"), alg, msg, sig);
        assert_eq!(check(Algorithm::RS256, message, &sig), KeyMatch::Verified);
        assert_eq!(
            check(Algorithm::RS256, b"header.claimz", &sig),
            KeyMatch::BadSignature
        );
        let mut flipped = sig.clone();
        flipped[10] ^= 1;
        assert_eq!(
            check(Algorithm::RS256, message, &flipped),
            KeyMatch::BadSignature
        );
        // The JWK pins RS256: PS256 may not use it, nor may ES256 (wrong key type).
        assert_eq!(
            check(Algorithm::PS256, message, &sig),
            KeyMatch::AlgMismatch("an RSA key")
        );
        assert_eq!(
            check(Algorithm::ES256, message, &sig),
            KeyMatch::AlgMismatch("an RSA key")
        );
    }

    #[test]
    fn a_pinned_alg_on_the_key_wins() {
        let (pair, mut jwk) = ec_key("k1");
        jwk.alg = Some("ES384".to_owned());
        let keys = set(vec![jwk]);
        let sig = sign(&pair, b"m");
        assert_eq!(
            find_and_verify(&keys, Some("k1"), Algorithm::ES256, b"m", &sig),
            KeyMatch::AlgMismatch("an EC P-256 key")
        );
    }
}
