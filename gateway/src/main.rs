//! `podgate serve --config FILE`, `podgate check-config --config FILE`, `podgate demo`.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// The gateway in front of two in-process devclusters (dev-east, dev-west).
    Demo {
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// The admin listener: /metrics, /healthz, /readyz, /debug/sessions.
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin_listen: SocketAddr,
        /// Where to write a kubeconfig with contexts dev-east and dev-west.
        #[arg(long, default_value = "target/podgate-demo.kubeconfig")]
        kubeconfig_out: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PODGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // AES-128-GCM first, for the upstream clients too (kube-rs builds them from the default).
    let _ = podgate::tls::provider().install_default();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("podgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Serve { config } => podgate::serve::run(&config).await,
            Command::CheckConfig { config } => podgate::serve::check(&config)
                .await
                .map(|summary| println!("{summary}")),
            Command::Demo {
                listen,
                admin_listen,
                kubeconfig_out,
            } => demo(listen, admin_listen, kubeconfig_out).await,
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

async fn demo(
    listen: SocketAddr,
    admin_listen: SocketAddr,
    kubeconfig_out: PathBuf,
) -> anyhow::Result<()> {
    let limits = podgate_config::LimitsConfig::default();
    podgate::fdlimit::raise_and_report(limits.max_connections, limits.max_sessions);
    let demo = podgate::demo::start(podgate::demo::DemoOptions {
        listen,
        admin_listen: Some(admin_listen),
        kubeconfig_out: Some(kubeconfig_out.clone()),
    })
    .await?;
    let url = demo.gateway.url();
    println!("podgate demo is running at {url}");
    println!(
        "  clusters: {}",
        podgate::demo::CLUSTER_IDS
            .map(|id| format!("{url}/clusters/{id}"))
            .join("  ")
    );
    println!(
        "  token:    {} (user admin; alice: podgate-demo-alice, bob: podgate-demo-bob)",
        podgate::demo::ADMIN_TOKEN
    );
    println!("  kubeconfig: {}", kubeconfig_out.display());
    if let Some(admin) = demo.gateway.admin_addr {
        println!("  admin:    http://{admin}/metrics  /healthz  /readyz  /debug/sessions");
    }
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
    podgate::serve::wait_for_signal().await?;
    demo.shutdown().await;
    Ok(())
}
