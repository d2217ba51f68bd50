//! `podgate-load --scenario idle|interactive|throughput|churn|soak [targets] [sizes] --out FILE`

use anyhow::{Context as _, bail};
use clap::Parser;
use podgate_benches::report::{self, Machine, Summary};
use podgate_benches::run::{self, Profile, Setup};
use podgate_benches::scenario::{Pods, Scenario};
use podgate_benches::spawn;
use podgate_benches::target::{Kubeconfig, SourceAddrs, Target, TlsOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Load generator for many concurrent shells, through podgate and directly, side by side.
///
/// Each scenario runs against `--direct` and then `--gateway` in the same run; the JSON
/// (`--out`) holds both and their ratios. With `--spawn` it starts a devcluster and a podgate
/// in front of it by itself (what `make bench` does). Load only ever goes to loopback.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Scenarios to run, comma-separated or repeated (default: all, in the order below).
    #[arg(long, value_enum, value_delimiter = ',')]
    scenario: Vec<Scenario>,
    /// Default sizes: quick (`make bench`, minutes) or full (`make bench-full`, the targets'
    /// sizes). The options below override them.
    #[arg(long, value_enum, default_value = "quick")]
    profile: Profile,

    /// podgate's base URL, e.g. https://127.0.0.1:8443.
    #[arg(long, requires_all = ["cluster", "token", "gateway_ca"])]
    gateway: Option<String>,
    /// Cluster id on podgate (URLs /clusters/{ID}/...).
    #[arg(long)]
    cluster: Option<String>,
    /// Bearer token for podgate.
    #[arg(long)]
    token: Option<String>,
    /// PEM file of the CA that signed podgate's certificate.
    #[arg(long)]
    gateway_ca: Option<PathBuf>,
    /// podgate's process id, to measure it from /proc and leak-check it.
    #[arg(long)]
    gateway_pid: Option<u32>,
    /// Kubeconfig of the cluster to use directly (the one behind podgate).
    #[arg(long)]
    direct: Option<PathBuf>,
    /// Context in --direct (default: its current-context).
    #[arg(long)]
    direct_context: Option<String>,
    /// The cluster's process id, to measure it from /proc.
    #[arg(long)]
    direct_pid: Option<u32>,
    /// Start a devcluster and `podgate serve` in front of it (binaries from --bin-dir) and
    /// use both as targets.
    #[arg(long, conflicts_with_all = ["gateway", "direct"])]
    spawn: bool,
    /// Where the `podgate` and `devcluster` binaries are (default: next to this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Files and logs of --spawn.
    #[arg(long, default_value = "target/bench/run")]
    work_dir: PathBuf,
    /// With --spawn: podgate records every session (off, best_effort, required), to measure
    /// what recording costs against the same run's direct path.
    #[arg(long, default_value = "off", requires = "spawn", value_parser = ["off", "best_effort", "required"])]
    recording: String,

    /// Namespace of the pods.
    #[arg(long, default_value = "load")]
    namespace: String,
    /// Pod for idle, interactive and churn (a stdin-to-stdout echo).
    #[arg(long, default_value = "echo-0")]
    pod: String,
    /// Pod for throughput (writes as many bytes as its command's first number).
    #[arg(long, default_value = "flood-0")]
    flood_pod: String,
    /// Container in both pods (default: the pod's default container).
    #[arg(long)]
    container: Option<String>,

    /// Sessions held (idle, interactive, throughput) or opened in all (churn).
    #[arg(long)]
    sessions: Option<usize>,
    /// Hold (idle), typing (interactive), mix (soak) duration; churn's time bound.
    #[arg(long, value_parser = duration)]
    duration: Option<Duration>,
    /// Between two keystrokes of one interactive session.
    #[arg(long, value_parser = duration)]
    interval: Option<Duration>,
    /// Bytes read by each throughput session.
    #[arg(long)]
    flood_bytes: Option<u64>,
    /// Churn workers, and session setups in flight while ramping up.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Churn: open sessions at this many per second (open loop) instead of as fast as
    /// --concurrency workers go; setup latency then shows what a person waits at that rate.
    #[arg(long)]
    rate: Option<f64>,
    /// Soak: flood sessions (each read at 20 MB/s) in the mix.
    #[arg(long)]
    soak_floods: Option<usize>,
    /// Soak: sessions opened and closed per second in the mix.
    #[arg(long)]
    soak_churn_rate: Option<f64>,
    /// How long the leak check waits for podgate's fds and threads to return to baseline.
    #[arg(long, value_parser = duration, default_value = "15s")]
    leak_timeout: Duration,
    /// The whole run stops (and fails) after this, whatever it is doing.
    #[arg(long, value_parser = duration)]
    time_limit: Option<Duration>,
    /// Client source addresses used, from 127.1.0.1 up.
    #[arg(long, default_value_t = 1024)]
    source_addrs: usize,
    /// Let clients resume TLS sessions (kubectl cannot: each exec is a new process).
    #[arg(long)]
    tls_resumption: bool,

    /// Write the JSON results here.
    #[arg(long)]
    out: Option<PathBuf>,
}

