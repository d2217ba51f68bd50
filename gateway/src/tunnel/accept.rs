//! The gateway's end of `GET /podgate/agent/{cluster}`: an agent shows its cluster's token,
//! the connection switches to HTTP/2 with the gateway as client, and the tunnel joins the
//! cluster's links until it breaks, is cut (reload, removal, new token) or the gateway stops.

use super::links::Membership;
use crate::http::{Body, status};
use crate::upstream::{Cluster, Registry};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use podgate_metrics::{AgentMetrics, TunnelResult};
use podgate_protocol::Status;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a stopping gateway lets requests on a tunnel finish.
const DRAIN: Duration = Duration::from_secs(5);
/// Bounds the probe that tells `/readyz` and the dashboard the cluster is back.
const PROBE: Duration = Duration::from_secs(5);

/// What accepting tunnels uses.
pub struct Accept {
    pub clusters: Registry,
    pub metrics: AgentMetrics,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
}

/// Why a tunnel request was refused: the status for the agent, the words for the log.
fn refuse(
    metrics: &AgentMetrics,
    result: TunnelResult,
    code: u16,
    message: String,
    peer: Option<SocketAddr>,
) -> Response<Body> {
    metrics.attempt(result);
    tracing::warn!(
        peer = ?peer,
        result = result.as_str(),
        "agent tunnel refused: {}",
        message.escape_debug()
    );
    let reason = match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        _ => "ServiceUnavailable",
    };
    status(&Status::api_error(code, reason, message))
}

/// The bearer token, as sent.
fn bearer(req: &Request<Incoming>) -> Option<&[u8]> {
    let v = req.headers().get(header::AUTHORIZATION)?.as_bytes();
    let token = v.strip_prefix(b"Bearer ")?;
    (!token.is_empty()).then_some(token)
}

pub async fn handle(
    accept: &Accept,
    req: Request<Incoming>,
    peer: Option<SocketAddr>,
) -> Response<Body> {
    let m = &accept.metrics;
    let id = req
        .uri()
        .path()
        .strip_prefix(super::PATH_PREFIX)
        .unwrap_or_default()
        .to_string();
    let is_tunnel = req.method() == Method::GET
        && req
            .headers()
            .get(header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(super::UPGRADE.as_bytes()));
    if id.is_empty() || id.contains('/') || !is_tunnel {
        return refuse(
            m,
            TunnelResult::BadRequest,
            400,
            format!(
                "an agent asks for its tunnel with GET {}{{cluster}} and Upgrade: {}",
                super::PATH_PREFIX,
                super::UPGRADE
            ),
            peer,
        );
    }
    let Some(token) = bearer(&req) else {
        return refuse(
            m,
            TunnelResult::BadRequest,
            401,
            format!("the agent for cluster {id:?} sent no Authorization: Bearer token"),
            peer,
        );
    };
    let cluster = accept.clusters.get(&id);
    let Some((cluster, agent)) = cluster.and_then(|c| {
        let agent = c.agent.clone()?;
        Some((c, agent))
    }) else {
        return refuse(
            m,
            TunnelResult::UnknownCluster,
            403,
            format!("podgate serves no cluster {id:?} through agents"),
            peer,
        );
    };
    if !agent.token.matches(token) {
        return refuse(
            m,
            TunnelResult::WrongToken,
            403,
            format!("the token is not the agent token of cluster {id:?}"),
            peer,
        );
    }
    if agent.links.status().connected >= super::MAX_TUNNELS_PER_CLUSTER {
        return refuse(
            m,
            TunnelResult::Failed,
            503,
            format!(
                "cluster {id:?} has {} agent tunnels here already, the most it may hold",
                super::MAX_TUNNELS_PER_CLUSTER
            ),
            peer,
        );
    }
    if agent.links.is_closed() || accept.shutdown.is_cancelled() {
        return refuse(
            m,
            TunnelResult::Failed,
            503,
            format!("cluster {id:?} is being reconfigured or the gateway is stopping: retry"),
            peer,
        );
    }
    let on_upgrade = hyper::upgrade::on(req);
    let shutdown = accept.shutdown.clone();
    let metrics = accept.metrics.clone();
    let tasks = accept.tasks.clone();
    accept.tasks.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                metrics.attempt(TunnelResult::Failed);
                tracing::warn!(cluster = %cluster.id, peer = ?peer, "agent tunnel upgrade failed: {e}");
                return;
            }
        };
        run(cluster, agent, upgraded, peer, shutdown, metrics, tasks).await;
    });
    let mut resp = Response::new(http_body_util::Empty::new());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    resp.headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static(super::UPGRADE));
    crate::http::boxed_empty(resp)
}

