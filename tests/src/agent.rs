//! `podgate agent` as a process, the way a cluster behind NAT runs it: the cluster's
//! kubeconfig (which only the agent is given), the gateway's URL and CA, a token file; its
//! log line by line; killed (SIGKILL) when a test says so or when dropped.

use crate::serve::{Lines, Serve, until_some};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

/// A running `podgate agent`.
pub struct Agent {
    child: Child,
    stderr: Lines,
    /// Its own directory: the cluster's kubeconfig and the gateway's CA.
    _dir: tempfile::TempDir,
}

/// What an agent is started with.
pub struct AgentSpec<'a> {
    pub bin: &'a Path,
    pub gateway: &'a Serve,
    /// The URL the agent dials (the gateway's own unless a test puts something between).
    pub url: Option<String>,
    pub cluster: &'a str,
    pub token_file: &'a Path,
    /// The cluster's kubeconfig, YAML (the devcluster's, context `podgate`: impersonation
    /// only).
    pub kubeconfig: String,
    /// Run inside this network namespace (with the cluster), not beside the gateway.
    pub netns: Option<&'a crate::netns::Netns>,
    /// The CA it verifies the gateway with, PEM: the gateway's own unless a test gives another.
    pub ca_pem: Option<String>,
}

impl AgentSpec<'_> {
    /// Starts `podgate agent` (`PODGATE_LOG=info`).
    pub fn start(self) -> Agent {
        let dir = tempfile::tempdir().expect("a temp dir");
        let kubeconfig = dir.path().join("cluster.kubeconfig");
        let ca = dir.path().join("gateway-ca.crt");
        std::fs::write(&kubeconfig, &self.kubeconfig).expect("the cluster's kubeconfig");
        let ca_pem = self.ca_pem.as_deref().unwrap_or(&self.gateway.ca_pem);
        std::fs::write(&ca, ca_pem).expect("the gateway's CA");
        let url = self.url.unwrap_or_else(|| self.gateway.url.clone());
        let mut command = match self.netns {
            Some(ns) => ns.command(self.bin),
            None => std::process::Command::new(self.bin),
        };
        let mut child = command
            .arg("agent")
            .args(["--gateway", &url, "--cluster", self.cluster])
            .arg("--token-file")
            .arg(self.token_file)
            .arg("--ca-file")
            .arg(&ca)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--context", "podgate"])
            .env("PODGATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{} agent starts: {e}", self.bin.display()));
        let stderr = Lines::default();
        stderr.collect(child.stderr.take().expect("stderr is piped"));
        Agent {
            child,
            stderr,
            _dir: dir,
        }
    }
}

impl Agent {
    pub fn log(&self) -> Vec<String> {
        self.stderr.get()
    }

    pub fn mark(&self) -> usize {
        self.stderr.lock().len()
    }

    /// The first log line past `mark` with `text`, within `limit`; a panic with the log when
    /// none came.
    pub async fn line_after(&self, mark: usize, limit: Duration, text: &str) -> String {
        until_some(limit, || {
            self.stderr
                .lock()
                .iter()
                .skip(mark)
                .find(|l| l.contains(text))
                .cloned()
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "no agent log line with {text:?} within {limit:?}; its log:\n{}",
                self.log().join("\n")
            )
        })
    }

    /// SIGKILL: the agent's pod dies at once (no goodbye on the tunnel).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM: the agent's pod is stopped (a rollout): it drains its tunnels and exits.
    pub fn sigterm(&self) {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        )
        .unwrap_or_else(|e| panic!("SIGTERM to the agent: {e}"));
    }

    /// How it exited, within `limit`.
    pub async fn exit_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let child = &mut self.child;
        until_some(limit, || child.try_wait().ok().flatten())
            .await
            .unwrap_or_else(|| panic!("the agent still runs after {limit:?}"))
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("podgate agent's log:\n{}", self.log().join("\n"));
        }
    }
}
