//! `devcluster [--config FILE] [--listen ADDR] [--state-dir DIR] [--kubeconfig-out PATH]`

use clap::Parser;
use podgate_devcluster::{DevCluster, Options, Topology};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A small Kubernetes API server that speaks the real exec/attach protocols.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Topology YAML (namespaces, pods, users, rules); the built-in one when absent.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where containers' working directories live (default: a temporary directory).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Write a kubeconfig for this cluster here (one context per user, admin current).
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DEVCLUSTER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    podgate_devcluster::install_crypto_provider();
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("devcluster: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let topology = match &args.config {
        Some(p) => Topology::load(p)?,
        None => Topology::builtin(),
    };
    let cluster = DevCluster::start(Options {
        topology,
        listen: args.listen,
        state_dir: args.state_dir,
        ..Options::default()
    })
    .await?;
    if let Some(path) = &args.kubeconfig_out {
        cluster
            .kubeconfig()
            .write(path)
            .map_err(|e| format!("cannot write the kubeconfig {}: {e}", path.display()))?;
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", cluster.url())?;
        out.flush()?;
    }
    wait_for_signal().await?;
    cluster.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
