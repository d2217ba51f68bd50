//! The access policy at the edge: may this person use this cluster, and this namespace of it?
//! Pure, evaluated before any request leaves the gateway, on the path as the cluster will read
//! it ([`ApiPath`]: decoded, with every ambiguous form refused before it gets here).

use crate::Identity;
use podgate_config::AccessPolicy;
use podgate_protocol::ApiPath;

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
        || policy.users.iter().any(|u| who.user() == u.as_str())
        || policy.groups.iter().any(|g| who.in_group(g))
}

/// Checks an API request (`path` without the `/clusters/{id}` prefix).
pub fn check(
    policy: &AccessPolicy,
    cluster: &str,
    who: &Identity,
    path: &ApiPath<'_>,
) -> Result<(), Denied> {
    if !may_use(policy, who) {
        return Err(Denied::Cluster {
            user: who.user().to_string(),
            cluster: cluster.into(),
        });
    }
    if policy.namespaces.is_empty() {
        return Ok(());
    }
    let deny = |what: String| Denied::Namespace {
        user: who.user().to_string(),
        cluster: cluster.into(),
        allowed: policy.namespaces.clone(),
        what,
    };
    let segments = path.segments();
    match namespace_of(&segments) {
        Scope::Namespace(ns) if policy.namespaces.iter().any(|n| n == ns) => Ok(()),
        Scope::Namespace(ns) => Err(deny(format!("namespace {ns:?}"))),
        Scope::Discovery => Ok(()),
        Scope::Cluster => Err(deny(format!("cluster-wide /{}", segments.join("/")))),
    }
}

/// Whether `who` may still hold a session in `namespace` of the cluster: what a reload asks of
/// every live session after the cluster's policy changed.
pub fn check_session(
    policy: &AccessPolicy,
    cluster: &str,
    who: &Identity,
    namespace: &str,
) -> Result<(), Denied> {
    if !may_use(policy, who) {
        return Err(Denied::Cluster {
            user: who.user().to_string(),
            cluster: cluster.into(),
        });
    }
    if policy.namespaces.is_empty() || policy.namespaces.iter().any(|n| n == namespace) {
        return Ok(());
    }
    Err(Denied::Namespace {
        user: who.user().to_string(),
        cluster: cluster.into(),
        allowed: policy.namespaces.clone(),
        what: format!("namespace {namespace:?}"),
    })
}

/// Whether `path` is API discovery (version, group and resource lists, OpenAPI): what every
/// client reads before its real request, about no object.
pub fn is_discovery(path: &ApiPath<'_>) -> bool {
    namespace_of(&path.segments()) == Scope::Discovery
}

#[derive(Debug, PartialEq, Eq)]
enum Scope<'a> {
    /// Version, discovery and OpenAPI documents: needed by every client, about no object.
    Discovery,
    Namespace(&'a str),
    /// Anything else: cluster-scoped objects, or namespaced ones across all namespaces.
    Cluster,
}

fn namespace_of<'a>(segments: &[&'a str]) -> Scope<'a> {
    match segments {
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
        Identity::new(user, groups.iter().copied()).expect("valid identity")
    }

    fn check(p: &AccessPolicy, c: &str, w: &Identity, path: &str) -> Result<(), Denied> {
        super::check(p, c, w, &ApiPath::parse(path).expect("a valid path"))
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

    #[test]
    fn namespaces_are_judged_as_the_cluster_decodes_them() {
        let p = AccessPolicy {
            users: vec![],
            groups: vec![],
            namespaces: vec!["default".into()],
        };
        let w = who("alice", &[]);
        assert!(check(&p, "c", &w, "/api/v1/namespaces/defaul%74/pods").is_ok());
        let e = check(&p, "c", &w, "/api/v1/namespaces/sho%70/pods/web-0/exec").unwrap_err();
        assert!(e.to_string().contains("not namespace \"shop\""), "{e}");
        // `/ap%69` is `/api` to the cluster: not discovery, and not a way around namespaces.
        let e = check(&p, "c", &w, "/ap%69/v1/namespaces/shop/pods").unwrap_err();
        assert!(e.to_string().contains("not namespace \"shop\""), "{e}");
        assert!(check(&p, "c", &w, "/ap%69/v1/namespaces/default/pods").is_ok());
        assert!(is_discovery(&ApiPath::parse("/apis/apps/v1").unwrap()));
        assert!(is_discovery(&ApiPath::parse("/openapi/v3/api/v1").unwrap()));
        assert!(!is_discovery(&ApiPath::parse("/api/v1/pods").unwrap()));
    }

    #[test]
    fn sessions_are_judged_by_cluster_and_namespace() {
        let p = AccessPolicy {
            users: vec![],
            groups: vec!["dev".into()],
            namespaces: vec!["default".into()],
        };
        assert!(check_session(&p, "c", &who("alice", &["dev"]), "default").is_ok());
        assert_eq!(
            check_session(&p, "c", &who("alice", &["dev"]), "shop").map_err(|d| d.reason()),
            Err("namespace_not_allowed")
        );
        assert_eq!(
            check_session(&p, "c", &who("bob", &["ops"]), "default").map_err(|d| d.reason()),
            Err("cluster_not_allowed")
        );
    }
}
