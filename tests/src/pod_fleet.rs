//! Topologies for the pod search: the built-in one plus thousands of generated pods in
//! `team-a` (a Deployment's) and `team-b` (a Job's), a rule letting group `team-a` list pods in
//! `team-a` only, and a person in that group (carol). Used by the pod search tests and the
//! Chromium bench.

use podgate_devcluster::Topology;
use podgate_devcluster::topology::{Generate, Namespace, Owner, PodSpec, Rule};

/// carol: in group `team-a`, which the devclusters let list pods in namespace `team-a` only.
pub const CAROL: &str = "pod-search-carol";

pub fn generate(count: usize, name: &str, app: &str, owner: Owner, hash: Option<&str>) -> Generate {
    let mut labels = std::collections::BTreeMap::from([("app".to_string(), app.to_string())]);
    if let Some(h) = hash {
        labels.insert("pod-template-hash".into(), h.into());
    }
    Generate {
        count,
        name: name.into(),
        labels,
        annotations: Default::default(),
        owner: Some(owner),
        nodes: vec!["node-1".into(), "node-2".into(), "node-3".into()],
        containers: Vec::new(),
        statuses: Vec::new(),
    }
}

/// The built-in topology, with `team-a` (api pods of a Deployment, `api_pods` of them) and
/// `team-b` (worker pods of a Job), and the rule that lets group `team-a` list pods in
/// `team-a` only.
pub fn fleet(api_pods: usize, workers: usize) -> Topology {
    let mut t = Topology::builtin();
    let rs = |name: &str| Owner {
        kind: "ReplicaSet".into(),
        name: name.into(),
        api_version: None,
    };
    t.namespaces.push(Namespace {
        name: "team-a".into(),
        pods: Vec::new(),
        generate: vec![generate(
            api_pods,
            "api-6b7c9-{i}",
            "api",
            rs("api-6b7c9"),
            Some("6b7c9"),
        )],
    });
    t.namespaces.push(Namespace {
        name: "team-b".into(),
        pods: Vec::new(),
        generate: vec![generate(
            workers,
            "worker-{i}",
            "worker",
            Owner {
                kind: "Job".into(),
                name: "nightly".into(),
                api_version: None,
            },
            None,
        )],
    });
    t.rules.push(Rule {
        users: Vec::new(),
        groups: vec!["team-a".into()],
        verbs: vec!["get".into(), "list".into(), "watch".into()],
        resources: vec!["pods".into()],
        namespaces: vec!["team-a".into()],
    });
    t
}

pub fn people() -> String {
    format!(
        "{}- token: {CAROL}\n  user: carol\n  groups: [team-a]\n",
        crate::gateway::people()
    )
}

/// One more pod (a StatefulSet's) to create while a test runs.
pub fn extra_pod(name: &str) -> PodSpec {
    let mut p = generate(
        1,
        name,
        "late",
        Owner {
            kind: "StatefulSet".into(),
            name: "late".into(),
            api_version: None,
        },
        None,
    )
    .pod(0);
    p.name = name.into();
    p
}
