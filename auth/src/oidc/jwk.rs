//! JSON Web Key Sets (RFC 7517): the issuer's public signing keys, decoded once per fetch into
//! the raw forms ring verifies with. Pure.
//!
//! A key podgate cannot use (encryption keys, symmetric `oct` keys, unknown curves, RSA moduli
//! under 2048 bits, bad encodings) is skipped with a warning rather than failing the whole set:
//! one odd key at the provider must not lock every user out.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::alg::{Algorithm, KeyKind};

/// ring's RSA verification accepts 2048..=8192-bit moduli.
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 8192;

/// A verification key in the form ring takes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// Big-endian modulus and exponent, leading zeros stripped.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed SEC1 point `04 || x || y`.
    P256(Vec<u8>),
    P384(Vec<u8>),
    Ed25519(Vec<u8>),
}

impl PublicKey {
    pub(crate) fn kind(&self) -> KeyKind {
        match self {
            PublicKey::Rsa { .. } => KeyKind::Rsa,
            PublicKey::P256(_) => KeyKind::P256,
            PublicKey::P384(_) => KeyKind::P384,
            PublicKey::Ed25519(_) => KeyKind::Ed25519,
        }
    }
}

/// One usable signing key.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Jwk {
    pub(crate) kid: Option<String>,
    /// The key's `alg`, when the JWKS pins one: then only that algorithm may use it.
    pub(crate) alg: Option<String>,
    pub(crate) key: PublicKey,
}

impl Jwk {
    /// Whether this key may verify a token signed with `alg`: the key type must fit and a
    /// pinned `alg` must be the same. This, not the token header, decides which maths runs.
    pub(crate) fn accepts(&self, alg: Algorithm) -> bool {
        self.key.kind() == alg.key_kind() && self.alg.as_deref().is_none_or(|a| a == alg.as_str())
    }
}

