//! `pods/{pod}/exec` and `pods/{pod}/attach` through the gateway: from the client's upgrade
//! request to an [`Established`] session or a [`Refusal`].
//!
//! The upstream WebSocket is opened *before* the client's upgrade is answered, so every
//! refusal by the cluster (403, 404, 400 for a bad container) reaches the client as the
//! cluster's own HTTP error and `Status` body, exactly as kubectl would see it directly.

use super::Sessions;
use super::audit::{SessionRecord, timestamp};
use super::guard::SessionGuard;
use super::limits::SessionPermit;
use super::log_scope::{self, SessionLog, session_log};
use super::refusal::{Answer, Refusal, from_browser};
use super::registry::Credential;
use super::relay::{self, Ending};
use crate::http::Body;
use crate::upstream::{Cluster, empty_body};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use podgate_metrics::Outcome;
use podgate_protocol::{ExecOptions, Protocol, Status, Subresource, subprotocol};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Protocols offered upstream after the client's own, so a client speaking only base64
/// (a browser) or only v5 still reaches a cluster that speaks a different version.
const FALLBACK: [Protocol; 2] = [Protocol::V5, Protocol::V4];
/// The most of a cluster's refusal body that is read (to audit its message); refusals are
/// a `Status` of a few hundred bytes.
const REFUSAL_BODY: usize = 64 << 10;
const REFUSAL_READ: Duration = Duration::from_secs(5);

/// Who is asking, as the route layer authenticated them.
pub struct Caller {
    pub credential: Credential,
    /// Unix seconds when the credential stops being valid.
    pub expires_at: Option<u64>,
    /// The client's address, for the audit line.
    pub source: Option<SocketAddr>,
    /// `browser` (a page sent it: it has an Origin) or `kubectl` (any other client).
    pub client: &'static str,
}

/// An exec or attach request, admitted by the edge.
pub struct SessionRequest {
    pub req: Request<hyper::body::Incoming>,
    pub caller: Caller,
    pub cluster: Arc<Cluster>,
    pub namespace: String,
    pub pod: String,
    pub subresource: Subresource,
    /// The path and query to send the cluster (as received, already judged).
    pub upstream_path: String,
}

/// A unique, sortable session id: start time in ms, a counter, and a random part drawn once
/// per process, so replicas that share a recordings volume never name two sessions alike.
pub fn session_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static PROCESS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let process = *PROCESS.get_or_init(|| {
        // std's hasher keys are drawn from the OS's randomness once per process.
        use std::hash::{BuildHasher as _, Hasher as _};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish() as u32
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let ms = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{ms:x}-{n:x}-{process:08x}")
}

/// Opens the session `r` asks for, or answers why not.
pub async fn open(ctx: &Arc<Sessions>, r: SessionRequest) -> Response<Body> {
    match handshake(ctx, r).await {
        Ok(established) => established.start(ctx),
        Err(refusal) => refusal.answer(ctx),
    }
}

/// Refuses `r` without trying (the edge policy said no): counted, audited and logged as every
/// refusal is.
pub fn refuse(
    ctx: &Sessions,
    r: SessionRequest,
    status: Status,
    outcome: Outcome,
) -> Response<Body> {
    let opts = options(&r).unwrap_or_default();
    let attempt = record(&r, &opts, "");
    Refusal::new(outcome, status, attempt).answer(ctx)
}

fn options(r: &SessionRequest) -> Result<ExecOptions, podgate_protocol::QueryError> {
    podgate_protocol::query::parse(r.req.uri().query().unwrap_or(""), r.subresource)
}

/// The audit record of `r`: who, from where, what.
fn record(r: &SessionRequest, opts: &ExecOptions, protocol: &str) -> SessionRecord {
    let identity = &r.caller.credential.identity;
    SessionRecord {
        session_id: session_id(),
        user: identity.user().to_string(),
        groups: identity.groups().iter().map(|g| g.to_string()).collect(),
        source: r.caller.source.map(|a| a.to_string()).unwrap_or_default(),
        cluster: r.cluster.id.clone(),
        namespace: r.namespace.clone(),
        pod: r.pod.clone(),
        container: opts.container.clone().unwrap_or_default(),
        command: opts.command.clone(),
        tty: opts.tty,
        protocol: protocol.to_string(),
        start: timestamp(SystemTime::now()),
        recording: None,
    }
}

/// A session the cluster accepted, whose client upgrade is being answered.
pub struct Established {
    response: Response<Body>,
    client_upgrade: fastwebsockets::upgrade::UpgradeFut,
    upstream_upgrade: hyper::upgrade::OnUpgrade,
    client_protocol: Protocol,
    upstream_protocol: Protocol,
    record: SessionRecord,
    caller: Caller,
    cluster: Arc<Cluster>,
    permit: SessionPermit,
    setup_started: Instant,
    recording: Option<crate::recording::Prepared>,
    /// Its place among resumable sessions, when its client opted in and there is room.
    resume: Option<super::resume::store::Registration<super::resume::ClientIo>>,
}

/// Opens the session's recording, when its cluster records; a `required` recording that
/// cannot start refuses the session.
async fn start_recording(
    ctx: &Sessions,
    attempt: &SessionRecord,
    client: &'static str,
) -> Result<Option<crate::recording::Prepared>, Refusal> {
    let started_unix = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let info = crate::recording::SessionInfo {
        session_id: &attempt.session_id,
        cluster: &attempt.cluster,
        namespace: &attempt.namespace,
        pod: &attempt.pod,
        container: &attempt.container,
        user: &attempt.user,
        groups: &attempt.groups,
        command: &attempt.command,
        tty: attempt.tty,
        client,
        started_unix,
    };
    ctx.recording.prepare(&info).await.map_err(|e| {
        Refusal::new(
            Outcome::RecordingFailed,
            Status::api_error(
                503,
                "ServiceUnavailable",
                format!(
                    "podgate: cluster \"{}\" records every session (recording: required), and \
                     this one's recording could not start: {e}",
                    attempt.cluster
                ),
            ),
            attempt.clone(),
        )
    })
}

/// A client's upgrade request as podgate forwards it.
pub(super) struct Upgrade<'a> {
    pub req: &'a Request<hyper::body::Incoming>,
    pub caller: &'a Caller,
    pub cluster: &'a Cluster,
    /// The path and query to send the cluster (as received, already judged).
    pub upstream_path: &'a str,
}

