//! `pods/{pod}/portforward` through the gateway: a second kind of session beside exec and
//! attach, opened, limited, accounted and ended by the same machinery (the [`Refusal`], the
//! [`SessionGuard`], the limits, the audit and the metrics); only the handshake's protocol
//! choice and the relay ([`relay`]) are its own.
//!
//! Two protocols reach the path (docs in [`podgate_protocol::portforward`]): kubectl 1.31+'s
//! SPDY/3.1 tunnel inside WebSocket, whose ports are only in the streams' `SYN_STREAM`
//! headers, and the kubelet's channel protocol (the Python client), whose ports are in the
//! query. The upstream WebSocket is opened before the client's upgrade is answered, so the
//! cluster's refusals (RBAC's 403, a missing pod's 404) reach the client as the cluster's own.
//! A plain SPDY upgrade (kubectl before 1.31) is checked against the cluster the same way, so
//! its refusal is the cluster's when the cluster refuses, and podgate's clear one otherwise.
//!
//! Port-forward sessions are not recorded: there is no terminal to replay, and the bytes of
//! arbitrary TCP connections are not a session transcript.

pub mod relay;
pub mod watch;

use super::Sessions;
use super::audit::{SessionRecord, timestamp};
use super::guard::SessionGuard;
use super::handshake::{Caller, Upgrade, session_id, upgrade_upstream};
use super::log_scope::{self, SessionLog, session_log};
use super::refusal::Refusal;
use super::relay::Ending;
use crate::http::Body;
use crate::upstream::Cluster;
use http::{HeaderValue, Request, Response, header};
use podgate_metrics::Outcome;
use podgate_protocol::Status;
use podgate_protocol::portforward::{self, Tunnel};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// A port-forward request, admitted by the edge.
pub struct PortForwardRequest {
    pub req: Request<hyper::body::Incoming>,
    pub caller: Caller,
    pub cluster: Arc<Cluster>,
    pub namespace: String,
    pub pod: String,
    /// The path and query to send the cluster (as received, already judged).
    pub upstream_path: String,
}

/// Opens the port-forward `r` asks for, or answers why not.
pub async fn open(ctx: &Arc<Sessions>, r: PortForwardRequest) -> Response<Body> {
    match handshake(ctx, r).await {
        Ok(established) => established.start(ctx),
        Err(refusal) => refusal.answer(ctx),
    }
}

/// Refuses `r` without trying (the edge policy said no), as every refusal is.
pub fn refuse(
    ctx: &Sessions,
    r: PortForwardRequest,
    status: Status,
    outcome: Outcome,
) -> Response<Body> {
    let attempt = record(&r, "");
    Refusal::new(outcome, status, attempt).answer(ctx)
}

/// The audit record of `r`: a session without container or command; its ports are in the
/// end line (kubectl names them only inside the tunnel).
fn record(r: &PortForwardRequest, protocol: &str) -> SessionRecord {
    let identity = &r.caller.credential.identity;
    SessionRecord {
        session_id: session_id(),
        user: identity.user().to_string(),
        groups: identity.groups().iter().map(|g| g.to_string()).collect(),
        source: r.caller.source.map(|a| a.to_string()).unwrap_or_default(),
        cluster: r.cluster.id.clone(),
        namespace: r.namespace.clone(),
        pod: r.pod.clone(),
        container: String::new(),
        command: Vec::new(),
        tty: false,
        protocol: protocol.to_string(),
        start: timestamp(SystemTime::now()),
        recording: None,
    }
}

/// The words for a client that speaks only plain SPDY.
pub const SPDY_REFUSED: &str = "podgate relays port-forward over WebSocket only \
    (SPDY/3.1+portforward.k8s.io, v4.channel.k8s.io), not a plain SPDY upgrade: use kubectl \
    1.31 or newer (or kubectl 1.30 with KUBECTL_PORT_FORWARD_WEBSOCKETS=true)";

struct Established {
    response: Response<Body>,
    client_upgrade: fastwebsockets::upgrade::UpgradeFut,
    upstream_upgrade: hyper::upgrade::OnUpgrade,
    tunnel: Tunnel,
    query_ports: Vec<u16>,
    record: SessionRecord,
    caller: Caller,
    cluster: Arc<Cluster>,
    permit: super::limits::SessionPermit,
    setup_started: Instant,
}

