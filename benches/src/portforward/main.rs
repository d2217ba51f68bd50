//! `podgate-portforward [--bin-dir DIR] [--bytes N] [--requests N] --out FILE`: port-forward
//! through podgate against the same devcluster directly, in the same run (BENCHMARKS.md,
//! "Port-forward").
//!
//! It spawns a devcluster and `podgate serve` (as `podgate-load --spawn` does), runs real
//! `kubectl port-forward pod/web-0 :80` once directly and once through podgate, and measures
//! through each: bulk throughput (`GET /bytes/N` of `builtin:http`, one connection and four at
//! once) and request latency (sequential small `GET /` on one keep-alive connection, p50/p99).
//! The JSON holds both targets and the gateway/direct ratios.

use anyhow::{Context as _, bail};
use clap::Parser;
use podgate_benches::spawn;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

#[derive(Parser)]
struct Args {
    /// Where `podgate` and `devcluster` are (default: next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// kubectl to run (1.31 or newer: WebSocket port-forward).
    #[arg(long, default_value = "/usr/bin/kubectl")]
    kubectl: PathBuf,
    /// Bytes per bulk transfer.
    #[arg(long, default_value_t = 256 << 20)]
    bytes: u64,
    /// Sequential requests for the latency figure.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    #[arg(long)]
    out: PathBuf,
}

#[derive(serde::Serialize)]
struct Figures {
    /// One connection, MiB/s.
    single_mib_s: f64,
    /// Four connections at once over the one tunnel, MiB/s in total.
    parallel4_mib_s: f64,
    request_p50_us: f64,
    request_p99_us: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the binary has a directory")?
            .to_path_buf(),
    };
    let work = std::env::temp_dir().join(format!("podgate-portforward-{}", std::process::id()));
    // Port-forward sessions are not recorded; recording off keeps the gateway comparable.
    let spawned = spawn::start(&bin_dir, &work, "off").await?;
    let gateway_kc = work.join("gateway.kubeconfig");
    let ca = work.join("gateway-ca.pem");
    std::fs::write(&ca, &spawned.gateway_ca_pem)?;
    std::fs::write(
        &gateway_kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: g\n  cluster:\n    server: {}/clusters/{}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    token: {}\ncontexts:\n- name: g\n  context: {{cluster: g, user: u}}\ncurrent-context: g\n",
            spawned.gateway_url,
            spawn::CLUSTER_ID,
            ca.display(),
            spawn::TOKEN
        ),
    )?;
    let direct = measure(&args, &spawned.kubeconfig, &work).await;
    let gateway = measure(&args, &gateway_kc, &work).await;
    let _ = spawned.gateway.stop(Duration::from_secs(10)).await;
    let _ = spawned.devcluster.stop(Duration::from_secs(10)).await;
    let (direct, gateway) = (direct?, gateway?);
    let ratio = |g: f64, d: f64| if d > 0.0 { g / d } else { 0.0 };
    let summary = serde_json::json!({
        "bytes_per_transfer": args.bytes,
        "requests": args.requests,
        "direct": direct,
        "gateway": gateway,
        "ratio_gateway_over_direct": {
            "single_throughput": ratio(gateway.single_mib_s, direct.single_mib_s),
            "parallel4_throughput": ratio(gateway.parallel4_mib_s, direct.parallel4_mib_s),
            "request_p50": ratio(gateway.request_p50_us, direct.request_p50_us),
            "request_p99": ratio(gateway.request_p99_us, direct.request_p99_us),
        },
    });
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&summary)?)?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Starts `kubectl port-forward` with `kubeconfig` and measures through it.
async fn measure(args: &Args, kubeconfig: &Path, work: &Path) -> anyhow::Result<Figures> {
    let mut child = tokio::process::Command::new(&args.kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(work.join("kubectl-cache"))
        .args([
            "-n",
            "shop",
            "port-forward",
            "--address",
            "127.0.0.1",
            "pod/web-0",
            ":80",
        ])
        .env("HOME", work)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("kubectl starts")?;
    let stdout = child.stdout.take().context("kubectl's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let port = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:")
                && let Some((p, _)) = rest.split_once(' ')
                && let Ok(p) = p.parse::<u16>()
            {
                return Some(p);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .context("kubectl port-forward did not start listening")?;
    let drain = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    // Warm up: the tunnel's first connection and the pools.
    transfer(port, 1 << 20).await?;
    let mut single = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        transfer(port, args.bytes).await?;
        single.push(mib_s(args.bytes, t.elapsed()));
    }
    let t = Instant::now();
    let each = args.bytes / 4;
    let runs = (0..4).map(|_| tokio::spawn(transfer(port, each)));
    for r in runs.collect::<Vec<_>>() {
        r.await??;
    }
    let parallel = mib_s(each * 4, t.elapsed());
    let mut lat = requests(port, args.requests).await?;
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let _ = child.start_kill();
    let _ = child.wait().await;
    drain.abort();
    single.sort_by(f64::total_cmp);
    Ok(Figures {
        single_mib_s: single[single.len() / 2],
        parallel4_mib_s: parallel,
        request_p50_us: pct(0.50),
        request_p99_us: pct(0.99),
    })
}

fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

/// `GET /bytes/N` read to its end; fails unless all N bytes came.
async fn transfer(port: u16, n: u64) -> anyhow::Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(
        format!("GET /bytes/{n} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let k = s.read(&mut buf).await?;
        if k == 0 {
            break;
        }
        total += k as u64;
    }
    if total < n {
        bail!("GET /bytes/{n} ended after {total} bytes");
    }
    Ok(())
}

/// `n` sequential `GET /` on one keep-alive connection: each one's time in µs.
async fn requests(port: u16, n: usize) -> anyhow::Result<Vec<f64>> {
    let s = TcpStream::connect(("127.0.0.1", port)).await?;
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        w.write_all(b"GET / HTTP/1.1\r\nHost: b\r\n\r\n").await?;
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).await? == 0 {
                bail!("the connection ended mid-answer");
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0u8; length];
        r.read_exact(&mut body).await?;
        out.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(out)
}
