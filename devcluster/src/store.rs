//! The objects the cluster serves: real k8s-openapi `Namespace`s and `Pod`s built from the
//! topology once at start, so kubectl and kube-rs read exactly what a kubelet would report.

use crate::topology::{ContainerSpec, PodSpec, Runtime, Topology};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

pub struct PodEntry {
    pub pod: core::Pod,
    pub spec: PodSpec,
}

pub struct Store {
    /// namespace name → namespace object; ordered so lists are stable.
    namespaces: BTreeMap<String, core::Namespace>,
    /// (namespace, name) → pod. Pods change only by gaining ephemeral containers
    /// (`kubectl debug`), which replaces the entry; readers hold the entry they read.
    pods: RwLock<BTreeMap<(String, String), Arc<PodEntry>>>,
    pub resource_version: String,
}

impl Store {
    pub fn new(topology: &Topology) -> Store {
        let now = now();
        let mut namespaces = BTreeMap::new();
        let mut all_pods = BTreeMap::new();
        for (i, ns) in topology.namespaces.iter().enumerate() {
            let namespace = core::Namespace {
                metadata: ObjectMeta {
                    name: Some(ns.name.clone()),
                    uid: Some(uid(&[&ns.name])),
                    resource_version: Some("1".into()),
                    creation_timestamp: Some(now.clone()),
                    labels: Some(BTreeMap::from([(
                        "kubernetes.io/metadata.name".to_string(),
                        ns.name.clone(),
                    )])),
                    ..ObjectMeta::default()
                },
                spec: None,
                status: Some(core::NamespaceStatus {
                    phase: Some("Active".into()),
                    ..Default::default()
                }),
            };
            for (j, p) in ns.pods.iter().enumerate() {
                let ip = format!("10.244.{}.{}", i % 250, j % 250 + 2);
                let entry = PodEntry {
                    pod: build_pod(&ns.name, p, &ip, &now),
                    spec: p.clone(),
                };
                all_pods.insert((ns.name.clone(), p.name.clone()), Arc::new(entry));
            }
            namespaces.insert(ns.name.clone(), namespace);
        }
        Store {
            namespaces,
            pods: RwLock::new(all_pods),
            resource_version: "1".into(),
        }
    }

    pub fn namespaces(&self) -> impl Iterator<Item = &core::Namespace> {
        self.namespaces.values()
    }

    pub fn namespace(&self, name: &str) -> Option<&core::Namespace> {
        self.namespaces.get(name)
    }

    /// Pods of one namespace, or of all when `namespace` is `None`, in order.
    pub fn pods(&self, namespace: Option<&str>) -> Vec<Arc<PodEntry>> {
        self.pods
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
            .map(|(_, e)| e.clone())
            .collect()
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<Arc<PodEntry>> {
        self.pods
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Replaces a pod's entry with what `change` makes of it (under the lock, so two changes
    /// never lose one another); `None` when there is no such pod.
    pub fn update<T>(
        &self,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&PodEntry) -> Result<(PodEntry, T), T>,
    ) -> Option<Result<(Arc<PodEntry>, T), T>> {
        let mut pods = self.pods.write().unwrap_or_else(PoisonError::into_inner);
        let slot = pods.get_mut(&(namespace.to_string(), name.to_string()))?;
        Some(change(slot).map(|(entry, t)| {
            let entry = Arc::new(entry);
            *slot = entry.clone();
            (entry, t)
        }))
    }
}

impl PodEntry {
    pub fn container(&self, name: &str) -> Option<&ContainerSpec> {
        self.spec.all_containers().find(|c| c.name == name)
    }
}

/// Now as a k8s `Time` (whole seconds, as the API server reports). jiff's clock needs its
/// `std` feature, which k8s-openapi leaves off, so the system clock is read here.
pub fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(unix_seconds()).unwrap_or_default())
}

pub fn unix_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn uid(parts: &[&str]) -> String {
    // Stable, unique enough for a dev cluster: FNV-1a of the name path, shaped as a UUID.
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in parts.join("/").bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    let s = format!("{h:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &s[0..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..32]
    )
}

