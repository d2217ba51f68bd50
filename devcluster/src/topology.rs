//! The cluster's shape (namespaces, pods, containers, users, rules) as read from YAML.

use serde::Deserialize;
use std::path::Path;

/// The topology used when no `--config` is given (see `default.yaml`).
pub const DEFAULT_YAML: &str = include_str!("../default.yaml");

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Topology {
    /// The `gitVersion` `/version` reports; the kubectl dispatcher picks its binary by it.
    #[serde(default = "default_version")]
    pub version: String,
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// The remote-command sub-protocols exec/attach accept (default: all), e.g. only
    /// `v4.channel.k8s.io` to play an older cluster.
    #[serde(default)]
    pub protocols: Vec<String>,
    /// Serve these PEM files instead of a generated CA and certificate.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// The largest WebSocket message an exec/attach session accepts from a client, in bytes,
    /// whether in one frame or assembled from fragments; past it the session is failed with close
    /// code 1009. Default: [`DEFAULT_MAX_MESSAGE_BYTES`].
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
}

/// kube-apiserver's bound, so the devcluster, as a judge, takes every frame a real API server
/// takes: its remote-command WebSocket (`wsstream.Conn` on golang.org/x/net/websocket) reads each
/// frame whole into memory and refuses one longer than `DefaultMaxPayloadBytes`, 32 MiB. (It
/// never assembles fragments: each frame is handled as a message of its own, so 32 MiB is also
/// the most it holds per connection.) A smaller limit here would fail sessions, say a
/// Python client's 8 MiB `write_stdin`, that a production cluster serves; a larger one would
/// let the devcluster pass clients that a production cluster refuses. Memory stays bounded:
/// a message is stored only as its bytes arrive, and never past this limit.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 32 << 20;

fn default_version() -> String {
    "v1.32.0".into()
}

fn default_max_message_bytes() -> usize {
    DEFAULT_MAX_MESSAGE_BYTES
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsFiles {
    pub cert_file: std::path::PathBuf,
    pub key_file: std::path::PathBuf,
    /// The CA to put in written kubeconfigs; defaults to the certificate chain itself.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Namespace {
    pub name: String,
    #[serde(default)]
    pub pods: Vec<PodSpec>,
    /// Pods made from templates, by the thousand (see [`Generate`]).
    #[serde(default)]
    pub generate: Vec<Generate>,
}

/// `count` pods from one template: pod `i` (0-based) is named `name` with `{i}` replaced by
/// `i` (also in label and annotation values), runs on `nodes[i % len]` and gets
/// `statuses[i % len]`, so a fleet has a known mix of phases, readiness and restarts.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Generate {
    pub count: usize,
    /// Must contain `{i}`, e.g. `web-{i}`.
    pub name: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub owner: Option<Owner>,
    /// Default: `[devcluster-node]`.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Default: one container `main`, `builtin:echo` (no process, so thousands cost nothing).
    #[serde(default)]
    pub containers: Vec<ContainerSpec>,
    /// Default: `[{}]` (every pod Running, ready, no restarts).
    #[serde(default)]
    pub statuses: Vec<GeneratedStatus>,
}

/// What a generated pod's status says; `restarts` applies to its first container.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GeneratedStatus {
    #[serde(default)]
    pub phase: Option<Phase>,
    #[serde(default)]
    pub ready: Option<bool>,
    #[serde(default)]
    pub restarts: u32,
}

/// The pod's controller, as its `ownerReferences` name it (`controller: true`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Owner {
    /// `ReplicaSet` (what a Deployment's pods name), `StatefulSet`, `DaemonSet`, `Job`, ...
    pub kind: String,
    pub name: String,
    /// Default: by kind (`apps/v1` for ReplicaSet, StatefulSet, DaemonSet and Deployment,
    /// `batch/v1` for Job and CronJob, else `v1`).
    #[serde(default)]
    pub api_version: Option<String>,
}

impl Owner {
    pub fn api_version(&self) -> String {
        if let Some(v) = &self.api_version {
            return v.clone();
        }
        match self.kind.as_str() {
            "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Deployment" => "apps/v1",
            "Job" | "CronJob" => "batch/v1",
            _ => "v1",
        }
        .into()
    }
}

