//! `--spawn`: a devcluster and a podgate in front of it, each its own process so that /proc
//! measures the gateway alone, wired with a generated certificate, a tokens file and a config
//! whose limits do not refuse the benchmark.

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Command;

pub const CLUSTER_ID: &str = "bench";
pub const TOKEN: &str = "podgate-bench-admin-token";

/// A process started for the run; stopped (SIGTERM, then SIGKILL) by [`Proc::stop`], killed
/// when dropped.
pub struct Proc {
    pub name: &'static str,
    started: crate::launch::Proc,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.started.pid
    }

    /// SIGTERM, then up to `grace` for a clean exit, then SIGKILL.
    pub async fn stop(self, grace: Duration) -> String {
        match self.started.stop(grace).await {
            Some(status) => format!("{} exited: {status}", self.name),
            None => format!("{} did not stop within {grace:?} and was killed", self.name),
        }
    }
}

pub struct Spawned {
    pub devcluster: Proc,
    pub gateway: Proc,
    pub gateway_url: String,
    /// The reference relay in front of the devcluster, with the gateway's certificate.
    pub relay: Proc,
    pub relay_url: String,
    pub gateway_ca_pem: String,
    pub kubeconfig: PathBuf,
    pub work_dir: PathBuf,
}

/// Starts `devcluster` and `podgate serve` from `bin_dir`, with their files and logs in
/// `work_dir`; podgate records every session in `recording` mode (`off`, `best_effort`,
/// `required`) into `work_dir/recordings`.
pub async fn start(bin_dir: &Path, work_dir: &Path, recording: &str) -> anyhow::Result<Spawned> {
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("cannot create {}", work_dir.display()))?;
    let work_dir = std::fs::canonicalize(work_dir)?;
    let kubeconfig = work_dir.join("devcluster.kubeconfig");
    let devcluster_bin = bin_dir.join("devcluster");
    let mut cmd = Command::new(&devcluster_bin);
    cmd.args(["--listen", "127.0.0.1:0", "--kubeconfig-out"])
        .arg(&kubeconfig);
    // The cluster's address reaches clients through the kubeconfig it writes.
    let (devcluster, _url) = launch("devcluster", cmd, &work_dir).await?;

    // The gateway's certificate, for 127.0.0.1, and the CA clients trust.
    let pem = podgate_devcluster::tls::generate_pem(&["127.0.0.1".into(), "localhost".into()])
        .context("generating the gateway certificate")?;
    let cert = work_dir.join("gateway.crt");
    let key = work_dir.join("gateway.key");
    write_private(&cert, &pem.cert_pem)?;
    write_private(&key, &pem.key_pem)?;
    let tokens = work_dir.join("tokens.yaml");
    write_private(
        &tokens,
        &format!("- token: {TOKEN}\n  user: admin\n  groups: [system:masters]\n"),
    )?;
    let config = work_dir.join("podgate.yaml");
    let mut text = config_yaml(&cert, &key, &kubeconfig, &tokens);
    if recording != "off" {
        let dir = work_dir.join("recordings");
        // A fresh directory per run: recordings are not the bench's to keep.
        let _ = std::fs::remove_dir_all(&dir);
        text.push_str(&recording_yaml(recording, &dir));
    }
    write_private(&config, &text)?;

    let mut cmd = Command::new(bin_dir.join("podgate"));
    cmd.arg("serve").arg("--config").arg(&config);
    let (gateway, gateway_url) = launch("podgate", cmd, &work_dir).await?;

    let cluster = crate::target::Kubeconfig::load(&kubeconfig, Some("admin"))?;
    let cluster_ca = work_dir.join("devcluster-ca.pem");
    write_private(&cluster_ca, &cluster.ca_pem)?;
    let mut cmd = Command::new(bin_dir.join("podgate-refrelay"));
    cmd.arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .arg("--upstream")
        .arg(&cluster.server)
        .arg("--upstream-ca")
        .arg(&cluster_ca);
    let (relay, relay_url) = launch("podgate-refrelay", cmd, &work_dir).await?;
    Ok(Spawned {
        devcluster,
        gateway,
        gateway_url,
        relay,
        relay_url,
        gateway_ca_pem: pem.ca_pem,
        kubeconfig,
        work_dir,
    })
}

