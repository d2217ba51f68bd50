//! `podgate serve`: the gateway from a config file, reloaded on SIGHUP or when the file (or
//! the tokens file it names) changes, without touching sessions on unchanged clusters.

use super::StartOptions;
use super::reload::Reloader;
use crate::upstream::{Registry, registry::spawn_health_checks};
use podgate_metrics::CertificateUse;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// How often the config, tokens and certificate files are checked for changes.
const WATCH_EVERY: Duration = Duration::from_secs(2);

pub async fn run(path: &Path, loaded: super::config::Loaded) -> anyhow::Result<()> {
    // Listened for before anything is announced: a signal sent as soon as the address is
    // printed is neither lost nor fatal (SIGHUP's default is to end the process).
    let mut stop = StopSignals::new()?;
    let mut hup = signal(SignalKind::hangup())?;
    // The files as they were read: a change made while starting is seen by the first check.
    let tokens_seen = loaded.config.auth.tokens_file.as_deref().and_then(modified);
    let agents_seen: Vec<_> = super::reload::agent_token_files(&loaded.config)
        .iter()
        .map(|f| modified(f))
        .collect();
    let mut seen = (loaded.modified, tokens_seen, agents_seen);
    let authn = super::authn::from_config(path, &loaded)?;
    let config = loaded.config;
    for ignored in config.ignored_settings() {
        tracing::warn!("{}: {ignored}", path.display());
    }
    crate::edge::fdlimit::raise_and_report(
        config.limits.max_connections,
        config.limits.max_sessions,
    );
    let registry = Registry::new();
    let summary = registry
        .apply(config.clusters.clone(), &config.upstream)
        .await;
    for e in &summary.failed {
        tracing::error!("{e}");
    }
    if !summary.failed.is_empty() {
        anyhow::bail!(
            "{} cluster(s) could not be set up; see the errors above",
            summary.failed.len()
        );
    }
    let cert = Arc::new(crate::edge::tls::ReloadingCert::load(
        &config.tls.cert_file,
        &config.tls.key_file,
    )?);
    let mut browser = crate::browser::Browser::from_config(&config.auth.session)?;
    if authn.login.is_some() {
        tracing::info!("browser login with OIDC at /auth/login");
    }
    // Static tokens and no OIDC login: the web UI offers a token login instead.
    browser.token_login = authn.static_tokens.is_some() && authn.login.is_none();
    if browser.token_login {
        tracing::info!("browser login with a static token at /auth/token");
    }
    browser.oidc = authn.login;
    let (session_limits, sessions, connections) =
        StartOptions::settings_from(&config.limits, &config.sessions);
    let running = super::start(StartOptions {
        listen: config.listen,
        tls: cert.clone(),
        clusters: registry.clone(),
        authenticator: authn.authenticator,
        browser: Some(browser),
        session_limits,
        sessions,
        connections,
        session_series: podgate_metrics::SessionSeries {
            enabled: config.metrics.session_series,
            max_sessions: config.metrics.max_session_series,
        },
        audit: crate::session::audit::Audit::open(&config.audit.output)?,
        admin_listen: Some(config.admin.listen),
        recording: Arc::new(recording(&config).await?),
        operators: Arc::new(crate::route::operators::Operators::new(
            config.operators.clone(),
        )),
        files: crate::files::FileLimits::from_config(&config.files),
        pod_index: config.pod_index.clone(),
    })
    .await?;
    if let Some(admin) = running.admin_addr {
        tracing::info!(%admin, "admin listener: /metrics /healthz /readyz /debug/sessions");
    }
    let shutdown = running.shutdown_token().clone();
    let metrics = running.metrics().clone();
    super::reload::report_client_certificates(&metrics, &registry);
    crate::edge::tls::spawn_watcher(cert, WATCH_EVERY, shutdown.clone(), move |swapped| {
        metrics.set_certificate_expiry(CertificateUse::Serving, "", swapped.not_after());
    });
    spawn_health_checks(
        registry.clone(),
        config.upstream.health_interval.get(),
        config.upstream.health_timeout.get(),
        shutdown.clone(),
    );
    tracing::info!(url = %running.url(), clusters = config.clusters.len(), "podgate is serving");
    // One line on stdout, as the devcluster prints, so scripts and tests learn the address.
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", running.url())?;
        out.flush()?;
    }

    let reloader = Reloader::new(path, config, authn.static_tokens, &running);
    let mut watch = tokio::time::interval(WATCH_EVERY);
    let stamps = || {
        (
            modified(path),
            reloader.tokens_file().and_then(modified),
            reloader
                .agent_token_files()
                .iter()
                .map(|f| modified(f))
                .collect::<Vec<_>>(),
        )
    };
    loop {
        let reason = tokio::select! {
            () = stop.recv() => break,
            _ = hup.recv() => "SIGHUP",
            _ = watch.tick() => {
                let now = stamps();
                if now == seen { continue; }
                seen = now;
                "a file changed"
            }
        };
        reloader.reload(reason).await;
    }
    tracing::info!(
        "shutting down: /readyz answers 503, sessions are told why and closed, requests in flight get {}s",
        crate::edge::listener::DRAIN.as_secs()
    );
    running.shutdown().await;
    tracing::info!("shut down");
    Ok(())
}

/// Recording as the config says. A directory that cannot take a file fails the start when a
/// cluster requires recording (every session there would be refused), and is warned about
/// otherwise.
async fn recording(config: &podgate_config::Config) -> anyhow::Result<crate::recording::Recording> {
    let sink = match &config.recording.dir {
        Some(dir) => {
            let sink = crate::recording::DirSink::new(dir.clone());
            if let Err(e) = sink.check().await {
                let required = config.recording.default == podgate_config::RecordingMode::Required
                    || config
                        .clusters
                        .iter()
                        .any(|c| c.recording == Some(podgate_config::RecordingMode::Required));
                let what = format!(
                    "recording.dir {} cannot take recordings: {e}",
                    dir.display()
                );
                if required {
                    anyhow::bail!(
                        "{what}; sessions of clusters that require recording would all be refused"
                    );
                }
                tracing::warn!("{what}; recordings will fail until it can");
            }
            Some(Arc::new(sink) as Arc<dyn crate::recording::Sink>)
        }
        None => None,
    };
    Ok(crate::recording::Recording::new(
        sink,
        &config.recording,
        &config.clusters,
        crate::recording::replica_name(),
    ))
}

pub fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// SIGINT and SIGTERM, caught from the moment this is made (not from the first poll), so a
/// stop sent right after start-up drains instead of killing the process.
pub struct StopSignals {
    term: Signal,
    int: Signal,
}

impl StopSignals {
    pub fn new() -> std::io::Result<StopSignals> {
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves on the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
