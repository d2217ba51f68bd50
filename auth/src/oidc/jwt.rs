//! Compact JWS parsing (RFC 7515 §7.1): `base64url(header).base64url(claims).base64url(sig)`.
//! Pure and allocation-bounded; nothing here trusts what it parses; [`super::verify`] does the
//! cryptography and [`super::claims`] the semantics.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::rejection::Rejection;

/// Larger tokens are refused before decoding. Headers are bounded upstream too, but a verifier
/// should not rely on its caller for that; 64 KiB leaves room for very long group lists.
pub const MAX_TOKEN_BYTES: usize = 64 << 10;

/// A JOSE header is a few dozen bytes; anything longer is not one we issued or want.
const MAX_HEADER_SEGMENT: usize = 4 << 10;

/// The JOSE header fields podgate reads. Others (`typ`, `cty`, `x5t`...) are ignored, and so are
/// `jku`, `jwk` and `x5u` on purpose: keys come only from the configured issuer's JWKS, never
/// from the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    /// Extensions the verifier must understand; podgate understands none (RFC 7515 §4.1.11),
    /// so a token with `crit` is refused once its issuer is known to be ours.
    #[serde(default)]
    pub crit: Option<Value>,
}

/// A parsed but unverified compact JWS.
#[derive(Debug, Clone)]
pub struct UnverifiedJwt<'a> {
    pub header: Header,
    pub claims: Map<String, Value>,
    /// `header.claims` as transmitted: the bytes the signature covers.
    pub signing_input: &'a str,
    /// Still base64url: `alg: none` tokens are refused before it is decoded.
    pub signature: &'a str,
}

impl UnverifiedJwt<'_> {
    /// The `iss` claim, when it is a string.
    pub fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }

    pub fn decode_signature(&self) -> Result<Vec<u8>, Rejection> {
        decode(self.signature)
            .ok_or_else(|| Rejection::malformed("the signature is not unpadded base64url"))
    }
}

/// The token's header, if its first segment is one: base64url of a JSON object with a string
/// `alg`. `None` means "this is not a JWT at all" (a static token, a random string), which an
/// authenticator answers with `Unknown` so a chain moves on.
pub fn peek_header(token: &str) -> Option<Header> {
    let first = token.split('.').next()?;
    if first.len() > MAX_HEADER_SEGMENT || !token.contains('.') {
        return None;
    }
    serde_json::from_slice(&decode(first)?).ok()
}

/// Splits and decodes a token whose header [`peek_header`] accepted. Every failure is
/// `malformed`: the token looked like a JWT, so calling it unknown would hide the problem.
pub fn parse(token: &str) -> Result<UnverifiedJwt<'_>, Rejection> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Rejection::malformed(format!(
            "the token is longer than {} KiB",
            MAX_TOKEN_BYTES >> 10
        )));
    }
    let segments: Vec<&str> = token.split('.').collect();
    let [header_b64, claims_b64, signature] = segments[..] else {
        let detail = if segments.len() == 5 {
            "encrypted tokens (JWE) are not supported; send a signed JWT".to_owned()
        } else {
            format!(
                "a signed JWT has 3 dot-separated segments, this token has {}",
                segments.len()
            )
        };
        return Err(Rejection::malformed(detail));
    };
    // Both dots are present, so this slice ends right before the last one.
    let signing_input = &token[..header_b64.len() + 1 + claims_b64.len()];
    let header_json = decode(header_b64)
        .ok_or_else(|| Rejection::malformed("the header is not unpadded base64url"))?;
    let header: Header = serde_json::from_slice(&header_json)
        .map_err(|_| Rejection::malformed("the header is not a JSON object with a string alg"))?;
    let claims_json = decode(claims_b64)
        .ok_or_else(|| Rejection::malformed("the claims are not unpadded base64url"))?;
    let claims = match serde_json::from_slice::<Value>(&claims_json) {
        Ok(Value::Object(claims)) => claims,
        _ => return Err(Rejection::malformed("the claims are not a JSON object")),
    };
    Ok(UnverifiedJwt {
        header,
        claims,
        signing_input,
        signature,
    })
}

