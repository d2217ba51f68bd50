//! `kubectl kustomize deploy/{base,target-cluster,monitoring,agent}` renders, and every object parses
//! into its k8s-openapi type without losing a field (so a misspelt field fails here instead of
//! being dropped by the API server). Then the objects are checked against each other: selectors,
//! ports, probes, mounts, the config the ConfigMap carries, the Dockerfile.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use podgate_testkit::prometheus as support;

const NAMESPACE: &str = "podgate";

/// Parses `obj` as `T` and serializes it back: any field `T` does not know would be missing.
fn strict<T: Resource + DeserializeOwned + Serialize>(obj: &Value) {
    let typed: T = serde_json::from_value(obj.clone())
        .unwrap_or_else(|e| panic!("{} does not parse as {}: {e}", describe(obj), T::KIND));
    let back = serde_json::to_value(&typed).expect("serialize");
    let mut problems = Vec::new();
    diff(obj, &back, String::new(), &mut problems);
    assert!(
        problems.is_empty(),
        "{} does not survive a round trip through {}: {problems:#?}",
        describe(obj),
        T::KIND
    );
}

fn diff(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => diff(v, w, format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}: unknown field")),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{path}.{k}: added"));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                diff(v, w, format!("{path}[{i}]"), out);
            }
        }
        _ if a == b => {}
        _ => out.push(format!("{path}: {a} became {b}")),
    }
}

fn describe(obj: &Value) -> String {
    format!(
        "{} {}/{}",
        obj["kind"].as_str().unwrap_or("?"),
        obj["metadata"]["namespace"].as_str().unwrap_or("-"),
        obj["metadata"]["name"].as_str().unwrap_or("?")
    )
}

fn is<T: Resource>(obj: &Value) -> bool {
    obj["apiVersion"] == T::API_VERSION && obj["kind"] == T::KIND
}

/// Parses every object into its type; returns them by `Kind/name`.
fn typed(objects: &[Value]) -> BTreeMap<String, Value> {
    let mut by_name = BTreeMap::new();
    for obj in objects {
        if is::<Namespace>(obj) {
            strict::<Namespace>(obj)
        } else if is::<ServiceAccount>(obj) {
            strict::<ServiceAccount>(obj)
        } else if is::<ConfigMap>(obj) {
            strict::<ConfigMap>(obj)
        } else if is::<Secret>(obj) {
            strict::<Secret>(obj)
        } else if is::<Service>(obj) {
            strict::<Service>(obj)
        } else if is::<Deployment>(obj) {
            strict::<Deployment>(obj)
        } else if is::<PodDisruptionBudget>(obj) {
            strict::<PodDisruptionBudget>(obj)
        } else if is::<HorizontalPodAutoscaler>(obj) {
            strict::<HorizontalPodAutoscaler>(obj)
        } else if is::<ClusterRole>(obj) {
            strict::<ClusterRole>(obj)
        } else if is::<ClusterRoleBinding>(obj) {
            strict::<ClusterRoleBinding>(obj)
        } else if is::<Role>(obj) {
            strict::<Role>(obj)
        } else if is::<RoleBinding>(obj) {
            strict::<RoleBinding>(obj)
        } else if is::<PersistentVolumeClaim>(obj) {
            strict::<PersistentVolumeClaim>(obj)
        } else if obj["apiVersion"] == "cert-manager.io/v1" {
            // A CRD too: the example overlay's Certificate, checked in the overlay's test.
            assert_eq!(obj["kind"], "Certificate", "unexpected {}", describe(obj));
        } else if obj["apiVersion"] == "monitoring.coreos.com/v1" {
            // CRDs: no k8s-openapi type; their fields are checked in monitoring_* below.
            assert!(
                matches!(
                    obj["kind"].as_str(),
                    Some("ServiceMonitor" | "PrometheusRule")
                ),
                "unexpected {}",
                describe(obj)
            );
        } else {
            panic!("no type known for {}", describe(obj));
        }
        let name = obj["metadata"]["name"].as_str().expect("metadata.name");
        let key = format!("{}/{name}", obj["kind"].as_str().expect("kind"));
        assert!(
            by_name.insert(key.clone(), obj.clone()).is_none(),
            "{key} twice"
        );
    }
    by_name
}

fn render(dir: &str) -> Option<BTreeMap<String, Value>> {
    let kubectl = support::tool("kubectl")?;
    Some(typed(&support::kustomize(&kubectl, dir)))
}

fn str_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a label selector's `matchLabels` select `labels`.
fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn arr(v: &Value) -> &Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
}

/// Non-root, read-only, nothing extra; requests for scheduling and a memory limit. What the
/// gateway's pod and the agent's pod both hold to.
fn assert_hardened(what: &str, pod: &Value, c: &Value) {
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{what}");
    assert!(
        pod["securityContext"]["runAsUser"].as_i64().unwrap_or(0) > 0,
        "{what}"
    );
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
        "{what}"
    );
    assert_ne!(pod["hostNetwork"], true, "{what}");
    assert_ne!(pod["hostPID"], true, "{what}");
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
    assert_eq!(sc["runAsNonRoot"], true, "{what}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
    assert_ne!(sc["privileged"], true, "{what}");
    assert_eq!(
        sc["capabilities"]["drop"],
        serde_json::json!(["ALL"]),
        "{what}"
    );
    assert!(sc["capabilities"]["add"].is_null(), "{what}");
    for r in ["cpu", "memory"] {
        assert!(
            c["resources"]["requests"][r].is_string(),
            "{what}: requests.{r}"
        );
    }
    assert!(c["resources"]["limits"]["memory"].is_string(), "{what}");
}

