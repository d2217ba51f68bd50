//! Who is asking (bearer token, impersonation) and what they may do (a small rule list), with
//! kube-apiserver's messages. Pure: the server feeds it header values.

use crate::topology::{Rule, User};
use podgate_protocol::Status;

/// An authenticated (or impersonated) identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

/// kube-apiserver adds this group to every authenticated user.
const AUTHENTICATED: &str = "system:authenticated";
/// kube-apiserver lets this group do anything, whatever the rules say.
const MASTERS: &str = "system:masters";

/// What a request wants to do, in RBAC terms.
#[derive(Clone, Copy, Debug)]
pub struct Attributes<'a> {
    pub verb: &'a str,
    /// `pods`, or `pods/exec` for a subresource.
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

pub struct Access {
    users: Vec<User>,
    rules: Vec<Rule>,
}

impl Access {
    pub fn new(users: Vec<User>, rules: Vec<Rule>) -> Access {
        Access { users, rules }
    }

    /// Finds the user for a bearer token (from `Authorization: Bearer` or the WebSocket
    /// protocol entry). Tokens are compared in constant time.
    pub fn authenticate(&self, token: Option<&str>) -> Result<UserInfo, Status> {
        let token = token.ok_or_else(Status::unauthorized)?;
        let mut found = None;
        for u in &self.users {
            if constant_time_eq(u.token.as_bytes(), token.as_bytes()) {
                found = Some(u);
            }
        }
        let u = found.ok_or_else(Status::unauthorized)?;
        let mut groups = u.groups.clone();
        groups.push(AUTHENTICATED.into());
        Ok(UserInfo {
            name: u.name.clone(),
            groups,
        })
    }

    /// Applies `Impersonate-User` / `Impersonate-Group`, checking the `impersonate` verb on
    /// `users` and `groups` as kube-apiserver does.
    pub fn impersonate(
        &self,
        user: UserInfo,
        as_user: Option<&str>,
        as_groups: &[&str],
    ) -> Result<UserInfo, Status> {
        let Some(target) = as_user else {
            if as_groups.is_empty() {
                return Ok(user);
            }
            return Err(Status::api_error(
                500,
                "InternalError",
                "Internal error occurred: requested [Impersonate-Group] without impersonating a user",
            ));
        };
        let check = |resource: &str, name: &str| {
            let attrs = Attributes {
                verb: "impersonate",
                resource,
                namespace: None,
                name: Some(name),
            };
            if self.allows(&user, &attrs) {
                Ok(())
            } else {
                Err(forbidden(&user, &attrs))
            }
        };
        check("users", target)?;
        for g in as_groups {
            check("groups", g)?;
        }
        let mut groups: Vec<String> = as_groups.iter().map(|g| g.to_string()).collect();
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.into());
        }
        Ok(UserInfo {
            name: target.into(),
            groups,
        })
    }

    pub fn allows(&self, user: &UserInfo, attrs: &Attributes) -> bool {
        if user.groups.iter().any(|g| g == MASTERS) {
            return true;
        }
        self.rules.iter().any(|r| rule_matches(r, user, attrs))
    }

    /// `Ok` when allowed, else the 403 `Status` kube-apiserver would send.
    pub fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Result<(), Status> {
        if self.allows(user, attrs) {
            Ok(())
        } else {
            Err(forbidden(user, attrs))
        }
    }
}

fn rule_matches(r: &Rule, user: &UserInfo, a: &Attributes) -> bool {
    let star_or = |list: &[String], v: &str| list.iter().any(|x| x == "*" || x == v);
    let subject =
        r.users.iter().any(|u| u == &user.name) || r.groups.iter().any(|g| user.groups.contains(g));
    let namespace = r.namespaces.is_empty()
        || r.namespaces.iter().any(|n| n == "*")
        || a.namespace
            .is_some_and(|ns| r.namespaces.iter().any(|n| n == ns));
    subject && star_or(&r.verbs, a.verb) && star_or(&r.resources, a.resource) && namespace
}

