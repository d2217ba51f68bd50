//! The admin listener: `/metrics`, `/healthz`, `/readyz`, `/debug/sessions`. Plain HTTP on
//! its own address (loopback by default), never on the public listener: none of it is for
//! the people using shells.

use crate::gateway::Gateway;
use crate::http::{Body, json, with_type};
use http::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;
use std::time::Duration;

pub async fn serve(gw: Arc<Gateway>, listener: tokio::net::TcpListener) {
    loop {
        let (tcp, _) = tokio::select! {
            _ = gw.shutdown.cancelled() => return,
            a = listener.accept() => match a {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("admin accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let gw2 = gw.clone();
        gw.tasks.spawn(async move {
            let shutdown = gw2.shutdown.clone();
            let service = hyper::service::service_fn(move |req| {
                let gw = gw2.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&gw, &req)) }
            });
            let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            tokio::select! {
                _ = conn.serve_connection(TokioIo::new(tcp), service) => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }
}

fn handle(gw: &Gateway, req: &Request<hyper::body::Incoming>) -> Response<Body> {
    let text =
        |code, body: String| with_type(code, "text/plain; charset=utf-8", crate::http::full(body));
    match req.uri().path() {
        "/metrics" => {
            for c in gw.clusters.list() {
                gw.metrics.set_cluster_up(&c.id, c.health().up);
            }
            with_type(
                StatusCode::OK,
                podgate_metrics::CONTENT_TYPE,
                crate::http::full(gw.metrics.render()),
            )
        }
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        // Ready while serving: the config is loaded and the listener up (or this would not
        // answer); not ready once draining, so load balancers stop sending new sessions.
        "/readyz" if gw.shutdown.is_cancelled() => {
            text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into())
        }
        "/readyz" => text(StatusCode::OK, "ok\n".into()),
        "/debug/sessions" => {
            let sessions: Vec<_> = gw
                .sessions_live
                .list()
                .iter()
                .map(|s| s.to_json())
                .collect();
            json(StatusCode::OK, &serde_json::json!({"sessions": sessions}))
        }
        other => text(
            StatusCode::NOT_FOUND,
            format!("{other}: not found (try /metrics, /healthz, /readyz, /debug/sessions)\n"),
        ),
    }
}
