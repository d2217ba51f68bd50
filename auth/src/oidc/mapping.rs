//! Claims to [`Identity`], with the semantics of kube-apiserver's `--oidc-username-claim`,
//! `--oidc-username-prefix`, `--oidc-groups-claim` and `--oidc-groups-prefix`, so a user is the
//! same person through podgate as with a direct OIDC kubeconfig and the same RBAC bindings apply.
//! Pure.

use serde_json::{Map, Value};

use crate::identity::{Identity, Part, RESERVED_PREFIX};

use super::config::IssuerConfig;
use super::rejection::{Reason, Rejection};

/// How one issuer's claims become a user and groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMapping {
    pub username_claim: String,
    /// Already resolved: empty for "no prefix".
    pub username_prefix: String,
    pub groups_claim: Option<String>,
    pub groups_prefix: String,
}

impl ClaimMapping {
    /// Resolves an issuer's settings as kube-apiserver does: without `username_prefix`, claims
    /// other than `email` are prefixed with `{issuer}#`; `-` means no prefix.
    pub fn from_config(config: &IssuerConfig) -> Self {
        let username_prefix = match config.username_prefix.as_deref() {
            Some("-") => String::new(),
            Some(prefix) => prefix.to_owned(),
            None if config.username_claim == "email" => String::new(),
            None => format!("{}#", config.issuer),
        };
        ClaimMapping {
            username_claim: config.username_claim.clone(),
            username_prefix,
            groups_claim: config.groups_claim.clone(),
            groups_prefix: config.groups_prefix.clone().unwrap_or_default(),
        }
    }

    /// The identity a verified token's claims map to.
    pub fn map(&self, claims: &Map<String, Value>) -> Result<Identity, Rejection> {
        let claim = &self.username_claim;
        let name = match claims.get(claim) {
            Some(Value::String(name)) if !name.is_empty() => name,
            Some(Value::String(_)) | None => {
                return Err(Rejection::new(
                    Reason::MissingClaim,
                    format!("the username claim {claim:?} is missing or empty"),
                ));
            }
            Some(_) => {
                return Err(Rejection::malformed(format!(
                    "the username claim {claim:?} is not a string"
                )));
            }
        };
        if claim == "email" {
            match claims.get("email_verified") {
                None | Some(Value::Bool(true)) => {}
                Some(_) => {
                    return Err(Rejection::new(
                        Reason::UnverifiedEmail,
                        "the username claim is email, and email_verified is present but not true",
                    ));
                }
            }
        }
        let user = format!("{}{name}", self.username_prefix);

        let mut groups = Vec::new();
        if let Some(claim) = &self.groups_claim {
            let wrong_type = || {
                Rejection::malformed(format!(
                    "the groups claim {claim:?} must be a string or an array of strings"
                ))
            };
            let names: Vec<&str> = match claims.get(claim) {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(group)) => vec![group.as_str()],
                Some(Value::Array(list)) => list
                    .iter()
                    .map(|g| g.as_str().ok_or_else(wrong_type))
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(wrong_type()),
            };
            groups = names
                .into_iter()
                .map(|name| format!("{}{name}", self.groups_prefix))
                .collect();
        }
        // The identity is judged as it will be sent: a name that cannot travel exactly is
        // refused, never dropped, and the reserved prefix is checked on the exact bytes.
        let claim_of = |part: Part| match part {
            Part::User => format!("the username claim {:?}", self.username_claim),
            Part::Group(i) => format!(
                "entry {} of the groups claim {:?}",
                i + 1,
                self.groups_claim.as_deref().unwrap_or_default()
            ),
        };
        let identity = Identity::new(user, groups).map_err(|e| {
            Rejection::new(
                Reason::InvalidName,
                format!(
                    "{} {}; such a name cannot reach a cluster exactly",
                    claim_of(e.part),
                    e.problem
                ),
            )
        })?;
        if let Some(part) = identity.reserved_part() {
            let (what, setting) = match part {
                Part::User => ("the mapped username", "username_prefix"),
                Part::Group(_) => ("a mapped group", "groups_prefix"),
            };
            return Err(Rejection::new(
                Reason::ReservedIdentity,
                format!(
                    "{what} starts with {RESERVED_PREFIX:?}, which Kubernetes reserves; set \
                     {setting}"
                ),
            ));
        }
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ISS: &str = "https://idp.example";