/// Where the file at `file` in container `c` of `pod` comes from: the read-only mount holding
/// it, and the (kind, name, key) of the Secret or ConfigMap item behind it.
fn mounted_from(pod: &Value, c: &Value, file: &str) -> (&'static str, String, String) {
    let (mount, rel) = arr(&c["volumeMounts"])
        .iter()
        .find_map(|m| {
            let dir = m["mountPath"].as_str()?.trim_end_matches('/');
            let rel = file.strip_prefix(dir)?.strip_prefix('/')?;
            Some((m, rel))
        })
        .unwrap_or_else(|| panic!("nothing is mounted where {file} is"));
    assert_eq!(mount["readOnly"], true, "{file} is mounted writable");
    // No subPath: the kubelet refreshes whole-directory mounts in place (rotation).
    assert!(mount["subPath"].is_null(), "{file} is mounted by subPath");
    let volume = arr(&pod["volumes"])
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap_or_else(|| panic!("no volume {}", mount["name"]));
    let (kind, src, name) = if volume["secret"].is_object() {
        ("Secret", &volume["secret"], &volume["secret"]["secretName"])
    } else if volume["configMap"].is_object() {
        (
            "ConfigMap",
            &volume["configMap"],
            &volume["configMap"]["name"],
        )
    } else {
        panic!("{file} comes from neither a Secret nor a ConfigMap: {volume}")
    };
    assert_ne!(src["optional"], true, "{file} is optional");
    let key = match src["items"].as_array() {
        Some(items) => items
            .iter()
            .find(|i| i["path"] == rel)
            .and_then(|i| i["key"].as_str())
            .unwrap_or_else(|| panic!("no item of {volume} provides {rel}")),
        None => rel,
    };
    (
        kind,
        name.as_str().expect("a name").to_string(),
        key.to_string(),
    )
}

/// The value after `--name` (or in `--name=value`) in `args`.
fn flag<'a>(args: &'a [Value], name: &str) -> Option<&'a str> {
    let args: Vec<&str> = args
        .iter()
        .map(|a| a.as_str().expect("string arg"))
        .collect();
    args.iter().enumerate().find_map(|(i, a)| {
        if *a == name {
            Some(
                *args
                    .get(i + 1)
                    .unwrap_or_else(|| panic!("{name} without a value")),
            )
        } else {
            a.strip_prefix(name).and_then(|rest| rest.strip_prefix('='))
        }
    })
}

struct Base {
    objects: BTreeMap<String, Value>,
}

impl Base {
    fn get(&self, key: &str) -> &Value {
        self.objects
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from deploy/base"))
    }
    fn deployment(&self) -> &Value {
        self.get("Deployment/podgate")
    }
    fn pod_labels(&self) -> BTreeMap<String, String> {
        str_map(&self.deployment()["spec"]["template"]["metadata"]["labels"])
    }
    fn container(&self) -> &Value {
        let containers = arr(&self.deployment()["spec"]["template"]["spec"]["containers"]);
        assert_eq!(containers.len(), 1);
        &containers[0]
    }
    /// Container port by name.
    fn port(&self, name: &str) -> i64 {
        arr(&self.container()["ports"])
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_i64())
            .unwrap_or_else(|| panic!("no container port {name}"))
    }
    /// The volume mounted writable at `dir` in the container.
    fn writable_volume_at(&self, dir: &Path) -> &Value {
        let mount = arr(&self.container()["volumeMounts"])
            .iter()
            .find(|m| m["mountPath"].as_str() == dir.to_str())
            .unwrap_or_else(|| panic!("nothing is mounted at {}", dir.display()));
        assert_ne!(
            mount["readOnly"],
            true,
            "{} is mounted read-only",
            dir.display()
        );
        arr(&self.deployment()["spec"]["template"]["spec"]["volumes"])
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("no volume {}", mount["name"]))
    }
    fn config_text(&self) -> String {
        self.get("ConfigMap/podgate-config")["data"]["config.yaml"]
            .as_str()
            .expect("config.yaml in ConfigMap podgate-config")
            .to_string()
    }
    /// Files the projected config volume provides, as absolute paths, with whether they are
    /// optional. `None` as the file set means "every key of the Secret".
    fn mounted_files(&self) -> (Vec<(String, bool)>, Vec<String>) {
        let pod = &self.deployment()["spec"]["template"]["spec"];
        let mount = arr(&self.container()["volumeMounts"])
            .iter()
            .find(|m| m["name"] == "config")
            .expect("config volume mounted");
        let dir = mount["mountPath"].as_str().expect("mountPath");
        let volume = arr(&pod["volumes"])
            .iter()
            .find(|v| v["name"] == "config")
            .expect("config volume");
        let mut files = Vec::new();
        let mut whole_secrets = Vec::new();
        for source in arr(&volume["projected"]["sources"]) {
            let (src, optional) = if !source["configMap"].is_null() {
                (&source["configMap"], false)
            } else {
                let s = &source["secret"];
                (s, s["optional"].as_bool().unwrap_or(false))
            };
            match src["items"].as_array() {
                Some(items) => {
                    for item in items {
                        let path = item["path"].as_str().expect("path");
                        files.push((format!("{dir}/{path}"), optional));
                    }
                }
                None => whole_secrets.push(src["name"].as_str().expect("name").to_string()),
            }
        }
        (files, whole_secrets)
    }
}

fn base() -> Option<Base> {
    Some(Base {
        objects: render("base")?,
    })
}

