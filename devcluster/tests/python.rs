//! The kubeconfig the devcluster writes works unchanged with the official Python client.

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_lists_pods_with_the_written_kubeconfig() {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/py/bin/python");
    if !python.exists() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "scripts/setup.sh should have installed {}",
            python.display()
        );
        eprintln!(
            "skipped: {} missing (run scripts/setup.sh)",
            python.display()
        );
        return;
    }
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
