//! The admin listener: `/metrics`, `/healthz`, `/readyz`, `/debug/sessions`. Plain HTTP on
//! its own address (loopback by default), never on the public listener: none of it is for
//! the people using shells.
//!
//! It outlives the drain: from the moment shutdown begins until the process exits, `/readyz`
//! answers 503 (so probes and load balancers see "draining", not "connection refused") and
//! `/metrics` still shows the sessions ending.

use crate::http::{Body, json, with_type};
use crate::session::registry::LiveSessions;
use crate::upstream::Registry;
use http::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the admin pages show.
pub struct Admin {
    pub metrics: podgate_metrics::Metrics,
    pub clusters: Registry,
    pub live: Arc<LiveSessions>,
    /// Cancelled when the gateway starts draining: `/readyz` says so from then on.
    pub draining: CancellationToken,
    /// Cancelled when the process is about to exit: the listener closes.
    pub stop: CancellationToken,
}

/// Serves until `admin.stop`; every connection task is owned by `tasks`.
pub async fn serve(admin: Arc<Admin>, listener: tokio::net::TcpListener, tasks: TaskTracker) {
    loop {
        let (tcp, _) = tokio::select! {
            _ = admin.stop.cancelled() => return,
            a = listener.accept() => match a {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("admin accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let admin2 = admin.clone();
        tasks.spawn(async move {
            let stop = admin2.stop.clone();
            let service = hyper::service::service_fn(move |req| {
                let admin = admin2.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&admin, &req)) }
            });
            let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            tokio::select! {
                _ = conn.serve_connection(TokioIo::new(tcp), service) => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

fn handle(admin: &Admin, req: &Request<hyper::body::Incoming>) -> Response<Body> {
    let text =
        |code, body: String| with_type(code, "text/plain; charset=utf-8", crate::http::full(body));
    match req.uri().path() {
        "/metrics" => {
            for c in admin.clusters.list() {
                admin.metrics.set_cluster_up(&c.id, c.health().up);
            }
            with_type(
                StatusCode::OK,
                podgate_metrics::CONTENT_TYPE,
                crate::http::full(admin.metrics.render()),
            )
        }
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        // Ready while serving: the config is loaded and the listener up (or this would not
        // answer); not ready once draining, so load balancers stop sending new sessions.
        "/readyz" if admin.draining.is_cancelled() => {
            text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into())
        }
        "/readyz" => text(StatusCode::OK, "ok\n".into()),
        "/debug/sessions" => {
            let sessions: Vec<_> = admin.live.list().iter().map(|s| s.to_json()).collect();
            json(StatusCode::OK, &serde_json::json!({"sessions": sessions}))
        }
        other => text(
            StatusCode::NOT_FOUND,
            format!("{other}: not found (try /metrics, /healthz, /readyz, /debug/sessions)\n"),
        ),
    }
}
