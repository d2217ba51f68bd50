//! JOSE signature algorithms: the ones podgate verifies, and the ones it refuses on sight.
//!
//! Only asymmetric algorithms exist here. `none` (unsigned) and `HS256/384/512` (a shared
//! secret) have no variant at all: an identity provider's keys are public, so a gateway that
//! accepted an HMAC "signed" with the public key would let anyone mint tokens (the classic
//! algorithm-confusion attack). The config parser refuses them with an explanation, and token
//! headers naming them are rejected before any key is looked at.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// An asymmetric JWS algorithm podgate can verify (RFC 7518 names, case-sensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256; the most common IdP default.
    RS256,
    RS384,
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    PS384,
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

/// The key type an algorithm needs: a JWK of another type never verifies it, whatever the
/// token's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            KeyKind::Rsa => "an RSA key",
            KeyKind::P256 => "an EC P-256 key",
            KeyKind::P384 => "an EC P-384 key",
            KeyKind::Ed25519 => "an Ed25519 key",
        }
    }
}

impl Algorithm {
    pub const ALL: [Algorithm; 9] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    /// The default allow-list: what nearly every provider signs with.
    pub const DEFAULT: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];

    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    pub(crate) const fn key_kind(self) -> KeyKind {
        match self {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => KeyKind::Rsa,
            Algorithm::ES256 => KeyKind::P256,
            Algorithm::ES384 => KeyKind::P384,
            Algorithm::EdDSA => KeyKind::Ed25519,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a token header's `alg` turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderAlg {
    /// `none`, in any letter case: an unsigned token.
    None,
    /// `HS256` and friends: a MAC, never acceptable from a public-key issuer.
    Hmac,
    Known(Algorithm),
    Unsupported,
}

/// Classifies a header `alg`. `none` and `HS*` are matched case-insensitively so that `None`
/// or `hs256` are reported for what they attempt rather than as merely unknown.
pub(crate) fn classify(alg: &str) -> HeaderAlg {
    if alg.eq_ignore_ascii_case("none") {
        return HeaderAlg::None;
    }
    if alg.len() >= 2 && alg.as_bytes()[..2].eq_ignore_ascii_case(b"HS") {
        return HeaderAlg::Hmac;
    }
    Algorithm::ALL
        .into_iter()
        .find(|a| a.as_str() == alg)
        .map_or(HeaderAlg::Unsupported, HeaderAlg::Known)
}

/// Why a configured algorithm name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseAlgorithmError(String);

impl FromStr for Algorithm {
    type Err = ParseAlgorithmError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match classify(name) {
            HeaderAlg::Known(alg) => Ok(alg),
            HeaderAlg::None => Err(ParseAlgorithmError(format!(
                "{name:?} is never accepted: unsigned tokens would let anyone choose their \
                 identity"
            ))),
            HeaderAlg::Hmac => Err(ParseAlgorithmError(format!(
                "{name:?} is never accepted: HMAC algorithms use a shared secret, and an \
                 OpenID provider's keys are public, so anyone could forge tokens with them"
            ))),
            HeaderAlg::Unsupported => Err(ParseAlgorithmError(format!(
                "unknown algorithm {name:?}; supported: {} (names are case-sensitive)",
                Algorithm::ALL.map(Algorithm::as_str).join(", ")
            ))),
        }
    }
}

impl Serialize for Algorithm {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_header_algorithms() {
        assert_eq!(classify("RS256"), HeaderAlg::Known(Algorithm::RS256));
        assert_eq!(classify("EdDSA"), HeaderAlg::Known(Algorithm::EdDSA));
        for none in ["none", "None", "NONE", "nOnE"] {
            assert_eq!(classify(none), HeaderAlg::None, "{none}");
        }
        for hmac in ["HS256", "HS384", "HS512", "hs256", "Hs999"] {
            assert_eq!(classify(hmac), HeaderAlg::Hmac, "{hmac}");
        }
        for other in ["rs256", "RS1", "", "ES512", "RSA-OAEP", "H", "é", "Hé"] {
            assert_eq!(classify(other), HeaderAlg::Unsupported, "{other:?}");
        }
    }

    #[test]
    fn every_algorithm_round_trips_and_needs_its_key_kind() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>(), Ok(alg));
            assert_eq!(alg.to_string(), alg.as_str());
        }
        assert_eq!(Algorithm::PS384.key_kind(), KeyKind::Rsa);
        assert_eq!(Algorithm::ES256.key_kind(), KeyKind::P256);
        assert_eq!(Algorithm::ES384.key_kind(), KeyKind::P384);
        assert_eq!(Algorithm::EdDSA.key_kind(), KeyKind::Ed25519);
    }

    #[test]
    fn config_names_none_and_hmac_with_a_reason() {
        let none = "none".parse::<Algorithm>().unwrap_err().to_string();
        assert!(none.contains("never accepted"), "{none}");
        let hs = "HS256".parse::<Algorithm>().unwrap_err().to_string();
        assert!(
            hs.contains("never accepted") && hs.contains("forge"),
            "{hs}"
        );
        let unknown = "rs256".parse::<Algorithm>().unwrap_err().to_string();
        assert!(
            unknown.contains("supported: RS256") && unknown.contains("case-sensitive"),
            "{unknown}"
        );
        let yaml: Result<Vec<Algorithm>, _> = serde_norway::from_str("[RS256, HS256]");
        assert!(yaml.unwrap_err().to_string().contains("never accepted"));
        let yaml: Vec<Algorithm> = serde_norway::from_str("[ES384, PS256]").expect("parses");
        assert_eq!(yaml, [Algorithm::ES384, Algorithm::PS256]);
        assert_eq!(
            serde_json::to_string(&Algorithm::EdDSA).ok().as_deref(),
            Some("\"EdDSA\"")
        );
    }
}
