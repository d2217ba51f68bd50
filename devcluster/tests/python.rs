//! The official Python client against the devcluster: the written kubeconfig works unchanged,
//! and its exec stream (text frames for `str`, binary for `bytes`) reaches the process.

use podgate_testkit::devcluster::{Env, start, start_with};
use std::path::PathBuf;
use std::time::Duration;

/// The venv scripts/setup.sh makes; `None` (the test is skipped) only outside CI.
fn python() -> Option<PathBuf> {
    let python = podgate_testkit::repo().join("target/py/bin/python");
    let what = format!("{} (run scripts/setup.sh)", python.display());
    podgate_testkit::available(python.exists(), &what).then_some(python)
}

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

/// What the exec script prints: one JSON object per scenario.
#[derive(serde::Deserialize, Debug)]
struct Run {
    protocol: Option<String>,
    stdout: String,
    code: Option<i32>,
}

/// `kubernetes.stream.stream(connect_get_namespaced_pod_exec, ...)`: the client sends
/// `write_stdin(str)` and `write_channel(4, str)` as **text** frames (first character
/// `chr(channel)`, see `WSClient.write_channel` in kubernetes/stream/ws_client.py) and `bytes` as
/// binary frames; kube-apiserver takes both as channel frames, and so must the devcluster.
const EXEC_SCRIPT: &str = r#"
import json, sys
from kubernetes import client, config
from kubernetes.stream import stream

config.load_kube_config(config_file=sys.argv[1])
api = client.CoreV1Api()

def run(command, tty, send):
    resp = stream(api.connect_get_namespaced_pod_exec, "shell-0", "default",
                  command=command, stdin=True, stdout=True, stderr=not tty, tty=tty,
                  _preload_content=False)
    send(resp)
    resp.run_forever(timeout=30)
    if resp.is_open():
        raise SystemExit("the session did not end within 30 s")
    print(json.dumps({"protocol": resp.subprotocol,
                      "stdout": resp.read_stdout(timeout=0),
                      "code": resp.returncode}), flush=True)

text = "str: zo\u00eb \u7528\u6237\n"
binary = b"bytes: \x00\x01\n"
size = len(text.encode()) + len(binary)

def pipes(resp):
    resp.write_stdin(text)    # a str: a text frame
    resp.write_stdin(binary)  # bytes: a binary frame
run(["head", "-c", str(size)], False, pipes)

def resize(resp):
    resp.write_channel(4, json.dumps({"Width": 100, "Height": 33}))  # a str: a text frame
    resp.write_stdin("go\n")
run(["sh", "-c", "read x; stty size"], True, resize)
"#;

async fn python_exec(python: &std::path::Path, env: &Env) -> Vec<Run> {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(python)
            .arg("-c")
            .arg(EXEC_SCRIPT)
            .arg(&env.kubeconfig)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the script ends within 120 s")
    .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
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
        let runs = python_exec(&python, &env).await;
        assert_eq!(runs.len(), 2, "{runs:?}");
        for r in &runs {
            assert_eq!(r.protocol.as_deref(), Some(want_protocol), "{r:?}");
            assert_eq!(r.code, Some(0), "{r:?}");
        }
        assert_eq!(
            runs[0].stdout, "str: zoë 用户\nbytes: \u{0}\u{1}\n",
            "{want_protocol}"
        );
        // The terminal echoes the input line, then the shell prints the size it was given.
        assert_eq!(runs[1].stdout, "go\r\n33 100\r\n", "{want_protocol}");
    }
}