/// A pod's `status.phase`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum Phase {
    Pending,
    #[default]
    Running,
    Succeeded,
    Failed,
    Unknown,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Unknown => "Unknown",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodSpec {
    pub name: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub init_containers: Vec<ContainerSpec>,
    pub containers: Vec<ContainerSpec>,
    #[serde(default)]
    pub ephemeral_containers: Vec<ContainerSpec>,
    /// `spec.nodeName`; default `devcluster-node`.
    #[serde(default)]
    pub node_name: Option<String>,
    /// `status.phase`; default Running.
    #[serde(default)]
    pub phase: Option<Phase>,
    /// Whether its containers are ready; default: when Running.
    #[serde(default)]
    pub ready: Option<bool>,
    #[serde(default)]
    pub owner: Option<Owner>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerSpec {
    pub name: String,
    #[serde(default = "default_image")]
    pub image: String,
    #[serde(default)]
    pub runtime: Runtime,
    /// What `attach` runs for a process container (there is no long-lived main process).
    #[serde(default = "default_command")]
    pub command: Vec<String>,
    /// For `builtin:flood`: bytes written before exiting (0 = until the reader goes away).
    #[serde(default)]
    pub flood_bytes: u64,
    /// Ports served in-process, reachable only through `pods/portforward` (there is no pod
    /// network): what a container listening on them would answer.
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// Times the container has restarted (`restartCount`): its previous instance ended with
    /// exit code 1 and has a log of its own (`kubectl logs --previous`).
    #[serde(default)]
    pub restarts: u32,
    /// `env` of a process container, as a pod spec writes it (`[{name, value}]`); `PATH` here
    /// replaces the host's, so a test can give a container a PATH without `tar`.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// `workingDir`: where its processes start (default: the pod's own directory under the
    /// devcluster's state directory). A test points it at a read-only or full file system.
    #[serde(default)]
    pub working_dir: Option<std::path::PathBuf>,
    /// `securityContext` (`runAsUser`, `runAsGroup`): the ids its processes run as.
    #[serde(default)]
    pub security_context: Option<SecurityContext>,
}

/// One `env` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvVar {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// A container's `securityContext`: the ids its processes run as (the devcluster must run as
/// root to change them; it refuses to start such a process otherwise, as a runtime would).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecurityContext {
    #[serde(default)]
    pub run_as_user: Option<u32>,
    #[serde(default)]
    pub run_as_group: Option<u32>,
}

/// A container port and what answers on it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PortSpec {
    pub container_port: u16,
    #[serde(default)]
    pub name: Option<String>,
    pub runtime: PortRuntime,
}

/// What answers on a container port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum PortRuntime {
    /// HTTP/1.1: `GET /` answers the pod's name, `GET /bytes/N` N bytes of a fixed pattern.
    #[serde(rename = "builtin:http")]
    Http,
    /// TCP echo: every byte back, until the client half-closes.
    #[serde(rename = "builtin:echo")]
    Echo,
}

fn default_image() -> String {
    "devcluster/shell:latest".into()
}

fn default_command() -> Vec<String> {
    vec!["sh".into()]
}

/// How a container runs commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum Runtime {
    /// A real child process (in a pseudo-terminal when tty is asked for).
    #[default]
    #[serde(rename = "process")]
    Process,
    /// In-process: stdin echoed to stdout. Costs no process, so tens of thousands fit.
    #[serde(rename = "builtin:echo")]
    Echo,
    /// In-process: writes output as fast as the reader takes it.
    #[serde(rename = "builtin:flood")]
    Flood,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct User {
    pub name: String,
    pub token: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Grants `verbs` on `resources` (`pods/exec` style for subresources) in `namespaces`
/// (empty or `*` = all, including cluster scope) to `users` and `groups`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rule {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub verbs: Vec<String>,
    pub resources: Vec<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: serde_norway::Error,
    },
    #[error("{path}: {problem}")]
    Invalid { path: String, problem: String },
}