/// Strict unpadded base64url: padding, whitespace and non-canonical trailing bits are refused,
/// so one token has exactly one spelling.
fn decode(segment: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(segment).ok()
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;
    use crate::oidc::rejection::Reason;

    fn b64(data: &str) -> String {
        URL_SAFE_NO_PAD.encode(data)
    }

    fn token(header: &str, claims: &str, signature: &str) -> String {
        format!("{}.{}.{signature}", b64(header), b64(claims))
    }

    fn malformed(token: &str) -> String {
        match parse(token) {
            Ok(jwt) => panic!("expected malformed, parsed {jwt:?}"),
            Err(rejection) => {
                assert_eq!(rejection.reason, Reason::Malformed, "{rejection}");
                rejection.detail
            }
        }
    }

    #[test]
    fn parses_a_compact_jws() {
        let t = token(
            r#"{"alg":"RS256","kid":"k1","typ":"at+jwt"}"#,
            r#"{"iss":"https://idp.example","sub":"alice"}"#,
            "c2ln",
        );
        let jwt = parse(&t).expect("parses");
        assert_eq!(jwt.header.alg, "RS256");
        assert_eq!(jwt.header.kid.as_deref(), Some("k1"));
        assert_eq!(jwt.issuer(), Some("https://idp.example"));
        assert_eq!(jwt.signing_input, &t[..t.rfind('.').expect("a dot")]);
        assert_eq!(jwt.decode_signature(), Ok(b"sig".to_vec()));
        assert!(peek_header(&t).is_some());
    }

    #[test]
    fn peek_tells_jwts_from_other_tokens() {
        for other in [
            "",
            "static-token-abc",
            "zq9.alice.SECRET",
            "eyJhbGciOiJSUzI1NiJ9",
            &format!("{}.x.y", b64(r#"{"kid":"k1"}"#)),
            &format!("{}.x.y", b64(r#"{"alg":1}"#)),
            &format!("{}.x.y", b64("[1,2]")),
        ] {
            assert_eq!(peek_header(other), None, "{other}");
        }
        let header = peek_header(&format!("{}.anything", b64(r#"{"alg":"none"}"#)));
        assert_eq!(header.map(|h| h.alg).as_deref(), Some("none"));
        let long = format!("{}.x.y", "A".repeat(MAX_HEADER_SEGMENT + 4));
        assert_eq!(peek_header(&long), None);
    }

    #[test]
    fn refuses_malformed_tokens() {
        let header = r#"{"alg":"RS256"}"#;
        let claims = r#"{"iss":"https://idp.example"}"#;
        let good = token(header, claims, "c2ln");
        assert!(malformed(&format!("{good}.x")).contains("has 4"));
        assert!(malformed(&format!("{good}.x.y")).contains("JWE"));
        assert!(malformed(&format!("{}.{}", b64(header), b64(claims))).contains("has 2"));
        assert!(malformed(&token(header, "[]", "c2ln")).contains("not a JSON object"));
        assert!(malformed(&token(header, "{", "c2ln")).contains("not a JSON object"));
        assert!(malformed(&format!("{}.{}=.c2ln", b64(header), b64(claims))).contains("base64url"));
        assert!(malformed(&format!("{}.a b.c2ln", b64(header))).contains("base64url"));
        // `crit` is the issuer's business (checked once it is known to be ours).
        assert!(parse(&token(r#"{"alg":"RS256","crit":["b64"]}"#, claims, "c2ln")).is_ok());
        let huge = token(
            header,
            &format!(r#"{{"x":"{}"}}"#, "a".repeat(MAX_TOKEN_BYTES)),
            "",
        );
        assert!(malformed(&huge).contains("64 KiB"));

        let signature = |sig: &str| {
            let t = token(header, claims, sig);
            let jwt = parse(&t).expect("the signature is decoded lazily");
            jwt.decode_signature().map_err(|r| r.reason)
        };
        assert_eq!(signature("c2ln="), Err(Reason::Malformed));
        // Non-canonical trailing bits ("c2l" and "c2k" both carry "si") are refused.
        assert_eq!(signature("c2k"), Ok(b"si".to_vec()));
        assert_eq!(signature("c2l"), Err(Reason::Malformed));
    }

    #[test]
    fn messages_never_echo_the_token() {
        let secret = "zq9SECRETzq9";
        for t in [
            format!("{secret}.{secret}.{secret}.{secret}"),
            token(r#"{"alg":"RS256"}"#, secret, secret),
            format!("{}.{secret}.!", b64(r#"{"alg":"RS256"}"#)),
        ] {
            let detail = malformed(&t);
            assert!(!detail.contains(secret), "{detail}");
        }
    }
}
