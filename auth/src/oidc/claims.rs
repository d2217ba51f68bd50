//! Registered-claim checks (RFC 7519 §4.1) on a token whose signature already verified: `iss`,
//! `exp`, `nbf`, `iat`, `aud`, then the operator's `required_claims`. Pure: the clock is an
//! argument, so tests pin it.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::rejection::{Reason, Rejection};

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    /// `iss` must equal this exactly.
    pub issuer: &'a str,
    /// At least one `aud` entry must be one of these.
    pub audiences: &'a [String],
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway: u64,
    /// Claims that must be present as strings with exactly these values.
    pub required_claims: &'a BTreeMap<String, String>,
}

/// Checks `claims` at `now` (Unix seconds) and returns the token's `exp`.
pub fn check(
    claims: &Map<String, Value>,
    expect: &Expectations<'_>,
    now: u64,
) -> Result<u64, Rejection> {
    match claims.get("iss") {
        Some(Value::String(iss)) if iss == expect.issuer => {}
        _ => {
            return Err(Rejection::new(
                Reason::WrongIssuer,
                format!("the token was not issued by {}", expect.issuer),
            ));
        }
    }

    let exp = numeric_date(claims, "exp")?.ok_or_else(|| {
        Rejection::new(
            Reason::MissingClaim,
            "the token has no exp claim; podgate only accepts tokens that expire",
        )
    })?;
    if now >= exp.saturating_add(expect.leeway) {
        return Err(Rejection::new(
            Reason::Expired,
            format!(
                "the token expired {}s ago (leeway {}s); sign in again",
                now - exp,
                expect.leeway
            ),
        ));
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && nbf > now.saturating_add(expect.leeway)
    {
        return Err(Rejection::new(
            Reason::NotYetValid,
            format!(
                "the token is not valid for another {}s (nbf; leeway {}s): check the clocks",
                nbf - now,
                expect.leeway
            ),
        ));
    }
    if let Some(iat) = numeric_date(claims, "iat")?
        && iat > now.saturating_add(expect.leeway)
    {
        return Err(Rejection::new(
            Reason::NotYetValid,
            format!(
                "the token claims to be issued {}s in the future (iat; leeway {}s): check the \
                 clocks",
                iat - now,
                expect.leeway
            ),
        ));
    }

    audience(claims, expect.audiences)?;

    for (name, wanted) in expect.required_claims {
        match claims.get(name) {
            Some(Value::String(value)) if value == wanted => {}
            Some(_) => {
                return Err(Rejection::new(
                    Reason::MissingClaim,
                    format!("the required claim {name:?} does not have the configured value"),
                ));
            }
            None => {
                return Err(Rejection::new(
                    Reason::MissingClaim,
                    format!("the required claim {name:?} is missing"),
                ));
            }
        }
    }
    Ok(exp)
}

fn audience(claims: &Map<String, Value>, audiences: &[String]) -> Result<(), Rejection> {
    let listed = |aud: &str| audiences.iter().any(|a| a == aud);
    let ok = match claims.get("aud") {
        Some(Value::String(aud)) => listed(aud),
        Some(Value::Array(list)) => {
            let mut found = false;
            for entry in list {
                let Value::String(aud) = entry else {
                    return Err(Rejection::malformed(
                        "aud must be a string or an array of strings",
                    ));
                };
                found |= listed(aud);
            }
            found
        }
        Some(_) => {
            return Err(Rejection::malformed(
                "aud must be a string or an array of strings",
            ));
        }
        None => {
            return Err(Rejection::new(
                Reason::MissingClaim,
                format!(
                    "the token has no aud claim; expected one of {}",
                    audiences.join(", ")
                ),
            ));
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Rejection::new(
            Reason::WrongAudience,
            format!(
                "the token is meant for another audience; expected one of {}",
                audiences.join(", ")
            ),
        ))
    }
}

/// A NumericDate claim (seconds since the epoch, possibly fractional), floored. `Ok(None)` when
/// absent; malformed when present but not a non-negative number.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, Rejection> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    if let Some(seconds) = value.as_u64() {
        return Ok(Some(seconds));
    }
    match value.as_f64() {
        // `as` saturates; anything past u64 is "never" either way.
        Some(seconds) if seconds.is_finite() && seconds >= 0.0 => Ok(Some(seconds as u64)),
        _ => Err(Rejection::malformed(format!(
            "{name} must be a non-negative number of seconds"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_700_000_000;
    const ISS: &str = "https://idp.example";

    fn claims(value: Value) -> Map<String, Value> {
        let Value::Object(map) = value else {
            panic!("an object")
        };
        map
    }

    fn good() -> Value {
        json!({"iss": ISS, "aud": "podgate", "exp": NOW + 300, "iat": NOW - 10, "nbf": NOW - 10,
               "sub": "alice", "tenant": "acme"})
    }

    fn with(changes: Value) -> Map<String, Value> {
        let mut map = claims(good());
        for (k, v) in claims(changes) {
            if v.is_null() {
                map.remove(&k);
            } else {
                map.insert(k, v);
            }
        }
        map
    }

    fn run(claims: &Map<String, Value>, required: &[(&str, &str)]) -> Result<u64, Rejection> {
        let audiences = ["podgate".to_owned(), "kubernetes".to_owned()];
        let required: BTreeMap<String, String> = required
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let expect = Expectations {
            issuer: ISS,
            audiences: &audiences,
            leeway: 60,
            required_claims: &required,
        };
        check(claims, &expect, NOW)
    }

    fn reason(claims: &Map<String, Value>) -> Reason {
        match run(claims, &[]) {
            Ok(exp) => panic!("accepted, exp {exp}"),
            Err(r) => r.reason,
        }
    }

    #[test]
    fn accepts_a_good_token_and_returns_exp() {
        assert_eq!(run(&claims(good()), &[]), Ok(NOW + 300));
        assert_eq!(
            run(&with(json!({"iat": null, "nbf": null})), &[]),
            Ok(NOW + 300)
        );
        assert_eq!(
            run(&with(json!({"exp": 1.7e9 + 300.9})), &[]),
            Ok(NOW + 300)
        );
    }

    #[test]
    fn issuer_must_match_exactly() {
        for iss in [
            json!("https://idp.example/"),
            json!("https://other"),
            json!(1),
            json!(null),
        ] {
            assert_eq!(
                reason(&with(json!({ "iss": iss }))),
                Reason::WrongIssuer,
                "{iss}"
            );
        }
    }

    #[test]
    fn expiry_with_leeway() {
        assert_eq!(reason(&with(json!({"exp": null}))), Reason::MissingClaim);
        assert_eq!(reason(&with(json!({"exp": NOW - 60}))), Reason::Expired);
        assert_eq!(reason(&with(json!({"exp": NOW - 3600}))), Reason::Expired);
        assert_eq!(run(&with(json!({"exp": NOW - 59})), &[]), Ok(NOW - 59));
        assert_eq!(reason(&with(json!({"exp": "soon"}))), Reason::Malformed);
        assert_eq!(reason(&with(json!({"exp": -1}))), Reason::Malformed);
        let detail = run(&with(json!({"exp": NOW - 3600})), &[])
            .unwrap_err()
            .detail;
        assert_eq!(
            detail,
            "the token expired 3600s ago (leeway 60s); sign in again"
        );
    }

    #[test]
    fn not_before_and_issued_at_with_leeway() {
        assert_eq!(reason(&with(json!({"nbf": NOW + 61}))), Reason::NotYetValid);
        assert!(run(&with(json!({"nbf": NOW + 60})), &[]).is_ok());
        assert_eq!(reason(&with(json!({"iat": NOW + 61}))), Reason::NotYetValid);
        assert!(run(&with(json!({"iat": NOW + 60})), &[]).is_ok());
        assert_eq!(reason(&with(json!({"nbf": "x"}))), Reason::Malformed);
        assert_eq!(reason(&with(json!({"iat": [1]}))), Reason::Malformed);
    }

    #[test]
    fn audience_string_or_array() {
        assert!(run(&with(json!({"aud": "kubernetes"})), &[]).is_ok());
        assert!(run(&with(json!({"aud": ["other", "podgate"]})), &[]).is_ok());
        assert_eq!(
            reason(&with(json!({"aud": "other"}))),
            Reason::WrongAudience
        );
        assert_eq!(reason(&with(json!({"aud": []}))), Reason::WrongAudience);
        assert_eq!(
            reason(&with(json!({"aud": ["a", "b"]}))),
            Reason::WrongAudience
        );
        assert_eq!(reason(&with(json!({"aud": null}))), Reason::MissingClaim);
        assert_eq!(reason(&with(json!({"aud": 7}))), Reason::Malformed);
        assert_eq!(
            reason(&with(json!({"aud": ["podgate", 7]}))),
            Reason::Malformed
        );
        assert_eq!(
            reason(&with(json!({"aud": "Podgate"}))),
            Reason::WrongAudience
        );
        let detail = run(&with(json!({"aud": "evil-secret-aud"})), &[])
            .unwrap_err()
            .detail;
        assert!(detail.contains("podgate, kubernetes"), "{detail}");
        assert!(!detail.contains("evil-secret-aud"), "{detail}");
    }

    #[test]
    fn required_claims_need_equal_strings() {
        let ok = run(&claims(good()), &[("tenant", "acme")]);
        assert_eq!(ok, Ok(NOW + 300));
        let other = run(&claims(good()), &[("tenant", "other")]).unwrap_err();
        assert_eq!(other.reason, Reason::MissingClaim);
        assert!(other.detail.contains("does not have the configured value"));
        assert!(!other.detail.contains("acme"), "no echo of token data");
        let missing = run(&claims(good()), &[("hd", "example.com")]).unwrap_err();
        assert_eq!(missing.reason, Reason::MissingClaim);
        assert!(missing.detail.contains("\"hd\" is missing"));
        let typed = run(&with(json!({"tenant": ["acme"]})), &[("tenant", "acme")]);
        assert_eq!(typed.map_err(|r| r.reason), Err(Reason::MissingClaim));
    }
}