/// The example installation (`deploy/overlays/example`): the base with an image, a hostname, a
/// certificate, an OIDC issuer and browser login, and the Secret they need made required. What
/// a person copies must be consistent as it stands.
#[test]
fn the_example_overlay_is_a_consistent_installation() {
    let Some(objects) = render("overlays/example") else {
        return;
    };
    let Some(base) = base() else { return };
    let overlay = Base { objects };

    let added: BTreeSet<&String> = overlay
        .objects
        .keys()
        .filter(|k| !base.objects.contains_key(*k))
        .collect();
    assert_eq!(
        added,
        BTreeSet::from([
            &"Certificate/podgate-tls".to_string(),
            &"PersistentVolumeClaim/podgate-recordings".to_string()
        ])
    );
    for (key, obj) in &overlay.objects {
        if key != "Namespace/podgate" {
            assert_eq!(obj["metadata"]["namespace"], NAMESPACE, "{key}");
        }
    }
    let image = overlay.container()["image"].as_str().expect("an image");
    assert!(
        image.contains('/') && image.contains(':') && !image.starts_with("podgate"),
        "the overlay sets a registry image: {image}"
    );

    // The config is podgate's, its OIDC section the auth crate's, both without a problem.
    let text = overlay.config_text();
    assert_ne!(text, base.config_text(), "the overlay replaces the config");
    let path = Path::new("/etc/podgate/config.yaml");
    let config = podgate_config::parse_with(path, &text, |p| {
        Err(std::io::Error::other(format!(
            "no imports: {}",
            p.display()
        )))
    })
    .unwrap_or_else(|e| panic!("deploy/overlays/example/podgate.yaml is refused:\n{e}"));
    // It records onto the volume every replica shares, production without exception.
    let dir = config.recording.dir.as_deref().expect("recording.dir");
    let volume = overlay.writable_volume_at(dir);
    assert_eq!(
        volume["persistentVolumeClaim"]["claimName"],
        "podgate-recordings"
    );
    let claim = overlay.get("PersistentVolumeClaim/podgate-recordings");
    assert_eq!(
        claim["spec"]["accessModes"],
        serde_json::json!(["ReadWriteMany"])
    );
    assert_eq!(
        config.recording_mode("prod"),
        podgate_config::RecordingMode::Required
    );
    assert!(!config.operators.replay.is_empty() && !config.operators.terminate.is_empty());
    let oidc: podgate_auth::OidcConfig =
        serde_norway::from_value(config.auth.oidc.clone().expect("an OIDC section"))
            .unwrap_or_else(|e| panic!("auth.oidc of the example overlay: {e}"));
    assert_eq!(oidc.validate(), Vec::new());
    let login = oidc.login.as_ref().expect("browser login");

    // One hostname everywhere: certificate, redirect URL, DNS annotation.
    let cert = overlay.get("Certificate/podgate-tls");
    assert_eq!(cert["spec"]["secretName"], "podgate-tls");
    let host = cert["spec"]["dnsNames"][0].as_str().expect("a dnsName");
    assert_eq!(
        login.redirect_url.as_deref(),
        Some(format!("https://{host}/auth/callback").as_str())
    );
    assert_eq!(
        overlay.get("Service/podgate")["metadata"]["annotations"]["external-dns.alpha.kubernetes.io/hostname"],
        host
    );

    // Every file the config names is mounted, and what the login needs is not optional.
    let (files, whole_secrets) = overlay.mounted_files();
    let mut needed = vec![
        config.tls.cert_file.clone(),
        config.tls.key_file.clone(),
        login
            .client_secret_file
            .clone()
            .expect("a client secret file"),
        config
            .auth
            .session
            .key_file
            .clone()
            .expect("a cookie key file"),
    ];
    needed.extend(config.clusters.iter().filter_map(|c| c.kubeconfig.clone()));
    for f in &needed {
        let f = f.to_str().expect("a UTF-8 path");
        let required = files.iter().any(|(p, optional)| p == f && !optional)
            || (f.ends_with(".kubeconfig")
                && whole_secrets.iter().any(|s| s == "podgate-kubeconfigs"));
        assert!(
            required,
            "{f} is named by the config but not mounted as required"
        );
    }
}

#[test]
fn base_renders_into_typed_objects_in_one_namespace() {
    let Some(base) = base() else { return };
    let kinds: BTreeSet<&str> = base.objects.keys().map(String::as_str).collect();
    let expected = BTreeSet::from([
        "Namespace/podgate",
        "ServiceAccount/podgate",
        "ConfigMap/podgate-config",
        "Deployment/podgate",
        "Service/podgate",
        "Service/podgate-admin",
        "Service/podgate-agents",
        "PodDisruptionBudget/podgate",
        "HorizontalPodAutoscaler/podgate",
    ]);
    assert_eq!(kinds, expected);
    for (key, obj) in &base.objects {
        if key != "Namespace/podgate" {
            assert_eq!(obj["metadata"]["namespace"], NAMESPACE, "{key}");
        }
        assert_eq!(
            obj["metadata"]["labels"]["app.kubernetes.io/part-of"], "podgate",
            "{key}"
        );
    }
}