async fn handshake(ctx: &Sessions, mut r: PortForwardRequest) -> Result<Established, Refusal> {
    let mut attempt = record(&r, "");
    let bad = |attempt: &SessionRecord, message: String| {
        Refusal::new(
            Outcome::BadRequest,
            Status::bad_request(message),
            attempt.clone(),
        )
    };
    let spdy = r
        .req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("spdy"));
    if !spdy && !fastwebsockets::upgrade::is_upgrade_request(&r.req) {
        return Err(bad(
            &attempt,
            "Upgrade request required: port-forward needs a WebSocket upgrade".into(),
        ));
    }
    let offer = portforward::offer(
        r.req
            .headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    // A plain SPDY upgrade is checked as kubectl's tunnel would be.
    let tunnel = match (spdy, offer.tunnels.first()) {
        (true, _) => Tunnel::Spdy,
        (false, Some(t)) => *t,
        (false, None) => {
            return Err(bad(
                &attempt,
                format!(
                    "unable to upgrade: none of the offered WebSocket subprotocols is a port-forward one; podgate speaks {}, v4.channel.k8s.io, v4.base64.channel.k8s.io",
                    portforward::SPDY_TUNNEL
                ),
            ));
        }
    };
    attempt.protocol = tunnel.name().to_string();
    // What cannot be audited exactly is not run: the cluster would forward ports podgate
    // could not name.
    let query_ports = match portforward::ports(r.req.uri().query().unwrap_or("")) {
        Ok(p) => p,
        Err(e) => {
            return Err(bad(
                &attempt,
                format!("podgate cannot read the port-forward request: {e}"),
            ));
        }
    };
    let permit = match ctx
        .limits
        .acquire(r.caller.credential.identity.user(), &r.cluster.id)
    {
        Ok(p) => p,
        Err(e) => {
            return Err(Refusal::new(
                Outcome::LimitReached,
                Status::api_error(429, "TooManyRequests", e.to_string()),
                attempt,
            ));
        }
    };
    let setup_started = Instant::now();

    // The empty protocol is offered by offering none.
    let protocol = (!tunnel.name().is_empty()).then_some(tunnel.name());
    let upgrade = Upgrade {
        req: &r.req,
        caller: &r.caller,
        cluster: &r.cluster,
        upstream_path: &r.upstream_path,
    };
    let up_resp = upgrade_upstream(ctx, upgrade, protocol, &attempt).await?;
    let cluster = &r.cluster;
    if spdy {
        drop(up_resp);
        return Err(bad(&attempt, SPDY_REFUSED.into()));
    }
    let answered = up_resp
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_string();
    if answered != tunnel.name() {
        drop(up_resp);
        return Err(Refusal::new(
            Outcome::UpstreamError,
            Status::api_error(
                502,
                "BadGateway",
                format!(
                    "podgate: cluster \"{}\" answered the port-forward upgrade with protocol {answered:?}, not the {:?} it was offered",
                    cluster.id,
                    tunnel.name()
                ),
            ),
            attempt,
        ));
    }
    let (mut response, client_upgrade) = match fastwebsockets::upgrade::upgrade(&mut r.req) {
        Ok(x) => x,
        Err(e) => return Err(bad(&attempt, format!("unable to upgrade: {e}"))),
    };
    if offer.echo
        && let Ok(v) = HeaderValue::from_str(tunnel.name())
    {
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, v);
    }
    Ok(Established {
        response: crate::http::boxed_empty(response),
        client_upgrade,
        upstream_upgrade: hyper::upgrade::on(up_resp),
        tunnel,
        query_ports,
        record: attempt,
        caller: r.caller,
        cluster: r.cluster,
        permit,
        setup_started,
    })
}

impl Established {
    /// Starts the session's task and answers the client's upgrade.
    fn start(self, ctx: &Arc<Sessions>) -> Response<Body> {
        let Established {
            response,
            client_upgrade,
            upstream_upgrade,
            tunnel,
            query_ports,
            record,
            caller,
            cluster,
            permit,
            setup_started,
        } = self;
        // Not recorded (see the module doc): no recording is prepared.
        let (mut guard, _no_recorder) = SessionGuard::open(ctx, permit, record, caller, None);
        let log = SessionLog::port_forward(guard.session().clone(), tunnel.name());
        let ctx2 = ctx.clone();
        ctx.tasks.spawn(log_scope::scope(log, async move {
            let ctx = ctx2;
            let (client, upstream) = match tokio::join!(client_upgrade, upstream_upgrade) {
                (Ok(c), Ok(u)) => (c, u),
                (Err(e), _) => {
                    session_log!(INFO, "client upgrade failed: {e}");
                    return guard.finish(Ending::ClientClosed);
                }
                (_, Err(e)) => {
                    return guard.finish(Ending::UpstreamLost(format!(
                        "podgate: the cluster's upgrade failed: {e}"
                    )));
                }
            };
            let upstream = fastwebsockets::WebSocket::after_handshake(
                hyper_util::rt::TokioIo::new(upstream),
                fastwebsockets::Role::Client,
            );
            guard.established(setup_started.elapsed());
            let ended = relay::run(
                client,
                upstream,
                relay::Params {
                    tunnel,
                    query_ports,
                    settings: &ctx.settings,
                    session: guard.session(),
                    shutdown: &ctx.shutdown,
                    cluster: &cluster.id,
                },
            )
            .await;
            guard.forwarded(ended.ports, ended.connections);
            guard.finish(ended.ending);
        }));
        response
    }
}
