//! Assembling a running gateway from its parts: used by `serve`, `demo` and the tests.
//!
//! This is the one place that knows every part; each area is handed only the handles it uses
//! (the router its clusters, identification, pages and sessions; the listener its router; the
//! admin listener what it shows).

use crate::browser::{Browser, Pages};
use crate::edge::admin::Admin;
use crate::edge::listener::{ConnectionLimits, Edge};
use crate::route::Router;
use crate::route::identify::Identify;
use crate::session::limits::{Limits, SessionLimits};
use crate::session::{SessionSettings, Sessions, audit::Audit};
use crate::upstream::Registry;
use podgate_auth::Authenticator;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a shutdown waits for the audit output to take the last lines.
const AUDIT_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

pub struct StartOptions {
    pub listen: SocketAddr,
    /// The public listener's certificate (its expiry is exported as a gauge).
    pub tls: Arc<crate::edge::tls::ReloadingCert>,
    pub clusters: Registry,
    pub authenticator: Arc<dyn Authenticator>,
    /// Browser sessions; `None`: a generated key, no logins (API clients only).
    pub browser: Option<Browser>,
    pub session_limits: SessionLimits,
    pub sessions: SessionSettings,
    pub connections: ConnectionLimits,
    /// Per-session Prometheus series: on, and for how many sessions at once.
    pub session_series: podgate_metrics::SessionSeries,
    pub audit: Audit,
    /// The admin listener (`/metrics`, `/healthz`, `/readyz`, `/debug/sessions`); none when `None`.
    pub admin_listen: Option<SocketAddr>,
    /// Session recording (`Recording::off()`: none).
    pub recording: Arc<crate::recording::Recording>,
    /// Who may see, watch, end and replay others' sessions (default: nobody).
    pub operators: Arc<crate::route::operators::Operators>,
    /// `files.max_upload` and `files.max_download`.
    pub files: crate::files::FileLimits,
    /// `pod_index`: the pod search's per-cluster indexes.
    pub pod_index: podgate_config::PodIndexConfig,
}

impl StartOptions {
    /// The limits and session settings of a config file (defaults when it says nothing).
    pub fn settings_from(
        l: &podgate_config::LimitsConfig,
        s: &podgate_config::SessionsConfig,
    ) -> (SessionLimits, SessionSettings, ConnectionLimits) {
        (
            SessionLimits {
                global: l.max_sessions,
                per_user: l.max_sessions_per_user,
                per_cluster: l.max_sessions_per_cluster,
            },
            SessionSettings::from_config(l, s),
            ConnectionLimits {
                max_connections: l.max_connections,
                header_read_timeout: l.header_read_timeout.get(),
                max_header_bytes: l.max_header_bytes.as_usize(),
            },
        )
    }
}

pub struct Running {
    pub addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub router: Arc<Router>,
    /// Sessions: their limits, live registry, settings; `tasks` owns every session and
    /// connection task.
    pub sessions: Arc<Sessions>,
    server: tokio::task::JoinHandle<()>,
    admin: Option<(Arc<Admin>, tokio::task::JoinHandle<()>, TaskTracker)>,
}

impl Running {
    /// `https://HOST:PORT` of the public listener.
    pub fn url(&self) -> String {
        let host = if self.addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            self.addr.ip().to_string()
        };
        format!("https://{host}:{}", self.addr.port())
    }

    pub fn clusters(&self) -> &Registry {
        &self.router.clusters
    }

    pub fn metrics(&self) -> &podgate_metrics::Metrics {
        &self.router.metrics
    }

    /// Cancelled when the gateway begins to shut down.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.sessions.shutdown
    }

    /// Stops accepting, tells every session why it ends, waits for every task, and only then
    /// closes the admin listener (which answers `/readyz` with 503 all along).
    pub async fn shutdown(self) {
        self.sessions.shutdown.cancel();
        let _ = self.server.await;
        self.sessions.tasks.close();
        self.sessions.tasks.wait().await;
        // The sessions' last lines (their ends) are written before the process exits.
        if !self.sessions.audit.flush(AUDIT_FLUSH).await {
            tracing::warn!(
                "the audit output did not take the last lines within {}s; they may be lost",
                AUDIT_FLUSH.as_secs()
            );
        }
        if let Some((admin, handle, tasks)) = self.admin {
            admin.stop.cancel();
            let _ = handle.await;
            tasks.close();
            tasks.wait().await;
        }
    }
}