impl Topology {
    pub fn builtin() -> Topology {
        // The embedded default is checked by a unit test, so this cannot fail at run time.
        Topology::parse("<built-in default>", DEFAULT_YAML)
            .unwrap_or_else(|e| panic!("built-in devcluster topology is invalid: {e}"))
    }

    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
            path: name.clone(),
            source,
        })?;
        Topology::parse(&name, &text)
    }

    pub fn parse(name: &str, text: &str) -> Result<Topology, TopologyError> {
        let t: Topology = serde_norway::from_str(text).map_err(|source| TopologyError::Parse {
            path: name.into(),
            source,
        })?;
        t.validate().map_err(|problem| TopologyError::Invalid {
            path: name.into(),
            problem,
        })?;
        Ok(t)
    }

    fn validate(&self) -> Result<(), String> {
        if self.max_message_bytes == 0 {
            return Err("maxMessageBytes: must be more than 0".into());
        }
        for p in &self.protocols {
            if podgate_protocol::Protocol::from_name(p).is_none() {
                return Err(format!(
                    "protocols: {p:?} is not a remote-command sub-protocol"
                ));
            }
        }
        let mut seen_tokens = std::collections::HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            if u.name.is_empty() || u.token.is_empty() {
                return Err(format!("users[{i}]: name and token must not be empty"));
            }
            if !seen_tokens.insert(&u.token) {
                return Err(format!(
                    "users[{i}] ({}): token is used by another user",
                    u.name
                ));
            }
        }
        for (i, ns) in self.namespaces.iter().enumerate() {
            if self.namespaces[..i].iter().any(|o| o.name == ns.name) {
                return Err(format!(
                    "namespaces[{i}]: namespace {:?} appears twice",
                    ns.name
                ));
            }
            let mut names = std::collections::HashSet::new();
            for (j, pod) in ns.pods.iter().enumerate() {
                if !names.insert(pod.name.clone()) {
                    return Err(format!(
                        "namespaces[{i}].pods[{j}]: pod {:?} appears twice in {:?}",
                        pod.name, ns.name
                    ));
                }
                validate_pod(&format!("namespaces[{i}].pods[{j}]"), pod)?;
            }
            for (j, g) in ns.generate.iter().enumerate() {
                let at = format!("namespaces[{i}].generate[{j}]");
                if g.count == 0 || g.count > MAX_GENERATED {
                    return Err(format!("{at}: count must be 1 to {MAX_GENERATED}"));
                }
                if !g.name.contains("{i}") {
                    return Err(format!("{at}: name {:?} must contain {{i}}", g.name));
                }
                if g.nodes.iter().any(String::is_empty) {
                    return Err(format!("{at}: nodes must not be empty names"));
                }
                validate_pod(&at, &g.pod(0))?;
                for k in 0..g.count {
                    let name = g.name.replace("{i}", &k.to_string());
                    if !names.insert(name.clone()) {
                        return Err(format!("{at}: pod {name:?} appears twice in {:?}", ns.name));
                    }
                }
            }
        }
        Ok(())
    }
}

impl Topology {
    /// The sub-protocols exec/attach accept, in the server's order of preference.
    pub fn supported_protocols(&self) -> Vec<podgate_protocol::Protocol> {
        if self.protocols.is_empty() {
            return podgate_protocol::Protocol::ALL.to_vec();
        }
        self.protocols
            .iter()
            .filter_map(|p| podgate_protocol::Protocol::from_name(p))
            .collect()
    }
}

/// The most pods one `generate` entry makes.
pub const MAX_GENERATED: usize = 1_000_000;

fn validate_pod(at: &str, pod: &PodSpec) -> Result<(), String> {
    if pod.containers.is_empty() {
        return Err(format!(
            "{at} ({}): a pod needs at least one container",
            pod.name
        ));
    }
    let all: Vec<&str> = pod.all_containers().map(|c| c.name.as_str()).collect();
    for (k, name) in all.iter().enumerate() {
        if all[..k].contains(name) {
            return Err(format!(
                "{at} ({}): container {name:?} appears twice",
                pod.name
            ));
        }
    }
    let ports: Vec<u16> = pod
        .all_containers()
        .flat_map(|c| c.ports.iter().map(|p| p.container_port))
        .collect();
    for (k, port) in ports.iter().enumerate() {
        if *port == 0 || ports[..k].contains(port) {
            return Err(format!(
                "{at} ({}): container port {port} is 0 or appears twice",
                pod.name
            ));
        }
    }
    for c in pod.all_containers() {
        if c.runtime == Runtime::Process && c.command.is_empty() {
            return Err(format!(
                "{at} ({}): container {:?}: command must not be empty",
                pod.name, c.name
            ));
        }
    }
    Ok(())
}

