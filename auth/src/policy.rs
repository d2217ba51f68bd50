//! The access policy at the edge: may this person use this cluster, and this namespace of it?
//! Pure, evaluated before any request leaves the gateway.

use podgate_config::{AccessPolicy, Identity};

/// Why a request is refused at the edge; the message names the cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error(
        "podgate: user \"{user}\" may not use cluster \"{cluster}\" (not among its allowed users or groups)"
    )]
    Cluster { user: String, cluster: String },
    #[error(
        "podgate: cluster \"{cluster}\" is open to user \"{user}\" only in namespaces {allowed:?}, not {what}"
    )]
    Namespace {
        user: String,
        cluster: String,
        allowed: Vec<String>,
        what: String,
    },
}

impl Denied {
    /// A bounded label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Denied::Cluster { .. } => "cluster_not_allowed",
            Denied::Namespace { .. } => "namespace_not_allowed",
        }
    }
}

/// Whether `who` may use the cluster at all (for listing clusters).
pub fn may_use(policy: &AccessPolicy, who: &Identity) -> bool {
    (policy.users.is_empty() && policy.groups.is_empty())
        || policy.users.iter().any(|u| u == &who.user)
        || who.groups.iter().any(|g| policy.groups.contains(g))
}

/// Checks an API request (`path` without the `/clusters/{id}` prefix, no query).
pub fn check(
    policy: &AccessPolicy,
    cluster: &str,
    who: &Identity,
    path: &str,
) -> Result<(), Denied> {
    if !may_use(policy, who) {
        return Err(Denied::Cluster {
            user: who.user.clone(),
            cluster: cluster.into(),
        });
    }
    if policy.namespaces.is_empty() {
        return Ok(());
    }
    let deny = |what: String| Denied::Namespace {
        user: who.user.clone(),
        cluster: cluster.into(),
        allowed: policy.namespaces.clone(),
        what,
    };
    match namespace_of(path) {
        Scope::Namespace(ns) if policy.namespaces.iter().any(|n| n == ns) => Ok(()),
        Scope::Namespace(ns) => Err(deny(format!("namespace {ns:?}"))),
        Scope::Discovery => Ok(()),
        Scope::Cluster => Err(deny(format!("cluster-wide {path}"))),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Scope<'a> {
    /// Version, discovery and OpenAPI documents: needed by every client, about no object.
    Discovery,
    Namespace(&'a str),
    /// Anything else: cluster-scoped objects, or namespaced ones across all namespaces.
    Cluster,
}

fn namespace_of(path: &str) -> Scope<'_> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["version"] | ["api"] | ["apis"] | ["api", _] | ["apis", _] | ["apis", _, _] => {
            Scope::Discovery
        }
        ["openapi", ..] => Scope::Discovery,
        ["api", _, "namespaces", ns, ..] | ["apis", _, _, "namespaces", ns, ..] => {
            Scope::Namespace(ns)
        }
        _ => Scope::Cluster,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(user: &str, groups: &[&str]) -> Identity {
        Identity {
            user: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn open_policy_allows_everyone_everywhere() {
        let p = AccessPolicy::default();
        assert!(check(&p, "c", &who("x", &[]), "/api/v1/nodes").is_ok());
    }

    #[test]
    fn users_or_groups_decide() {
        let p = AccessPolicy {
            users: vec!["alice".into()],
            groups: vec!["ops".into()],
            namespaces: vec![],
        };
        assert!(may_use(&p, &who("alice", &[])));
        assert!(may_use(&p, &who("carol", &["dev", "ops"])));
        let e = check(&p, "prod", &who("bob", &["dev"]), "/api/v1/pods").unwrap_err();
        assert_eq!(
            e.to_string(),
            "podgate: user \"bob\" may not use cluster \"prod\" (not among its allowed users or groups)"
        );
        assert_eq!(e.reason(), "cluster_not_allowed");
    }

    #[test]
    fn namespaces_limit_paths_but_not_discovery() {
        let p = AccessPolicy {
            users: vec![],
            groups: vec![],
            namespaces: vec!["default".into()],
        };
        let w = who("alice", &[]);
        for ok in [
            "/version",
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps/v1",
            "/openapi/v3/api/v1",
            "/api/v1/namespaces/default/pods/shell-0/exec",
            "/apis/apps/v1/namespaces/default/deployments",
            "/api/v1/namespaces/default",
        ] {
            assert!(check(&p, "c", &w, ok).is_ok(), "{ok}");
        }
        let e = check(&p, "c", &w, "/api/v1/namespaces/shop/pods/web-0/exec").unwrap_err();
        assert_eq!(e.reason(), "namespace_not_allowed");
        assert!(
            e.to_string()
                .contains("[\"default\"], not namespace \"shop\""),
            "{e}"
        );
        assert!(
            check(&p, "c", &w, "/api/v1/pods").is_err(),
            "all namespaces at once"
        );
        assert!(check(&p, "c", &w, "/api/v1/nodes").is_err());
    }
}