/// Asks the cluster for the WebSocket upgrade of `r` (its path and query as received, podgate's
/// credentials, the caller's identity), offering `protocols` (none: the empty protocol), and
/// gives back the cluster's 101, or the refusal to relay: the cluster's own answer when it said
/// no (a 4xx is the cluster's decision: `denied`), a 503 naming the cluster when it could not be
/// reached. Exec, attach and port-forward all ask this way.
pub(super) async fn upgrade_upstream(
    ctx: &Sessions,
    r: Upgrade<'_>,
    protocols: Option<&str>,
    attempt: &SessionRecord,
) -> Result<Response<hyper::body::Incoming>, Refusal> {
    let bad = |message: String| {
        Refusal::new(
            Outcome::BadRequest,
            Status::bad_request(message),
            attempt.clone(),
        )
    };
    let mut headers = crate::upstream::headers::forward(
        r.req.headers(),
        &r.caller.credential.identity,
        r.cluster.impersonate,
    );
    headers.remove(header::SEC_WEBSOCKET_PROTOCOL);
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    let key = fastwebsockets::handshake::generate_key();
    let values = [
        Some((header::SEC_WEBSOCKET_KEY, key.as_str())),
        protocols.map(|p| (header::SEC_WEBSOCKET_PROTOCOL, p)),
    ];
    for (name, value) in values.into_iter().flatten() {
        // Base64 and protocol names: always valid header values.
        match HeaderValue::from_str(value) {
            Ok(v) => {
                headers.insert(name, v);
            }
            Err(_) => return Err(bad(format!("podgate could not build the {name} header"))),
        }
    }
    let mut up_req = Request::new(empty_body());
    *up_req.uri_mut() = match r.upstream_path.parse() {
        Ok(u) => u,
        Err(_) => return Err(bad("the request path is not a valid URI".into())),
    };
    *up_req.headers_mut() = headers;

    let cluster = &r.cluster;
    let sent = Instant::now();
    let up_resp = match cluster.upstream.send(up_req).await {
        Ok(resp) => resp,
        Err(e) => {
            ctx.metrics
                .upstream_request(&cluster.id, None, sent.elapsed());
            tracing::warn!(cluster = %cluster.id, "upstream request failed: {e}");
            return Err(Refusal::new(
                Outcome::UpstreamError,
                crate::upstream::proxy::unreachable_status(&cluster.id, &e),
                attempt.clone(),
            ));
        }
    };
    ctx.metrics
        .upstream_request(&cluster.id, Some(up_resp.status().as_u16()), sent.elapsed());
    if up_resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The cluster's refusal, unchanged: a 4xx is the cluster saying no.
        let outcome = if up_resp.status().is_client_error() {
            Outcome::Denied
        } else {
            Outcome::UpstreamError
        };
        let (response, message) = read_refusal(up_resp).await;
        return Err(Refusal {
            outcome,
            answer: Answer::Cluster { response, message },
            attempt: attempt.clone(),
            in_socket: None,
        });
    }
    Ok(up_resp)
}

