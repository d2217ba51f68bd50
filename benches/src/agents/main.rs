//! `podgate-agents`: N agent tunnels on one gateway (issue 18's scale figures). Starts a
//! devcluster and `podgate serve` as processes, the config listing agent clusters
//! `edge-0..edge-{N-1}` (each its own token) and one ordinary cluster `direct` over the
//! devcluster's kubeconfig; then N agents in this process (`podgate::agent::run`, the
//! devcluster's impersonating context), except `edge-0`'s, which runs as its own `podgate
//! agent` process so the sessions compared below are not served by the load generator's
//! own threads. Reports:
//!
//! - time until all N tunnels are up, the gateway's RSS per idle tunnel (and this process's,
//!   the agents' side) and CPU at rest;
//! - interactive (echo), throughput and churn (setup) through `edge-0`'s tunnel against
//!   `direct` on the same gateway, same run, as ratios tunnel / direct;
//! - reconnect storms (one per `--down`): the gateway SIGKILLed and started again on the
//!   same port, at once or after a while down, and how long each agent took to come back
//!   (the agents' jittered backoff spreading them).
//!
//! See BENCHMARKS.md, "Agent tunnels".

mod capture;
mod gateway;

use anyhow::{Context as _, bail};
use clap::Parser;
use gateway::{DIRECT, Gateway, TOKEN, edge};
use podgate_benches::procfs::{self, Sample};
use podgate_benches::report::{self, ScenarioReport};
use podgate_benches::run::Profile;
use podgate_benches::scenario::{self, Pods, Scenario, Watch};
use podgate_benches::target::{SourceAddrs, Target, TlsOptions};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(version)]
struct Args {
    /// Agent clusters, one agent (one tunnel) each.
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// How long the gateway is watched at rest with every tunnel up.
    #[arg(long, value_parser = duration, default_value = "20s")]
    rest: Duration,
    /// Sessions of the interactive comparison.
    #[arg(long, default_value_t = 200)]
    sessions: usize,
    /// Typing time of the interactive comparison.
    #[arg(long, value_parser = duration, default_value = "10s")]
    duration: Duration,
    /// Throughput sessions, and the bytes each reads.
    #[arg(long, default_value_t = 4)]
    floods: usize,
    #[arg(long, default_value_t = 256 << 20)]
    flood_bytes: u64,
    /// Churn: sessions opened and closed in all (at most --duration x 2), by this many
    /// workers.
    #[arg(long, default_value_t = 5000)]
    churn: usize,
    #[arg(long, default_value_t = 16)]
    churn_workers: usize,
    /// Reconnect storms, one per value: how long the gateway stays down between SIGKILL and
    /// its start again (0s: at once). Each storm after the first waits 31 s with every tunnel
    /// up, so every agent's backoff has started over.
    #[arg(long, value_parser = duration, value_delimiter = ',', default_value = "0s,10s")]
    down: Vec<Duration>,
    /// Skip the tunnel / direct comparison.
    #[arg(long)]
    no_compare: bool,
    /// The podgate binary (default: next to this one).
    #[arg(long)]
    podgate: Option<PathBuf>,
    /// The devcluster binary (default: next to this one).
    #[arg(long)]
    devcluster: Option<PathBuf>,
    #[arg(long, default_value = "target/bench/agents")]
    work_dir: PathBuf,
    /// Write the JSON results here.
    #[arg(long)]
    out: Option<PathBuf>,
}