#[test]
fn deployment_is_hardened_probed_and_drains() {
    let Some(base) = base() else { return };
    let d = base.deployment();
    let spec = &d["spec"];
    let pod = &spec["template"]["spec"];
    let c = base.container();

    assert_eq!(spec["replicas"], 2);
    assert!(selects(
        &str_map(&spec["selector"]["matchLabels"]),
        &base.pod_labels()
    ));
    assert_eq!(pod["serviceAccountName"], "podgate");
    assert!(
        c["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("podgate:"))
    );
    assert_eq!(
        c["args"],
        serde_json::json!(["serve", "--config", "/etc/podgate/config.yaml"])
    );

    // Non-root, read-only, nothing extra; requests for scheduling, a memory limit for the
    // session cap.
    assert_hardened("the gateway", pod, c);

    // Ports, and probes on the admin port.
    assert_eq!(base.port("https"), 8443);
    assert_eq!(base.port("admin"), 9090);
    for (probe, path) in [
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
        ("startupProbe", "/healthz"),
    ] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(get["port"], "admin", "{probe}");
    }

    // Drain: preStop sleeps while load balancers deregister, then SIGTERM closes sessions
    // with a message (up to 5s for a client that does not read), all within the grace period.
    let sleep = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_i64()
        .expect("preStop sleep");
    let grace = pod["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        sleep >= 5,
        "preStop sleep {sleep}s is too short to deregister"
    );
    assert!(
        grace >= sleep + 30,
        "grace {grace}s leaves too little after the {sleep}s preStop"
    );
    // Rolling updates never reduce capacity.
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);

    // Mounted read-only; the ConfigMap it names exists.
    let mounts = arr(&c["volumeMounts"]);
    let config = mounts.iter().find(|m| m["name"] == "config").unwrap();
    assert_eq!(config["readOnly"], true);
    assert_eq!(config["mountPath"], "/etc/podgate");
    let volume = arr(&pod["volumes"])
        .iter()
        .find(|v| v["name"] == "config")
        .unwrap();
    let sources = arr(&volume["projected"]["sources"]);
    let names: BTreeSet<&str> = sources
        .iter()
        .filter_map(|s| {
            s["secret"]["name"]
                .as_str()
                .or(s["configMap"]["name"].as_str())
        })
        .collect();
    for name in [
        "podgate-config",
        "podgate-tls",
        "podgate-kubeconfigs",
        "podgate-tokens",
        "podgate-oidc",
    ] {
        assert!(names.contains(name), "{name} not mounted");
    }
    assert!(base.objects.contains_key("ConfigMap/podgate-config"));
}

#[test]
fn services_keep_the_admin_port_private() {
    let Some(base) = base() else { return };
    let labels = base.pod_labels();
    let public = &base.get("Service/podgate")["spec"];
    let admin = &base.get("Service/podgate-admin")["spec"];
    for s in [public, admin] {
        assert!(selects(&str_map(&s["selector"]), &labels));
    }
    // Public: only 443 -> https (8443).
    let ports = arr(&public["ports"]);
    assert_eq!(ports.len(), 1, "the public Service exposes one port");
    assert_eq!(ports[0]["port"], 443);
    assert_eq!(ports[0]["targetPort"], "https");
    assert_eq!(base.port("https"), 8443);
    assert_eq!(public["type"], "LoadBalancer");
    // Admin: cluster-internal, 9090 -> admin.
    assert_eq!(admin["type"], "ClusterIP");
    let ports = arr(&admin["ports"]);
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0]["port"], 9090);
    assert_eq!(ports[0]["targetPort"], "admin");

    // Agents: headless, so the name resolves to every ready replica and an agent keeps a
    // tunnel to each; they connect to the pods' https port itself (no proxy maps ports).
    let agents = &base.get("Service/podgate-agents")["spec"];
    assert_eq!(agents["clusterIP"], "None");
    assert!(agents["type"].is_null() || agents["type"] == "ClusterIP");
    assert!(selects(&str_map(&agents["selector"]), &labels));
    assert_ne!(
        agents["publishNotReadyAddresses"], true,
        "only ready replicas take tunnels"
    );
    let ports = arr(&agents["ports"]);
    assert_eq!(ports.len(), 1, "agents reach the https port only");
    assert_eq!(ports[0]["targetPort"], "https");
    assert_eq!(ports[0]["port"], base.port("https"));
}

