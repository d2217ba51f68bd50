//! The self reviews: `SelfSubjectAccessReview` (`kubectl auth can-i`), `SelfSubjectRulesReview`
//! (`kubectl auth can-i --list`) and `SelfSubjectReview` (`kubectl auth whoami`), answered for
//! the identity the request runs as (the impersonated one, through a gateway) from the
//! devcluster's own rules, with their discovery. Pure: a body in, the answer out.
//!
//! As kube-apiserver: every authenticated user may create them (the `system:basic-user` and
//! `system:discovery` roles), answers are `201 Created` with the request echoed and `status`
//! filled; a spec naming both or neither of resource and non-resource attributes is `422`.

mod proto;

use crate::access::{Access, Attributes, UserInfo};
use crate::topology::Rule;
use hyper::StatusCode;
use podgate_protocol::Status;
use serde_json::{Value, json};

pub const AUTHORIZATION: &str = "authorization.k8s.io";
pub const AUTHENTICATION: &str = "authentication.k8s.io";

/// The review resources this cluster serves, as (group, resource).
pub fn is_review(group: &str, resource: &str) -> bool {
    matches!(
        (group, resource),
        (
            AUTHORIZATION,
            "selfsubjectaccessreviews" | "selfsubjectrulesreviews"
        ) | (AUTHENTICATION, "selfsubjectreviews")
    )
}

/// Non-resource URLs every authenticated user may GET (`system:discovery`,
/// `system:public-info-viewer`).
const DISCOVERY_URLS: [&str; 11] = [
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
];

/// Answers a review `resource` of `group` posted with `body` (JSON, or protobuf when
/// `content_type` says so, as kubectl sends it) for `user`; the answer is JSON.
pub fn answer(
    access: &Access,
    user: &UserInfo,
    group: &str,
    resource: &str,
    content_type: &str,
    body: &[u8],
) -> Result<(StatusCode, Value), Status> {
    let mut review: Value = if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        proto::review_json(body, resource == "selfsubjectrulesreviews").map_err(|e| {
            Status::bad_request(format!("the request body is not a review object: {e}"))
        })?
    } else {
        serde_json::from_slice(body).map_err(|e| {
            Status::bad_request(format!("the request body is not a review object: {e}"))
        })?
    };
    if !review.is_object() {
        return Err(Status::bad_request(
            "the request body is not a review object",
        ));
    }
    let kind = match resource {
        "selfsubjectaccessreviews" => "SelfSubjectAccessReview",
        "selfsubjectrulesreviews" => "SelfSubjectRulesReview",
        _ => "SelfSubjectReview",
    };
    let status = match resource {
        "selfsubjectaccessreviews" => access_review(access, user, &review["spec"])?,
        "selfsubjectrulesreviews" => rules_review(access, user, &review["spec"]),
        _ => json!({"userInfo": user_info(user)}),
    };
    review["kind"] = json!(kind);
    review["apiVersion"] = json!(format!("{group}/v1"));
    review["status"] = status;
    Ok((StatusCode::CREATED, review))
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn access_review(access: &Access, user: &UserInfo, spec: &Value) -> Result<Value, Status> {
    let (resource, non_resource) = (&spec["resourceAttributes"], &spec["nonResourceAttributes"]);
    let allowed = match (resource.is_object(), non_resource.is_object()) {
        (true, false) => {
            let sub = text(resource, "subresource");
            let name = if sub.is_empty() {
                text(resource, "resource").to_string()
            } else {
                format!("{}/{sub}", text(resource, "resource"))
            };
            let non_empty = |s: &'static str| Some(text(resource, s)).filter(|v| !v.is_empty());
            let attrs = Attributes {
                verb: text(resource, "verb"),
                group: text(resource, "group"),
                resource: &name,
                namespace: non_empty("namespace"),
                name: non_empty("name"),
            };
            is_review(attrs.group, attrs.resource) && attrs.verb == "create"
                || access.allows(user, &attrs)
        }
        (false, true) => {
            let path = text(non_resource, "path");
            let verb = text(non_resource, "verb");
            access.is_master(user)
                || verb == "get" && DISCOVERY_URLS.iter().any(|u| url_matches(u, path))
        }
        _ => {
            return Err(Status::api_error(
                422,
                "Invalid",
                "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
            ));
        }
    };
    Ok(if allowed {
        json!({"allowed": true, "reason": "devcluster: allowed by its rules"})
    } else {
        json!({"allowed": false})
    })
}

/// RBAC's non-resource URL match: exact, or a `*` suffix as a prefix.
fn url_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

fn rules_review(access: &Access, user: &UserInfo, spec: &Value) -> Value {
    let namespace = text(spec, "namespace");
    let mut resource_rules = vec![
        json!({"verbs": ["create"], "apiGroups": [AUTHORIZATION],
               "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]}),
        json!({"verbs": ["create"], "apiGroups": [AUTHENTICATION], "resources": ["selfsubjectreviews"]}),
    ];
    let mut non_resource_rules = vec![json!({"verbs": ["get"], "nonResourceURLs": DISCOVERY_URLS})];
    if access.is_master(user) {
        resource_rules.insert(
            0,
            json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}),
        );
        non_resource_rules.insert(0, json!({"verbs": ["*"], "nonResourceURLs": ["*"]}));
    }
    resource_rules.extend(access.rules_for(user, namespace).into_iter().map(rule_json));
    json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": false})
}