pub async fn start(opts: StartOptions) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", opts.listen))
        })?;
    let addr = listener.local_addr()?;
    let admin_listener = match opts.admin_listen {
        Some(a) => Some(tokio::net::TcpListener::bind(a).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {a} (admin): {e}"))
        })?),
        None => None,
    };
    let admin_addr = match &admin_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    let browser = Arc::new(match opts.browser {
        Some(b) => b,
        None => Browser::ephemeral().map_err(std::io::Error::other)?,
    });
    let metrics = podgate_metrics::Metrics::new(
        opts.clusters.list().iter().map(|c| c.id.clone()),
        opts.session_series,
    );
    metrics.set_build_info(env!("CARGO_PKG_VERSION"), env!("PODGATE_REVISION"));
    // The options are the loaded config: `podgate_config_last_reload_success_timestamp_seconds`
    // counts from here.
    metrics.config_loaded();
    metrics.set_certificate_expiry(
        podgate_metrics::CertificateUse::Serving,
        "",
        opts.tls.not_after(),
    );
    opts.audit.count_in(&metrics);
    if let Err(e) = opts.clusters.probe_metrics().register(metrics.registry()) {
        tracing::warn!("health probe metrics are not exported: {e}");
    }
    if let Err(e) = opts.recording.metrics().register(metrics.registry()) {
        tracing::warn!("recording metrics are not exported: {e}");
    }
    let file_metrics = podgate_metrics::FileMetrics::new();
    if let Err(e) = file_metrics.register(metrics.registry()) {
        tracing::warn!("file transfer metrics are not exported: {e}");
    }
    let resume = podgate_metrics::ResumeMetrics::new();
    if let Err(e) = resume.register(metrics.registry()) {
        tracing::warn!("resume metrics are not exported: {e}");
    }
    let agent_metrics = podgate_metrics::AgentMetrics::new();
    if let Err(e) = agent_metrics.register(metrics.registry()) {
        tracing::warn!("agent tunnel metrics are not exported: {e}");
    }
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let sessions = Arc::new(Sessions {
        resume: Arc::new(crate::session::resume::store::Resumables::new(
            opts.sessions.resume,
            resume,
        )),
        settings: opts.sessions,
        limits: Limits::new(opts.session_limits),
        metrics: metrics.clone(),
        audit: opts.audit.clone(),
        live: Default::default(),
        shutdown: shutdown.clone(),
        tasks: tasks.clone(),
        recording: opts.recording,
    });
    let pod_index_metrics = podgate_metrics::PodIndexMetrics::new();
    if let Err(e) = pod_index_metrics.register(metrics.registry()) {
        tracing::warn!("pod index metrics are not exported: {e}");
    }
    let pod_index = Arc::new(crate::podindex::PodIndex::new(
        crate::podindex::Settings::from_config(&opts.pod_index),
        opts.clusters.clone(),
        metrics.clone(),
        pod_index_metrics,
        shutdown.child_token(),
        tasks.clone(),
    ));
    let router = Arc::new(Router {
        clusters: opts.clusters.clone(),
        identify: Identify {
            authenticator: opts.authenticator.clone(),
            browser: browser.clone(),
            metrics: metrics.clone(),
            live: sessions.live.clone(),
        },
        pages: Pages {
            browser,
            authenticator: opts.authenticator,
            metrics: metrics.clone(),
            tls: Some(opts.tls.clone()),
        },
        sessions: sessions.clone(),
        metrics: metrics.clone(),
        files: Arc::new(crate::files::Files {
            limits: opts.files,
            metrics: file_metrics,
            upstream_metrics: metrics.clone(),
            audit: opts.audit.clone(),
            tasks: sessions.tasks.clone(),
            shutdown: shutdown.clone(),
            session_limits: sessions.limits.clone(),
        }),
        audit: opts.audit,
        operators: opts.operators,
        pod_index,
        agents: Arc::new(crate::tunnel::accept::Accept {
            clusters: opts.clusters.clone(),
            metrics: agent_metrics,
            shutdown: shutdown.clone(),
            tasks: tasks.clone(),
        }),
    });
    let edge = Arc::new(Edge {
        router: router.clone(),
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
        tasks,
    });
    let server = tokio::spawn(crate::edge::listener::serve(
        edge,
        listener,
        crate::edge::tls::server_config(opts.tls),
        opts.connections,
    ));
    let admin = admin_listener.map(|l| {
        let admin = Arc::new(Admin {
            metrics,
            clusters: opts.clusters,
            live: sessions.live.clone(),
            draining: shutdown.clone(),
            stop: CancellationToken::new(),
        });
        let tasks = TaskTracker::new();
        let handle = tokio::spawn(crate::edge::admin::serve(admin.clone(), l, tasks.clone()));
        (admin, handle, tasks)
    });
    Ok(Running {
        addr,
        admin_addr,
        router,
        sessions,
        server,
        admin,
    })
}
