//! Claims to [`Identity`], with the semantics of kube-apiserver's `--oidc-username-claim`,
//! `--oidc-username-prefix`, `--oidc-groups-claim` and `--oidc-groups-prefix`, so a user is the
//! same person through podgate as with a direct OIDC kubeconfig and the same RBAC bindings apply.
//! Pure.

use serde_json::{Map, Value};

use podgate_config::Identity;

use super::config::IssuerConfig;
use super::rejection::{Reason, Rejection};

/// Kubernetes reserves `system:` names for its own components (`system:masters`,
/// `system:serviceaccount:...`). The gateway impersonates the mapped identity with its own
/// privileges, so a token must never be able to claim one.
const RESERVED_PREFIX: &str = "system:";

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
        if user.starts_with(RESERVED_PREFIX) {
            return Err(Rejection::new(
                Reason::ReservedIdentity,
                format!(
                    "the mapped username starts with {RESERVED_PREFIX:?}, which Kubernetes \
                     reserves; set username_prefix"
                ),
            ));
        }

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
            for name in names {
                let group = format!("{}{name}", self.groups_prefix);
                if group.starts_with(RESERVED_PREFIX) {
                    return Err(Rejection::new(
                        Reason::ReservedIdentity,
                        format!(
                            "a mapped group starts with {RESERVED_PREFIX:?}, which Kubernetes \
                             reserves; set groups_prefix"
                        ),
                    ));
                }
                if !groups.contains(&group) {
                    groups.push(group);
                }
            }
        }
        Ok(Identity { user, groups })
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
        Identity {
            user: user.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
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
