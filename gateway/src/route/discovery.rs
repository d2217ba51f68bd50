//! API discovery answered by podgate itself, for people the edge policy refuses a cluster.
//!
//! kubectl reads discovery before its real request and, when discovery is refused, prints
//! only `Error from server (Forbidden): unknown`, never the reason. Passing discovery upstream
//! for someone who may not use the cluster would show them its API groups and CRDs. So podgate
//! answers with the built-in Kubernetes resources only (nothing fetched from the cluster);
//! kubectl then makes its real request, which the edge refuses with podgate's own message.

use crate::http::{Body, json};
use http::StatusCode;
use serde_json::{Value, json};

/// The document for `segments` (a discovery path), or `None` for paths it does not answer
/// (OpenAPI, `/version`, unknown groups), which get the edge's 403 like any other request.
pub fn answer(segments: &[&str]) -> Option<http::Response<Body>> {
    let doc = match segments {
        ["api"] => json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
        }),
        ["apis"] => json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": GROUPS.iter().map(|(group, _)| json!({
                "name": group,
                "versions": [{"groupVersion": format!("{group}/v1"), "version": "v1"}],
                "preferredVersion": {"groupVersion": format!("{group}/v1"), "version": "v1"},
            })).collect::<Vec<_>>(),
        }),
        ["api", "v1"] => resource_list("v1", CORE),
        ["apis", group, "v1"] => {
            let (_, resources) = GROUPS.iter().find(|(g, _)| g == group)?;
            resource_list(&format!("{group}/v1"), resources)
        }
        _ => return None,
    };
    Some(json(StatusCode::OK, &doc))
}

/// name, kind, namespaced, short names.
type Resource = (&'static str, &'static str, bool, &'static [&'static str]);

const CORE: &[Resource] = &[
    ("pods", "Pod", true, &["po"]),
    ("pods/exec", "PodExecOptions", true, &[]),
    ("pods/attach", "PodAttachOptions", true, &[]),
    ("pods/log", "Pod", true, &[]),
    ("pods/portforward", "PodPortForwardOptions", true, &[]),
    ("pods/ephemeralcontainers", "Pod", true, &[]),
    ("namespaces", "Namespace", false, &["ns"]),
    ("services", "Service", true, &["svc"]),
    ("configmaps", "ConfigMap", true, &["cm"]),
    ("secrets", "Secret", true, &[]),
    ("events", "Event", true, &["ev"]),
    ("nodes", "Node", false, &["no"]),
    (
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
    ),
    ("serviceaccounts", "ServiceAccount", true, &["sa"]),
    ("endpoints", "Endpoints", true, &["ep"]),
];

const GROUPS: &[(&str, &[Resource])] = &[
    (
        "apps",
        &[
            ("deployments", "Deployment", true, &["deploy"]),
            ("statefulsets", "StatefulSet", true, &["sts"]),
            ("daemonsets", "DaemonSet", true, &["ds"]),
            ("replicasets", "ReplicaSet", true, &["rs"]),
        ],
    ),
    (
        "batch",
        &[
            ("jobs", "Job", true, &[]),
            ("cronjobs", "CronJob", true, &["cj"]),
        ],
    ),
];

fn resource_list(group_version: &str, resources: &[Resource]) -> Value {
    let resources: Vec<Value> = resources
        .iter()
        .map(|(name, kind, namespaced, short)| {
            let sub = name.contains('/');
            let verbs: &[&str] = if sub {
                &["create", "get"]
            } else {
                &[
                    "create", "delete", "get", "list", "patch", "update", "watch",
                ]
            };
            let mut r = json!({
                "name": name,
                "singularName": if sub { String::new() } else { kind.to_ascii_lowercase() },
                "namespaced": namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if !short.is_empty() {
                r["shortNames"] = json!(short);
            }
            r
        })
        .collect();
    json!({"kind": "APIResourceList", "groupVersion": group_version, "resources": resources})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_only_the_built_in_discovery_documents() {
        for path in [
            &["api"][..],
            &["apis"],
            &["api", "v1"],
            &["apis", "apps", "v1"],
            &["apis", "batch", "v1"],
        ] {
            assert!(answer(path).is_some(), "{path:?}");
        }
        for path in [
            &["version"][..],
            &["openapi", "v3"],
            &["apis", "example.com", "v1"],
            &["apis", "apps"],
            &["api", "v1", "pods"],
        ] {
            assert!(answer(path).is_none(), "{path:?}");
        }
    }

    #[test]
    fn resources_say_what_kubectl_needs() {
        let list = resource_list("v1", CORE);
        let pods = &list["resources"][0];
        assert_eq!(pods["name"], "pods");
        assert_eq!(pods["singularName"], "pod");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["namespaced"], true);
        let exec = list["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == "pods/exec"))
            .expect("pods/exec");
        assert_eq!(exec["verbs"], json!(["create", "get"]));
    }
}