async fn handshake(ctx: &Sessions, mut r: SessionRequest) -> Result<Established, Refusal> {
    let opts = options(&r);
    let mut attempt = record(&r, opts.as_ref().map_or(&ExecOptions::default(), |o| o), "");
    let bad = |attempt: &SessionRecord, message: String| {
        Refusal::new(
            Outcome::BadRequest,
            Status::bad_request(message),
            attempt.clone(),
        )
    };
    // What cannot be audited exactly is not run: the cluster would act on a query podgate
    // could not read.
    if let Err(e) = &opts {
        return Err(bad(
            &attempt,
            format!(
                "podgate cannot read the {} request: {e}",
                r.subresource.name()
            ),
        ));
    }
    let upgrade = r
        .req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    // kubectl falls back to SPDY when its WebSocket upgrade is refused, and prints the SPDY
    // answer. So a SPDY request is checked against the cluster over WebSocket first: its
    // refusal (Forbidden, NotFound, ...) is what the person must see, not ours.
    let spdy = upgrade.starts_with("spdy");
    if !spdy && !fastwebsockets::upgrade::is_upgrade_request(&r.req) {
        return Err(bad(
            &attempt,
            "Upgrade request required: exec and attach need a WebSocket upgrade".into(),
        ));
    }
    let negotiation = subprotocol::negotiate(
        r.req
            .headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        &Protocol::ALL,
    );
    if negotiation.protocol.is_none() && !spdy {
        return Err(bad(
            &attempt,
            format!(
                "unable to upgrade: none of the offered WebSocket subprotocols is supported; podgate speaks {}",
                Protocol::ALL.map(|p| p.name()).join(", ")
            ),
        ));
    }
    // No protocol offered means channel.k8s.io, answered without a protocol header.
    let client_offered_any = negotiation.echo;
    let offered = if negotiation.offered.is_empty() {
        vec![Protocol::V1]
    } else {
        negotiation.offered
    };
    attempt.protocol = offered[0].name().to_string();

    let permit = match ctx
        .limits
        .acquire(r.caller.credential.identity.user(), &r.cluster.id)
    {
        Ok(p) => p,
        Err(e) => {
            let mut refusal = Refusal::new(
                Outcome::LimitReached,
                Status::api_error(429, "TooManyRequests", e.to_string()),
                attempt,
            );
            if let Some(p) = negotiation.protocol.filter(|p| p.has_status_json())
                && from_browser(&r.req)
            {
                refusal.in_socket = Some((p, r.req));
            }
            return Err(refusal);
        }
    };
    let setup_started = Instant::now();
    // Before the cluster is asked, so that a required recording that cannot start runs
    // nothing; removed again if the session does not start after all.
    let mut recording = Unstarted {
        prepared: start_recording(ctx, &attempt, r.caller.client).await?,
        tasks: ctx.tasks.clone(),
    };

    // Upstream request: same path and query, our credentials, the client's identity.
    let mut offer: Vec<&str> = offered.iter().map(|p| p.name()).collect();
    for p in FALLBACK {
        if !offer.contains(&p.name()) {
            offer.push(p.name());
        }
    }
    let upgrade = Upgrade {
        req: &r.req,
        caller: &r.caller,
        cluster: &r.cluster,
        upstream_path: &r.upstream_path,
    };
    let up_resp = upgrade_upstream(ctx, upgrade, Some(&offer.join(", ")), &attempt).await?;
    if spdy {
        drop(up_resp);
        return Err(bad(&attempt,
            "podgate relays exec and attach over WebSocket only (v5.channel.k8s.io), not SPDY: use kubectl 1.30 or newer".into(),
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
    let (mut response, client_upgrade) = match fastwebsockets::upgrade::upgrade(&mut r.req) {
        Ok(x) => x,
        Err(e) => return Err(bad(&attempt, format!("unable to upgrade: {e}"))),
    };
    if client_offered_any {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(client_protocol.name()),
        );
    }
    attempt.protocol = client_protocol.name().to_string();
    // Resume is for v5 clients that ask for it (docs/protocol.md, "Resume").
    let resume = (client_protocol == Protocol::V5
        && super::resume::control::opted_in(
            r.req
                .headers()
                .get_all(header::SEC_WEBSOCKET_PROTOCOL)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        ))
    .then(|| {
        ctx.resume.register(
            &attempt.session_id,
            r.caller.credential.identity.user().as_str(),
        )
    })
    .flatten();
    let recording = recording.prepared.take();
    attempt.recording = recording.as_ref().map(|p| p.key().to_string());
    Ok(Established {
        response: crate::http::boxed_empty(response),
        client_upgrade,
        upstream_upgrade: hyper::upgrade::on(up_resp),
        client_protocol,
        upstream_protocol,
        record: attempt,
        caller: r.caller,
        cluster: r.cluster,
        permit,
        setup_started,
        recording,
        resume,
    })
}

/// A session that ended before its relay started: its tap hears the ending too.
fn told_tap(tap: Option<&dyn crate::tap::Tap>, ending: Ending) -> Ending {
    if let Some(tap) = tap {
        tap.ended(&crate::tap::Ended {
            outcome: ending.outcome(),
            exit_code: ending.exit_code(),
            message: ending.message().map(str::to_string),
        });
    }
    ending
}

/// A recording made for a session that may still be refused: removed unless taken.
struct Unstarted {
    prepared: Option<crate::recording::Prepared>,
    tasks: tokio_util::task::TaskTracker,
}

impl Drop for Unstarted {
    fn drop(&mut self) {
        if let Some(p) = self.prepared.take() {
            self.tasks.spawn(p.discard());
        }
    }
}

/// The cluster's refusal as a response to pass on, and the message of its `Status` (read
/// within bounds: a refusal that is larger or slower is passed on cut, and says so).
pub(super) async fn read_refusal(
    resp: Response<hyper::body::Incoming>,
) -> (Response<Bytes>, String) {
    let (mut parts, body) = resp.into_parts();
    let limited = http_body_util::Limited::new(body, REFUSAL_BODY);
    let bytes = match tokio::time::timeout(REFUSAL_READ, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        _ => Bytes::from_static(b"podgate: the cluster's answer could not be read whole"),
    };
    for h in crate::upstream::headers::HOP_BY_HOP {
        parts.headers.remove(*h);
    }
    parts.headers.remove(header::SET_COOKIE);
    parts.headers.remove(header::CONTENT_LENGTH);
    let message = serde_json::from_slice::<Status>(&bytes)
        .ok()
        .and_then(|s| s.message)
        .unwrap_or_else(|| format!("the cluster answered {}", parts.status));
    (Response::from_parts(parts, bytes), message)
}

impl Established {
    /// Starts the session's task and answers the client's upgrade.
    fn start(self, ctx: &Arc<Sessions>) -> Response<Body> {
        let Established {
            response,
            client_upgrade,
            upstream_upgrade,
            client_protocol,
            upstream_protocol,
            record,
            caller,
            cluster,
            permit,
            setup_started,
            recording,
            resume,
        } = self;
        let (guard, recorder) = SessionGuard::open(ctx, permit, record, caller, recording);
        let log = SessionLog::exec(
            guard.session().clone(),
            client_protocol.name(),
            upstream_protocol.name(),
        );
        let ctx2 = ctx.clone();
        ctx.tasks.spawn(log_scope::scope(log, async move {
            let ctx = ctx2;
            let tap = recorder.as_ref().map(|r| r as &dyn crate::tap::Tap);
            let (client, upstream) = match tokio::join!(client_upgrade, upstream_upgrade) {
                (Ok(c), Ok(u)) => (c, u),
                (Err(e), _) => {
                    session_log!(INFO, "client upgrade failed: {e}");
                    return guard.finish(told_tap(tap, Ending::ClientClosed));
                }
                (_, Err(e)) => {
                    return guard.finish(told_tap(
                        tap,
                        Ending::UpstreamLost(format!("podgate: the cluster's upgrade failed: {e}")),
                    ));
                }
            };
            let upstream = fastwebsockets::WebSocket::after_handshake(
                hyper_util::rt::TokioIo::new(upstream),
                fastwebsockets::Role::Client,
            );
            guard.established(setup_started.elapsed());
            // Each relay in a box of its own: inline, the two relays' states and the
            // upgrades' were laid out side by side in this task (9.7 KB per session, dhat);
            // boxed, the task is under 1 KB and the relay taken 4.6 KB.
            let ending = match resume {
                Some(registration) => {
                    Box::pin(super::resume::relay::run(
                        client,
                        upstream,
                        super::resume::relay::Params {
                            upstream_protocol,
                            settings: &ctx.settings,
                            resume: &ctx.settings.resume,
                            metrics: &ctx.resume.metrics,
                            audit: &ctx.audit,
                            session: guard.session(),
                            tap,
                            shutdown: &ctx.shutdown,
                            cluster: &cluster.id,
                            registration,
                        },
                    ))
                    .await
                }
                None => {
                    Box::pin(relay::run(
                        client,
                        upstream,
                        relay::Params {
                            client_protocol,
                            upstream_protocol,
                            settings: &ctx.settings,
                            session: guard.session(),
                            tap,
                            shutdown: &ctx.shutdown,
                            cluster: &cluster.id,
                        },
                    ))
                    .await
                }
            };
            guard.finish(ending);
        }));
        response
    }
}
