//! The objects the cluster serves: real k8s-openapi `Namespace`s and `Pod`s built from the
//! topology once at start, so kubectl and kube-rs read exactly what a kubelet would report.

use crate::topology::{ContainerSpec, Phase, PodSpec, Runtime, Topology};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// The store's resourceVersion: 1 at start, one more at every change.
    revision: AtomicU64,
    /// The latest pod changes, for watches resuming from a resourceVersion (see `watch.rs`).
    history: std::sync::Mutex<History>,
    /// Tells watches the revision moved.
    changed: tokio::sync::watch::Sender<u64>,
}

/// How many pod changes the store remembers for watches (kube-apiserver's watch cache keeps a
/// window too; a watch from before it is `410 Gone`).
pub const HISTORY: usize = 1000;

/// What happened to a pod, as a watch event's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Modified,
    Deleted,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "ADDED",
            Change::Modified => "MODIFIED",
            Change::Deleted => "DELETED",
        }
    }
}

/// One pod change at resourceVersion `rv` (the pod as it is after it; the last state before a
/// deletion).
#[derive(Clone)]
pub struct Event {
    pub rv: u64,
    pub change: Change,
    pub entry: Arc<PodEntry>,
}

#[derive(Default)]
pub struct History {
    events: std::collections::VecDeque<Event>,
    /// Changes after this resourceVersion are all in `events`.
    complete_after: u64,
}

