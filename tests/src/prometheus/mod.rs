//! deploy/ as tests read it: the repository's paths, external tools (required in CI, skipped
//! with a note elsewhere), rendering kustomizations, the alerts and dashboard queries of
//! deploy/monitoring/ ([`monitoring`]); and a real Prometheus server ([`Server`]).

pub mod monitoring;

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use crate::repo;

pub fn deploy(rel: &str) -> PathBuf {
    repo().join("deploy").join(rel)
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The path of `tool` on `PATH`. When it is missing: in CI (`CI=true`) the test fails, since
/// scripts/setup.sh installs it; elsewhere the test is skipped with a note.
pub fn tool(tool: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|p| p.is_file())
    });
    let what = format!("{tool} (scripts/setup.sh, run by `make test`, installs it)");
    if crate::available(found.is_some(), &what) {
        found
    } else {
        None
    }
}

/// Runs a command and returns its stdout; panics with its stderr when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// `kubectl kustomize deploy/{dir}`, as JSON values (one per object).
pub fn kustomize(kubectl: &Path, dir: &str) -> Vec<serde_json::Value> {
    let yaml = run(Command::new(kubectl).arg("kustomize").arg(deploy(dir)));
    let mut objects = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&yaml) {
        let value: serde_json::Value = serde::Deserialize::deserialize(doc)
            .unwrap_or_else(|e| panic!("kustomize output of {dir} is not YAML: {e}"));
        if !value.is_null() {
            objects.push(value);
        }
    }
    assert!(!objects.is_empty(), "{dir} renders no objects");
    objects
}

/// Prometheus as a child process on loopback, killed when dropped.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `binary` scraping and evaluating every second, with the rule groups `rules` (a
    /// Prometheus rule file's content) and `scrape_configs`; returns once it is ready.
    pub async fn start(binary: &Path, rules: &Value, scrape_configs: Value) -> Server {
        let dir = tempfile::tempdir().expect("a temp dir");
        let rules_path = dir.path().join("rules.yaml");
        std::fs::write(&rules_path, rules.to_string()).expect("rules written");
        let config = json!({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [rules_path],
            "scrape_configs": scrape_configs,
        });
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config.to_string()).expect("config written");

        // Prometheus cannot listen on port 0; a port that was free a moment ago may be taken
        // by the time it binds, so try a few.
        for _ in 0..3 {
            let addr: SocketAddr = ([127, 0, 0, 1], crate::free_port()).into();
            let mut child = Command::new(binary)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("prometheus starts");
            let mut exited = None;
            let ready = crate::wait::wait_until(
                Duration::from_secs(15),
                Duration::from_millis(100),
                async || {
                    if let Ok(Some(status)) = child.try_wait() {
                        exited = Some(status);
                        return true;
                    }
                    get(addr, "/-/ready").await.is_ok_and(|a| a.code == 200)
                },
            )
            .await;
            match exited {
                None if ready => {
                    return Server {
                        child,
                        addr,
                        _dir: dir,
                    };
                }
                Some(status) => eprintln!("prometheus exited ({status}) on {addr}, retrying"),
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        panic!("prometheus did not become ready");
    }

    /// `GET path` of the HTTP API, as JSON.
    pub async fn api(&self, path: &str) -> Value {
        let answer = get(self.addr, path)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        serde_json::from_str(&answer.body).unwrap_or_else(|e| {
            panic!(
                "GET {path}: {}, not JSON ({e}): {}",
                answer.code, answer.body
            )
        })
    }

    /// Runs an instant query; `Err` carries Prometheus' error for an invalid query.
    pub async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let v = self
            .api(&format!("/api/v1/query?query={}", encode(expr)))
            .await;
        if v["status"] != "success" {
            return Err(format!("{}: {}", v["errorType"], v["error"]));
        }
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// Polls `expr` until it returns data, or panics after `timeout`.
    pub async fn wait_for(&self, expr: &str, timeout: Duration) {
        let found = crate::wait::wait_until(timeout, Duration::from_millis(200), async || {
            !self.query(expr).await.expect("a valid query").is_empty()
        })
        .await;
        assert!(
            found,
            "no data for {expr} within {timeout:?}; targets: {}",
            self.api("/api/v1/targets").await
        );
    }
}

async fn get(addr: SocketAddr, path: &str) -> std::io::Result<crate::http::Answer> {
    crate::http::plain(addr, "GET", path, &[], "").await
}

/// Percent-encodes a query parameter value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
