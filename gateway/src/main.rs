//! `podgate serve --config FILE`, `podgate check-config --config FILE`, `podgate agent ...`,
//! `podgate demo`.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

mod idle_cache;

/// jemalloc with its background purging thread rather than glibc's malloc: freed memory goes
/// back to the kernel within seconds (dirty pages decay after 10 s), where glibc keeps a
/// peak's arenas for the life of the process: after 2,000 idle shells closed, RSS stayed at
/// 92 MiB with glibc and came down to 26 MiB with this, at the same CPU per session and per
/// byte (BENCHMARKS.md, "Memory after load"); idle workers hand their thread caches back
/// ([`idle_cache`]). Only the binary: tests and benches that run the gateway in-process keep
/// the system allocator.
#[cfg(not(feature = "dhat-heap"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `--features dhat-heap`: every allocation counted by dhat, for a heap profile.
#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

#[derive(Parser)]
#[command(
    version,
    about = "A gateway to shells in Kubernetes pods on many clusters"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate a config file (and the files it names) and exit.
    CheckConfig {
        #[arg(long)]
        config: PathBuf,
    },
    /// Run in a cluster the gateway cannot reach: dial out to the gateway and serve its
    /// requests for this cluster through the tunnel (outbound connections only).
    Agent(podgate::agent::Options),
    /// The gateway in front of two in-process devclusters (dev-east, dev-west).
    Demo {
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// The admin listener: /metrics, /healthz, /readyz, /debug/sessions.
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin_listen: SocketAddr,
        /// Where to write a kubeconfig with contexts dev-east and dev-west (the gateway's CA
        /// certificate goes next to it, as NAME.ca.crt).
        #[arg(long, default_value = "target/podgate-demo.kubeconfig")]
        kubeconfig_out: PathBuf,
        /// Where audit lines go (one JSON object per line, appended).
        #[arg(long, default_value = "target/podgate-demo.audit.jsonl")]
        audit_out: PathBuf,
        /// Where sessions are recorded (asciicast files, by day and cluster).
        #[arg(long, default_value = "target/podgate-demo-recordings")]
        recordings: PathBuf,
    },
}

fn main() -> ExitCode {
    // Written when main returns (a clean stop: SIGTERM, Ctrl+C).
    #[cfg(feature = "dhat-heap")]
    let _profiler = dhat::Profiler::new_heap();
    // The config names the log format, so `serve` reads it before logging starts; its errors
    // go to standard error as they are.
    let cli = Cli::parse();
    let serve_config = match &cli.command {
        Command::Serve { config } => match podgate::app::config::load(config) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("podgate: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    podgate::app::logging::init(
        serve_config
            .as_ref()
            .map_or(podgate_config::LogFormat::Text, |l| l.config.log.format),
    );
    // AES-128-GCM first, for the upstream clients too (kube-rs builds them from the default).
    let _ = podgate::edge::tls::provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(idle_cache::on_park)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("podgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match (cli.command, serve_config) {
            (Command::Serve { config: path }, Some(config)) => {
                podgate::app::serve::run(&path, config).await
            }
            (Command::Serve { .. }, None) => unreachable_config(),
            (Command::Agent(options), _) => agent(options).await,
            (Command::CheckConfig { config }, _) => podgate::app::check::check(&config)
                .await
                .map(|summary| println!("{summary}")),
            (
                Command::Demo {
                    listen,
                    admin_listen,
                    kubeconfig_out,
                    audit_out,
                    recordings,
                },
                _,
            ) => demo(listen, admin_listen, kubeconfig_out, audit_out, recordings).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("podgate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `podgate agent` until SIGTERM or Ctrl+C.
async fn agent(options: podgate::agent::Options) -> anyhow::Result<()> {
    let mut signals = podgate::app::serve::StopSignals::new()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let run = podgate::agent::run(options, stop.clone());
    let mut run = std::pin::pin!(run);
    tokio::select! {
        r = &mut run => return Ok(r?),
        () = signals.recv() => stop.cancel(),
    }
    Ok(run.await?)
}

/// `serve` always has its config by here; kept total without a panic.
fn unreachable_config() -> anyhow::Result<()> {
    anyhow::bail!("internal error: the config was not loaded")
}

#[cfg(not(feature = "demo"))]
async fn demo(
    _: SocketAddr,
    _: SocketAddr,
    _: PathBuf,
    _: PathBuf,
    _: PathBuf,
) -> anyhow::Result<()> {
    anyhow::bail!(
        "this podgate was built without the demo (the `demo` cargo feature, on by default; \
         release images leave it off): run `make demo` from a source checkout, or build with \
         `cargo build -p podgate --features demo`"
    )
}

#[cfg(feature = "demo")]
async fn demo(
    listen: SocketAddr,
    admin_listen: SocketAddr,
    kubeconfig_out: PathBuf,
    audit_out: PathBuf,
    recordings: PathBuf,
) -> anyhow::Result<()> {
    use podgate::app::demo;
    let mut stop = podgate::app::serve::StopSignals::new()?;
    let limits = demo::limits();
    podgate::edge::fdlimit::raise_and_report(limits.max_connections, limits.max_sessions);
    let demo = demo::start(demo::DemoOptions {
        listen,
        admin_listen: Some(admin_listen),
        kubeconfig_out: Some(kubeconfig_out.clone()),
        audit_out: Some(audit_out.clone()),
        recordings: Some(recordings.clone()),
    })
    .await?;
    let url = demo.gateway.url();
    println!("podgate demo is running at {url}");
    println!(
        "  clusters: {}",
        demo::CLUSTER_IDS
            .map(|id| format!("{url}/clusters/{id}"))
            .join("  ")
    );
    println!(
        "  token:    {} (user admin; alice: podgate-demo-alice, bob: podgate-demo-bob)",
        demo::ADMIN_TOKEN
    );
    println!("  kubeconfig: {}", kubeconfig_out.display());
    println!(
        "  CA:       {} (the gateway's certificate authority)",
        demo::ca_path(&kubeconfig_out).display()
    );
    println!(
        "  audit:    {} (one JSON line per session and change)",
        audit_out.display()
    );
    println!(
        "  recordings: {} (every session; admin may watch, end and replay them in the web UI)",
        recordings.display()
    );
    if let Some(admin) = demo.gateway.admin_addr {
        println!("  admin:    http://{admin}/metrics  /healthz  /readyz  /debug/sessions");
    }
    println!("  pods:     processes on this machine, run as you (loopback only)");
    println!();
    println!("try:");
    println!(
        "  kubectl --kubeconfig {} --context dev-west exec -it -n default shell-0 -- sh",
        kubeconfig_out.display()
    );
    println!(
        "  kubectl --kubeconfig {} --context dev-east get pods -A",
        kubeconfig_out.display()
    );
    println!();
    println!("Ctrl-C stops it.");
    stop.recv().await;
    demo.shutdown().await;
    Ok(())
}
