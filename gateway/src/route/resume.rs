//! `GET /podgate/sessions/{id}/resume` (WebSocket): a page comes back to its session after
//! its connection dropped (docs/protocol.md, "Resume").
//!
//! The person is authenticated as for every request; the credential and the rendered offset
//! come as subprotocol entries (never in the URL). Whatever the answer, the upgrade completes
//! and the page reads it in-band (`resumed` from the session itself, or `refused` from here),
//! because a browser cannot read a refused handshake.

use crate::http::{Body, status};
use crate::session::Sessions;
use crate::session::resume::control;
use crate::session::resume::relay::refuse;
use crate::session::resume::{Attach, ClientIo};
use http::{HeaderValue, Request, Response, header};
use podgate_auth::Identity;
use podgate_metrics::ResumeFailure;
use podgate_protocol::{Protocol, Status};
use std::net::SocketAddr;
use std::sync::Arc;

/// Answers a resume upgrade for session `id`.
pub fn answer(
    sessions: &Arc<Sessions>,
    mut req: Request<hyper::body::Incoming>,
    peer: Option<SocketAddr>,
    who: &Identity,
    id: &str,
) -> Response<Body> {
    if !fastwebsockets::upgrade::is_upgrade_request(&req) {
        return status(&Status::bad_request(
            "resuming a session needs a WebSocket upgrade",
        ));
    }
    let store = &sessions.resume;
    let offer = control::offer(
        req.headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    // What is judged here, before the upgrade; the session judges the offset.
    let judged: Result<(Arc<_>, control::ResumeOffer), (ResumeFailure, String)> = match offer {
        Err(e) => Err((ResumeFailure::BadRequest, e.to_string())),
        Ok(offer) => match store.get(id) {
            None => Err((
                ResumeFailure::UnknownSession,
                format!(
                    "podgate: session \"{id}\" cannot be resumed here: it ended, or it runs on \
                     another podgate replica (resume needs client affinity at the load balancer)"
                ),
            )),
            Some(slot) => match slot.key.check(who.user().as_str(), &offer.credential) {
                Ok(()) => Ok((slot, offer)),
                Err(f) => Err((
                    f,
                    match f {
                        ResumeFailure::Forbidden => {
                            format!("podgate: session \"{id}\" is not yours to resume")
                        }
                        _ => format!("podgate: this is not session \"{id}\"'s resume credential"),
                    },
                )),
            },
        },
    };
    let (mut response, upgrade) = match fastwebsockets::upgrade::upgrade(&mut req) {
        Ok(x) => x,
        Err(e) => return status(&Status::bad_request(format!("unable to upgrade: {e}"))),
    };
    response.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(Protocol::V5.name()),
    );
    let metrics = store.metrics.clone();
    let user = who.user().to_string();
    let id = id.to_string();
    sessions.tasks.spawn(async move {
        let Ok(client) = upgrade.await else { return };
        let (slot, offer) = match judged {
            Ok(x) => x,
            Err((reason, message)) => {
                tracing::info!(session_id = %id, user = %user, reason = reason.as_str(), "resume refused: {message}");
                metrics.failed(reason);
                refuse(client, reason, &message).await;
                return;
            }
        };
        let attach: Attach<ClientIo> = Attach {
            client,
            offset: offer.offset,
            source: peer,
        };
        // The session takes it (it may still refuse an offset it never produced); a session
        // that ended meanwhile no longer listens.
        if let Err(e) = slot.attach.send(attach).await {
            metrics.failed(ResumeFailure::Expired);
            let message = format!("podgate: session \"{id}\" ended before it could be resumed");
            tracing::info!(session_id = %id, user = %user, "resume refused: {message}");
            refuse(e.0.client, ResumeFailure::Expired, &message).await;
        }
    });
    crate::http::boxed_empty(response)
}
