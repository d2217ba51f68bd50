//! Assembling a running gateway from its parts: used by `serve`, `demo` and the tests.

use crate::clusters::Registry;
use crate::gateway::{Gateway, SessionSettings};
use crate::limits::{Limits, SessionLimits};
use crate::server::ConnectionLimits;
use podgate_auth::Authenticator;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub struct StartOptions {
    pub listen: SocketAddr,
    pub tls: Arc<rustls::ServerConfig>,
    pub clusters: Registry,
    pub authenticator: Arc<dyn Authenticator>,
    /// Browser sessions; `None`: a generated key, no logins (API clients only).
    pub browser: Option<crate::browser::Browser>,
    pub session_limits: SessionLimits,
    pub sessions: SessionSettings,
    pub connections: ConnectionLimits,
    /// Per-session Prometheus series: on, and for how many sessions at once.
    pub session_series: podgate_metrics::SessionSeries,
    pub audit: crate::audit::Audit,
    /// The admin listener (`/metrics`, `/healthz`, `/readyz`, `/debug/sessions`); none when `None`.
    pub admin_listen: Option<SocketAddr>,
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
            SessionSettings {
                keepalive: s.keepalive.get(),
                idle_timeout: s.idle_timeout.enabled(),
                max_duration: s.max_duration.enabled(),
                max_message: l.max_message_bytes.as_usize(),
            },
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
    pub gateway: Arc<Gateway>,
    server: tokio::task::JoinHandle<()>,
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

    /// Stops accepting, tells every session why it ends, and waits for all tasks.
    pub async fn shutdown(self) {
        self.gateway.shutdown.cancel();
        let _ = self.server.await;
        self.gateway.tasks.close();
        self.gateway.tasks.wait().await;
    }
}

pub async fn start(opts: StartOptions) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", opts.listen))
        })?;
    let addr = listener.local_addr()?;
    let admin = match opts.admin_listen {
        Some(a) => Some(tokio::net::TcpListener::bind(a).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {a} (admin): {e}"))
        })?),
        None => None,
    };
    let admin_addr = match &admin {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    let browser = match opts.browser {
        Some(b) => b,
        None => crate::browser::Browser::ephemeral().map_err(std::io::Error::other)?,
    };
    let metrics = podgate_metrics::Metrics::new(
        opts.clusters.list().iter().map(|c| c.id.clone()),
        opts.session_series,
    );
    let gateway = Arc::new(Gateway {
        clusters: opts.clusters,
        authenticator: opts.authenticator,
        browser: Arc::new(browser),
        limits: Limits::new(opts.session_limits),
        metrics,
        audit: opts.audit,
        sessions_live: Default::default(),
        sessions: opts.sessions,
        shutdown: CancellationToken::new(),
        tasks: TaskTracker::new(),
    });
    let server = tokio::spawn(crate::server::serve(
        gateway.clone(),
        listener,
        opts.tls,
        opts.connections,
    ));
    if let Some(l) = admin {
        gateway.tasks.spawn(crate::admin::serve(gateway.clone(), l));
    }
    Ok(Running {
        addr,
        admin_addr,
        gateway,
        server,
    })
}