use podgate_benches::launch::duration;

fn main() -> ExitCode {
    let args = Args::parse();
    podgate_devcluster::install_crypto_provider();
    let nofile = podgate_benches::procfs::raise_nofile_limit();
    // Sized explicitly, so TOKIO_WORKER_THREADS set for the spawned podgate does not apply here.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("podgate-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(main_async(args, nofile)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("podgate-load: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn main_async(args: Args, nofile: u64) -> anyhow::Result<bool> {
    let started = Instant::now();
    let tls = TlsOptions {
        resumption: args.tls_resumption,
    };
    let sources = Arc::new(SourceAddrs::new(args.source_addrs));
    let pods = Pods {
        namespace: args.namespace.clone(),
        echo_pod: args.pod.clone(),
        flood_pod: args.flood_pod.clone(),
        container: args.container.clone(),
    };

    let mut spawned = None;
    let mut reference = None;
    let (gateway, direct, gateway_pid, cluster_pid, gateway_url, direct_url) = if args.spawn {
        let bin_dir = match &args.bin_dir {
            Some(d) => d.clone(),
            None => std::env::current_exe()?
                .parent()
                .context("no directory for this executable")?
                .to_path_buf(),
        };
        let s = spawn::start(&bin_dir, &args.work_dir, &args.recording).await?;
        eprintln!(
            "podgate-load: devcluster pid {}, podgate pid {} at {} (logs in {})",
            s.devcluster.pid(),
            s.gateway.pid(),
            s.gateway_url,
            s.work_dir.display()
        );
        let kc = Kubeconfig::load(&s.kubeconfig, Some("admin"))?;
        let g = Target::gateway(
            &s.gateway_url,
            spawn::CLUSTER_ID,
            spawn::TOKEN,
            &s.gateway_ca_pem,
            tls,
            sources.clone(),
        )
        .await?;
        let d = Target::direct(&kc, tls, sources.clone()).await?;
        reference = Some((
            Target::relay(&s.relay_url, &s.gateway_ca_pem, &kc, tls, sources.clone()).await?,
            s.relay.pid(),
        ));
        let ids = (Some(s.gateway.pid()), Some(s.devcluster.pid()));
        let urls = (Some(s.gateway_url.clone()), Some(kc.server.clone()));
        spawned = Some(s);
        (Some(g), Some(d), ids.0, ids.1, urls.0, urls.1)
    } else {
        let g = match &args.gateway {
            Some(url) => {
                let ca_path = args
                    .gateway_ca
                    .as_ref()
                    .context("--gateway-ca is required")?;
                let ca = std::fs::read_to_string(ca_path)
                    .with_context(|| format!("cannot read {}", ca_path.display()))?;
                Some(
                    Target::gateway(
                        url,
                        args.cluster.as_deref().context("--cluster is required")?,
                        args.token.as_deref().context("--token is required")?,
                        &ca,
                        tls,
                        sources.clone(),
                    )
                    .await?,
                )
            }
            None => None,
        };
        let (d, durl) = match &args.direct {
            Some(path) => {
                let kc = Kubeconfig::load(path, args.direct_context.as_deref())?;
                let server = kc.server.clone();
                (
                    Some(Target::direct(&kc, tls, sources.clone()).await?),
                    Some(server),
                )
            }
            None => (None, None),
        };
        if g.is_none() && d.is_none() {
            bail!(
                "nothing to load: give --gateway URL --cluster ID --token T --gateway-ca FILE, and/or --direct KUBECONFIG, or --spawn"
            );
        }
        if g.is_some() && args.gateway_pid.is_none() {
            eprintln!(
                "podgate-load: no --gateway-pid: podgate's memory, CPU and leaks are not measured"
            );
        }
        (
            g,
            d,
            args.gateway_pid,
            args.direct_pid,
            args.gateway.clone(),
            durl,
        )
    };

    let (reference, reference_pid) = match reference {
        Some((t, pid)) => (Some(Arc::new(t)), Some(pid)),
        None => (None, None),
    };
    let setup = Setup {
        gateway: gateway.map(Arc::new),
        direct: direct.map(Arc::new),
        reference,
        reference_pid,
        gateway_pid,
        cluster_pid,
        pods,
        leak_timeout: args.leak_timeout,
    };
    let scenarios = if args.scenario.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenario.clone()
    };
    let plans: Vec<_> = scenarios
        .iter()
        .map(|&s| {
            let mut p = args.profile.plan(s);
            if let Some(n) = args.sessions {
                p.sessions = n;
                p.soak.interactive = n;
            }
            if let Some(d) = args.duration {
                p.duration = d;
            }
            if let Some(i) = args.interval {
                p.interval = i;
                p.soak.interval = i;
            }
            if let Some(b) = args.flood_bytes {
                p.flood_bytes = b;
            }
            if let Some(c) = args.concurrency {
                p.concurrency = c.max(1);
            }
            if args.rate.is_some() {
                p.rate = args.rate;
            }
            if let Some(f) = args.soak_floods {
                p.soak.floods = f;
            }
            if let Some(r) = args.soak_churn_rate {
                p.soak.churn_per_s = r;
            }
            p
        })
        .collect();
    let mut plans = plans;
    for (pid, who, per_session) in [
        (setup.gateway_pid, "podgate", 2),
        (setup.cluster_pid, "the cluster", 1),
        (Some(std::process::id()), "podgate-load", 1),
    ] {
        let Some(pid) = pid else { continue };
        let (Some(limit), Ok(now)) = (
            podgate_benches::procfs::nofile_limit(pid),
            podgate_benches::procfs::sample(pid),
        ) else {
            continue;
        };
        for p in &mut plans {
            p.fit_fd_limit(who, limit, now.fds as u64, per_session);
        }
    }
    for p in &plans {
        if let Some(why) = &p.clamped {
            eprintln!("podgate-load: {}: {why}", p.scenario.name());
        }
    }
    let time_limit = args.time_limit.unwrap_or(match args.profile {
        Profile::Quick => Duration::from_secs(15 * 60),
        Profile::Full => Duration::from_secs(2 * 3600),
    });

    let outcome = tokio::time::timeout(time_limit, async {
        run::warm_up(&setup).await?;
        anyhow::Ok(run::run_all(&setup, &plans).await)
    });
    let interrupted = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let result = tokio::select! {
        r = outcome => match r {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!("the run exceeded its time limit of {time_limit:?}")),
        },
        _ = interrupted => Err(anyhow::anyhow!("interrupted")),
    };
    if let Some(s) = spawned {
        // Stop podgate first: it tells its sessions why, then the cluster goes.
        let g = s.gateway.stop(Duration::from_secs(15)).await;
        let r = s.relay.stop(Duration::from_secs(15)).await;
        let d = s.devcluster.stop(Duration::from_secs(15)).await;
        eprintln!("podgate-load: {g}; {r}; {d}");
    }
    let (scenarios, failures) = result?;

    let targets = report::goals(&scenarios);
    let summary = Summary {
        tool: "podgate-load",
        profile: args.profile.name().to_string(),
        machine: Machine::read(nofile),
        gateway_url,
        direct_url,
        passed: failures.is_empty(),
        scenarios,
        targets,
        failures,
        duration_s: started.elapsed().as_secs_f64(),
    };
    println!("{}", report::table(&summary));
    if let Some(out) = &args.out {
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(&summary)?;
        std::fs::write(out, json + "\n")
            .with_context(|| format!("cannot write {}", out.display()))?;
        eprintln!("podgate-load: results in {}", out.display());
    }
    Ok(summary.passed)
}
