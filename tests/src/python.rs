//! The official Kubernetes Python client (in the venv scripts/setup.sh makes under
//! `target/py`), driving an exec the way its users do.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The venv's python; `None` (the test is skipped) only outside CI.
pub fn python() -> Option<PathBuf> {
    let python = crate::repo().join("target/py/bin/python");
    let what = format!("{} (run scripts/setup.sh)", python.display());
    crate::available(python.exists(), &what).then_some(python)
}

/// What [`exec`] prints: one JSON object per scenario.
#[derive(serde::Deserialize, Debug)]
pub struct Run {
    pub protocol: Option<String>,
    pub stdout: String,
    pub code: Option<i32>,
}

/// `kubernetes.stream.stream(connect_get_namespaced_pod_exec, ...)` on `default/shell-0`: the
/// client sends `write_stdin(str)` and `write_channel(4, str)` as **text** frames (first
/// character `chr(channel)`, see `WSClient.write_channel` in kubernetes/stream/ws_client.py)
/// and `bytes` as binary frames; kube-apiserver takes both as channel frames.
const EXEC_SCRIPT: &str = r#"
import json, sys
from kubernetes import client, config
from kubernetes.stream import stream

config.load_kube_config(config_file=sys.argv[1], context=(sys.argv[2] or None))
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

/// What `head` prints of the first scenario's stdin: the `str` then the `bytes`.
pub const PIPES_STDOUT: &str = "str: zoë 用户\nbytes: \u{0}\u{1}\n";
/// The second scenario: the terminal echoes the input line, then `stty size` prints the size
/// the `str` resize gave it.
pub const RESIZE_STDOUT: &str = "go\r\n33 100\r\n";

/// Runs the two exec scenarios with `kubeconfig` (in `context`, or its current one).
pub async fn exec(python: &Path, kubeconfig: &Path, context: Option<&str>) -> Vec<Run> {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(python)
            .arg("-c")
            .arg(EXEC_SCRIPT)
            .arg(kubeconfig)
            .arg(context.unwrap_or(""))
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