/// The 403 body, worded as kube-apiserver words it.
pub fn forbidden(user: &UserInfo, a: &Attributes) -> Status {
    let (group_resource, _) = a.resource.split_once('/').unwrap_or((a.resource, ""));
    let subject = match a.name {
        Some(name) => format!("{group_resource} \"{name}\""),
        None => group_resource.to_string(),
    };
    let scope = match a.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let message = format!(
        "{subject} is forbidden: User \"{}\" cannot {} resource \"{}\" in API group \"\" {scope}",
        user.name, a.verb, a.resource
    );
    let mut s = Status::api_error(403, "Forbidden", message);
    s.details = Some(podgate_protocol::status::StatusDetails {
        name: a.name.map(str::to_string),
        kind: Some(group_resource.to_string()),
        ..Default::default()
    });
    s
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;

    fn access() -> Access {
        let t = Topology::builtin();
        Access::new(t.users, t.rules)
    }

    fn exec_in<'a>(ns: &'a str, pod: &'a str) -> Attributes<'a> {
        Attributes {
            verb: "get",
            resource: "pods/exec",
            namespace: Some(ns),
            name: Some(pod),
        }
    }

    #[test]
    fn tokens() {
        let a = access();
        assert_eq!(
            a.authenticate(Some("devcluster-alice-token")).unwrap().name,
            "alice"
        );
        assert_eq!(a.authenticate(Some("nope")).unwrap_err().code, Some(401));
        assert_eq!(
            a.authenticate(None).unwrap_err().reason.as_deref(),
            Some("Unauthorized")
        );
    }

    #[test]
    fn alice_execs_only_in_default() {
        let a = access();
        let alice = a.authenticate(Some("devcluster-alice-token")).unwrap();
        assert!(a.authorize(&alice, &exec_in("default", "shell-0")).is_ok());
        let s = a.authorize(&alice, &exec_in("shop", "web-0")).unwrap_err();
        assert_eq!(
            s.message.as_deref(),
            Some(
                "pods \"web-0\" is forbidden: User \"alice\" cannot get resource \"pods/exec\" in API group \"\" in the namespace \"shop\""
            )
        );
        assert_eq!(s.code, Some(403));
    }

    #[test]
    fn bob_lists_but_does_not_exec() {
        let a = access();
        let bob = a.authenticate(Some("devcluster-bob-token")).unwrap();
        let list = Attributes {
            verb: "list",
            resource: "pods",
            namespace: None,
            name: None,
        };
        assert!(a.allows(&bob, &list));
        assert!(!a.allows(&bob, &exec_in("default", "shell-0")));
    }

    #[test]
    fn cluster_scope_message() {
        let u = UserInfo {
            name: "eve".into(),
            groups: vec![],
        };
        let list = Attributes {
            verb: "list",
            resource: "pods",
            namespace: None,
            name: None,
        };
        assert_eq!(
            forbidden(&u, &list).message.as_deref(),
            Some(
                "pods is forbidden: User \"eve\" cannot list resource \"pods\" in API group \"\" at the cluster scope"
            )
        );
    }

    #[test]
    fn impersonation_needs_the_right() {
        let a = access();
        let gw = a.authenticate(Some("devcluster-podgate-token")).unwrap();
        let as_bob = a
            .impersonate(gw.clone(), Some("bob"), &["viewers"])
            .unwrap();
        assert_eq!(as_bob.name, "bob");
        assert!(as_bob.groups.contains(&"viewers".to_string()));
        // The gateway itself may not exec; the impersonated identity decides.
        assert!(!a.allows(&gw, &exec_in("default", "shell-0")));
        let bob = a.authenticate(Some("devcluster-bob-token")).unwrap();
        let s = a.impersonate(bob, Some("admin"), &[]).unwrap_err();
        assert_eq!(
            s.message.as_deref(),
            Some(
                "users \"admin\" is forbidden: User \"bob\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
            )
        );
        let admin = a.authenticate(Some("devcluster-admin-token")).unwrap();
        let as_alice = a.impersonate(admin, Some("alice"), &["dev"]).unwrap();
        assert!(a.allows(&as_alice, &exec_in("default", "shell-0")));
        assert!(!a.allows(&as_alice, &exec_in("shop", "web-0")));
    }
}
