//! `podgate-refrelay --cert F --key F --upstream https://HOST:PORT --upstream-ca F`: the
//! reference relay ([`podgate_benches::relay`]) as a process of its own, so /proc measures it
//! alone, as it does podgate. `podgate-load --spawn` starts it; it prints `listening on URL`.

use anyhow::Context as _;
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;

/// A TLS-terminating byte relay, the floor podgate's relay is measured against.
#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// PEM certificate chain served to clients.
    #[arg(long)]
    cert: PathBuf,
    /// PEM private key of --cert.
    #[arg(long)]
    key: PathBuf,
    /// The cluster, as `https://127.0.0.1:PORT`.
    #[arg(long)]
    upstream: String,
    /// PEM CA the cluster's certificate is checked against.
    #[arg(long)]
    upstream_ca: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let uri: http::Uri = args
        .upstream
        .parse()
        .with_context(|| format!("{:?} is not a URL", args.upstream))?;
    let host = uri.host().context("--upstream has no host")?.to_string();
    let port = uri.port_u16().unwrap_or(443);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async move {
        let upstream = tokio::net::lookup_host((host.as_str(), port))
            .await?
            .next()
            .with_context(|| format!("{host} does not resolve"))?;
        let relay = podgate_benches::relay::Relay::new(
            &read(&args.cert)?,
            &read(&args.key)?,
            upstream,
            &host,
            &read(&args.upstream_ca)?,
        )?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        println!("listening on https://{}", listener.local_addr()?);
        tokio::select! {
            _ = Arc::new(relay).serve(listener) => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated() => {}
        }
        anyhow::Ok(())
    })
}

async fn terminated() {
    if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        s.recv().await;
    }
}
