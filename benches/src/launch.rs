//! A bench's child process (a devcluster, `podgate serve`): started with its stderr in a log
//! file, ready once it prints `listening on URL`, killed when dropped. And the one parser of
//! the benches' duration flags. One copy for `podgate-load --spawn`, `podgate-fleet` and
//! `podgate-agents`.

use anyhow::{Context as _, bail};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// A child process, killed when dropped.
pub struct Proc {
    pub pid: u32,
    /// Where it said it listens.
    pub url: String,
    child: Child,
}

impl Proc {
    /// SIGKILL, and wait until it is gone (its sockets closed by the kernel).
    pub async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// SIGTERM, then up to `grace` for a clean exit: its exit status, or `None` when it had to
    /// be killed.
    pub async fn stop(mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = self.child.kill().await;
                None
            }
        }
    }
}

/// Starts `cmd` (which prints `listening on URL` on stdout), its stderr into `log`.
pub async fn launch(mut cmd: Command, log: &Path) -> anyhow::Result<Proc> {
    let file = std::fs::File::create(log).with_context(|| format!("{}", log.display()))?;
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::from(file))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let program = cmd.as_std().get_program().to_owned();
    let mut child = cmd.spawn().with_context(|| {
        format!(
            "cannot start {} (build it first: cargo build --release -p podgate -p podgate-devcluster -p podgate-benches)",
            Path::new(&program).display()
        )
    })?;
    let pid = child.id().context("no pid")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(url) = line.trim().strip_prefix("listening on ") {
                return Ok(url.to_string());
            }
        }
        bail!(
            "exited before saying where it listens; see {}",
            log.display()
        )
    })
    .await
    .map_err(|_| anyhow::anyhow!("did not start within 120 s; see {}", log.display()))??;
    // Its later stdout (audit lines) is read so the pipe never fills.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Proc { pid, url, child })
}

/// A duration flag as podgate's config writes them (`30s`, `5m`, `250ms`).
pub fn duration(s: &str) -> Result<Duration, String> {
    s.parse::<podgate_config::Duration>()
        .map(|d| d.get())
        .map_err(|e| e.to_string())
}