#[test]
fn disruption_budget_and_autoscaler_target_the_deployment() {
    let Some(base) = base() else { return };
    let pdb = &base.get("PodDisruptionBudget/podgate")["spec"];
    assert!(selects(
        &str_map(&pdb["selector"]["matchLabels"]),
        &base.pod_labels()
    ));
    assert_eq!(pdb["maxUnavailable"], 1);

    let hpa = &base.get("HorizontalPodAutoscaler/podgate")["spec"];
    assert_eq!(hpa["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(hpa["scaleTargetRef"]["name"], "podgate");
    assert!(hpa["minReplicas"].as_i64().unwrap() >= 2);
    assert!(hpa["maxReplicas"].as_i64().unwrap() > hpa["minReplicas"].as_i64().unwrap());
    let sessions = arr(&hpa["metrics"])
        .iter()
        .find(|m| m["type"] == "Pods")
        .expect("a pods metric");
    assert_eq!(
        sessions["pods"]["metric"]["name"],
        "podgate_sessions_active"
    );
    assert_eq!(sessions["pods"]["target"]["type"], "AverageValue");
    // Scaling down closes shells: slow and one at a time.
    let down = &hpa["behavior"]["scaleDown"];
    assert!(down["stabilizationWindowSeconds"].as_i64().unwrap() >= 600);
    for p in arr(&down["policies"]) {
        assert_eq!(p["type"], "Pods");
        assert_eq!(p["value"], 1);
    }
}

#[test]
fn configmap_config_is_valid_and_mirrors_the_example() {
    let Some(base) = base() else { return };
    let text = base.config_text();
    let path = Path::new("/etc/podgate/config.yaml");
    let config = podgate_config::parse_with(path, &text, |p| {
        Err(std::io::Error::other(format!(
            "the deploy config should not import {}",
            p.display()
        )))
    })
    .unwrap_or_else(|e| panic!("deploy/base/podgate.yaml is refused by podgate:\n{e}"));

    // Listeners match the container ports; admin reachable by the kubelet and Prometheus.
    assert_eq!(i64::from(config.listen.port()), base.port("https"));
    assert_eq!(i64::from(config.admin.listen.port()), base.port("admin"));
    assert!(config.admin.listen.ip().is_unspecified());

    // Every file the config names is provided by the projected volume.
    let (files, whole_secrets) = base.mounted_files();
    let provided = |f: &Path| {
        let f = f.to_str().unwrap();
        files.iter().any(|(p, _)| p == f)
            || (f.starts_with("/etc/podgate/")
                && f.ends_with(".kubeconfig")
                && whole_secrets.iter().any(|s| s == "podgate-kubeconfigs"))
    };
    let mut named = vec![config.tls.cert_file.clone(), config.tls.key_file.clone()];
    named.extend(config.clusters.iter().filter_map(|c| c.kubeconfig.clone()));
    named.extend(config.auth.tokens_file.clone());
    for f in &named {
        assert!(
            provided(f),
            "{} is named by the config but not mounted",
            f.display()
        );
    }
    // The TLS files are required, never optional.
    for f in [&config.tls.cert_file, &config.tls.key_file] {
        let f = f.to_str().unwrap();
        assert!(files.iter().any(|(p, optional)| p == f && !optional));
    }
    assert!(config.clusters.iter().any(|c| c.in_cluster));
    // Where recordings would go is writable (an emptyDir until an installation records).
    let dir = config.recording.dir.as_deref().expect("recording.dir");
    assert!(base.writable_volume_at(dir)["emptyDir"].is_object());

    // Mirrors config/podgate.example.yaml: the same sections with the same fields.
    let example: Value = serde_norway::from_str(&support::read(
        &support::repo().join("config/podgate.example.yaml"),
    ))
    .expect("example YAML");
    let deploy: Value = serde_norway::from_str(&text).expect("deploy YAML");
    for (section, fields) in example.as_object().unwrap() {
        if section == "imports" {
            // Commented out: it needs a kubeconfig that the example Secret does not have.
            assert!(text.contains("# imports:"));
            continue;
        }
        let deployed = &deploy[section];
        assert!(
            !deployed.is_null() || section == "auth",
            "section {section} missing"
        );
        if let (Some(want), Some(got)) = (fields.as_object(), deployed.as_object()) {
            let want: BTreeSet<&String> = want.keys().collect();
            let got: BTreeSet<&String> = got.keys().collect();
            if section == "auth" {
                // Credentials come from optional Secrets, so some auth fields stay commented
                // out; whatever is set must still be a field the example documents.
                assert!(
                    got.is_subset(&want),
                    "fields of auth: {got:?} not in {want:?}"
                );
            } else {
                assert_eq!(got, want, "fields of {section}");
            }
        }
    }
}

/// What the Dockerfile builds (`--no-default-features`) links no devcluster: the demo and its
/// process runtime stay out of the production binary.
#[test]
fn the_release_build_links_no_devcluster() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let tree = |features: &[&str]| {
        let out = std::process::Command::new(&cargo)
            .args([
                "tree",
                "--offline",
                "-e",
                "normal",
                "--prefix",
                "none",
                "-p",
                "podgate",
            ])
            .args(features)
            .current_dir(support::repo())
            .output()
            .expect("cargo tree runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let release = tree(&["--no-default-features"]);
    assert!(
        release.lines().any(|l| l.starts_with("podgate-auth ")),
        "{release}"
    );
    assert!(
        !release
            .lines()
            .any(|l| l.starts_with("podgate-devcluster ")),
        "{release}"
    );
    // The default build (`make demo`, `make test`) has it, so the check above can fail.
    assert!(
        tree(&[])
            .lines()
            .any(|l| l.starts_with("podgate-devcluster "))
    );
}

#[test]
fn dockerfile_builds_a_minimal_non_root_image_running_serve() {
    let text = support::read(&support::deploy("Dockerfile"));
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert!(froms.len() >= 3, "multi-stage: {froms:?}");
    // The web UI is built from its sources and lockfile in a node stage, then embedded: a
    // fresh clone's image has the UI, and no dist/ from the build machine stands in for it.
    assert!(
        froms[0].contains("node:") && froms[0].ends_with(" AS web"),
        "{froms:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("COPY gateway/web/package.json gateway/web/package-lock.json"))
    );
    assert!(lines.iter().any(|l| l.starts_with("RUN npm ci")));
    assert!(lines.iter().any(|l| l.contains("node build.mjs")));
    assert!(
        froms[1].contains("rust:") && froms[1].ends_with(" AS build"),
        "{froms:?}"
    );
    assert!(lines.contains(&"COPY --from=web /src/gateway/web/dist gateway/web/dist"));
    let ignore = support::read(&support::deploy("Dockerfile.dockerignore"));
    assert!(
        ignore.lines().any(|l| l.trim() == "gateway/web/dist/"),
        "a local UI build stays out"
    );
    let runtime = froms.last().unwrap();
    assert!(runtime.contains("distroless"), "minimal runtime: {runtime}");

    // The builder's Rust is at least the workspace's rust-version.
    let workspace = support::read(&support::repo().join("Cargo.toml"));
    let rust_version = workspace
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_string())
        .expect("workspace rust-version");
    let arg = lines
        .iter()
        .find_map(|l| l.strip_prefix("ARG RUST_VERSION="))
        .expect("ARG RUST_VERSION");
    let parse = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap()).collect() };
    assert!(parse(arg) >= parse(&rust_version), "{arg} < {rust_version}");

    // The final stage: the podgate binary, a numeric non-root user, the ports, serve.
    let last_stage: Vec<&str> = lines.iter().copied().skip_while(|l| l != runtime).collect();
    assert!(
        last_stage
            .iter()
            .any(|l| l.starts_with("COPY --from=build") && l.ends_with("/usr/local/bin/podgate"))
    );
    // The release binary holds no devcluster: the `demo` feature stays off.
    assert!(
        text.contains(
            "cargo build --release --locked --no-default-features -p podgate --bin podgate"
        )
    );
    let user = last_stage
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("numeric USER");
    assert_ne!(uid, 0);
    assert!(last_stage.contains(&"EXPOSE 8443 9090"));
    assert!(last_stage.contains(&r#"ENTRYPOINT ["/usr/local/bin/podgate"]"#));
    assert!(last_stage.contains(&r#"CMD ["serve", "--config", "/etc/podgate/config.yaml"]"#));

    // And it agrees with the Deployment.
    let Some(base) = base() else { return };
    let pod_uid = base.deployment()["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
        .as_i64()
        .unwrap();
    assert_eq!(pod_uid, i64::from(uid));
}

const AGENT_NAMESPACE: &str = "podgate-agent";

/// `deploy/agent`, applied in a cluster behind NAT: agents that dial out to the gateway and
/// may do nothing in their cluster but impersonate, with the token the gateway knows them by.
#[test]
fn agent_deploys_with_impersonation_only_and_its_token() {
    let Some(objects) = render("agent") else {
        return;
    };
    let kinds: BTreeSet<&str> = objects.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "Namespace/podgate-agent",
            "ServiceAccount/podgate-agent",
            "ClusterRole/podgate-agent-impersonator",
            "ClusterRoleBinding/podgate-agent-impersonator",
            "Secret/podgate-agent",
            "ConfigMap/podgate-gateway-ca",
            "Deployment/podgate-agent",
            "PodDisruptionBudget/podgate-agent",
        ]),
        "no Service: the agent listens on nothing; no other rights"
    );
    for (key, obj) in &objects {
        let cluster_scoped = ["Namespace/", "ClusterRole/", "ClusterRoleBinding/"]
            .iter()
            .any(|k| key.starts_with(k));
        if cluster_scoped {
            assert!(obj["metadata"]["namespace"].is_null(), "{key}");
        } else {
            assert_eq!(obj["metadata"]["namespace"], AGENT_NAMESPACE, "{key}");
        }
        assert_eq!(
            obj["metadata"]["labels"]["app.kubernetes.io/part-of"], "podgate",
            "{key}"
        );
    }
    assert_eq!(
        objects["Namespace/podgate-agent"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );

    // Impersonation of users and groups, nothing else: every request it forwards runs with
    // the rights of the person it is made for.
    let role = &objects["ClusterRole/podgate-agent-impersonator"];
    assert!(role["aggregationRule"].is_null());
    let mut resources = BTreeSet::new();
    for r in arr(&role["rules"]) {
        assert_eq!(r["apiGroups"], serde_json::json!([""]), "{r}");
        assert_eq!(r["verbs"], serde_json::json!(["impersonate"]), "{r}");
        assert!(r["nonResourceURLs"].is_null(), "{r}");
        resources.extend(arr(&r["resources"]).iter().map(|v| v.as_str().unwrap()));
    }
    assert_eq!(resources, BTreeSet::from(["users", "groups"]));
    let binding = &objects["ClusterRoleBinding/podgate-agent-impersonator"];
    assert_eq!(
        binding["roleRef"],
        serde_json::json!({
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "podgate-agent-impersonator",
        })
    );
    assert_eq!(
        binding["subjects"],
        serde_json::json!([{
            "kind": "ServiceAccount",
            "name": "podgate-agent",
            "namespace": AGENT_NAMESPACE,
        }])
    );

    // The Deployment: at least two agents, on different nodes, as that ServiceAccount.
    let d = &objects["Deployment/podgate-agent"];
    let spec = &d["spec"];
    let pod = &spec["template"]["spec"];
    let labels = str_map(&spec["template"]["metadata"]["labels"]);
    assert!(spec["replicas"].as_i64().expect("replicas") >= 2);
    assert!(selects(&str_map(&spec["selector"]["matchLabels"]), &labels));
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    assert_eq!(pod["serviceAccountName"], "podgate-agent");
    // It authenticates to its API server with the ServiceAccount's token.
    assert_ne!(pod["automountServiceAccountToken"], false);
    assert!(
        arr(&pod["topologySpreadConstraints"]).iter().any(|t| {
            t["topologyKey"] == "kubernetes.io/hostname"
                && selects(&str_map(&t["labelSelector"]["matchLabels"]), &labels)
        }),
        "agents spread across nodes"
    );
    let pdb = &objects["PodDisruptionBudget/podgate-agent"]["spec"];
    assert!(selects(&str_map(&pdb["selector"]["matchLabels"]), &labels));
    assert_eq!(pdb["maxUnavailable"], 1);

    let containers = arr(&pod["containers"]);
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert!(
        c["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("podgate:")),
        "the gateway's image"
    );
    assert_hardened("the agent", pod, c);
    assert!(c["ports"].is_null(), "the agent listens on nothing");

    // `podgate agent --gateway https://HOST --cluster ID --token-file FILE --ca-file FILE`,
    // in-cluster (no --kubeconfig).
    let args = arr(&c["args"]);
    assert_eq!(args[0], "agent");
    assert!(c["command"].is_null(), "the image's entrypoint");
    let gateway = flag(args, "--gateway").expect("--gateway");
    let host = gateway
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("--gateway {gateway} is not https"));
    assert!(!host.is_empty() && !host.contains('/'), "{gateway}");
    assert!(flag(args, "--kubeconfig").is_none(), "in-cluster");
    let cluster = flag(args, "--cluster").expect("--cluster");

    // The token comes read-only from Secret podgate-agent, key token, which is rendered here.
    let token_file = flag(args, "--token-file").expect("--token-file");
    assert_eq!(
        mounted_from(pod, c, token_file),
        ("Secret", "podgate-agent".into(), "token".into())
    );
    let secret = &objects["Secret/podgate-agent"];
    assert!(
        secret["stringData"]["token"].is_string() || secret["data"]["token"].is_string(),
        "Secret podgate-agent has no key token"
    );
    // And the gateway's CA from ConfigMap podgate-gateway-ca.
    let ca_file = flag(args, "--ca-file").expect("--ca-file");
    let (kind, name, key) = mounted_from(pod, c, ca_file);
    assert_eq!((kind, name.as_str()), ("ConfigMap", "podgate-gateway-ca"));
    assert!(
        objects[&format!("ConfigMap/{name}")]["data"][&key].is_string(),
        "ConfigMap {name} has no key {key}"
    );

    // The example installation serves that cluster through agents, impersonating.
    let text = support::read(&support::deploy("overlays/example/podgate.yaml"));
    let config = podgate_config::parse_with(Path::new("/etc/podgate/config.yaml"), &text, |p| {
        Err(std::io::Error::other(format!(
            "no imports: {}",
            p.display()
        )))
    })
    .unwrap_or_else(|e| panic!("deploy/overlays/example/podgate.yaml is refused:\n{e}"));
    let served = config
        .clusters
        .iter()
        .find(|c| c.id == cluster)
        .unwrap_or_else(|| panic!("the example config has no cluster {cluster}"));
    assert!(
        matches!(
            served.source(),
            podgate_config::ClusterSource::Agent(podgate_config::AgentToken::Sha256(_))
        ),
        "{cluster} is an agent cluster known by its token's SHA-256"
    );
    assert!(served.impersonate);
}

#[test]
fn target_cluster_grants_impersonation_and_exec() {
    let Some(objects) = render("target-cluster") else {
        return;
    };
    let kinds: BTreeSet<&str> = objects.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ClusterRole/podgate-impersonator",
            "ClusterRoleBinding/podgate-impersonator",
            "ClusterRole/podgate-pod-index",
            "ClusterRoleBinding/podgate-pod-index",
            "Role/podgate-exec",
            "RoleBinding/podgate-exec-sre",
        ])
    );
    let has_rule = |rules: &Value, resource: &str, verb: &str| {
        arr(rules).iter().any(|r| {
            arr(&r["apiGroups"]).contains(&Value::from(""))
                && arr(&r["resources"]).contains(&Value::from(resource))
                && arr(&r["verbs"]).contains(&Value::from(verb))
                && r["resourceNames"].is_null()
        })
    };
    let impersonator = &objects["ClusterRole/podgate-impersonator"];
    for resource in ["users", "groups"] {
        assert!(has_rule(&impersonator["rules"], resource, "impersonate"));
    }
    // Nothing but impersonation: every request runs with the impersonated user's rights.
    for r in arr(&impersonator["rules"]) {
        assert_eq!(r["verbs"], serde_json::json!(["impersonate"]));
    }
    let binding = &objects["ClusterRoleBinding/podgate-impersonator"];
    assert_eq!(binding["roleRef"]["kind"], "ClusterRole");
    assert_eq!(binding["roleRef"]["name"], "podgate-impersonator");
    // Bound to the ServiceAccount deploy/base creates.
    assert!(
        arr(&binding["subjects"])
            .iter()
            .any(|s| s["kind"] == "ServiceAccount"
                && s["name"] == "podgate"
                && s["namespace"] == NAMESPACE)
    );

    // The pod search's feed: list and watch of pods, nothing else, for the group deploy/base
    // names in pod_index.feed_as (podgate impersonates it for that list and watch only).
    let index = &objects["ClusterRole/podgate-pod-index"];
    for verb in ["list", "watch"] {
        assert!(has_rule(&index["rules"], "pods", verb), "{verb} pods");
    }
    for r in arr(&index["rules"]) {
        assert_eq!(r["resources"], serde_json::json!(["pods"]));
        assert_eq!(r["verbs"], serde_json::json!(["list", "watch"]));
    }
    let index_binding = &objects["ClusterRoleBinding/podgate-pod-index"];
    assert_eq!(index_binding["roleRef"]["name"], "podgate-pod-index");
    let config = support::read(&support::repo().join("deploy/base/podgate.yaml"));
    let config: Value = serde_norway::from_str(&config).expect("deploy config YAML");
    let feed_groups = arr(&config["pod_index"]["feed_as"]["groups"]);
    assert!(
        arr(&index_binding["subjects"])
            .iter()
            .any(|s| s["kind"] == "Group" && feed_groups.contains(&s["name"])),
        "the binding's group is the one pod_index.feed_as impersonates"
    );

    let role = &objects["Role/podgate-exec"];
    for resource in ["pods/exec", "pods/attach"] {
        for verb in ["get", "create"] {
            assert!(
                has_rule(&role["rules"], resource, verb),
                "{verb} {resource}"
            );
        }
    }
    let rb = &objects["RoleBinding/podgate-exec-sre"];
    assert_eq!(rb["roleRef"]["kind"], "Role");
    assert_eq!(rb["roleRef"]["name"], "podgate-exec");
    assert_eq!(rb["metadata"]["namespace"], role["metadata"]["namespace"]);
    assert!(arr(&rb["subjects"]).iter().all(|s| s["kind"] == "Group"));
}