    fn config(yaml: &str) -> IssuerConfig {
        let base = format!("issuer: {ISS}\naudiences: [podgate]\n{yaml}");
        serde_norway::from_str(&base).expect("config parses")
    }

    fn claims(value: Value) -> Map<String, Value> {
        let Value::Object(map) = value else {
            panic!("an object")
        };
        map
    }

    fn map(yaml: &str, value: Value) -> Result<Identity, Rejection> {
        ClaimMapping::from_config(&config(yaml)).map(&claims(value))
    }

    fn identity(user: &str, groups: &[&str]) -> Identity {
        Identity::new(user, groups.iter().copied()).expect("valid identity")
    }

    #[test]
    fn default_is_sub_prefixed_with_the_issuer() {
        assert_eq!(
            map("", json!({"sub": "1234", "groups": ["dev"]})),
            Ok(identity("https://idp.example#1234", &[]))
        );
    }

    #[test]
    fn prefixes_follow_kube_apiserver() {
        let sub = json!({"sub": "1234", "email": "a@example.com", "name": "Ann"});
        assert_eq!(
            map("username_prefix: '-'", sub.clone()),
            Ok(identity("1234", &[]))
        );
        assert_eq!(
            map("username_prefix: 'oidc:'", sub.clone()),
            Ok(identity("oidc:1234", &[]))
        );
        assert_eq!(
            map("username_claim: name", sub.clone()),
            Ok(identity("https://idp.example#Ann", &[]))
        );
        // `email` is not prefixed unless asked.
        assert_eq!(
            map("username_claim: email", sub.clone()),
            Ok(identity("a@example.com", &[]))
        );
        assert_eq!(
            map("username_claim: email\nusername_prefix: 'corp:'", sub),
            Ok(identity("corp:a@example.com", &[]))
        );
    }

    #[test]
    fn email_must_be_verified_when_said() {
        let yaml = "username_claim: email";
        let email = |verified: Value| {
            let mut c = json!({"email": "a@example.com"});
            if !verified.is_null() {
                c["email_verified"] = verified;
            }
            map(yaml, c).map_err(|r| r.reason)
        };
        assert_eq!(email(Value::Null), Ok(identity("a@example.com", &[])));
        assert_eq!(email(json!(true)), Ok(identity("a@example.com", &[])));
        assert_eq!(email(json!(false)), Err(Reason::UnverifiedEmail));
        assert_eq!(email(json!("true")), Err(Reason::UnverifiedEmail));
        // Only when email is the username claim.
        let other = map(
            "username_claim: sub\nusername_prefix: '-'",
            json!({"sub": "x", "email_verified": false}),
        );
        assert_eq!(other, Ok(identity("x", &[])));
    }

    #[test]
    fn username_claim_must_be_a_non_empty_string() {
        for (value, reason) in [
            (json!({}), Reason::MissingClaim),
            (json!({"sub": ""}), Reason::MissingClaim),
            (json!({"sub": 42}), Reason::Malformed),
            (json!({"sub": ["a"]}), Reason::Malformed),
        ] {
            assert_eq!(
                map("", value.clone()).map_err(|r| r.reason),
                Err(reason),
                "{value}"
            );
        }
    }