use podgate_benches::launch::duration;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    podgate_devcluster::install_crypto_provider();
    let nofile = procfs::raise_nofile_limit();
    capture::install();
    let here = std::env::current_exe()?
        .parent()
        .context("no directory for this executable")?
        .to_path_buf();
    let podgate = args.podgate.clone().unwrap_or_else(|| here.join("podgate"));
    let devcluster = args
        .devcluster
        .clone()
        .unwrap_or_else(|| here.join("devcluster"));
    std::fs::create_dir_all(&args.work_dir)?;
    let dir = std::fs::canonicalize(&args.work_dir)?;
    let n = args.agents.max(1);
    let load_before = loadavg();
    let cpu_before = procfs::machine_cpu();
    let started = Instant::now();

    // The devcluster, and the gateway with no agent yet.
    let kubeconfig = dir.join("devcluster.kubeconfig");
    let mut cmd = tokio::process::Command::new(&devcluster);
    cmd.args(["--listen", "127.0.0.1:0", "--kubeconfig-out"])
        .arg(&kubeconfig);
    let dc = gateway::launch(cmd, &dir.join("devcluster.log")).await?;
    let gw = Gateway::prepare(&podgate, &dir, &kubeconfig, n)?;
    let t0 = Instant::now();
    let mut proc = gw.start(1).await?;
    let start_seconds = t0.elapsed().as_secs_f64();
    eprintln!(
        "podgate-agents: {} serving {n} agent clusters + {DIRECT} at {} (started in {start_seconds:.2} s; files in {})",
        podgate.display(),
        gw.url(),
        dir.display()
    );
    // Settled: the direct cluster's first probe done, the certificate watcher's first tick.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let gw_empty = procfs::sample(proc.pid)?;
    let me_empty = procfs::sample(std::process::id())?;

    // The agents: edge-0 as its own process, the others here.
    let stop = CancellationToken::new();
    let t_agents = Instant::now();
    let mut edge0 = start_agent_process(&podgate, &gw, &kubeconfig, &dir)?;
    let mut agents = tokio::task::JoinSet::new();
    for i in 1..n {
        let options = podgate::agent::Options {
            gateway: gw.url(),
            cluster: edge(i),
            token_file: gw.token_files[i].clone(),
            ca_file: Some(gw.ca_file.clone()),
            kubeconfig: Some(kubeconfig.clone()),
            context: Some("podgate".into()),
        };
        let token = stop.child_token();
        agents.spawn(async move { (i, podgate::agent::run(options, token).await) });
    }
    let (connected, seen) = gateway::until_tunnels(
        &gw,
        n,
        t_agents,
        Duration::from_millis(100),
        Duration::from_secs(300),
    )
    .await;
    let Some(connected) = connected else {
        bail!(
            "only {seen} of {n} tunnels up after 300 s; see {}",
            gw.log(1).display()
        );
    };
    let first_ups = per_agent_up(&capture::since(t_agents), t_agents, n);
    eprintln!(
        "podgate-agents: {n} tunnels up in {:.2} s; settling 10 s, then resting {:?}",
        connected.as_secs_f64(),
        args.rest
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rest = at_rest(proc.pid, args.rest).await?;
    let me_rest = procfs::sample(std::process::id())?;
    let edge0_rest = procfs::sample(edge0.pid)?;
    let kib = |b: f64| b / 1024.0;
    let gw_per_tunnel = (rest.after.rss_bytes as f64 - gw_empty.rss_bytes as f64) / n as f64;
    let me_per_agent =
        (me_rest.rss_bytes as f64 - me_empty.rss_bytes as f64) / (n - 1).max(1) as f64;
    let warnings_steady = capture::since(t_agents)
        .iter()
        .filter(|l| l.warning)
        .count();

    // Through edge-0's tunnel vs the direct path, same gateway, same run.
    let compare = if args.no_compare {
        Vec::new()
    } else {
        compare(&args, &gw, proc.pid, dc.pid, edge0.pid).await?
    };

    // The storms: SIGKILL, start again on the same port (at once, or after a while down).
    let mut storms = Vec::new();
    for (k, down) in args.down.iter().enumerate() {
        if k > 0 {
            // Every tunnel up longer than backoff::HEALTHY: each agent's backoff starts over.
            eprintln!("podgate-agents: 31 s with every tunnel up before the next storm");
            tokio::time::sleep(Duration::from_secs(31)).await;
        }
        let (next, storm) = storm(&gw, proc, k + 2, *down, n).await?;
        proc = next;
        storms.push(storm);
    }
    // Each agent's tunnel works again: a request through the first and the last.
    let mut after_checks = Vec::new();
    for i in [0, n - 1] {
        let t = Target::gateway(
            &gw.url(),
            &edge(i),
            TOKEN,
            &gw.ca_pem,
            TlsOptions { resumption: true },
            Arc::new(SourceAddrs::new(1)),
        )
        .await?;
        after_checks.push(json!({
            "cluster": edge(i),
            "version": get_version(&t).await.map_err(|e| format!("{e:#}")),
        }));
    }

    let load_after = loadavg();
    let steal = procfs::machine_cpu()
        .zip(cpu_before)
        .map(|(a, b)| procfs::machine_steal_percent(b, a));
    let gateway_warnings: Vec<_> = (1..=args.down.len() + 1)
        .map(|run| {
            let (count, samples) = gateway::warnings(&gw.log(run), 8);
            json!({"log": gw.log(run).display().to_string(), "count": count, "samples": samples})
        })
        .collect();
    let agent_warnings: Vec<String> = {
        let mut seen: Vec<String> = Vec::new();
        for l in capture::since(started).iter().filter(|l| l.warning) {
            let m = strip_numbers(&l.message);
            if seen.len() < 8 && !seen.contains(&m) {
                seen.push(m);
            }
        }
        seen
    };

    // Stop: the agents first (the gateway sees them go), then everything else on drop.
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(r) = agents.join_next().await {
            if let Ok((i, Err(e))) = r {
                eprintln!("podgate-agents: agent {} ended: {e}", edge(i));
            }
        }
    })
    .await;
    let _ = edge0.child.start_kill();
    let _ = edge0.child.wait().await;
    proc.kill().await;
    dc.kill().await;

    let up = spread(&first_ups);
    println!(
        "podgate-agents: {n} agents on one gateway ({})",
        podgate.display()
    );
    println!("  gateway start (N clusters)     {start_seconds:>10.2} s");
    println!(
        "  all N tunnels up               {:>10.2} s (each agent: p50 {:.2} / p90 {:.2} / max {:.2} s)",
        connected.as_secs_f64(),
        up.p50,
        up.p90,
        up.max
    );
    println!(
        "  gateway RSS empty / N tunnels  {:>10.1} / {:.1} MiB",
        gw_empty.rss_bytes as f64 / 1048576.0,
        rest.after.rss_bytes as f64 / 1048576.0
    );
    println!(
        "  gateway RSS per idle tunnel    {:>10.1} KiB",
        kib(gw_per_tunnel)
    );
    println!(
        "  agents' RSS per agent (here)   {:>10.1} KiB",
        kib(me_per_agent)
    );
    println!(
        "  gateway CPU at rest            {:>10.2} % of a core over {:.0} s (fds {}, threads {})",
        rest.gateway_cpu, rest.seconds, rest.after.fds, rest.after.threads
    );
    println!(
        "  agents' CPU at rest (here)     {:>10.2} % of a core",
        rest.self_cpu
    );
    for c in &compare {
        println!(
            "  {:<12} tunnel / direct     {}",
            c.0,
            c.1.ratios
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for st in &storms {
        st.print(n);
    }
    println!(
        "  load {} -> {}; steal {:.1} %",
        load_before,
        load_after,
        steal.unwrap_or(0.0)
    );
    println!(
        "  warnings: gateway {:?} (per run), agents {} ({} in the steady run)",
        gateway_warnings
            .iter()
            .map(|w| w["count"].as_u64().unwrap_or(0))
            .collect::<Vec<_>>(),
        capture::since(started).iter().filter(|l| l.warning).count(),
        warnings_steady
    );

    if let Some(out) = &args.out {
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let compared: serde_json::Map<String, serde_json::Value> = compare
            .iter()
            .map(|(name, r)| {
                (
                    name.to_string(),
                    json!({
                        "plan": r.plan,
                        "tunnel": r.gateway,
                        "direct": r.direct,
                        "ratios_tunnel_over_direct": r.ratios,
                        "agent_process_cpu_percent": r.agent_cpu,
                    }),
                )
            })
            .collect();
        let json = json!({
            "tool": "podgate-agents",
            "podgate": podgate.display().to_string(),
            "machine": report::Machine::read(nofile),
            "agents": n,
            "gateway_start_seconds": start_seconds,
            "all_connected_seconds": connected.as_secs_f64(),
            "agent_up_seconds": up,
            "gateway_rss_empty_bytes": gw_empty.rss_bytes,
            "gateway_rss_connected_bytes": rest.after.rss_bytes,
            "gateway_rss_per_idle_tunnel_bytes": gw_per_tunnel,
            "agents_rss_per_agent_bytes": me_per_agent,
            "edge0_agent_process_rss_bytes": edge0_rest.rss_bytes,
            "gateway_at_rest": {
                "cpu_percent": rest.gateway_cpu,
                "seconds": rest.seconds,
                "fds": rest.after.fds,
                "threads": rest.after.threads,
                "agents_cpu_percent": rest.self_cpu,
            },
            "compare": compared,
            "storms": storms,
            "requests_after_storms": after_checks,
            "warnings": {
                "gateway": gateway_warnings,
                "agents": agent_warnings,
            },
            "load_before": load_before,
            "load_after": load_after,
            "steal_percent": steal,
            "duration_s": started.elapsed().as_secs_f64(),
        });
        std::fs::write(out, serde_json::to_string_pretty(&json)? + "\n")?;
        eprintln!("podgate-agents: wrote {}", out.display());
    }
    Ok(())
}

/// `edge-0`'s agent as its own `podgate agent` process (its log `agent-edge-0.log`).
fn start_agent_process(
    podgate: &Path,
    gw: &Gateway,
    kubeconfig: &Path,
    dir: &Path,
) -> anyhow::Result<AgentProc> {
    let log = dir.join("agent-edge-0.log");
    let file = std::fs::File::create(&log)?;
    let child = tokio::process::Command::new(podgate)
        .arg("agent")
        .args(["--gateway", &gw.url(), "--cluster", &edge(0)])
        .arg("--token-file")
        .arg(&gw.token_files[0])
        .arg("--ca-file")
        .arg(&gw.ca_file)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--context", "podgate"])
        .env("PODGATE_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(file))
        .kill_on_drop(true)
        .spawn()
        .context("cannot start podgate agent")?;
    let pid = child.id().context("no pid")?;
    Ok(AgentProc { pid, child })
}

struct AgentProc {
    pid: u32,
    child: tokio::process::Child,
}

/// Seconds from `since` to each agent's first `tunnel up` after it (agents 1.., those seen).
fn per_agent_up(log: &[capture::Logged], since: Instant, n: usize) -> Vec<f64> {
    let mut first = vec![None; n];
    for l in log.iter().filter(|l| l.up) {
        if let Some(i) = l.agent.filter(|i| *i < n)
            && first[i].is_none()
        {
            first[i] = Some(l.at.saturating_duration_since(since).as_secs_f64());
        }
    }
    first.into_iter().flatten().collect()
}

#[derive(Debug, Default, serde::Serialize)]
struct Spread {
    min: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

fn spread(v: &[f64]) -> Spread {
    if v.is_empty() {
        return Spread::default();
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    let r = |x: f64| (x * 1000.0).round() / 1000.0;
    Spread {
        min: r(v[0]),
        p50: r(at(0.5)),
        p90: r(at(0.9)),
        p99: r(at(0.99)),
        max: r(v[v.len() - 1]),
        mean: r(v.iter().sum::<f64>() / v.len() as f64),
    }
}

/// How many arrived in each second (index: whole seconds after the start).
fn histogram(v: &[f64]) -> Vec<usize> {
    let last = v.iter().copied().fold(0.0, f64::max) as usize;
    let mut h = vec![0; last + 1];
    for x in v {
        h[*x as usize] += 1;
    }
    h
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A message with its numbers taken out, so that the same warning for many agents (ports,
/// durations) counts once.
fn strip_numbers(s: &str) -> String {
    let mut out = String::new();
    let mut digit = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !digit {
                out.push('#');
            }
            digit = true;
        } else {
            digit = false;
            out.push(c);
        }
    }
    out
}

#[derive(Debug, serde::Serialize)]
struct Storm {
    down_seconds: f64,
    /// From SIGKILL until the new gateway said it listens.
    relisten_seconds: f64,
    /// From SIGKILL until the gauges' sum was N again (sampled every 100 ms).
    all_back_seconds: Option<f64>,
    back_at_end: usize,
    /// From SIGKILL to each in-process agent's `tunnel up`.
    agent_back_seconds: Spread,
    agents_seen_back: usize,
    /// Dials that failed (refused while the gateway was down), per agent.
    failed_dials_per_agent: Spread,
    /// Agents back in each whole second after SIGKILL.
    arrivals_per_second: Vec<usize>,
    /// CPU the new gateway spent from listening until every tunnel was back, seconds.
    gateway_cpu_seconds_to_all_back: f64,
    gateway_rss_after_bytes: u64,
    attempts_before: serde_json::Map<String, serde_json::Value>,
    attempts_after: serde_json::Map<String, serde_json::Value>,
}

impl Storm {
    fn print(&self, n: usize) {
        println!(
            "  storm (down {:.0} s): listening again {:.2} s after SIGKILL; all N back (gauge) {}",
            self.down_seconds,
            self.relisten_seconds,
            match self.all_back_seconds {
                Some(t) => format!("{t:.2} s after SIGKILL"),
                None => format!("NOT: {} of {n} within 300 s", self.back_at_end),
            }
        );
        let s = &self.agent_back_seconds;
        println!(
            "    each agent back: min {:.2} / p50 {:.2} / p90 {:.2} / p99 {:.2} / max {:.2} s ({} of {} seen)",
            s.min,
            s.p50,
            s.p90,
            s.p99,
            s.max,
            self.agents_seen_back,
            n - 1
        );
        println!(
            "    failed dials per agent: mean {:.2}, max {:.0}; gateway CPU to all back {:.2} s",
            self.failed_dials_per_agent.mean,
            self.failed_dials_per_agent.max,
            self.gateway_cpu_seconds_to_all_back
        );
        println!("    arrivals per second: {:?}", self.arrivals_per_second);
    }
}

/// SIGKILLs the gateway, starts it again (log `podgate-{run}.log`) after `down`, and waits
/// until all `n` tunnels are back.
async fn storm(
    gw: &Gateway,
    proc: gateway::Proc,
    run: usize,
    down: Duration,
    n: usize,
) -> anyhow::Result<(gateway::Proc, Storm)> {
    let before = gw.metrics().await.unwrap_or_default();
    eprintln!(
        "podgate-agents: SIGKILL the gateway (pid {}), start it again after {down:?}",
        proc.pid
    );
    let killed = Instant::now();
    proc.kill().await;
    tokio::time::sleep(down.saturating_sub(killed.elapsed())).await;
    let proc = gw.start(run).await?;
    let relisten = killed.elapsed();
    let cpu0 = procfs::sample(proc.pid)?;
    let (all_back, back) = gateway::until_tunnels(
        gw,
        n,
        killed,
        Duration::from_millis(100),
        Duration::from_secs(300),
    )
    .await;
    let cpu1 = procfs::sample(proc.pid)?;
    // Late comers counted too: watch a little past the last.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = capture::since(killed);
    let back_ups = per_agent_up(&log, killed, n);
    let failed: Vec<f64> = (1..n)
        .map(|i| {
            log.iter()
                .filter(|l| {
                    l.agent == Some(i) && l.warning && !l.message.starts_with("tunnel ended")
                })
                .count() as f64
        })
        .collect();
    let after = gw.metrics().await.unwrap_or_default();
    let storm = Storm {
        down_seconds: down.as_secs_f64(),
        relisten_seconds: relisten.as_secs_f64(),
        all_back_seconds: all_back.map(|d| d.as_secs_f64()),
        back_at_end: back,
        agent_back_seconds: spread(&back_ups),
        agents_seen_back: back_ups.len(),
        failed_dials_per_agent: spread(&failed),
        arrivals_per_second: histogram(&back_ups),
        gateway_cpu_seconds_to_all_back: cpu1.cpu_ticks.saturating_sub(cpu0.cpu_ticks) as f64
            / procfs::ticks_per_second() as f64,
        gateway_rss_after_bytes: procfs::sample(proc.pid)?.rss_bytes,
        attempts_before: gateway::attempts(&before),
        attempts_after: gateway::attempts(&after),
    };
    storm.print(n);
    Ok((proc, storm))
}

struct Rest {
    after: Sample,
    gateway_cpu: f64,
    self_cpu: f64,
    seconds: f64,
}

async fn at_rest(pid: u32, window: Duration) -> anyhow::Result<Rest> {
    let me = std::process::id();
    let (g0, m0) = (procfs::sample(pid)?, procfs::sample(me)?);
    let t = Instant::now();
    tokio::time::sleep(window).await;
    let (g1, m1) = (procfs::sample(pid)?, procfs::sample(me)?);
    let elapsed = t.elapsed();
    Ok(Rest {
        after: g1,
        gateway_cpu: procfs::cpu_percent(&g0, &g1, elapsed),
        self_cpu: procfs::cpu_percent(&m0, &m1, elapsed),
        seconds: elapsed.as_secs_f64(),
    })
}

struct Compared {
    plan: scenario::Plan,
    gateway: Option<scenario::TargetResult>,
    direct: Option<scenario::TargetResult>,
    ratios: std::collections::BTreeMap<&'static str, f64>,
    agent_cpu: Option<f64>,
}

/// Interactive, throughput and churn through `edge-0` (its agent's tunnel) and through
/// `direct` (the gateway's own upstream connection), each direct first.
async fn compare(
    args: &Args,
    gw: &Gateway,
    gateway_pid: u32,
    cluster_pid: u32,
    agent_pid: u32,
) -> anyhow::Result<Vec<(&'static str, Compared)>> {
    let tls = TlsOptions { resumption: false };
    let sources = Arc::new(SourceAddrs::new(256));
    let tunnel = Arc::new(
        Target::gateway(&gw.url(), &edge(0), TOKEN, &gw.ca_pem, tls, sources.clone()).await?,
    );
    let direct =
        Arc::new(Target::gateway(&gw.url(), DIRECT, TOKEN, &gw.ca_pem, tls, sources).await?);
    let pods = Pods {
        namespace: "load".into(),
        echo_pod: "echo-0".into(),
        flood_pod: "flood-0".into(),
        container: None,
    };
    // Warm: pools and caches on both paths.
    for t in [&direct, &tunnel] {
        for _ in 0..3 {
            let mut o = podgate_benches::client::open(t, &pods.echo(), Duration::from_secs(20))
                .await
                .with_context(|| format!("warm-up session to {}", t.prefix))?;
            podgate_benches::client::finish(&mut o.ws).await?;
        }
    }
    let mut out = Vec::new();
    for s in [Scenario::Interactive, Scenario::Throughput, Scenario::Churn] {
        let mut plan = Profile::Quick.plan(s);
        match s {
            Scenario::Interactive => {
                plan.sessions = args.sessions;
                plan.duration = args.duration;
            }
            Scenario::Throughput => {
                plan.sessions = args.floods;
                plan.flood_bytes = args.flood_bytes;
            }
            _ => {
                plan.sessions = args.churn;
                plan.duration = args.duration * 2;
                plan.concurrency = args.churn_workers.max(1);
            }
        }
        let watch = Watch {
            main: Some(gateway_pid),
            upstream: Some(cluster_pid),
        };
        eprintln!("podgate-agents: {}: direct ...", s.name());
        let d = scenario::run(&plan, direct.clone(), &pods, watch).await;
        eprintln!("podgate-agents: {}: tunnel ...", s.name());
        let a0 = procfs::sample(agent_pid).ok();
        let t0 = Instant::now();
        let g = scenario::run(&plan, tunnel.clone(), &pods, watch).await;
        let agent_cpu = a0
            .zip(procfs::sample(agent_pid).ok())
            .map(|(a, b)| procfs::cpu_percent(&a, &b, t0.elapsed()));
        for (label, r) in [("direct", &d), ("tunnel", &g)] {
            if r.errors > 0 {
                eprintln!(
                    "podgate-agents: {} ({label}): {} errors, first: {:?}",
                    s.name(),
                    r.errors,
                    r.error_samples.first()
                );
            }
        }
        let r = ScenarioReport::new(plan, Some(g), Some(d));
        eprintln!(
            "podgate-agents: {}: tunnel / direct {:?}",
            s.name(),
            r.ratios
        );
        out.push((
            s.name(),
            Compared {
                plan: r.plan,
                gateway: r.gateway,
                direct: r.direct,
                ratios: r.ratios,
                agent_cpu,
            },
        ));
    }
    Ok(out)
}

/// `GET /version` through the gateway to `target`'s cluster: its `gitVersion`.
async fn get_version(target: &Target) -> anyhow::Result<String> {
    use http_body_util::BodyExt as _;
    let tcp = tokio::net::TcpStream::connect(target.addr).await?;
    let tls = target.tls.connect(target.server_name.clone(), tcp).await?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
    let driver = tokio::spawn(conn);
    let req = http::Request::get(format!("{}/version", target.prefix))
        .header(http::header::HOST, &target.authority)
        .header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", target.token),
        )
        .body(http_body_util::Empty::<bytes::Bytes>::new())?;
    let resp = tokio::time::timeout(Duration::from_secs(10), send.send_request(req)).await??;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    driver.abort();
    if !status.is_success() {
        bail!("{status}: {}", String::from_utf8_lossy(&body));
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(v["gitVersion"].as_str().unwrap_or("?").to_string())
}
