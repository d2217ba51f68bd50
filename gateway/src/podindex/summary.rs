//! What the index keeps of one pod: the few fields search matches and shows, read from the
//! API's JSON (list items and watch objects) without ever failing on what a cluster sends.

use serde::Deserialize;
use std::collections::BTreeMap;

/// One pod, as search shows it. Lowercased copies of what is matched are kept beside the
/// originals so a keystroke's search does no allocation per pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSummary {
    pub namespace: String,
    pub name: String,
    /// `status.phase`, or `Terminating` once a deletion is under way.
    pub phase: String,
    pub ready: u32,
    pub containers: u32,
    pub restarts: u32,
    /// `metadata.creationTimestamp` as the API wrote it (RFC 3339), if any.
    pub created: Option<String>,
    pub node: String,
    pub labels: BTreeMap<String, String>,
    /// The controller: (kind, name), with a ReplicaSet's pods shown as their Deployment's.
    pub owner: Option<(String, String)>,
    pub(crate) lower: Lower,
}

/// Lowercased name, namespace, node and owner name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Lower {
    pub name: String,
    pub namespace: String,
    pub node: String,
    pub owner: String,
    /// Each label as `key=value`.
    pub labels: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct WirePod {
    metadata: WireMeta,
    spec: WireSpec,
    status: WireStatus,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireMeta {
    name: String,
    namespace: String,
    creation_timestamp: Option<String>,
    deletion_timestamp: Option<String>,
    labels: BTreeMap<String, String>,
    owner_references: Vec<WireOwner>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireOwner {
    kind: String,
    name: String,
    controller: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireSpec {
    node_name: String,
    containers: Vec<serde::de::IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireStatus {
    phase: String,
    container_statuses: Vec<WireContainerStatus>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireContainerStatus {
    ready: bool,
    restart_count: u32,
}

/// The Deployment that owns ReplicaSet `rs` when its pods carry `pod-template-hash=H` and
/// the ReplicaSet is named `{deployment}-{H}` (as the Deployment controller names them).
pub fn deployment_of(rs: &str, labels: &BTreeMap<String, String>) -> Option<String> {
    let hash = labels.get("pod-template-hash")?;
    let base = rs.strip_suffix(hash.as_str())?.strip_suffix('-')?;
    (!base.is_empty()).then(|| base.to_string())
}

impl PodSummary {
    /// `None` when it names no pod (no name or namespace).
    pub fn from_wire(p: WirePod) -> Option<PodSummary> {
        let m = p.metadata;
        if m.name.is_empty() || m.namespace.is_empty() {
            return None;
        }
        let owner = m
            .owner_references
            .iter()
            .find(|o| o.controller == Some(true))
            .or(m.owner_references.first())
            .map(|o| {
                if o.kind == "ReplicaSet"
                    && let Some(d) = deployment_of(&o.name, &m.labels)
                {
                    ("Deployment".to_string(), d)
                } else {
                    (o.kind.clone(), o.name.clone())
                }
            });
        let phase = if m.deletion_timestamp.is_some() {
            "Terminating".to_string()
        } else if p.status.phase.is_empty() {
            "Unknown".to_string()
        } else {
            p.status.phase
        };
        let statuses = &p.status.container_statuses;
        let containers = p.spec.containers.len().max(statuses.len());
        let lower = Lower {
            name: m.name.to_lowercase(),
            namespace: m.namespace.to_lowercase(),
            node: p.spec.node_name.to_lowercase(),
            owner: owner
                .as_ref()
                .map(|(_, n)| n.to_lowercase())
                .unwrap_or_default(),
            labels: m
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}").to_lowercase())
                .collect(),
        };
        Some(PodSummary {
            ready: statuses.iter().filter(|s| s.ready).count() as u32,
            containers: u32::try_from(containers).unwrap_or(u32::MAX),
            restarts: statuses
                .iter()
                .fold(0u32, |a, s| a.saturating_add(s.restart_count)),
            namespace: m.namespace,
            name: m.name,
            phase,
            created: m.creation_timestamp,
            node: p.spec.node_name,
            labels: m.labels,
            owner,
            lower,
        })
    }

    /// From a pod's JSON object.
    pub fn from_json(v: serde_json::Value) -> Option<PodSummary> {
        serde_json::from_value::<WirePod>(v)
            .ok()
            .and_then(PodSummary::from_wire)
    }

    /// A rough count of the bytes it holds, for the index's memory bound.
    pub fn weight(&self) -> usize {
        let labels: usize = self
            .labels
            .iter()
            .map(|(k, v)| 2 * (k.len() + v.len()) + 72)
            .sum();
        std::mem::size_of::<PodSummary>()
            + 2 * (self.name.len() + self.namespace.len() + self.node.len())
            + self.phase.len()
            + self.created.as_ref().map_or(0, String::len)
            + self
                .owner
                .as_ref()
                .map_or(0, |(k, n)| k.len() + 2 * n.len())
            + labels
    }
}

#[cfg(test)]
pub(crate) fn pod(ns: &str, name: &str, labels: &[(&str, &str)], node: &str) -> PodSummary {
    let v = serde_json::json!({
        "metadata": {"name": name, "namespace": ns,
                     "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()},
        "spec": {"nodeName": node, "containers": [{"name": "main"}]},
        "status": {"phase": "Running", "containerStatuses": [{"ready": true, "restartCount": 0}]},
    });
    PodSummary::from_json(v).expect("a pod")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_and_replicasets_show_their_deployment() {
        let v = serde_json::json!({
            "metadata": {"name": "web-7d9f8c-abcde", "namespace": "shop",
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"app": "web", "pod-template-hash": "7d9f8c"},
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d9f8c", "controller": true}]},
            "spec": {"nodeName": "node-1", "containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"ready": true, "restartCount": 2}, {"ready": false, "restartCount": 1}]},
        });
        let p = PodSummary::from_json(v).unwrap();
        assert_eq!(p.owner, Some(("Deployment".into(), "web".into())));
        assert_eq!((p.ready, p.containers, p.restarts), (1, 2, 3));
        assert_eq!(p.node, "node-1");
        assert_eq!(p.phase, "Running");
        assert_eq!(p.created.as_deref(), Some("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn owners_without_a_hash_stay_as_they_are_and_junk_is_no_pod() {
        let labels = BTreeMap::from([("pod-template-hash".to_string(), "zz".to_string())]);
        assert_eq!(deployment_of("web-abc", &labels), None);
        assert_eq!(deployment_of("-zz", &labels), None);
        assert_eq!(deployment_of("api-zz", &labels).as_deref(), Some("api"));
        assert_eq!(deployment_of("api-zz", &BTreeMap::new()), None);
        let v = serde_json::json!({
            "metadata": {"name": "db-0", "namespace": "shop", "deletionTimestamp": "x",
                "ownerReferences": [{"kind": "StatefulSet", "name": "db", "controller": true}]},
        });
        let p = PodSummary::from_json(v).unwrap();
        assert_eq!(p.owner, Some(("StatefulSet".into(), "db".into())));
        assert_eq!(p.phase, "Terminating");
        assert_eq!(p.containers, 0);
        assert!(PodSummary::from_json(serde_json::json!({"metadata": {"name": 3}})).is_none());
        assert!(PodSummary::from_json(serde_json::json!("nope")).is_none());
        assert!(PodSummary::from_json(serde_json::json!({})).is_none());
    }
}