impl Generate {
    /// Pod `i` of this template.
    pub fn pod(&self, i: usize) -> PodSpec {
        let n = i.to_string();
        let fill = |m: &std::collections::BTreeMap<String, String>| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.replace("{i}", &n)))
                .collect()
        };
        let status = if self.statuses.is_empty() {
            GeneratedStatus::default()
        } else {
            self.statuses[i % self.statuses.len()].clone()
        };
        let mut containers = if self.containers.is_empty() {
            vec![ContainerSpec {
                name: "main".into(),
                image: "devcluster/builtin:echo".into(),
                runtime: Runtime::Echo,
                command: default_command(),
                flood_bytes: 0,
                ports: Vec::new(),
                restarts: 0,
                env: Vec::new(),
                working_dir: None,
                security_context: None,
            }]
        } else {
            self.containers.clone()
        };
        if let Some(first) = containers.first_mut() {
            first.restarts = status.restarts;
        }
        PodSpec {
            name: self.name.replace("{i}", &n),
            labels: fill(&self.labels),
            annotations: fill(&self.annotations),
            init_containers: Vec::new(),
            containers,
            ephemeral_containers: Vec::new(),
            node_name: (!self.nodes.is_empty()).then(|| self.nodes[i % self.nodes.len()].clone()),
            phase: status.phase,
            ready: status.ready,
            owner: self.owner.clone(),
        }
    }
}

impl Namespace {
    /// Its pods: those listed, then the generated ones.
    pub fn all_pods(&self) -> impl Iterator<Item = std::borrow::Cow<'_, PodSpec>> {
        self.pods.iter().map(std::borrow::Cow::Borrowed).chain(
            self.generate
                .iter()
                .flat_map(|g| (0..g.count).map(|i| std::borrow::Cow::Owned(g.pod(i)))),
        )
    }
}

impl PodSpec {
    pub fn all_containers(&self) -> impl Iterator<Item = &ContainerSpec> {
        self.containers
            .iter()
            .chain(&self.init_containers)
            .chain(&self.ephemeral_containers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_parses_and_has_what_the_issue_promises() {
        let t = Topology::parse("default.yaml", DEFAULT_YAML).unwrap();
        let ns = |n: &str| t.namespaces.iter().find(|x| x.name == n).unwrap();
        let shell = ns("default")
            .pods
            .iter()
            .find(|p| p.name == "shell-0")
            .unwrap();
        assert_eq!(shell.containers[0].name, "main");
        assert_eq!(shell.containers[0].runtime, Runtime::Process);
        let multi = ns("default")
            .pods
            .iter()
            .find(|p| p.name == "multi-0")
            .unwrap();
        let names: Vec<_> = multi.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["app", "sidecar"]);
        let load = ns("load");
        assert_eq!(load.pods[0].containers[0].runtime, Runtime::Echo);
        assert_eq!(load.pods[1].containers[0].runtime, Runtime::Flood);
        assert!(ns("shop").pods.len() >= 2);
        for u in ["admin", "alice", "bob"] {
            assert!(t.users.iter().any(|x| x.name == u));
        }
    }

    #[test]
    fn errors_name_the_file_and_problem() {
        let e = Topology::parse(
            "x.yaml",
            "namespaces: [{name: a, pods: [{name: p, containers: []}]}]",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "x.yaml: namespaces[0].pods[0] (p): a pod needs at least one container"
        );
        let e = Topology::parse("x.yaml", "nope: 1")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.yaml: unknown field `nope`"), "{e}");
        let e = Topology::parse(
            "x.yaml",
            "users: [{name: a, token: t}, {name: b, token: t}]",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "x.yaml: users[1] (b): token is used by another user");
        let e = Topology::parse("x.yaml", "maxMessageBytes: 0")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "x.yaml: maxMessageBytes: must be more than 0");
    }

