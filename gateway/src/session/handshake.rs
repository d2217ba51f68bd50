//! `pods/{pod}/exec` and `pods/{pod}/attach` through the gateway.
//!
//! The upstream WebSocket is opened *before* the client's upgrade is answered, so every
//! refusal by the cluster (403, 404, 400 for a bad container) reaches the client as the
//! cluster's own HTTP error and `Status` body, exactly as kubectl would see it directly.

pub mod pump;
mod refuse;

use crate::gateway::Gateway;
use crate::http::{Body, passthrough, status};
use crate::sessions::{Clock, SessionInfo};
use crate::upstream::empty_body;
use http::{HeaderValue, Request, Response, StatusCode, header};
use podgate_config::Identity;
use podgate_metrics::{Direction, Outcome as MetricOutcome};
use podgate_protocol::{Protocol, Status, subprotocol};
use std::sync::Arc;

/// Protocols offered upstream after the client's own, so a client speaking only base64
/// (a browser) or only v5 still reaches a cluster that speaks a different version.
const FALLBACK: [Protocol; 2] = [Protocol::V5, Protocol::V4];

pub struct Target<'a> {
    /// The client's address, for the audit line.
    pub source: Option<std::net::SocketAddr>,
    pub cluster: Arc<crate::clusters::Cluster>,
    pub namespace: &'a str,
    pub pod: &'a str,
    pub subresource: &'a str,
}