/// The HTTP/2 client end of one tunnel.
pub fn client_builder() -> hyper::client::conn::http2::Builder<TokioExecutor> {
    use super::h2;
    let mut b = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
    b.timer(TokioTimer::new())
        .adaptive_window(false)
        .initial_stream_window_size(h2::STREAM_WINDOW)
        .initial_connection_window_size(h2::CONNECTION_WINDOW)
        .max_frame_size(h2::MAX_FRAME)
        .max_send_buf_size(h2::MAX_SEND_BUFFER)
        .max_header_list_size(h2::MAX_RESPONSE_HEADERS)
        .keep_alive_interval(super::KEEPALIVE)
        .keep_alive_timeout(super::KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true);
    b
}

async fn run(
    cluster: Arc<Cluster>,
    agent: crate::upstream::registry::AgentAccess,
    upgraded: hyper::upgrade::Upgraded,
    peer: Option<SocketAddr>,
    shutdown: CancellationToken,
    metrics: AgentMetrics,
    tasks: TaskTracker,
) {
    // Cancelled when the tunnel must end now: cut by the links, or what is left of it when
    // the gateway's drain is over. Until then it may end on its own.
    let kill = CancellationToken::new();
    let io = super::cut::Cuttable::new(upgraded, kill.clone());
    let (send, conn) = match client_builder().handshake(io).await {
        Ok(pair) => pair,
        Err(e) => {
            metrics.attempt(TunnelResult::Failed);
            tracing::warn!(cluster = %cluster.id, peer = ?peer, "agent tunnel HTTP/2 handshake failed: {e}");
            return;
        }
    };
    let membership: Membership = match agent.links.join(send, peer, kill.clone()) {
        Ok(m) => m,
        Err(_) => {
            metrics.attempt(TunnelResult::Failed);
            tracing::info!(cluster = %cluster.id, peer = ?peer, "agent tunnel dropped: the cluster was reconfigured as it connected");
            return;
        }
    };
    metrics.attempt(TunnelResult::Connected);
    let connected = agent.links.status().connected;
    metrics.set_tunnels(&cluster.id, connected);
    tracing::info!(cluster = %cluster.id, peer = ?peer, tunnels = connected, "agent connected");
    reprobe(&tasks, &cluster);
    let mut membership = Some(membership);
    let mut conn = std::pin::pin!(conn);
    let why = tokio::select! {
        r = &mut conn => match r {
            Ok(()) => "the agent closed it".to_string(),
            Err(e) => format!("it broke: {e}"),
        },
        () = kill.cancelled() => {
            "the cluster was removed or its agent token changed".to_string()
        }
        () = shutdown.cancelled() => {
            // No new requests; those running end with their sessions, within DRAIN.
            drop(membership.take());
            let _ = tokio::time::timeout(DRAIN, &mut conn).await;
            "the gateway is stopping".to_string()
        }
    };
    // Whatever ended it, nothing of the tunnel outlives this: streams still open (upgraded
    // sessions keep hyper's connection task alive) fail now.
    kill.cancel();
    drop(membership);
    let left = agent.links.status().connected;
    metrics.set_tunnels(&cluster.id, left);
    tracing::warn!(cluster = %cluster.id, peer = ?peer, tunnels = left, "agent disconnected: {why}");
    if left == 0 {
        reprobe(&tasks, &cluster);
    }
}

/// A health probe now, so `/readyz` and the dashboard follow the tunnel at once.
fn reprobe(tasks: &TaskTracker, cluster: &Arc<Cluster>) {
    let cluster = cluster.clone();
    tasks.spawn(async move {
        let _ = cluster.check_health(PROBE).await;
    });
}