/// A watch asked for changes after a resourceVersion the store no longer remembers.
#[derive(Debug, PartialEq, Eq)]
pub struct TooOld {
    pub requested: u64,
    pub oldest: u64,
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
            for (j, p) in ns.all_pods().enumerate() {
                let ip = if j < 250 {
                    format!("10.244.{}.{}", i % 250, j + 2)
                } else {
                    format!("10.{}.{}.{}", 100 + i % 100, (j / 250) % 256, j % 250 + 2)
                };
                let p = p.into_owned();
                let entry = PodEntry {
                    pod: build_pod(&ns.name, &p, &ip, &now),
                    spec: p,
                };
                let name = entry.spec.name.clone();
                all_pods.insert((ns.name.clone(), name), Arc::new(entry));
            }
            namespaces.insert(ns.name.clone(), namespace);
        }
        Store {
            namespaces,
            pods: RwLock::new(all_pods),
            revision: AtomicU64::new(1),
            history: std::sync::Mutex::new(History {
                events: Default::default(),
                complete_after: 1,
            }),
            changed: tokio::sync::watch::channel(1).0,
        }
    }

    /// Pods of one namespace (or all) and the resourceVersion they are at, read together.
    pub fn snapshot(&self, namespace: Option<&str>) -> (Vec<Arc<PodEntry>>, u64) {
        let pods = self.pods.read().unwrap_or_else(PoisonError::into_inner);
        let rv = self.revision();
        let items = pods
            .iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
            .map(|(_, e)| e.clone())
            .collect();
        (items, rv)
    }

    /// The changes after `rv`, oldest first, or [`TooOld`] when some are forgotten.
    pub fn changes_after(&self, rv: u64) -> Result<Vec<Event>, TooOld> {
        let h = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        if rv < h.complete_after {
            return Err(TooOld {
                requested: rv,
                oldest: h.complete_after,
            });
        }
        Ok(h.events.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    /// Changes whenever the store does (its value: the new revision).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Records a change (called with the pods' write lock held, so revisions are in order).
    fn record(&self, change: Change, entry: Arc<PodEntry>) -> u64 {
        let rv = self.revision.fetch_add(1, Ordering::SeqCst) + 1;
        let mut h = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        h.events.push_back(Event { rv, change, entry });
        while h.events.len() > HISTORY {
            if let Some(old) = h.events.pop_front() {
                h.complete_after = old.rv;
            }
        }
        drop(h);
        self.changed.send_replace(rv);
        rv
    }

    /// Adds pod `spec` to `namespace` (which must exist), as a scheduler and kubelet would
    /// report it. `Err` when the namespace is unknown or the pod exists.
    pub fn create_pod(&self, namespace: &str, spec: PodSpec) -> Result<Arc<PodEntry>, String> {
        if !self.namespaces.contains_key(namespace) {
            return Err(format!("namespaces \"{namespace}\" not found"));
        }
        let mut pods = self.pods.write().unwrap_or_else(PoisonError::into_inner);
        let key = (namespace.to_string(), spec.name.clone());
        if pods.contains_key(&key) {
            return Err(format!("pods \"{}\" already exists", spec.name));
        }
        let rv = self.revision() + 1;
        let n = pods.len();
        let ip = format!(
            "10.{}.{}.{}",
            200 + (n / 62500) % 50,
            (n / 250) % 250,
            n % 250 + 2
        );
        let mut pod = build_pod(namespace, &spec, &ip, &now());
        pod.metadata.resource_version = Some(rv.to_string());
        let entry = Arc::new(PodEntry { pod, spec });
        pods.insert(key, entry.clone());
        self.record(Change::Added, entry.clone());
        Ok(entry)
    }

    /// Removes a pod; whether there was one.
    pub fn delete_pod(&self, namespace: &str, name: &str) -> bool {
        let mut pods = self.pods.write().unwrap_or_else(PoisonError::into_inner);
        let Some(old) = pods.remove(&(namespace.to_string(), name.to_string())) else {
            return false;
        };
        let rv = self.revision() + 1;
        let mut pod = old.pod.clone();
        pod.metadata.resource_version = Some(rv.to_string());
        let entry = Arc::new(PodEntry {
            pod,
            spec: old.spec.clone(),
        });
        self.record(Change::Deleted, entry);
        true
    }

    /// The current resourceVersion of lists (and of continue tokens).
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::SeqCst)
    }

    /// Pods of one namespace, or of all, keyed and in list order (namespace, name).
    pub fn keyed_pods(&self, namespace: Option<&str>) -> Vec<(crate::list::Key, Arc<PodEntry>)> {
        let pods = self.pods.read().unwrap_or_else(PoisonError::into_inner);
        match namespace {
            Some(ns) => pods
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(k, e)| (k.clone(), e.clone()))
                .collect(),
            None => pods.iter().map(|(k, e)| (k.clone(), e.clone())).collect(),
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
        Some(change(slot).map(|(mut entry, t)| {
            entry.pod.metadata.resource_version = Some((self.revision() + 1).to_string());
            let entry = Arc::new(entry);
            *slot = entry.clone();
            self.record(Change::Modified, entry.clone());
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
    let last_state = (c.restarts > 0).then(|| core::ContainerState {
        terminated: Some(core::ContainerStateTerminated {
            exit_code: 1,
            reason: Some("Error".into()),
            started_at: Some(now.clone()),
            finished_at: Some(now.clone()),
            container_id: Some(format!(
                "devcluster://{}",
                uid(&[&c.name, &c.image, "previous"])
            )),
            ..Default::default()
        }),
        ..Default::default()
    });
    core::ContainerStatus {
        last_state,
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: format!("devcluster://{}", c.image),
        container_id: Some(format!("devcluster://{}", uid(&[&c.name, &c.image]))),
        ready: true,
        started: Some(true),
        restart_count: i32::try_from(c.restarts).unwrap_or(i32::MAX),
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

/// A container's status in a pod of `phase`.
fn container_status(
    c: &ContainerSpec,
    phase: Phase,
    ready: bool,
    now: &Time,
) -> core::ContainerStatus {
    let base = running_status(c, now);
    let state = |s: core::ContainerState| Some(s);
    match phase {
        Phase::Running => core::ContainerStatus { ready, ..base },
        Phase::Pending => core::ContainerStatus {
            ready: false,
            started: Some(false),
            container_id: None,
            state: state(core::ContainerState {
                waiting: Some(core::ContainerStateWaiting {
                    reason: Some("ContainerCreating".into()),
                    message: None,
                }),
                ..Default::default()
            }),
            ..base
        },
        Phase::Succeeded | Phase::Failed => {
            let ok = phase == Phase::Succeeded;
            core::ContainerStatus {
                ready: false,
                started: Some(false),
                state: state(core::ContainerState {
                    terminated: Some(core::ContainerStateTerminated {
                        exit_code: if ok { 0 } else { 1 },
                        reason: Some(if ok { "Completed" } else { "Error" }.into()),
                        started_at: Some(now.clone()),
                        finished_at: Some(now.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..base
            }
        }
        Phase::Unknown => core::ContainerStatus {
            ready: false,
            ..base
        },
    }
}

fn build_pod(namespace: &str, p: &PodSpec, ip: &str, now: &Time) -> core::Pod {
    let non_empty = |m: &BTreeMap<String, String>| (!m.is_empty()).then(|| m.clone());
    let phase = p.phase.unwrap_or_default();
    let ready = phase == Phase::Running && p.ready.unwrap_or(true);
    let condition = |t: &str, ok: bool, reason: Option<&str>| core::PodCondition {
        type_: t.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.map(str::to_string),
        last_transition_time: Some(now.clone()),
        ..Default::default()
    };
    let not_ready = match phase {
        Phase::Succeeded | Phase::Failed => Some("PodCompleted"),
        _ => Some("ContainersNotReady"),
    };
    let conditions = vec![
        condition("Initialized", true, None),
        condition("Ready", ready, (!ready).then_some(not_ready).flatten()),
        condition(
            "ContainersReady",
            ready,
            (!ready).then_some(not_ready).flatten(),
        ),
        condition("PodScheduled", true, None),
    ];
    let owner_references = p.owner.as_ref().map(|o| {
        vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                api_version: o.api_version(),
                kind: o.kind.clone(),
                name: o.name.clone(),
                uid: uid(&[namespace, &o.kind, &o.name]),
                controller: Some(true),
                block_owner_deletion: Some(true),
            },
        ]
    });
    let has_ip = phase != Phase::Pending;
    core::Pod {
        metadata: ObjectMeta {
            name: Some(p.name.clone()),
            namespace: Some(namespace.into()),
            uid: Some(uid(&[namespace, &p.name])),
            resource_version: Some("1".into()),
            creation_timestamp: Some(now.clone()),
            labels: non_empty(&p.labels),
            annotations: non_empty(&p.annotations),
            owner_references,
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
            node_name: Some(
                p.node_name
                    .clone()
                    .unwrap_or_else(|| "devcluster-node".into()),
            ),
            restart_policy: Some("Always".into()),
            scheduler_name: Some("default-scheduler".into()),
            service_account_name: Some("default".into()),
            ..Default::default()
        }),
        status: Some(core::PodStatus {
            phase: Some(phase.as_str().into()),
            pod_ip: has_ip.then(|| ip.into()),
            pod_ips: has_ip.then(|| vec![core::PodIP { ip: ip.into() }]),
            host_ip: Some("127.0.0.1".into()),
            start_time: Some(now.clone()),
            qos_class: Some("BestEffort".into()),
            conditions: Some(conditions),
            container_statuses: Some(
                p.containers
                    .iter()
                    .map(|c| container_status(c, phase, ready, now))
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
    fn statuses_follow_phase_ready_restarts_and_owner() {
        let t = Topology::parse(
            "g.yaml",
            r#"
namespaces:
  - name: a
    generate:
      - count: 4
        name: "p-{i}"
        owner: {kind: ReplicaSet, name: rs}
        statuses: [{phase: Pending}, {ready: false}, {restarts: 3}, {phase: Succeeded}]
"#,
        )
        .unwrap();
        let s = Store::new(&t);
        let st = |n: &str| s.pod("a", n).unwrap().pod.status.clone().unwrap();
        let pending = st("p-0");
        assert_eq!(pending.phase.as_deref(), Some("Pending"));
        assert!(pending.pod_ip.is_none());
        let c = &pending.container_statuses.as_ref().unwrap()[0];
        assert_eq!(
            c.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("ContainerCreating")
        );
        let unready = st("p-1");
        assert!(!unready.container_statuses.as_ref().unwrap()[0].ready);
        let ready_cond = unready
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready_cond.status, "False");
        let restarted = st("p-2");
        let c = &restarted.container_statuses.as_ref().unwrap()[0];
        assert_eq!(c.restart_count, 3);
        assert!(c.last_state.as_ref().unwrap().terminated.is_some());
        let done = st("p-3");
        assert_eq!(
            done.container_statuses.as_ref().unwrap()[0]
                .state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("Completed")
        );
        let meta = &s.pod("a", "p-0").unwrap().pod.metadata;
        let owner = &meta.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("ReplicaSet", "rs", Some(true))
        );
    }

    #[test]
    fn a_change_moves_the_revision_so_old_continue_tokens_expire() {
        let s = Store::new(&Topology::builtin());
        let before = s.revision();
        let token = crate::list::encode_continue(before, &("default".into(), "multi-0".into()));
        assert!(crate::list::parse(&format!("continue={token}"), s.revision(), &[]).is_ok());
        let changed = s.update("default", "shell-0", |e| {
            Ok::<_, ()>((
                PodEntry {
                    pod: e.pod.clone(),
                    spec: e.spec.clone(),
                },
                (),
            ))
        });
        assert!(matches!(changed, Some(Ok(_))));
        assert_eq!(s.revision(), before + 1);
        let e = crate::list::parse(&format!("continue={token}"), s.revision(), &[]).unwrap_err();
        assert_eq!((e.code, e.reason.as_deref()), (Some(410), Some("Expired")));
        // Keyed pods of one namespace are that namespace's, in name order.
        let keys: Vec<_> = s
            .keyed_pods(Some("shop"))
            .into_iter()
            .map(|(k, _)| k.1)
            .collect();
        assert_eq!(keys, ["db-0", "web-0"]);
    }

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
