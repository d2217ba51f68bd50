//! The processes of the agents bench: one devcluster, and `podgate serve` on a port fixed up
//! front (so a restart after SIGKILL listens where the agents dial), with N agent clusters
//! `edge-{i}` (each its own token file) and one ordinary cluster `direct` over the
//! devcluster's kubeconfig.

use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::process::Command;

pub const TOKEN: &str = "podgate-agents-bench-token";
/// The ordinary cluster, reached by the gateway over the devcluster's kubeconfig.
pub const DIRECT: &str = "direct";

/// The id of agent cluster `i`.
pub fn edge(i: usize) -> String {
    format!("edge-{i}")
}

/// A child process, SIGKILLed when dropped.
pub use podgate_benches::launch::{Proc, launch};

/// A free loopback port now (bound and let go: the gateway binds it next, and again after
/// its restart).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The gateway's files and how to start it.
pub struct Gateway {
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub port: u16,
    pub admin: String,
    /// The PEM of the CA that signed the gateway's certificate, and its file.
    pub ca_pem: String,
    pub ca_file: PathBuf,
    /// `edge-{i}`'s token file.
    pub token_files: Vec<PathBuf>,
}

impl Gateway {
    /// Writes the certificate, the tokens, `n` agent token files and the config into `dir`.
    pub fn prepare(bin: &Path, dir: &Path, kubeconfig: &Path, n: usize) -> anyhow::Result<Gateway> {
        let pem = podgate_devcluster::tls::generate_pem(&["127.0.0.1".into()])
            .context("generating a certificate")?;
        std::fs::write(dir.join("gateway.crt"), &pem.cert_pem)?;
        std::fs::write(dir.join("gateway.key"), &pem.key_pem)?;
        let ca_file = dir.join("gateway-ca.pem");
        std::fs::write(&ca_file, &pem.ca_pem)?;
        std::fs::write(
            dir.join("tokens.yaml"),
            format!("- token: {TOKEN}\n  user: admin\n  groups: [system:masters]\n"),
        )?;
        let tokens = dir.join("agent-tokens");
        std::fs::create_dir_all(&tokens)?;
        let port = free_port()?;
        let admin_port = free_port()?;
        let mut y = format!(
            "listen: 127.0.0.1:{port}\nadmin: {{listen: 127.0.0.1:{admin_port}}}\n\
             tls: {{cert_file: {d}/gateway.crt, key_file: {d}/gateway.key}}\n\
             auth: {{tokens_file: {d}/tokens.yaml}}\naudit: {{output: 'off'}}\n\
             sessions: {{keepalive: 20s, idle_timeout: 30m, max_duration: 12h}}\n\
             limits: {{max_sessions: 6000, max_sessions_per_user: 6000, \
             max_sessions_per_cluster: 6000, max_connections: 12000}}\nclusters:\n\
             - id: {DIRECT}\n  kubeconfig: {k}\n  context: podgate\n",
            d = dir.display(),
            k = kubeconfig.display(),
        );
        let mut token_files = Vec::with_capacity(n);
        for i in 0..n {
            let file = tokens.join(format!("{}.token", edge(i)));
            std::fs::write(&file, format!("agents-bench-{i}-{}\n", std::process::id()))?;
            y.push_str(&format!(
                "- id: {}\n  agent: {{token_file: {}}}\n",
                edge(i),
                file.display()
            ));
            token_files.push(file);
        }
        let config = dir.join("podgate.yaml");
        std::fs::write(&config, y)?;
        Ok(Gateway {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            config,
            port,
            admin: format!("127.0.0.1:{admin_port}"),
            ca_pem: pem.ca_pem,
            ca_file,
            token_files,
        })
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Starts `podgate serve`, its log `podgate-{run}.log`; returns once it listens.
    pub async fn start(&self, run: usize) -> anyhow::Result<Proc> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve").arg("--config").arg(&self.config);
        cmd.env("PODGATE_LOG", "info");
        launch(cmd, &self.log(run)).await
    }

    pub fn log(&self, run: usize) -> PathBuf {
        self.dir.join(format!("podgate-{run}.log"))
    }

    pub async fn metrics(&self) -> anyhow::Result<String> {
        admin_get(&self.admin, "/metrics").await
    }
}

/// `GET path` on the plain-HTTP admin listener, within 10 s.
pub async fn admin_get(admin: &str, path: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(admin).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut buf = Vec::new();
        s.take(64 << 20).read_to_end(&mut buf).await?;
        anyhow::Ok(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .context("the admin listener timed out")??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

/// The sum of `podgate_agent_tunnels{cluster}`.
pub fn tunnels(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|l| l.starts_with("podgate_agent_tunnels{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as usize
}

/// `podgate_agent_tunnel_attempts_total{result}`, by result.
pub fn attempts(metrics: &str) -> serde_json::Map<String, serde_json::Value> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("podgate_agent_tunnel_attempts_total{result=\""))
        .filter_map(|l| {
            let (result, rest) = l.split_once('"')?;
            let v: f64 = rest.rsplit(' ').next()?.parse().ok()?;
            Some((result.to_string(), serde_json::json!(v)))
        })
        .collect()
}

/// Samples `/metrics` every `every` until the tunnels' sum reaches `n`, at most `limit`;
/// returns when it did (from `since`), or `None`, and the last sum.
pub async fn until_tunnels(
    gw: &Gateway,
    n: usize,
    since: Instant,
    every: Duration,
    limit: Duration,
) -> (Option<Duration>, usize) {
    let mut last = 0;
    loop {
        if let Ok(m) = gw.metrics().await {
            last = tunnels(&m);
            if last >= n {
                return (Some(since.elapsed()), last);
            }
        }
        if since.elapsed() > limit {
            return (None, last);
        }
        tokio::time::sleep(every).await;
    }
}

/// What every start logs as a warning, and is no news: agent clusters down until their agent
/// connects, no browser session key.
const EXPECTED: [&str; 2] = [
    "no podgate agent is connected for this cluster",
    "auth.session.key_file is not set",
];

/// Warnings and errors of `log` other than [`EXPECTED`]: their count and the first `max`.
pub fn warnings(log: &Path, max: usize) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let hits: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .filter(|l| !EXPECTED.iter().any(|e| l.contains(e)))
        .collect();
    (
        hits.len(),
        hits.iter().take(max).map(|l| l.to_string()).collect(),
    )
}
