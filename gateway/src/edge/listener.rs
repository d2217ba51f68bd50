//! The public listener: TLS, HTTP/1.1 and h2 with upgrades, connection limits, graceful
//! shutdown.
//!
//! At shutdown it stops accepting at once; requests in flight get [`DRAIN`] to finish (the
//! router tells sessions why they end meanwhile), then their connections are dropped, so a
//! watch or `logs -f` cannot hold the process up.

use crate::route::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
}

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections past `max_connections` that are answered with a 503 rather than dropped.
const REFUSAL_SLOTS: usize = 32;
/// How long in-flight HTTP requests get to finish at shutdown.
pub const DRAIN: Duration = Duration::from_secs(10);

/// What the listener uses.
pub struct Edge {
    pub router: Arc<Router>,
    pub metrics: podgate_metrics::Metrics,
    /// Cancelled at shutdown: stop accepting, drain.
    pub shutdown: CancellationToken,
    /// Owns every connection task.
    pub tasks: TaskTracker,
}

pub async fn serve(
    edge: Arc<Edge>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    limits: ConnectionLimits,
) {
    // Cancelled once the drain is over: connections still open are dropped.
    let drained = CancellationToken::new();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let refusals = Arc::new(tokio::sync::Semaphore::new(REFUSAL_SLOTS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = edge.shutdown.cancelled() => break,
            a = listener.accept() => match a {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "connection refused: at max_connections");
            // Tell the client why, within a few bounded slots of its own; past those, close.
            if let Ok(slot) = refusals.clone().try_acquire_owned() {
                let acceptor = acceptor.clone();
                edge.tasks.spawn(async move {
                    let _slot = slot;
                    let _ = tokio::time::timeout(
                        TLS_HANDSHAKE_TIMEOUT,
                        refuse(acceptor, tcp, limits.max_connections),
                    )
                    .await;
                });
            }
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (edge2, acceptor, builder) = (edge.clone(), acceptor.clone(), builder.clone());
        let watcher = graceful.watcher();
        let drained = drained.clone();
        edge.tasks.spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    edge2.metrics.tls_handshake_failure();
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let router = edge2.router.clone();
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let router = router.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            crate::route::handle(router, req, Some(peer)).await,
                        )
                    }
                });
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            tokio::select! {
                r = watcher.watch(conn.into_owned()) => if let Err(e) = r {
                    tracing::debug!(%peer, "connection error: {e}");
                },
                _ = drained.cancelled() => tracing::debug!(%peer, "connection dropped at the end of the drain"),
            }
        });
    }
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
    drained.cancel();
}

/// Answers one request on a connection over the limit with a 503 `Status`, then closes.
async fn refuse(acceptor: tokio_rustls::TlsAcceptor, tcp: tokio::net::TcpStream, max: usize) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(mut tls) = acceptor.accept(tcp).await else {
        return;
    };
    let mut buf = [0u8; 1024];
    let _ = tls.read(&mut buf).await;
    let body = crate::session::told(
        podgate_protocol::Status::api_error(
            503,
            "ServiceUnavailable",
            format!("podgate is at its limit of {max} open connections; try again shortly"),
        ),
        podgate_metrics::Outcome::LimitReached,
    )
    .to_json();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = tls.write_all(head.as_bytes()).await;
    let _ = tls.write_all(&body).await;
    let _ = tls.shutdown().await;
}