/// A devcluster rule as RBAC writes it: its resources are in the core group, except the
/// authentication ones (`uids`, `userextras/...`); `*` in any group.
fn rule_json(r: &Rule) -> Value {
    let group = |res: &str| {
        if res == "*" {
            "*"
        } else if res == "uids" || res.starts_with("userextras") {
            AUTHENTICATION
        } else {
            ""
        }
    };
    let mut groups: Vec<&str> = r.resources.iter().map(|x| group(x)).collect();
    groups.sort_unstable();
    groups.dedup();
    json!({"verbs": r.verbs, "apiGroups": groups, "resources": r.resources})
}

fn user_info(user: &UserInfo) -> Value {
    let mut info = json!({"username": user.name, "groups": user.groups});
    if let Some(uid) = &user.uid {
        info["uid"] = json!(uid);
    }
    if !user.extra.is_empty() {
        info["extra"] = json!(user.extra);
    }
    info
}

/// `/apis` with the two review groups.
pub fn groups() -> Value {
    let group = |name: &str| {
        json!({"name": name, "versions": [{"groupVersion": format!("{name}/v1"), "version": "v1"}],
               "preferredVersion": {"groupVersion": format!("{name}/v1"), "version": "v1"}})
    };
    json!({"kind": "APIGroupList", "apiVersion": "v1",
           "groups": [group(AUTHENTICATION), group(AUTHORIZATION)]})
}

/// `/apis/{group}/v1`, or `None` for a group this cluster does not serve.
pub fn resources(group: &str) -> Option<Value> {
    let r = |name: &str, kind: &str| json!({"name": name, "singularName": "", "namespaced": false, "kind": kind, "verbs": ["create"]});
    let list = match group {
        AUTHORIZATION => vec![
            r("selfsubjectaccessreviews", "SelfSubjectAccessReview"),
            r("selfsubjectrulesreviews", "SelfSubjectRulesReview"),
        ],
        AUTHENTICATION => vec![r("selfsubjectreviews", "SelfSubjectReview")],
        _ => return None,
    };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": format!("{group}/v1"), "resources": list}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;

    fn access() -> Access {
        let t = Topology::builtin();
        Access::new(t.users.clone(), t.rules.clone())
    }

    fn alice() -> UserInfo {
        UserInfo {
            name: "alice".into(),
            groups: vec!["dev".into(), "system:authenticated".into()],
            ..Default::default()
        }
    }

    fn can_i(verb: &str, resource: &str, sub: &str, ns: &str) -> bool {
        let body = json!({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "subresource": sub, "namespace": ns,
                "group": if resource.starts_with("selfsubject") { AUTHORIZATION } else { "" }}}});
        let (code, v) = answer(
            &access(),
            &alice(),
            AUTHORIZATION,
            "selfsubjectaccessreviews",
            "application/json",
            &serde_json::to_vec(&body).unwrap(),
        )
        .unwrap();
        assert_eq!(code, StatusCode::CREATED);
        v["status"]["allowed"].as_bool().unwrap()
    }

    #[test]
    fn access_reviews_answer_from_the_rules() {
        assert!(can_i("create", "pods", "exec", "default"));
        assert!(!can_i("create", "pods", "exec", "shop"));
        assert!(can_i("get", "pods", "portforward", "default"));
        assert!(!can_i("delete", "pods", "", "default"));
        assert!(can_i("create", "selfsubjectaccessreviews", "", ""));
        let both = json!({"spec": {}});
        let e = answer(
            &access(),
            &alice(),
            AUTHORIZATION,
            "selfsubjectaccessreviews",
            "application/json",
            &serde_json::to_vec(&both).unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.code, Some(422));
        assert!(
            answer(
                &access(),
                &alice(),
                AUTHORIZATION,
                "selfsubjectaccessreviews",
                "application/json",
                b"{"
            )
            .is_err()
        );
    }

    #[test]
    fn rules_and_identity_are_the_callers() {
        let body = serde_json::to_vec(&json!({"spec": {"namespace": "shop"}})).unwrap();
        let (_, v) = answer(
            &access(),
            &alice(),
            AUTHORIZATION,
            "selfsubjectrulesreviews",
            "",
            &body,
        )
        .unwrap();
        let rules = v["status"]["resourceRules"].as_array().unwrap();
        // The exec rule is for `default` only.
        assert!(!rules.iter().any(|r| {
            r["resources"]
                .as_array()
                .unwrap()
                .contains(&json!("pods/exec"))
        }));
        let body = serde_json::to_vec(&json!({"spec": {"namespace": "default"}})).unwrap();
        let (_, v) = answer(
            &access(),
            &alice(),
            AUTHORIZATION,
            "selfsubjectrulesreviews",
            "",
            &body,
        )
        .unwrap();
        let rules = v["status"]["resourceRules"].as_array().unwrap();
        assert!(rules.iter().any(|r| {
            r["resources"]
                .as_array()
                .unwrap()
                .contains(&json!("pods/exec"))
        }));
        let (_, v) = answer(
            &access(),
            &alice(),
            AUTHENTICATION,
            "selfsubjectreviews",
            "",
            b"{}",
        )
        .unwrap();
        assert_eq!(v["status"]["userInfo"]["username"], "alice");
        assert_eq!(v["kind"], "SelfSubjectReview");
        assert!(url_matches("/apis/*", "/apis/x") && !url_matches("/api", "/apis"));
    }
}
