//! The fleet as an operator runs it: devclusters and one `podgate serve` as processes, the
//! config listing N cluster ids over the devclusters' own kubeconfigs, and what /proc, the
//! admin listener and the log say about it. Works the same with any podgate binary (the one
//! built before the fleet work included), so before and after are measured alike.

use anyhow::{Context as _, bail};
use podgate_benches::procfs;
use podgate_benches::target::{SourceAddrs, Target, TlsOptions};
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::Command;

pub const TOKEN: &str = "podgate-fleet-bench-token";

pub use podgate_benches::launch::{Proc, launch};

/// `devcluster` processes, each with its kubeconfig in `dir`.
pub async fn devclusters(bin: &Path, dir: &Path, n: usize) -> anyhow::Result<Vec<(Proc, PathBuf)>> {
    let mut out = Vec::new();
    for i in 0..n {
        let kc = dir.join(format!("dc{i}.kubeconfig"));
        let mut cmd = Command::new(bin);
        cmd.args(["--listen", "127.0.0.1:0", "--kubeconfig-out"])
            .arg(&kc);
        let p = launch(cmd, &dir.join(format!("dc{i}.log"))).await?;
        out.push((p, kc));
    }
    Ok(out)
}

/// The id of cluster `i`.
pub fn id(i: usize) -> String {
    format!("c-{i:05}")
}

/// A config with `n` clusters over `kubeconfigs` (round-robin, context `podgate`), plus
/// `extra` (a cluster added by a reload, say) and without `skip`.
pub fn config_yaml(
    dir: &Path,
    kubeconfigs: &[PathBuf],
    n: usize,
    skip: Option<usize>,
    changed: Option<usize>,
    extra: Option<usize>,
) -> String {
    let mut y = format!(
        "listen: 127.0.0.1:0\nadmin: {{listen: 127.0.0.1:0}}\n\
         tls: {{cert_file: {d}/gateway.crt, key_file: {d}/gateway.key}}\n\
         auth: {{tokens_file: {d}/tokens.yaml}}\naudit: {{output: 'off'}}\n\
         limits: {{max_connections: 400000}}\nclusters:\n",
        d = dir.display()
    );
    let entry = |y: &mut String, i: usize, impersonate: bool| {
        y.push_str(&format!(
            "- id: {}\n  kubeconfig: {}\n  context: podgate\n",
            id(i),
            kubeconfigs[i % kubeconfigs.len()].display()
        ));
        if !impersonate {
            y.push_str("  impersonate: false\n");
        }
    };
    for i in (0..n).filter(|i| Some(*i) != skip) {
        entry(&mut y, i, Some(i) != changed);
    }
    if let Some(i) = extra {
        entry(&mut y, i, true);
    }
    y
}

/// Writes `text` to `path` aside, then renames it (as config management does).
pub fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    let aside = path.with_extension("tmp");
    std::fs::write(&aside, text)?;
    std::fs::rename(&aside, path)?;
    Ok(())
}

/// Certificate, key and tokens for the gateway in `dir`; returns the CA's PEM.
pub fn gateway_files(dir: &Path) -> anyhow::Result<String> {
    let pem = podgate_devcluster::tls::generate_pem(&["127.0.0.1".into()])
        .context("generating a certificate")?;
    std::fs::write(dir.join("gateway.crt"), &pem.cert_pem)?;
    std::fs::write(dir.join("gateway.key"), &pem.key_pem)?;
    std::fs::write(
        dir.join("tokens.yaml"),
        format!("- token: {TOKEN}\n  user: admin\n  groups: [system:masters]\n"),
    )?;
    Ok(pem.ca_pem)
}

/// The admin listener's address from podgate's log.
pub async fn admin_addr(log: &Path) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(a) = text
            .lines()
            .filter(|l| l.contains("admin listener:"))
            .find_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("admin=")))
        {
            return Ok(a.to_string());
        }
        if Instant::now() > deadline {
            bail!("no admin address in {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET path` on the plain-HTTP admin listener.
pub async fn admin_get(admin: &str, path: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(admin).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

pub fn clusters_up(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|l| l.starts_with("podgate_cluster_up{") && l.ends_with(" 1"))
        .count()
}

/// Established sockets of `pid` to any of `ports` (its fds matched with /proc/PID/net/tcp).
pub fn established_to(pid: u32, ports: &HashSet<u16>) -> usize {
    let inodes: HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|t| {
                    let t = t.to_string_lossy().into_owned();
                    t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
                })
                .collect()
        })
        .unwrap_or_default();
    let mut n = 0;
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(rem), Some(st), Some(inode)) = (f.get(2), f.get(3), f.get(9)) else {
                continue;
            };
            let port = rem
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if *st == "01"
                && port.is_some_and(|p| ports.contains(&p))
                && inode.parse::<u64>().is_ok_and(|i| inodes.contains(&i))
            {
                n += 1;
            }
        }
    }
    n
}