    #[test]
    fn groups_string_or_array_with_prefix() {
        let yaml = "username_prefix: '-'\ngroups_claim: groups";
        assert_eq!(
            map(yaml, json!({"sub": "u", "groups": ["dev", "ops", "dev"]})),
            Ok(identity("u", &["dev", "ops"]))
        );
        assert_eq!(
            map(yaml, json!({"sub": "u", "groups": "dev"})),
            Ok(identity("u", &["dev"]))
        );
        assert_eq!(map(yaml, json!({"sub": "u"})), Ok(identity("u", &[])));
        assert_eq!(
            map(yaml, json!({"sub": "u", "groups": null})),
            Ok(identity("u", &[]))
        );
        assert_eq!(
            map(yaml, json!({"sub": "u", "groups": []})),
            Ok(identity("u", &[]))
        );
        for bad in [json!(1), json!({"a": 1}), json!(["dev", 2])] {
            assert_eq!(
                map(yaml, json!({"sub": "u", "groups": bad})).map_err(|r| r.reason),
                Err(Reason::Malformed)
            );
        }
        let prefixed = format!("{yaml}\ngroups_prefix: 'oidc:'");
        assert_eq!(
            map(&prefixed, json!({"sub": "u", "groups": ["dev"]})),
            Ok(identity("u", &["oidc:dev"]))
        );
        let roles = "username_prefix: '-'\ngroups_claim: roles";
        assert_eq!(
            map(
                roles,
                json!({"sub": "u", "groups": ["dev"], "roles": ["admin"]})
            ),
            Ok(identity("u", &["admin"]))
        );
    }

    #[test]
    fn names_that_cannot_travel_exactly_are_refused() {
        let yaml = "username_prefix: '-'\ngroups_claim: groups";
        let cases = [
            (
                json!({"sub": "mallory\u{7}"}),
                "the username claim \"sub\" contains a control character (U+0007)",
            ),
            (
                json!({"sub": "admin "}),
                "the username claim \"sub\" starts or ends with whitespace",
            ),
            (
                json!({"sub": "\tadmin"}),
                "the username claim \"sub\" contains a control character (U+0009)",
            ),
            (
                json!({"sub": "a\nb"}),
                "the username claim \"sub\" contains a control character (U+000A)",
            ),
            (
                json!({"sub": "u", "groups": ["dev", " system:masters"]}),
                "entry 2 of the groups claim \"groups\" starts or ends",
            ),
            (
                json!({"sub": "u", "groups": ["dev\u{1b}[2J"]}),
                "entry 1 of the groups claim \"groups\" contains a control character (U+001B)",
            ),
            (
                json!({"sub": "u", "groups": [""]}),
                "entry 1 of the groups claim \"groups\" is empty",
            ),
        ];
        for (claims, detail) in cases {
            let r = map(yaml, claims.clone()).unwrap_err();
            assert_eq!(r.reason, Reason::InvalidName, "{claims}");
            assert!(r.detail.starts_with(detail), "{claims}: {}", r.detail);
            // The log line names the claim, never the value.
            assert!(
                !r.detail.contains("mallory") && !r.detail.contains("admin"),
                "{}",
                r.detail
            );
        }
        // A prefix does not hide padding: the mapped name is what is judged.
        assert_eq!(
            map(
                "groups_claim: groups\ngroups_prefix: 'oidc:'",
                json!({"sub": "u", "groups": ["dev "]})
            )
            .map_err(|r| r.reason),
            Err(Reason::InvalidName)
        );
        // Non-ASCII UTF-8 is a legitimate name.
        assert_eq!(
            map(yaml, json!({"sub": "zoë", "groups": ["équipe", "用户"]})),
            Ok(identity("zoë", &["équipe", "用户"]))
        );
    }

    #[test]
    fn reserved_names_are_refused() {
        let yaml = "username_prefix: '-'\ngroups_claim: groups";
        let user = map(yaml, json!({"sub": "system:admin"})).unwrap_err();
        assert_eq!(user.reason, Reason::ReservedIdentity);
        let group = map(
            yaml,
            json!({"sub": "u", "groups": ["dev", "system:masters"]}),
        );
        assert_eq!(group.map_err(|r| r.reason), Err(Reason::ReservedIdentity));
        // A prefix takes them out of the reserved space, as the default username prefix does.
        assert_eq!(
            map(
                "groups_claim: groups\ngroups_prefix: 'oidc:'",
                json!({"sub": "system:admin", "groups": ["system:masters"]})
            ),
            Ok(identity(
                "https://idp.example#system:admin",
                &["oidc:system:masters"]
            ))
        );
    }
}