#[test]
fn monitoring_objects_point_at_the_admin_service() {
    let Some(objects) = render("monitoring") else {
        return;
    };
    let Some(base) = base() else { return };
    let kinds: BTreeSet<&str> = objects.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ServiceMonitor/podgate",
            "PrometheusRule/podgate",
            "ConfigMap/podgate-dashboard",
        ])
    );
    for (key, obj) in &objects {
        assert_eq!(obj["metadata"]["namespace"], NAMESPACE, "{key}");
    }

    // ServiceMonitor (CRD): required fields, and it selects podgate-admin's named port.
    let sm = &objects["ServiceMonitor/podgate"];
    let admin = base.get("Service/podgate-admin");
    assert!(selects(
        &str_map(&sm["spec"]["selector"]["matchLabels"]),
        &str_map(&admin["metadata"]["labels"])
    ));
    for public in ["Service/podgate", "Service/podgate-agents"] {
        assert!(
            !selects(
                &str_map(&sm["spec"]["selector"]["matchLabels"]),
                &str_map(&base.get(public)["metadata"]["labels"])
            ),
            "the ServiceMonitor must not select {public}"
        );
    }
    assert!(arr(&sm["spec"]["namespaceSelector"]["matchNames"]).contains(&Value::from(NAMESPACE)));
    let endpoints = arr(&sm["spec"]["endpoints"]);
    assert_eq!(endpoints.len(), 1);
    let admin_port = &arr(&admin["spec"]["ports"])[0]["name"];
    assert_eq!(&endpoints[0]["port"], admin_port);
    assert_eq!(endpoints[0]["path"], "/metrics");
    for r in arr(&endpoints[0]["metricRelabelings"]) {
        let action = r["action"].as_str().unwrap_or("replace");
        assert!(
            [
                "replace",
                "keep",
                "drop",
                "labeldrop",
                "labelkeep",
                "labelmap"
            ]
            .contains(&action),
            "{r}"
        );
    }

    // PrometheusRule (CRD): the file's groups, each rule an alert with an expression.
    let rule = &objects["PrometheusRule/podgate"];
    assert_eq!(rule["spec"], support::monitoring::rule_groups());
    for group in arr(&rule["spec"]["groups"]) {
        assert!(group["name"].is_string());
        for r in arr(&group["rules"]) {
            assert!(r["alert"].is_string() && r["expr"].is_string(), "{r}");
            assert!(r["labels"]["severity"].is_string(), "{r}");
            assert!(r["annotations"]["summary"].is_string(), "{r}");
        }
    }

    // The dashboard ConfigMap carries the dashboard file, for Grafana's sidecar.
    let cm = &objects["ConfigMap/podgate-dashboard"];
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let json: Value = serde_json::from_str(
        cm["data"]["podgate-dashboard.json"]
            .as_str()
            .expect("dashboard in ConfigMap"),
    )
    .expect("dashboard JSON");
    assert_eq!(json, support::monitoring::dashboard());
}

