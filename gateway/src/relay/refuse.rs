//! Refusals a browser can read.
//!
//! A browser's WebSocket API reports a refused handshake only as an error with close code 1006:
//! the HTTP status and `Status` body never reach the page. So when the gateway itself refuses a
//! browser's exec or attach (its session limits), it completes the handshake and says why
//! inside the socket: the `Status` on the error stream, as a cluster reports a failed exec, then
//! a close frame whose reason repeats the message. Other clients (kubectl, client libraries:
//! no `Origin` header) get the plain HTTP `Status`, which they show as is.

use super::pump::{CLOSE_GRACE, encoded};
use crate::gateway::Gateway;
use crate::http::{Body, status};
use fastwebsockets::Frame;
use http::{HeaderValue, Request, Response, header};
use podgate_protocol::{Protocol, Status, frame};

/// Whether the request comes from a page in a browser (which always sends `Origin` on a
/// WebSocket handshake).
pub fn from_browser(req: &Request<hyper::body::Incoming>) -> bool {
    req.headers().contains_key(header::ORIGIN)
}

/// Answers `req` with `refusal`: inside an upgraded socket when the client is a browser
/// speaking a protocol with an error stream, else as HTTP.
pub fn refuse(
    gw: &Gateway,
    req: &mut Request<hyper::body::Incoming>,
    protocol: Option<Protocol>,
    refusal: Status,
) -> Response<Body> {
    let Some(protocol) = protocol.filter(|p| p.has_status_json() && from_browser(req)) else {
        return status(&refusal);
    };
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
    gw.tasks.spawn(async move {
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
    response.map(|b| {
        http_body_util::BodyExt::boxed(http_body_util::BodyExt::map_err(b, |never| match never {}))
    })
}