fn container(c: &ContainerSpec) -> core::Container {
    core::Container {
        name: c.name.clone(),
        image: Some(c.image.clone()),
        image_pull_policy: Some("IfNotPresent".into()),
        stdin: Some(c.runtime == Runtime::Process),
        tty: Some(false),
        command: (c.runtime == Runtime::Process).then(|| c.command.clone()),
        ports: (!c.ports.is_empty()).then(|| {
            c.ports
                .iter()
                .map(|p| core::ContainerPort {
                    container_port: i32::from(p.container_port),
                    name: p.name.clone(),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    }
}

pub(crate) fn running_status(c: &ContainerSpec, now: &Time) -> core::ContainerStatus {
    core::ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: format!("devcluster://{}", c.image),
        container_id: Some(format!("devcluster://{}", uid(&[&c.name, &c.image]))),
        ready: true,
        started: Some(true),
        restart_count: 0,
        state: Some(core::ContainerState {
            running: Some(core::ContainerStateRunning {
                started_at: Some(now.clone()),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn completed_status(c: &ContainerSpec, now: &Time) -> core::ContainerStatus {
    core::ContainerStatus {
        ready: false,
        started: Some(false),
        state: Some(core::ContainerState {
            terminated: Some(core::ContainerStateTerminated {
                exit_code: 0,
                reason: Some("Completed".into()),
                started_at: Some(now.clone()),
                finished_at: Some(now.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..running_status(c, now)
    }
}

fn build_pod(namespace: &str, p: &PodSpec, ip: &str, now: &Time) -> core::Pod {
    let non_empty = |m: &BTreeMap<String, String>| (!m.is_empty()).then(|| m.clone());
    let condition = |t: &str| core::PodCondition {
        type_: t.into(),
        status: "True".into(),
        last_transition_time: Some(now.clone()),
        ..Default::default()
    };
    core::Pod {
        metadata: ObjectMeta {
            name: Some(p.name.clone()),
            namespace: Some(namespace.into()),
            uid: Some(uid(&[namespace, &p.name])),
            resource_version: Some("1".into()),
            creation_timestamp: Some(now.clone()),
            labels: non_empty(&p.labels),
            annotations: non_empty(&p.annotations),
            ..ObjectMeta::default()
        },
        spec: Some(core::PodSpec {
            containers: p.containers.iter().map(container).collect(),
            init_containers: (!p.init_containers.is_empty())
                .then(|| p.init_containers.iter().map(container).collect()),
            ephemeral_containers: (!p.ephemeral_containers.is_empty()).then(|| {
                p.ephemeral_containers
                    .iter()
                    .map(|c| core::EphemeralContainer {
                        name: c.name.clone(),
                        image: Some(c.image.clone()),
                        ..Default::default()
                    })
                    .collect()
            }),
            node_name: Some("devcluster-node".into()),
            restart_policy: Some("Always".into()),
            ..Default::default()
        }),
        status: Some(core::PodStatus {
            phase: Some("Running".into()),
            pod_ip: Some(ip.into()),
            host_ip: Some("127.0.0.1".into()),
            start_time: Some(now.clone()),
            qos_class: Some("BestEffort".into()),
            conditions: Some(
                ["Initialized", "Ready", "ContainersReady", "PodScheduled"]
                    .into_iter()
                    .map(condition)
                    .collect(),
            ),
            container_statuses: Some(
                p.containers
                    .iter()
                    .map(|c| running_status(c, now))
                    .collect(),
            ),
            init_container_statuses: (!p.init_containers.is_empty()).then(|| {
                p.init_containers
                    .iter()
                    .map(|c| completed_status(c, now))
                    .collect()
            }),
            ephemeral_container_statuses: (!p.ephemeral_containers.is_empty()).then(|| {
                p.ephemeral_containers
                    .iter()
                    .map(|c| running_status(c, now))
                    .collect()
            }),
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_are_running_with_statuses() {
        let s = Store::new(&Topology::builtin());
        let e = s.pod("default", "multi-0").unwrap();
        let st = e.pod.status.as_ref().unwrap();
        assert_eq!(st.phase.as_deref(), Some("Running"));
        assert_eq!(st.container_statuses.as_ref().unwrap().len(), 2);
        assert!(
            st.container_statuses
                .as_ref()
                .unwrap()
                .iter()
                .all(|c| c.ready)
        );
        assert!(e.container("init").is_some());
        assert!(e.container("nope").is_none());
        assert_eq!(
            s.pods(None).len(),
            s.pods(Some("default")).len() + s.pods(Some("shop")).len() + s.pods(Some("load")).len()
        );
        assert!(s.pod("default", "nope").is_none());
        assert_ne!(uid(&["a", "b"]), uid(&["a", "c"]));
    }
}