/// The usable keys of one JWKS document.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| k.kid.as_deref().unwrap_or("-")))
            .finish()
    }
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawKey {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

impl KeySet {
    /// Parses a JWKS document. Errors only when the document itself is unusable (not JSON, no
    /// `keys` array, or no usable key at all); individual bad keys are skipped and logged.
    pub fn parse(json: &[u8]) -> Result<KeySet, String> {
        let value = serde_json::from_slice(json).map_err(|e| format!("not JSON: {e}"))?;
        Self::from_value(value)
    }

    /// [`parse`](Self::parse) for a document already read as JSON.
    pub fn from_value(json: serde_json::Value) -> Result<KeySet, String> {
        let raw: RawSet = serde_json::from_value(json)
            .map_err(|e| format!("not a JWKS document (a JSON object with \"keys\"): {e}"))?;
        let total = raw.keys.len();
        let mut keys = Vec::with_capacity(total);
        for value in raw.keys {
            let kid = value
                .get("kid")
                .and_then(|k| k.as_str())
                .unwrap_or("-")
                .to_owned();
            match serde_json::from_value::<RawKey>(value)
                .map_err(|e| e.to_string())
                .and_then(parse_key)
            {
                Ok(Some(jwk)) => keys.push(jwk),
                Ok(None) => {}
                Err(why) => tracing::warn!(kid, "skipping a JWKS key podgate cannot use: {why}"),
            }
        }
        if keys.is_empty() {
            return Err(format!(
                "none of the {total} keys is a usable signing key (RSA >= 2048 bits, EC P-256 or \
                 P-384, Ed25519)"
            ));
        }
        Ok(KeySet { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys a token with this `kid` may have been signed with: those with the same `kid`,
    /// or every key when the token names none (allowed by RFC 7515 for single-key issuers).
    pub(crate) fn candidates<'a>(&'a self, kid: Option<&'a str>) -> impl Iterator<Item = &'a Jwk> {
        self.keys
            .iter()
            .filter(move |k| kid.is_none() || k.kid.as_deref() == kid)
    }

    /// Whether `newer` lacks a key this set has: a key was withdrawn, so tokens verified with
    /// it must be verified again.
    pub(crate) fn lost_keys_in(&self, newer: &KeySet) -> bool {
        self.keys.iter().any(|k| !newer.keys.contains(k))
    }
}

/// `Ok(None)`: a key that is fine but not for us (encryption, symmetric); skipped quietly.
fn parse_key(raw: RawKey) -> Result<Option<Jwk>, String> {
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    if raw
        .key_ops
        .as_ref()
        .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
    {
        return Ok(None);
    }
    let field = |name: &str, value: Option<String>| -> Result<Vec<u8>, String> {
        let value = value.ok_or_else(|| format!("{} key without {name:?}", raw.kty))?;
        URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| format!("{name:?} is not unpadded base64url"))
    };
    let key = match (raw.kty.as_str(), raw.crv.as_deref()) {
        ("oct", _) => return Ok(None),
        ("RSA", _) => {
            let n = strip_leading_zeros(field("n", raw.n)?);
            let e = strip_leading_zeros(field("e", raw.e)?);
            let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(format!(
                    "RSA modulus of {bits} bits (must be {MIN_RSA_BITS} to {MAX_RSA_BITS})"
                ));
            }
            PublicKey::Rsa { n, e }
        }
        ("EC", Some(crv @ ("P-256" | "P-384"))) => {
            let size = if crv == "P-256" { 32 } else { 48 };
            let (x, y) = (field("x", raw.x)?, field("y", raw.y)?);
            if x.len() != size || y.len() != size {
                return Err(format!("{crv} coordinates must be {size} bytes each"));
            }
            let point = [&[4u8][..], &x, &y].concat();
            if size == 32 {
                PublicKey::P256(point)
            } else {
                PublicKey::P384(point)
            }
        }
        ("OKP", Some("Ed25519")) => {
            let x = field("x", raw.x)?;
            if x.len() != 32 {
                return Err("Ed25519 key must be 32 bytes".to_owned());
            }
            PublicKey::Ed25519(x)
        }
        (kty, crv) => {
            return Err(format!(
                "unsupported key type {kty:?}{}",
                crv.map(|c| format!(" on curve {c:?}")).unwrap_or_default()
            ));
        }
    };
    Ok(Some(Jwk {
        kid: raw.kid,
        alg: raw.alg,
        key,
    }))
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn rsa(kid: &str, bits: usize) -> serde_json::Value {
        let mut n = vec![0xc5; bits / 8];
        n.insert(0, 0); // a leading zero some providers emit
        json!({"kty": "RSA", "kid": kid, "n": b64(&n), "e": "AQAB"})
    }

    fn ec(kid: &str) -> serde_json::Value {
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(&[1; 32]), "y": b64(&[2; 32])})
    }

    fn parse(keys: Vec<serde_json::Value>) -> Result<KeySet, String> {
        KeySet::parse(json!({ "keys": keys }).to_string().as_bytes())
    }

    fn kids(set: &KeySet) -> Vec<Option<String>> {
        set.keys.iter().map(|k| k.kid.clone()).collect()
    }

    #[test]
    fn parses_usable_keys_and_skips_the_rest() {
        let set = parse(vec![
            rsa("r1", 2048),
            ec("e1"),
            json!({"kty": "EC", "crv": "P-384", "x": b64(&[1; 48]), "y": b64(&[2; 48])}),
            json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(&[7; 32])}),
            // Skipped: not for signatures, symmetric, too small, unsupported, broken.
            json!({"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"}),
            json!({"kty": "RSA", "kid": "wrap", "key_ops": ["wrapKey"], "n": "AQAB", "e": "AQAB"}),
            json!({"kty": "oct", "kid": "mac", "k": "c2VjcmV0"}),
            rsa("small", 1024),
            json!({"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"}),
            json!({"kty": "EC", "crv": "P-256", "kid": "short", "x": b64(&[1; 31]), "y": b64(&[2; 32])}),
            json!({"kty": "RSA", "kid": "nobase64", "n": "+/+/", "e": "AQAB"}),
            json!({"kty": "RSA", "kid": "no-n", "e": "AQAB"}),
            json!({"kid": "no-kty"}),
        ])
        .expect("parses");
        assert_eq!(
            kids(&set),
            [
                Some("r1".to_owned()),
                Some("e1".to_owned()),
                None,
                Some("ed".to_owned())
            ]
        );
        assert_eq!(format!("{set:?}"), r#"["r1", "e1", "-", "ed"]"#);
        let PublicKey::Rsa { n, e } = &set.keys[0].key else {
            panic!("an RSA key")
        };
        assert_eq!((n.len(), e.as_slice()), (256, &[1, 0, 1][..]));
        let PublicKey::P256(point) = &set.keys[1].key else {
            panic!("a P-256 key")
        };
        assert_eq!((point.len(), point[0]), (65, 4));
        assert!(matches!(&set.keys[2].key, PublicKey::P384(p) if p.len() == 97));
    }

    #[test]
    fn documents_without_usable_keys_are_errors() {
        assert!(parse(vec![]).unwrap_err().contains("none of the 0 keys"));
        assert!(
            parse(vec![rsa("small", 1024)])
                .unwrap_err()
                .contains("none of the 1 keys")
        );
        assert!(KeySet::parse(b"<html>").unwrap_err().contains("not JSON"));
        assert!(
            KeySet::parse(b"[]")
                .unwrap_err()
                .contains("not a JWKS document")
        );
        assert!(KeySet::parse(br#"{"keys": {}}"#).is_err());
    }

    #[test]
    fn candidates_by_kid() {
        let set = parse(vec![rsa("a", 2048), ec("b"), ec("a")]).expect("parses");
        assert_eq!(set.candidates(Some("a")).count(), 2);
        assert_eq!(set.candidates(Some("b")).count(), 1);
        assert_eq!(set.candidates(Some("z")).count(), 0);
        assert_eq!(set.candidates(None).count(), 3);
    }

    #[test]
    fn keys_accept_only_their_algorithms() {
        let mut pinned = rsa("r", 2048);
        pinned["alg"] = json!("RS256");
        let set = parse(vec![pinned, rsa("free", 2048), ec("e")]).expect("parses");
        let [pinned, free, ec] = &set.keys[..] else {
            panic!("three keys")
        };
        assert!(pinned.accepts(Algorithm::RS256));
        assert!(!pinned.accepts(Algorithm::PS256));
        assert!(free.accepts(Algorithm::PS512));
        assert!(!free.accepts(Algorithm::ES256));
        assert!(ec.accepts(Algorithm::ES256));
        assert!(!ec.accepts(Algorithm::ES384));
        assert!(!ec.accepts(Algorithm::RS256));
    }

    #[test]
    fn detects_withdrawn_keys() {
        let old = parse(vec![rsa("a", 2048), ec("b")]).expect("parses");
        let added = parse(vec![ec("c"), rsa("a", 2048), ec("b")]).expect("parses");
        let dropped = parse(vec![ec("c"), ec("b")]).expect("parses");
        assert!(!old.lost_keys_in(&added));
        assert!(old.lost_keys_in(&dropped));
        assert!(!old.lost_keys_in(&old.clone()));
    }
}
