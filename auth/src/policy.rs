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
        Scope::Discovery | Scope::SelfReview => Ok(()),
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

/// What a self review asks about, as the edge judges it ([`check_question`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Question<'a> {
    /// A `SelfSubjectAccessReview` about a resource (`namespace` empty: cluster-wide).
    Resource {
        namespace: &'a str,
        group: &'a str,
        resource: &'a str,
        name: &'a str,
    },
    /// A `SelfSubjectAccessReview` about a non-resource URL (`/healthz`, `/logs`).
    NonResource { path: &'a str },
    /// A `SelfSubjectRulesReview` (`kubectl auth can-i --list`) of `namespace`.
    Rules { namespace: &'a str },
}

/// Whether the edge itself would let `who` do what a self review asks about: where it would
/// refuse, podgate answers the review (no) and the cluster is not asked, so `kubectl auth
/// can-i` agrees with what podgate then does.
pub fn check_question(
    policy: &AccessPolicy,
    cluster: &str,
    who: &Identity,
    question: &Question<'_>,
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
    let allowed = |ns: &str| policy.namespaces.iter().any(|n| n == ns);
    let deny = |what: String| Denied::Namespace {
        user: who.user().to_string(),
        cluster: cluster.into(),
        allowed: policy.namespaces.clone(),
        what,
    };
    match *question {
        Question::Resource { namespace, .. } | Question::Rules { namespace }
            if !namespace.is_empty() =>
        {
            if allowed(namespace) {
                Ok(())
            } else {
                Err(deny(format!("namespace {namespace:?}")))
            }
        }
        // The namespace object itself (`/api/v1/namespaces/{ns}`), as the edge reads that path.
        Question::Resource {
            group: "",
            resource: "namespaces",
            name,
            ..
        } if allowed(name) => Ok(()),
        Question::Resource { resource, .. } => Err(deny(format!("cluster-wide {resource:?}"))),
        Question::Rules { .. } => Err(deny("cluster-wide rules".into())),
        Question::NonResource { path } => match ApiPath::parse(path) {
            Ok(p) => check(policy, cluster, who, &p),
            Err(_) => Err(deny(format!("non-resource URL {path:?}"))),
        },
    }
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
    /// A self review (`kubectl auth can-i`, `auth whoami`): a question about oneself, answered
    /// by the cluster for the person asking, harmless for anyone who may use the cluster.
    SelfReview,
    /// Anything else: cluster-scoped objects, or namespaced ones across all namespaces.
    Cluster,
}

fn namespace_of<'a>(segments: &[&'a str]) -> Scope<'a> {
    match segments {
        ["version"] | ["api"] | ["apis"] | ["api", _] | ["apis", _] | ["apis", _, _] => {
            Scope::Discovery
        }
        ["openapi", ..] => Scope::Discovery,
        [
            "apis",
            "authorization.k8s.io",
            _,
            "selfsubjectaccessreviews" | "selfsubjectrulesreviews",
        ]
        | ["apis", "authentication.k8s.io", _, "selfsubjectreviews"] => Scope::SelfReview,
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
            // Self reviews: questions about oneself (`kubectl auth can-i`, `auth whoami`).
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        ] {
            assert!(check(&p, "c", &w, ok).is_ok(), "{ok}");
        }
        // Not the reviews about others.
        let others = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
        assert!(check(&p, "c", &w, others).is_err());
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
    fn self_reviews_are_judged_as_the_edge_judges_what_they_ask() {
        let p = AccessPolicy {
            users: vec![],
            groups: vec![],
            namespaces: vec!["default".into()],
        };
        let w = who("alice", &[]);
        let q = |q: Question<'_>| check_question(&p, "c", &w, &q).map_err(|d| d.to_string());
        let pods = |namespace| Question::Resource {
            namespace,
            group: "",
            resource: "pods",
            name: "",
        };
        assert_eq!(q(pods("default")), Ok(()));
        assert_eq!(
            q(pods("shop")),
            Err("podgate: cluster \"c\" is open to user \"alice\" only in namespaces [\"default\"], not namespace \"shop\"".into())
        );
        let e = q(pods("")).unwrap_err();
        assert!(e.ends_with("not cluster-wide \"pods\""), "{e}");
        let ns = |name| Question::Resource {
            namespace: "",
            group: "",
            resource: "namespaces",
            name,
        };
        assert_eq!(q(ns("default")), Ok(()));
        assert!(q(ns("shop")).is_err());
        assert_eq!(
            q(Question::Rules {
                namespace: "default"
            }),
            Ok(())
        );
        assert!(q(Question::Rules { namespace: "shop" }).is_err());
        assert!(q(Question::Rules { namespace: "" }).is_err());
        assert_eq!(q(Question::NonResource { path: "/version" }), Ok(()));
        assert!(q(Question::NonResource { path: "/logs" }).is_err());
        assert!(q(Question::NonResource { path: "logs" }).is_err());
        // Who may not use the cluster at all hears that; an open policy lets every question by.
        let closed = AccessPolicy {
            users: vec!["carol".into()],
            ..p.clone()
        };
        let d = check_question(&closed, "c", &w, &pods("default")).unwrap_err();
        assert_eq!(d.reason(), "cluster_not_allowed");
        let open = AccessPolicy::default();
        assert!(check_question(&open, "c", &w, &pods("")).is_ok());
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