impl Spawned {
    /// The gateway's admin listener (`/metrics`), from the `admin listener:` line podgate logs
    /// at start (its config asks for port 0, so the log is the only place that says which).
    /// The line is written before `listening on`, so it is there once [`start`] returned;
    /// the short retry covers a log not yet flushed.
    pub async fn admin_addr(&self) -> anyhow::Result<std::net::SocketAddr> {
        let log = self.work_dir.join("podgate.log");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(addr) = text
                .lines()
                .filter(|l| l.contains("admin listener:"))
                .find_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("admin=")))
            {
                return addr
                    .parse()
                    .with_context(|| format!("admin address {addr:?} in {}", log.display()));
            }
            if tokio::time::Instant::now() > deadline {
                bail!("no admin listener address in {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The body of `GET path` on podgate's plain-HTTP admin listener, within 10 s and 16 MiB
/// (a `/metrics` page is a few tens of KiB; the bounds keep a stuck gateway from hanging or
/// flooding the bench).
pub async fn admin_get(admin: std::net::SocketAddr, path: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(admin)
            .await
            .with_context(|| format!("connect to the admin listener {admin}"))?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut buf = Vec::new();
        s.take(16 << 20).read_to_end(&mut buf).await?;
        anyhow::Ok(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .with_context(|| format!("GET {path} on {admin} timed out"))??;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("GET {path} on {admin}: no HTTP answer"))?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!(
            "GET {path} on {admin}: {}",
            head.lines().next().unwrap_or_default()
        );
    }
    Ok(body.to_string())
}

/// The bench's podgate config: the devcluster through its impersonating `podgate` context,
/// limits high enough for the full profile, timeouts longer than any scenario.
fn config_yaml(cert: &Path, key: &Path, kubeconfig: &Path, tokens: &Path) -> String {
    format!(
        "\
# Written by podgate-load --spawn.
listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
tls:
  cert_file: {cert}
  key_file: {key}
clusters:
  - id: {CLUSTER_ID}
    kubeconfig: {kubeconfig}
    context: podgate
    impersonate: true
auth:
  tokens_file: {tokens}
sessions:
  keepalive: 20s
  idle_timeout: 30m
  max_duration: 12h
# A cluster people used keeps its pooled connection (a health probe then keeps it too) until
# the upstream idle timeout: short here, so the leak checks' baseline, taken before anyone
# used the cluster, is reached again within their wait.
upstream:
  idle_timeout: 5s
limits:
  max_sessions: 200000
  max_sessions_per_user: 200000
  max_sessions_per_cluster: 200000
  max_connections: 400000
",
        cert = cert.display(),
        key = key.display(),
        kubeconfig = kubeconfig.display(),
        tokens = tokens.display(),
    )
}

/// Every session recorded, into `dir`.
fn recording_yaml(mode: &str, dir: &Path) -> String {
    format!(
        "recording:\n  default: {mode}\n  dir: {dir}\n",
        dir = dir.display()
    )
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Starts a server that prints `listening on URL` on stdout; its stderr goes to
/// `work_dir/NAME.log`. Returns it and the URL.
async fn launch(
    name: &'static str,
    cmd: Command,
    work_dir: &Path,
) -> anyhow::Result<(Proc, String)> {
    let log = work_dir.join(format!("{name}.log"));
    let started = crate::launch::launch(cmd, &log).await.context(name)?;
    let url = started.url.clone();
    Ok((Proc { name, started }, url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_valid_for_podgate() {
        let p = |n: &str| Path::new("/tmp/podgate-load").join(n);
        let text = config_yaml(&p("c.crt"), &p("c.key"), &p("k"), &p("t.yaml"));
        let config =
            podgate_config::parse(&p("podgate.yaml"), &text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.limits.max_sessions_per_user, 200_000);
        assert_eq!(config.clusters[0].id, CLUSTER_ID);
        let recorded = text + &recording_yaml("best_effort", &p("recordings"));
        let config =
            podgate_config::parse(&p("podgate.yaml"), &recorded).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.recording_mode(CLUSTER_ID),
            podgate_config::RecordingMode::BestEffort
        );
    }
}