/// What one `podgate serve` with a fleet measured.
#[derive(Debug, Default, Serialize)]
pub struct Measured {
    pub clusters: usize,
    pub all_up_seconds: f64,
    pub rss_bytes: u64,
    pub fds_upstream_max: usize,
    pub fds_upstream_mean: f64,
    pub fds_total: usize,
    pub cpu_percent_at_rest: f64,
    pub rest_seconds: f64,
    /// `podgate_cluster_probes_total` per second at rest (absent in a podgate without it).
    pub probes_per_second: Option<f64>,
    /// Median request latency through the gateway to the first and the last cluster id.
    pub lookup_first_us: f64,
    pub lookup_last_us: f64,
    pub reload: Option<Reload>,
}

#[derive(Debug, Default, Serialize)]
pub struct Reload {
    /// From the file's rename to podgate's "config reloaded" line (the watcher polls every 2 s).
    pub seconds: f64,
    pub line: String,
    /// Requests to an unchanged cluster during the reload: their slowest, and the median
    /// before it.
    pub during_max_ms: f64,
    pub before_median_ms: f64,
}

pub struct Fleet<'a> {
    pub podgate: &'a Path,
    pub dir: &'a Path,
    pub kubeconfigs: &'a [PathBuf],
    pub ports: HashSet<u16>,
    pub ca_pem: &'a str,
}