    #[test]
    fn generated_pods_follow_their_template() {
        let t = Topology::parse(
            "g.yaml",
            r#"
namespaces:
  - name: a
    pods: [{name: solo, containers: [{name: c}]}]
    generate:
      - count: 4
        name: "web-{i}"
        labels: {app: web, shard: "s{i}"}
        owner: {kind: Job, name: batch}
        nodes: [n1, n2]
        statuses: [{}, {phase: Failed}, {restarts: 2, ready: false}]
"#,
        )
        .unwrap();
        let ns = &t.namespaces[0];
        let pods: Vec<PodSpec> = ns.all_pods().map(|p| p.into_owned()).collect();
        let names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["solo", "web-0", "web-1", "web-2", "web-3"]);
        let web2 = &pods[3];
        assert_eq!(web2.labels["shard"], "s2");
        assert_eq!(web2.node_name.as_deref(), Some("n1"));
        assert_eq!(web2.containers[0].restarts, 2);
        assert_eq!(web2.containers[0].runtime, Runtime::Echo);
        assert_eq!(web2.ready, Some(false));
        assert_eq!(pods[2].phase, Some(Phase::Failed));
        assert_eq!(pods[4].node_name.as_deref(), Some("n2"));
        assert_eq!(pods[4].phase, None, "statuses cycle");
        assert_eq!(web2.owner.as_ref().unwrap().api_version(), "batch/v1");
    }

    #[test]
    fn generated_pods_are_checked() {
        let e = |y: &str| Topology::parse("g.yaml", y).unwrap_err().to_string();
        assert_eq!(
            e("namespaces: [{name: a, generate: [{count: 2, name: web}]}]"),
            "g.yaml: namespaces[0].generate[0]: name \"web\" must contain {i}"
        );
        assert_eq!(
            e("namespaces: [{name: a, generate: [{count: 0, name: 'w-{i}'}]}]"),
            "g.yaml: namespaces[0].generate[0]: count must be 1 to 1000000"
        );
        assert_eq!(
            e(
                "namespaces: [{name: a, pods: [{name: w-1, containers: [{name: c}]}], generate: [{count: 3, name: 'w-{i}'}]}]"
            ),
            "g.yaml: namespaces[0].generate[0]: pod \"w-1\" appears twice in \"a\""
        );
        assert!(
            e("namespaces: [{name: a, generate: [{count: 1, name: 'w-{i}', statuses: [{phase: Sleeping}]}]}]")
                .contains("unknown variant `Sleeping`")
        );
    }

    #[test]
    fn message_limit_defaults_to_kube_apiservers() {
        assert_eq!(Topology::builtin().max_message_bytes, 32 << 20);
        let t = Topology::parse("x.yaml", "maxMessageBytes: 1048576").unwrap();
        assert_eq!(t.max_message_bytes, 1 << 20);
    }

    #[test]
    fn containers_take_env_working_dir_and_security_context_as_a_pod_spec_writes_them() {
        let t = Topology::parse(
            "t.yaml",
            "namespaces: [{name: a, pods: [{name: p, containers: [{name: c, \
             env: [{name: PATH, value: /opt/bin}], workingDir: /srv, \
             securityContext: {runAsUser: 65534, runAsGroup: 65534}}]}]}]",
        )
        .expect("parses");
        let c = &t.namespaces[0].pods[0].containers[0];
        assert_eq!(c.env[0].name, "PATH");
        assert_eq!(c.env[0].value, "/opt/bin");
        assert_eq!(c.working_dir.as_deref(), Some(Path::new("/srv")));
        let sc = c.security_context.as_ref().expect("a security context");
        assert_eq!(
            (sc.run_as_user, sc.run_as_group),
            (Some(65534), Some(65534))
        );
        // What the devcluster does not do is refused, not ignored.
        let e = Topology::parse(
            "t.yaml",
            "namespaces: [{name: a, pods: [{name: p, containers: [{name: c, \
             securityContext: {privileged: true}}]}]}]",
        )
        .expect_err("refused");
        assert!(e.to_string().contains("privileged"), "{e}");
    }
}
