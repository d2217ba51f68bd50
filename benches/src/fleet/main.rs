//! `podgate-fleet`: one podgate replica in front of a fleet of cluster ids (the fleet-scale
//! issue's figures). Starts devclusters (each its own CA) and `podgate serve` with 1 and then
//! N clusters over their kubeconfigs, and reports RSS per idle cluster, open upstream
//! connections at rest, health CPU at rest, probe rate, time to all up, reload latency and
//! whether requests to other clusters paused, request latency to the first and last id; then,
//! in this process, where each cluster's heap goes (dhat) and the cost of a lookup against
//! the number of clusters. `--podgate` may name any build (the one before the fleet work, to
//! compare). See BENCHMARKS.md.

mod heap;
mod serve;

use anyhow::Context as _;
use clap::Parser;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[derive(Parser)]
#[command(version)]
struct Args {
    /// Cluster ids registered (the quick profile of `make bench`: 1,000; `make bench-full`:
    /// 10,000).
    #[arg(long, default_value_t = 1000)]
    clusters: usize,
    /// Devclusters behind them, each with its own CA.
    #[arg(long, default_value_t = 4)]
    devclusters: usize,
    /// How long to watch the gateway at rest once every cluster is up.
    #[arg(long, value_parser = duration, default_value = "30s")]
    rest: Duration,
    /// How long at least to wait once every cluster is up before the rest window. It also
    /// waits until one probe interval (`podgate_cluster_probe_interval_seconds`: 333 s for
    /// 10,000 clusters at the defaults) has passed since start: the second round of probes
    /// spreads over the interval after that, so steady state starts then.
    #[arg(long, value_parser = duration, default_value = "0s")]
    settle: Duration,
    /// Clusters built in this process for the heap breakdown (dhat is slow).
    #[arg(long, default_value_t = 1000)]
    heap_clusters: usize,
    /// The podgate binary (default: next to this one).
    #[arg(long)]
    podgate: Option<PathBuf>,
    /// The devcluster binary (default: next to this one).
    #[arg(long)]
    devcluster: Option<PathBuf>,
    /// Skip the in-process heap breakdown and lookup timing (for an older podgate).
    #[arg(long)]
    no_heap: bool,
    #[arg(long, default_value = "target/bench/fleet")]
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
    podgate_benches::procfs::raise_nofile_limit();
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
    let dcs = serve::devclusters(&devcluster, &dir, args.devclusters).await?;
    let kubeconfigs: Vec<PathBuf> = dcs.iter().map(|(_, k)| k.clone()).collect();
    let ports: HashSet<u16> = dcs
        .iter()
        .filter_map(|(p, _)| p.url.rsplit(':').next()?.trim_end_matches('/').parse().ok())
        .collect();
    let ca_pem = serve::gateway_files(&dir)?;
    let fleet = serve::Fleet {
        podgate: &podgate,
        dir: &dir,
        kubeconfigs: &kubeconfigs,
        ports,
        ca_pem: &ca_pem,
    };
    eprintln!(
        "podgate-fleet: {} with 1, then {} clusters",
        podgate.display(),
        args.clusters
    );
    let one = fleet
        .measure(1, Duration::ZERO, Duration::from_secs(5), false)
        .await?;
    let many = fleet
        .measure(args.clusters, args.settle, args.rest, true)
        .await?;
    let per_cluster =
        (many.rss_bytes as f64 - one.rss_bytes as f64) / (args.clusters - 1).max(1) as f64;

    let (breakdown, lookups) = if args.no_heap {
        (None, Vec::new())
    } else {
        let lookups = heap::lookups(&kubeconfigs, &[10, 100, 1000, 10_000]).await?;
        let _profiler = dhat::Profiler::builder()
            .file_name(dir.join("dhat-heap.json"))
            .trim_backtraces(Some(4))
            .build();
        (
            Some(heap::breakdown(&kubeconfigs, args.heap_clusters).await?),
            lookups,
        )
    };

    let kib = |b: f64| b / 1024.0;
    println!("podgate-fleet: {}", podgate.display());
    println!("  clusters                      {:>10}", many.clusters);
    println!(
        "  time to all up                {:>10.2} s",
        many.all_up_seconds
    );
    println!(
        "  RSS with 1 / with N           {:>10.1} / {:.1} MiB",
        one.rss_bytes as f64 / 1048576.0,
        many.rss_bytes as f64 / 1048576.0
    );
    println!(
        "  RSS per idle cluster          {:>10.1} KiB",
        kib(per_cluster)
    );
    println!(
        "  upstream fds at rest          {:>10} max, {:.1} mean (all fds {})",
        many.fds_upstream_max, many.fds_upstream_mean, many.fds_total
    );
    println!(
        "  CPU at rest                   {:>10.2} % of a core over {:.0} s",
        many.cpu_percent_at_rest, many.rest_seconds
    );
    match many.probes_per_second {
        Some(r) => println!("  probe rate                    {r:>10.1} /s"),
        None => println!("  probe rate                    (not exported)"),
    }
    println!(
        "  GET /version first / last id  {:>10.0} / {:.0} µs (median)",
        many.lookup_first_us, many.lookup_last_us
    );
    if let Some(r) = &many.reload {
        println!(
            "  reload (file to logged)       {:>10.2} s: {}",
            r.seconds, r.line
        );
        println!(
            "  others during reload          {:>10.1} ms slowest (median before {:.1} ms)",
            r.during_max_ms, r.before_median_ms
        );
    }
    for l in &lookups {
        println!(
            "  Registry::get, {:>6} ids     {:>10.1} ns random id, {:.1} ns warm (16 ids)",
            l.clusters, l.ns_per_lookup, l.ns_per_lookup_warm
        );
    }
    if let Some(b) = &breakdown {
        println!(
            "  heap per cluster ({} built in-process, dhat):",
            b.clusters
        );
        println!(
            "    registry entry               {:>8.1} KiB",
            kib(b.registry_per_cluster)
        );
        println!(
            "    ... after one probe          {:>8.1} KiB",
            kib(b.probed_per_cluster)
        );
        println!(
            "    metrics series               {:>8.1} KiB",
            kib(b.metrics_per_cluster)
        );
        println!(
            "    before: kube::Client         {:>8.1} KiB",
            kib(b.old_kube_client_per_cluster)
        );
        println!(
            "    before: own TLS config       {:>8.1} KiB",
            kib(b.old_tls_config_per_cluster)
        );
        println!(
            "    shared TLS configs           {:>8}",
            b.shared_tls_configs
        );
    }
    if let Some(out) = &args.out {
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let json = serde_json::json!({
            "podgate": podgate.display().to_string(),
            "one": one,
            "fleet": many,
            "rss_per_idle_cluster_bytes": per_cluster,
            "lookups": lookups,
            "heap": breakdown,
        });
        std::fs::write(out, serde_json::to_string_pretty(&json)?)?;
        eprintln!("podgate-fleet: wrote {}", out.display());
    }
    Ok(())
}