pub async fn handle(
    gw: Arc<Gateway>,
    mut req: Request<hyper::body::Incoming>,
    identity: Identity,
    target: Target<'_>,
) -> Response<Body> {
    let source = target.source;
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    // kubectl falls back to SPDY when its WebSocket upgrade is refused, and prints the SPDY
    // answer. So a SPDY request is checked against the cluster over WebSocket first: its
    // refusal (Forbidden, NotFound, ...) is what the person must see, not ours.
    let spdy = upgrade.starts_with("spdy");
    if !spdy && !fastwebsockets::upgrade::is_upgrade_request(&req) {
        return status(&Status::bad_request(
            "Upgrade request required: exec and attach need a WebSocket upgrade",
        ));
    }
    let negotiation = subprotocol::negotiate(
        req.headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        &Protocol::ALL,
    );
    if negotiation.protocol.is_none() && !spdy {
        return status(&Status::bad_request(format!(
            "unable to upgrade: none of the offered WebSocket subprotocols is supported; podgate speaks {}",
            Protocol::ALL.map(|p| p.name()).join(", ")
        )));
    }
    // No protocol offered means channel.k8s.io, answered without a protocol header.
    let client_offered_any = negotiation.echo;
    let offered = if negotiation.offered.is_empty() {
        vec![Protocol::V1]
    } else {
        negotiation.offered
    };

    let permit = match gw.limits.acquire(&identity.user, &target.cluster.id) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(user = %identity.user, cluster = %target.cluster.id, "session refused: {e}");
            gw.metrics
                .session_rejected(&target.cluster.id, MetricOutcome::LimitReached);
            let refusal = Status::api_error(429, "TooManyRequests", e.to_string());
            return refuse::refuse(&gw, &mut req, negotiation.protocol, refusal);
        }
    };
    let setup_started = std::time::Instant::now();

    // Upstream request: same path and query, our credentials, the client's identity.
    let mut headers = crate::headers::forward(req.headers(), &identity, target.cluster.impersonate);
    let mut offer: Vec<&str> = offered.iter().map(|p| p.name()).collect();
    for p in FALLBACK {
        if !offer.contains(&p.name()) {
            offer.push(p.name());
        }
    }
    let ws_headers = [
        (header::CONNECTION, "Upgrade".to_string()),
        (header::UPGRADE, "websocket".to_string()),
        (header::SEC_WEBSOCKET_VERSION, "13".to_string()),
        (
            header::SEC_WEBSOCKET_KEY,
            fastwebsockets::handshake::generate_key(),
        ),
        (header::SEC_WEBSOCKET_PROTOCOL, offer.join(", ")),
    ];
    for (name, value) in ws_headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let upstream_path = crate::router::strip_cluster_prefix(path_and_query);
    let mut up_req = Request::new(empty_body());
    *up_req.uri_mut() = match upstream_path.parse() {
        Ok(u) => u,
        Err(_) => return status(&Status::bad_request("the request path is not a valid URI")),
    };
    *up_req.headers_mut() = headers;

    let sent = std::time::Instant::now();
    let up_resp = match target.cluster.upstream.send(up_req).await {
        Ok(r) => r,
        Err(e) => {
            gw.metrics
                .upstream_request(&target.cluster.id, None, sent.elapsed());
            gw.metrics
                .session_rejected(&target.cluster.id, MetricOutcome::UpstreamError);
            return crate::proxy::unreachable(&target.cluster.id, &e);
        }
    };
    gw.metrics.upstream_request(
        &target.cluster.id,
        Some(up_resp.status().as_u16()),
        sent.elapsed(),
    );
    if up_resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The cluster's refusal, unchanged: a 4xx is the cluster saying no.
        let outcome = if up_resp.status().is_client_error() {
            MetricOutcome::Denied
        } else {
            MetricOutcome::UpstreamError
        };
        gw.metrics.session_rejected(&target.cluster.id, outcome);
        return passthrough(up_resp);
    }
    if spdy {
        drop(up_resp);
        return status(&Status::bad_request(
            "podgate relays exec and attach over WebSocket only (v5.channel.k8s.io), not SPDY: use kubectl 1.30 or newer",
        ));
    }
    let upstream_protocol = up_resp
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Protocol::from_name(v.trim()))
        .unwrap_or(Protocol::V1);
    let client_protocol = if offered.contains(&upstream_protocol) {
        upstream_protocol
    } else {
        offered[0]
    };

    let (mut response, client_upgrade) = match fastwebsockets::upgrade::upgrade(&mut req) {
        Ok(x) => x,
        Err(e) => return status(&Status::bad_request(format!("unable to upgrade: {e}"))),
    };
    if client_offered_any {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(client_protocol.name()),
        );
    }
    let upstream_upgrade = hyper::upgrade::on(up_resp);
    let query = req.uri().query().unwrap_or("").to_string();
    let opts = podgate_protocol::query::parse(
        &query,
        if target.subresource == "exec" {
            podgate_protocol::Subresource::Exec
        } else {
            podgate_protocol::Subresource::Attach
        },
    )
    .unwrap_or_default();
    let session_id = crate::gateway::session_id();
    let span = tracing::info_span!("session",
        session_id = %session_id,
        user = %identity.user,
        cluster = %target.cluster.id,
        namespace = target.namespace,
        pod = target.pod,
        container = opts.container.as_deref().unwrap_or(""),
        command = %opts.command.join(" "),
        client_protocol = client_protocol.name(),
        upstream_protocol = upstream_protocol.name(),
    );
    let settings = gw.sessions;
    let shutdown = gw.shutdown.clone();
    let container = opts.container.clone().unwrap_or_default();
    let metrics = gw.metrics.session_started(podgate_metrics::SessionLabels {
        session_id: &session_id,
        user: &identity.user,
        cluster: &target.cluster.id,
        namespace: target.namespace,
        pod: target.pod,
        container: &container,
    });
    let record = crate::audit::SessionRecord {
        session_id,
        user: identity.user.clone(),
        groups: identity.groups.clone(),
        source: source.map(|a| a.to_string()).unwrap_or_default(),
        cluster: target.cluster.id.clone(),
        namespace: target.namespace.to_string(),
        pod: target.pod.to_string(),
        container,
        command: opts.command.clone(),
        tty: opts.tty,
        protocol: client_protocol.name().to_string(),
        start: crate::audit::timestamp(std::time::SystemTime::now()),
    };
    let info = SessionInfo {
        record,
        metrics,
        activity: Clock::new(tokio::time::Instant::now()),
    };
    let live = gw.sessions_live.clone();
    let audit = gw.audit.clone();
    gw.tasks.spawn(tracing::Instrument::instrument(
        async move {
            let _permit = permit;
            let (info, _registered) = live.register(info);
            let (client, upstream) = match tokio::join!(client_upgrade, upstream_upgrade) {
                (Ok(c), Ok(u)) => (c, u),
                (Err(e), _) => {
                    tracing::info!("client upgrade failed: {e}");
                    info.metrics
                        .finish(MetricOutcome::ClientClosed, info.metrics.elapsed());
                    return;
                }
                (_, Err(e)) => {
                    tracing::warn!("upstream upgrade failed: {e}");
                    info.metrics
                        .finish(MetricOutcome::UpstreamError, info.metrics.elapsed());
                    return;
                }
            };
            let upstream = fastwebsockets::WebSocket::after_handshake(
                hyper_util::rt::TokioIo::new(upstream),
                fastwebsockets::Role::Client,
            );
            info.metrics.established(setup_started.elapsed());
            tracing::info!(
                setup_ms = setup_started.elapsed().as_millis() as u64,
                "session started"
            );
            audit.session_start(&info.record);
            let outcome = pump::run(
                client,
                upstream,
                client_protocol,
                upstream_protocol,
                &settings,
                &info,
                shutdown,
            )
            .await;
            let duration = info.metrics.elapsed();
            info.metrics.finish(outcome.metric(), duration);
            let (stdin, stdout, stderr) = (
                info.bytes(Direction::Stdin),
                info.bytes(Direction::Stdout),
                info.bytes(Direction::Stderr),
            );
            tracing::info!(
                outcome = outcome.label(),
                exit_code = outcome.exit_code(),
                stdin_bytes = stdin,
                stdout_bytes = stdout,
                stderr_bytes = stderr,
                "session ended"
            );
            audit.session_end(&crate::audit::SessionEnd {
                session: &info.record,
                end: crate::audit::timestamp(std::time::SystemTime::now()),
                duration_seconds: duration.as_secs_f64(),
                stdin_bytes: stdin,
                stdout_bytes: stdout,
                stderr_bytes: stderr,
                exit_code: outcome.exit_code(),
                close_reason: outcome.label(),
            });
        },
        span,
    ));
    response.map(|b| {
        http_body_util::BodyExt::boxed(http_body_util::BodyExt::map_err(b, |never| match never {}))
    })
}