impl Fleet<'_> {
    /// Starts podgate with `n` clusters, waits for all up, rests `rest`, measures; then
    /// reloads a change of three clusters when `reload`.
    pub async fn measure(
        &self,
        n: usize,
        settle: Duration,
        rest: Duration,
        reload: bool,
    ) -> anyhow::Result<Measured> {
        let config = self.dir.join(format!("podgate-{n}.yaml"));
        write(
            &config,
            &config_yaml(self.dir, self.kubeconfigs, n, None, None, None),
        )?;
        let log = self.dir.join(format!("podgate-{n}.log"));
        let mut cmd = Command::new(self.podgate);
        cmd.arg("serve").arg("--config").arg(&config);
        cmd.env("PODGATE_LOG", "info");
        let started = Instant::now();
        let gw = launch(cmd, &log).await?;
        let admin = admin_addr(&log).await?;
        let deadline = started + Duration::from_secs(600);
        loop {
            let up = clusters_up(&admin_get(&admin, "/metrics").await.unwrap_or_default());
            if up >= n {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "only {up} of {n} clusters up after 600 s; see {}",
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let all_up = started.elapsed();
        eprintln!("podgate-fleet: {n} clusters up in {all_up:.1?}; resting {rest:?}");
        // The second round of probes spreads over the interval that follows the first one
        // (one interval after start): steady state begins then, not at "all up". A podgate
        // without the interval gauge waits `settle` only, and so does the 1-cluster baseline
        // (its RSS is what counts).
        let interval = if n > 1 {
            probe_interval(&admin_get(&admin, "/metrics").await?)
        } else {
            None
        };
        let steady = interval.map_or(Duration::ZERO, |i| {
            (started + i + Duration::from_secs(1)).saturating_duration_since(Instant::now())
        });
        let settle = settle.max(steady);
        if !settle.is_zero() {
            eprintln!(
                "podgate-fleet: settling {settle:.0?} before the rest window (probe interval {:?})",
                interval.unwrap_or_default()
            );
            tokio::time::sleep(settle).await;
        }
        // Rest: connections from the first probes close, the heap settles.
        let probes_before = probes_total(&admin_get(&admin, "/metrics").await?);
        let before = procfs::sample(gw.pid)?;
        let t0 = Instant::now();
        let (mut max, mut sum, mut samples) = (0usize, 0usize, 0usize);
        while t0.elapsed() < rest {
            let n = established_to(gw.pid, &self.ports);
            max = max.max(n);
            sum += n;
            samples += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let after = procfs::sample(gw.pid)?;
        let elapsed = t0.elapsed();
        let probes_after = probes_total(&admin_get(&admin, "/metrics").await?);
        let target = |cluster: String| {
            let url = gw.url.clone();
            async move {
                Target::gateway(
                    &url,
                    &cluster,
                    TOKEN,
                    self.ca_pem,
                    TlsOptions { resumption: true },
                    Arc::new(SourceAddrs::new(1)),
                )
                .await
            }
        };
        let first = latency(&target(id(0)).await?, 200).await?;
        let last = latency(&target(id(n - 1)).await?, 200).await?;
        let mut m = Measured {
            clusters: n,
            all_up_seconds: all_up.as_secs_f64(),
            rss_bytes: after.rss_bytes,
            fds_upstream_max: max,
            fds_upstream_mean: sum as f64 / samples.max(1) as f64,
            fds_total: after.fds,
            cpu_percent_at_rest: procfs::cpu_percent(&before, &after, elapsed),
            rest_seconds: elapsed.as_secs_f64(),
            probes_per_second: probes_before
                .zip(probes_after)
                .map(|(a, b)| (b - a) / elapsed.as_secs_f64()),
            lookup_first_us: median(&first) * 1e6,
            lookup_last_us: median(&last) * 1e6,
            reload: None,
        };
        if reload {
            m.reload = Some(self.reload(n, &config, &log, &target(id(1)).await?).await?);
        }
        Ok(m)
    }

    async fn reload(
        &self,
        n: usize,
        config: &Path,
        log: &Path,
        unchanged: &Target,
    ) -> anyhow::Result<Reload> {
        let before = latency(unchanged, 100).await?;
        let mark = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .count();
        // Cluster 2 removed, 3 changed (impersonate off), one added.
        let text = config_yaml(self.dir, self.kubeconfigs, n, Some(2), Some(3), Some(n));
        let t0 = Instant::now();
        write(config, &text)?;
        let mut during = Vec::new();
        let line = loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(l) = text
                .lines()
                .skip(mark)
                .find(|l| l.contains("config reload"))
            {
                break l.to_string();
            }
            if t0.elapsed() > Duration::from_secs(60) {
                bail!("no reload logged within 60 s; see {}", log.display());
            }
            during.extend(latency(unchanged, 1).await?);
        };
        let seconds = t0.elapsed().as_secs_f64();
        during.extend(latency(unchanged, 5).await?);
        Ok(Reload {
            seconds,
            line: line.chars().skip_while(|c| *c != 'c').collect(),
            during_max_ms: during.iter().copied().fold(0.0, f64::max) * 1e3,
            before_median_ms: median(&before) * 1e3,
        })
    }
}

/// `podgate_cluster_probes_total`, up and down together (`None` from a podgate without it).
fn probes_total(text: &str) -> Option<f64> {
    let v: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("podgate_cluster_probes_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!v.is_empty()).then(|| v.iter().sum())
}

/// `podgate_cluster_probe_interval_seconds` (`None` from a podgate without it).
fn probe_interval(text: &str) -> Option<Duration> {
    text.lines()
        .find_map(|l| l.strip_prefix("podgate_cluster_probe_interval_seconds "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(Duration::from_secs_f64)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Seconds each of `count` sequential `GET /version` requests took, over one keep-alive
/// connection through the gateway to `target`'s cluster.
pub async fn latency(target: &Target, count: usize) -> anyhow::Result<Vec<f64>> {
    use http_body_util::BodyExt as _;
    let tcp = tokio::net::TcpStream::connect(target.addr).await?;
    let tls = target.tls.connect(target.server_name.clone(), tcp).await?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
    let driver = tokio::spawn(conn);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let req = http::Request::get(format!("{}/version", target.prefix))
            .header(http::header::HOST, &target.authority)
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", target.token),
            )
            .body(http_body_util::Empty::<bytes::Bytes>::new())?;
        let t = Instant::now();
        // The previous answer's body is read; the connection takes the next request once
        // hyper has seen its end.
        send.ready().await?;
        let resp = send.send_request(req).await?;
        let status = resp.status();
        resp.into_body().collect().await?;
        out.push(t.elapsed().as_secs_f64());
        if !status.is_success() {
            bail!("GET {}/version: {status}", target.prefix);
        }
    }
    drop(send);
    driver.abort();
    Ok(out)
}
