//! A session attempt that does not start, answered and accounted for in one place.
//!
//! Every refusal (the edge policy, a limit, the cluster's own 403/404/400, an unreachable
//! cluster, a request that is no valid exec/attach upgrade) is a [`Refusal`], and the only way
//! to answer one is [`Refusal::answer`], which counts it in `podgate_sessions_total{outcome}`,
//! writes its audit line and its log line, then builds the response. So no refusal path can
//! forget one of them.
//!
//! A browser's WebSocket API reports a refused handshake only as an error with close code
//! 1006: the HTTP status and `Status` body never reach the page. So when the gateway itself
//! refuses a browser's exec or attach (its session limits), it completes the handshake and says
//! why inside the socket: the `Status` on the error stream, as a cluster reports a failed exec,
//! then a close frame whose reason repeats the message. Other clients (kubectl, client
//! libraries: no `Origin` header) get the plain HTTP `Status`, which they show as is.

use super::Sessions;
use super::audit::{SessionRecord, SessionRefused};
use super::relay::{CLOSE_GRACE, encoded};
use crate::http::{Body, status};
use bytes::Bytes;
use fastwebsockets::Frame;
use http::{HeaderValue, Request, Response, header};
use http_body_util::BodyExt as _;
use podgate_metrics::Outcome;
use podgate_protocol::{Protocol, Status, frame};

/// How a refusal is answered.
pub enum Answer {
    /// The gateway's own `Status`.
    Status(Status),
    /// The cluster's answer, passed on unchanged (its status, headers and body); `message` is
    /// what its `Status` said, for the audit line.
    Cluster {
        response: Response<Bytes>,
        message: String,
    },
}

pub struct Refusal {
    pub outcome: Outcome,
    pub answer: Answer,
    /// Who tried what.
    pub attempt: SessionRecord,
    /// A browser's request with the protocol it would speak: told inside the socket.
    pub in_socket: Option<(Protocol, Request<hyper::body::Incoming>)>,
}

impl Refusal {
    pub fn new(outcome: Outcome, status: Status, attempt: SessionRecord) -> Refusal {
        Refusal {
            outcome,
            answer: Answer::Status(super::told(status, outcome)),
            attempt,
            in_socket: None,
        }
    }

    /// Counts, audits and logs the refusal, then answers it.
    pub fn answer(self, ctx: &Sessions) -> Response<Body> {
        let (code, message) = match &self.answer {
            Answer::Status(s) => (s.code.unwrap_or(500), s.message.clone().unwrap_or_default()),
            Answer::Cluster { response, message } => (response.status().as_u16(), message.clone()),
        };
        let a = &self.attempt;
        ctx.metrics.session_rejected(&a.cluster, self.outcome);
        tracing::info!(
            session_id = %a.session_id,
            user = %a.user,
            cluster = %a.cluster,
            namespace = %a.namespace,
            pod = %a.pod,
            outcome = self.outcome.as_str(),
            code,
            "session refused: {message}"
        );
        ctx.audit.session_refused(&SessionRefused {
            session: a,
            code,
            close_reason: self.outcome.as_str(),
            message: &message,
        });
        match (self.answer, self.in_socket) {
            (Answer::Status(s), Some((protocol, mut req))) => in_socket(ctx, &mut req, protocol, s),
            (Answer::Status(s), None) => status(&s),
            (Answer::Cluster { response, .. }, _) => response.map(|b| {
                http_body_util::Full::new(b)
                    .map_err(|never| match never {})
                    .boxed()
            }),
        }
    }
}

/// Whether the request comes from a page in a browser (which always sends `Origin` on a
/// WebSocket handshake).
pub fn from_browser<B>(req: &Request<B>) -> bool {
    req.headers().contains_key(header::ORIGIN)
}

/// Answers `req` with `refusal` inside an upgraded socket (the protocol has an error stream),
/// or as HTTP when the upgrade cannot be made.
fn in_socket(
    ctx: &Sessions,
    req: &mut Request<hyper::body::Incoming>,
    protocol: Protocol,
    refusal: Status,
) -> Response<Body> {
    let (mut response, upgrade) = match fastwebsockets::upgrade::upgrade(req) {
        Ok(x) => x,
        Err(_) => return status(&refusal),
    };
    response.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(protocol.name()),
    );
    let message = refusal.message.clone().unwrap_or_default();
    let body = refusal.to_json();
    // Owned by the gateway's tracker and bounded in time, like every session task.
    ctx.tasks.spawn(async move {
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            let mut ws = upgrade.await.ok()?;
            ws.write_frame(encoded(protocol, frame::STATUS, &body))
                .await
                .ok()?;
            // A close reason is at most 123 bytes; cut on a character boundary.
            let mut end = message.len().min(123);
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            ws.write_frame(Frame::close(1008, &message.as_bytes()[..end]))
                .await
                .ok()
        })
        .await;
    });
    crate::http::boxed_empty(response)
}
