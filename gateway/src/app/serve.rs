//! `podgate serve` and `podgate check-config`: the gateway from a config file, reloaded on
//! SIGHUP or when the file changes, without touching sessions on unchanged clusters.

use crate::app::StartOptions;
use crate::clusters::{Registry, spawn_health_checks};
use podgate_auth::{Authenticator, Chain, StaticTokens};
use podgate_metrics::ReloadResult;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often the config and certificate files are checked for changes.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// Validates a config file and everything it names; returns a one-line summary.
pub async fn check(path: &Path) -> anyhow::Result<String> {
    let config = podgate_config::load(path)?;
    crate::tls::ReloadingCert::load(&config.tls.cert_file, &config.tls.key_file)?;
    let tokens = match &config.auth.tokens_file {
        Some(f) => podgate_config::load_tokens(f)?.len(),
        None => 0,
    };
    // Also reads the browser login's client secret file, so a missing one shows here.
    let issuers = oidc(path, &config)?.map_or(0, |(o, _)| o.issuers().len());
    // Build each cluster as `serve` would (kubeconfig, context, client); the in-cluster
    // service account exists only inside a pod, so those are left to `serve`.
    for c in config.clusters.iter().filter(|c| !c.in_cluster) {
        crate::clusters::Cluster::from_config(c, &config.upstream).await?;
    }
    Ok(format!(
        "{}: ok ({} clusters, {} static tokens, {} OIDC issuers, listening on {})",
        path.display(),
        config.clusters.len(),
        tokens,
        issuers,
        config.listen
    ))
}

/// The authenticator to serve with, the static-token table a reload refreshes, and the
/// browser login at the OIDC issuer when configured.
type Authn = (
    Arc<dyn Authenticator>,
    Option<Arc<StaticTokens>>,
    Option<crate::browser::oidc::OidcLogin>,
);

/// Static tokens first (break-glass access keeps working when the identity provider is
/// down), then OIDC.
fn authenticator(path: &Path, config: &podgate_config::Config) -> anyhow::Result<Authn> {
    let mut chain: Vec<Arc<dyn Authenticator>> = Vec::new();
    let tokens = match &config.auth.tokens_file {
        Some(f) => {
            let t = Arc::new(StaticTokens::load(f)?);
            chain.push(t.clone());
            Some(t)
        }
        None => None,
    };
    let mut login = None;
    if let Some((oidc, browser_login)) = oidc(path, config)? {
        login = browser_login;
        let oidc = Arc::new(oidc);
        let warm = oidc.clone();
        tokio::spawn(async move {
            if let Err(e) = warm.warm_up().await {
                tracing::warn!(
                    "OIDC issuer not reachable yet (tokens will be retried on use):\n{e}"
                );
            }
        });
        chain.push(oidc);
    }
    if chain.is_empty() {
        tracing::warn!(
            "no authenticator is configured (auth.tokens_file, auth.oidc): every request will be refused with 401"
        );
    }
    Ok((Arc::new(Chain::new(chain)), tokens, login))
}

/// The `auth.oidc` section, checked by the auth crate, and its browser login (`login`);
/// errors name the file and the field.
fn oidc(
    path: &Path,
    config: &podgate_config::Config,
) -> anyhow::Result<
    Option<(
        podgate_auth::OidcAuthenticator,
        Option<crate::browser::oidc::OidcLogin>,
    )>,
> {
    let Some(section) = &config.auth.oidc else {
        return Ok(None);
    };
    let file = path.display();
    let mut oidc: podgate_auth::OidcConfig = serde_norway::from_value(section.clone())
        .map_err(|e| anyhow::anyhow!("{file}: auth.oidc: {e}"))?;
    let base = path.parent().unwrap_or(Path::new("."));
    for issuer in &mut oidc.issuers {
        if let Some(ca) = &mut issuer.ca_file
            && ca.is_relative()
        {
            *ca = base.join(&*ca);
        }
    }
    if let Some(login) = &mut oidc.login {
        login.resolve_paths(base);
    }
    let problems = |e: podgate_auth::oidc::InvalidConfig| {
        let lines: Vec<String> =
            e.0.iter()
                .map(|p| format!("{file}: auth.oidc.{}: {}", p.field, p.message))
                .collect();
        anyhow::anyhow!("{}", lines.join("\n"))
    };
    let authn = podgate_auth::OidcAuthenticator::new(&oidc).map_err(problems)?;
    let login = crate::browser::oidc::OidcLogin::from_config(&oidc, &authn).map_err(problems)?;
    Ok(Some((authn, login)))
}