#[test]
fn dashboard_is_well_formed() {
    let d = support::monitoring::dashboard();
    assert_eq!(d["uid"], "podgate-overview");
    let panels = support::monitoring::panels(&d);
    let mut ids = BTreeSet::new();
    for p in &panels {
        assert!(
            ids.insert(p["id"].as_i64().expect("panel id")),
            "duplicate id"
        );
        assert!(p["gridPos"]["w"].is_i64() && p["gridPos"]["h"].is_i64());
        if p["type"] == "row" {
            continue;
        }
        assert!(p["title"].is_string());
        let targets = arr(&p["targets"]);
        assert!(!targets.is_empty(), "{} has no query", p["title"]);
        let refs: BTreeSet<&str> = targets
            .iter()
            .map(|t| t["refId"].as_str().unwrap())
            .collect();
        assert_eq!(refs.len(), targets.len(), "refIds of {}", p["title"]);
    }
    // Every panel the issue asks for.
    let titles: BTreeSet<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for want in [
        "Active sessions by cluster",
        "Session rate by outcome",
        "Session setup latency p50 / p99",
        "Bytes relayed per second",
        "Authentication failures by reason",
        "Live sessions",
    ] {
        assert!(titles.contains(want), "{want} missing");
    }
    // Variables used are variables defined (or Grafana's own).
    let defined: BTreeSet<String> = arr(&d["templating"]["list"])
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    let text = serde_json::to_string(&d).unwrap();
    for (i, _) in text.match_indices('$') {
        let rest = &text[i + 1..];
        let rest = rest.strip_prefix('{').unwrap_or(rest);
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.starts_with("__") || name.is_empty() {
            continue; // $__rate_interval, $__all; `$` alone in a regex
        }
        assert!(
            defined.contains(&name),
            "${name} is not a dashboard variable"
        );
    }
}
