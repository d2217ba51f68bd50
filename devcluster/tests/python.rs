//! The official Python client against the devcluster: the written kubeconfig works unchanged,
//! and its exec stream (text frames for `str`, binary for `bytes`) reaches the process.

use podgate_testkit::devcluster::{start, start_with};

use podgate_testkit::python::{self, PIPES_STDOUT, RESIZE_STDOUT, python};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_lists_pods_with_the_written_kubeconfig() {
    let Some(python) = python() else { return };
    let env = start().await;
    let script = r#"
import sys
from kubernetes import client, config
config.load_kube_config(config_file=sys.argv[1])
pods = client.CoreV1Api().list_pod_for_all_namespaces().items
print(" ".join(sorted(p.metadata.namespace + "/" + p.metadata.name for p in pods)))
config.load_kube_config(config_file=sys.argv[1], context="bob")
try:
    client.CoreV1Api().list_namespaced_config_map("default")
except client.exceptions.ApiException as e:
    print(e.status)
"#;
    let out = tokio::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&env.kubeconfig)
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some("default/multi-0 default/shell-0 load/echo-0 load/flood-0 shop/db-0 shop/web-0")
    );
    assert_eq!(lines.next(), Some("403"), "bob may not list configmaps");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_exec_text_and_binary_frames_reach_the_process() {
    let Some(python) = python() else { return };
    // The client offers v5 and v4: a current cluster picks v5, an older one v4.
    for protocols in [vec![], vec!["v4.channel.k8s.io".to_string()]] {
        let mut topology = podgate_devcluster::Topology::builtin();
        topology.protocols = protocols.clone();
        let env = start_with(topology).await;
        let want_protocol = if protocols.is_empty() {
            "v5.channel.k8s.io"
        } else {
            "v4.channel.k8s.io"
        };
        let runs = python::exec(&python, &env.kubeconfig, None).await;
        assert_eq!(runs.len(), 2, "{runs:?}");
        for r in &runs {
            assert_eq!(r.protocol.as_deref(), Some(want_protocol), "{r:?}");
            assert_eq!(r.code, Some(0), "{r:?}");
        }
        assert_eq!(runs[0].stdout, PIPES_STDOUT, "{want_protocol}");
        assert_eq!(runs[1].stdout, RESIZE_STDOUT, "{want_protocol}");
    }
}