pub async fn run(path: &Path) -> anyhow::Result<()> {
    let config = podgate_config::load(path)?;
    crate::fdlimit::raise_and_report(config.limits.max_connections, config.limits.max_sessions);
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
    let cert = Arc::new(crate::tls::ReloadingCert::load(
        &config.tls.cert_file,
        &config.tls.key_file,
    )?);
    let (authn, static_tokens, login) = authenticator(path, &config)?;
    let mut browser = crate::browser::Browser::from_config(&config.auth.session)?;
    if login.is_some() {
        tracing::info!("browser login with OIDC at /auth/login");
    }
    browser.oidc = login;
    let (session_limits, sessions, connections) =
        StartOptions::settings_from(&config.limits, &config.sessions);
    let running = crate::app::start(StartOptions {
        listen: config.listen,
        tls: crate::tls::server_config(cert.clone()),
        clusters: registry.clone(),
        authenticator: authn,
        browser: Some(browser),
        session_limits,
        sessions,
        connections,
        session_series: series(&config),
        audit: crate::audit::Audit::open(&config.audit.output)?,
        admin_listen: Some(config.admin.listen),
    })
    .await?;
    if let Some(admin) = running.admin_addr {
        tracing::info!(%admin, "admin listener: /metrics /healthz /readyz /debug/sessions");
    }
    let shutdown = running.gateway.shutdown.clone();
    crate::tls::spawn_watcher(cert, WATCH_EVERY, shutdown.clone());
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

    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    let mut watch = tokio::time::interval(WATCH_EVERY);
    let mut stamp = modified(path);
    let stop = wait_for_signal();
    tokio::pin!(stop);
    loop {
        let reason = tokio::select! {
            r = &mut stop => { r?; break; }
            _ = hup.recv() => "SIGHUP",
            _ = watch.tick() => {
                let now = modified(path);
                if now == stamp { continue; }
                stamp = now;
                "the file changed"
            }
        };
        let ok = reload(
            path,
            reason,
            &registry,
            static_tokens.as_deref(),
            &running.gateway.metrics,
        )
        .await;
        running.gateway.metrics.config_reload(if ok {
            ReloadResult::Success
        } else {
            ReloadResult::Failure
        });
    }
    tracing::info!("shutting down: sessions are told why and closed");
    running.shutdown().await;
    Ok(())
}

/// Applies the file again; returns whether everything in it took effect.
async fn reload(
    path: &Path,
    reason: &str,
    registry: &Registry,
    tokens: Option<&StaticTokens>,
    metrics: &podgate_metrics::Metrics,
) -> bool {
    let config = match podgate_config::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("config reload ({reason}) refused, keeping the running config:\n{e}");
            return false;
        }
    };
    let mut ok = true;
    let s = registry
        .apply(config.clusters.clone(), &config.upstream)
        .await;
    for e in &s.failed {
        tracing::error!("config reload: {e}");
        ok = false;
    }
    metrics.set_clusters(registry.list().iter().map(|c| c.id.clone()));
    metrics.set_session_series(series(&config));
    if let (Some(t), Some(f)) = (tokens, &config.auth.tokens_file)
        && let Err(e) = t.reload_file(f)
    {
        tracing::error!("config reload: tokens file: {e}");
        ok = false;
    }
    tracing::info!(added = ?s.added, removed = ?s.removed, changed = ?s.changed, "config reloaded ({reason})");
    ok
}

fn series(config: &podgate_config::Config) -> podgate_metrics::SessionSeries {
    podgate_metrics::SessionSeries {
        enabled: config.metrics.session_series,
        max_sessions: config.metrics.max_session_series,
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Resolves on SIGINT or SIGTERM.
pub async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
