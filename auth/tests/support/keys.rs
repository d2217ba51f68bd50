//! Test signing keys and token crafting. Keys are generated at run time, never checked in:
//! ECDSA with ring; RSA (which ring cannot generate) with `openssl`, or `node` when openssl is
//! missing, as PKCS#8 DER that ring then signs with.
//!
//! One file, included by `#[path]` in two places: the auth crate's unit tests
//! (`auth/src/oidc/mod.rs`, which cannot depend on the test kit, since the kit depends on the
//! auth crate) and the test kit (`tests/src/oidc/mod.rs`, as `podgate_testkit::oidc::keys`),
//! which every integration test and the benchmark use.
#![allow(dead_code)]

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{Value, json};

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A private key whose public half a test publishes in a JWKS.
pub struct TestKey {
    pub kid: String,
    pub alg: &'static str,
    pair: Pair,
    pkcs8: Vec<u8>,
}

impl TestKey {
    pub fn es256(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng)
            .expect("generates a P-256 key")
            .as_ref()
            .to_vec();
        let pair = EcdsaKeyPair::from_pkcs8(alg, &pkcs8, &rng).expect("loads the P-256 key");
        TestKey {
            kid: kid.to_owned(),
            alg: "ES256",
            pair: Pair::Ec(pair),
            pkcs8,
        }
    }

    /// A fresh 2048-bit RSA key, or `None` when neither openssl nor node is installed.
    pub fn rs256(kid: &str) -> Option<TestKey> {
        generate_rsa_pkcs8().map(|der| TestKey::rs256_from_pkcs8(kid, der))
    }

    pub fn rs256_from_pkcs8(kid: &str, pkcs8: Vec<u8>) -> TestKey {
        let pair = RsaKeyPair::from_pkcs8(&pkcs8).expect("loads the RSA key");
        TestKey {
            kid: kid.to_owned(),
            alg: "RS256",
            pair: Pair::Rsa(pair),
            pkcs8,
        }
    }

    /// The same key material under another `kid`.
    pub fn renamed(&self, kid: &str) -> TestKey {
        match self.pair {
            Pair::Rsa(_) => TestKey::rs256_from_pkcs8(kid, self.pkcs8.clone()),
            Pair::Ec(_) => {
                let rng = SystemRandom::new();
                let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
                let pair = EcdsaKeyPair::from_pkcs8(alg, &self.pkcs8, &rng).expect("reloads");
                TestKey {
                    kid: kid.to_owned(),
                    alg: self.alg,
                    pair: Pair::Ec(pair),
                    pkcs8: self.pkcs8.clone(),
                }
            }
        }
    }

    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public JWK, as a provider publishes it.
    pub fn public_jwk(&self) -> Value {
        match &self.pair {
            Pair::Rsa(pair) => {
                let public = signature::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
                json!({"kty": "RSA", "kid": self.kid, "alg": self.alg, "use": "sig",
                       "n": b64(&public.n), "e": b64(&public.e)})
            }
            Pair::Ec(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "alg": self.alg,
                       "use": "sig", "x": b64(&point[1..33]), "y": b64(&point[33..])})
            }
        }
    }

    /// The public key bytes an attacker would use as an HMAC secret: DER `RSAPublicKey`, or
    /// the SEC1 point.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match &self.pair {
            Pair::Rsa(pair) => pair.public().as_ref().to_vec(),
            Pair::Ec(pair) => pair.public_key().as_ref().to_vec(),
        }
    }

    pub fn sign_bytes(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Rsa(pair) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .expect("RSA signs");
                sig
            }
            Pair::Ec(pair) => pair
                .sign(&rng, message)
                .expect("ECDSA signs")
                .as_ref()
                .to_vec(),
        }
    }

    /// The header this key signs with by default.
    pub fn header(&self) -> Value {
        json!({"alg": self.alg, "kid": self.kid, "typ": "JWT"})
    }

    /// A token for `claims`, signed by this key under its usual header.
    pub fn token(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }

    /// A token with any header, signed by this key (whatever the header claims).
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let sig = self.sign_bytes(input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }
}

/// `base64url(header).base64url(claims)`.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// An unsigned token (`alg: none`, empty signature).
pub fn unsigned(claims: &Value) -> String {
    format!("{}.", signing_input(&json!({"alg": "none"}), claims))
}

/// A token "signed" with HMAC-SHA256 under `secret` (for the algorithm-confusion attack, the
/// issuer's public key), naming `kid`.
pub fn hs256(kid: &str, claims: &Value, secret: &[u8]) -> String {
    let input = signing_input(&json!({"alg": "HS256", "kid": kid, "typ": "JWT"}), claims);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// A 2048-bit RSA private key as PKCS#8 DER, from openssl or else node.
pub fn generate_rsa_pkcs8() -> Option<Vec<u8>> {
    let openssl = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            // PEM "PRIVATE KEY" is PKCS#8 (openssl 3 writes PKCS#1 for -outform DER).
            let pem = String::from_utf8(o.stdout).ok()?;
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            STANDARD.decode(body).ok()
        });
    openssl.or_else(|| {
        let script = "process.stdout.write(require('crypto').generateKeyPairSync('rsa', \
                      {modulusLength: 2048}).privateKey.export({type: 'pkcs8', format: 'der'}) \
                      .toString('base64'))";
        Command::new("node")
            .args(["-e", script])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| STANDARD.decode(o.stdout).ok())
    })
}

/// For tests that need a tool the machine may lack: `true` to go on; `false` (after printing
/// why) to skip. Under CI (`CI=true`) a missing tool fails the test instead, so coverage cannot
/// silently vanish there.
pub fn available(present: bool, what: &str) -> bool {
    if present {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} is required under CI=true");
    }
    eprintln!(
        "\n!!!!!! SKIPPED: {what} is not available (set CI=true to make this a failure) !!!!!!\n"
    );
    false
}
