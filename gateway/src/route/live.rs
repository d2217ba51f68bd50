//! Live sessions, for the people allowed to see, watch or end them:
//!
//! - `GET /podgate/sessions`: this replica's live sessions the caller may see;
//! - `GET /podgate/sessions/{id}/observe` (WebSocket): a read-only view of a recorded
//!   session: its recording from the start (so the observer's terminal shows exactly the
//!   screen, full-screen programs included), then every event as it is written, one
//!   asciicast line per text message;
//! - `GET /podgate/sessions/{id}/resume` (WebSocket): a page comes back to its own session
//!   after its connection dropped ([`super::resume`]);
//! - `DELETE /podgate/sessions/{id}[?reason=...]`: ends the session, telling its person who
//!   ended it and why.
//!
//! Watching and ending are audited; the watched person is told in their terminal when
//! someone starts and stops watching.

use super::operators::{Operators, Right};
use crate::http::{Body, json, status};
use crate::session::Sessions;
use crate::session::registry::{LiveSession, Stop};
use fastwebsockets::{Frame, OpCode, Payload};
use http::{Method, Request, Response, StatusCode};
use podgate_auth::Identity;
use podgate_protocol::Status;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncReadExt as _;

/// The longest reason an operator may give.
const REASON_LIMIT: usize = 200;

/// What the live-session pages use.
pub struct Live<'a> {
    pub sessions: &'a Arc<Sessions>,
    pub operators: &'a Operators,
    pub replica: &'a str,
}

#[derive(Serialize)]
struct Audited<'a> {
    operator: &'a str,
    operator_groups: Vec<&'a str>,
    source: String,
    session_id: &'a str,
    user: &'a str,
    cluster: &'a str,
    namespace: &'a str,
    pod: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    time: String,
}

impl Live<'_> {
    /// Routes `/podgate/sessions[/{id}[/observe]]`.
    pub async fn handle(
        &self,
        req: Request<hyper::body::Incoming>,
        peer: Option<SocketAddr>,
        who: &Identity,
        rest: &[&str],
    ) -> Response<Body> {
        match (req.method(), rest) {
            (&Method::GET, []) => self.list(who),
            (&Method::DELETE, [id]) => self.terminate(&req, peer, who, id),
            (&Method::GET, [id, "observe"]) => self.observe(req, peer, who, id).await,
            (&Method::GET, [id, "resume"]) => {
                super::resume::answer(self.sessions, req, peer, who, id)
            }
            (_, [] | [_] | [_, "observe" | "resume"]) => status(&Status::api_error(
                405,
                "MethodNotAllowed",
                format!(
                    "{} is not allowed here: GET /podgate/sessions, DELETE /podgate/sessions/{{id}}, GET /podgate/sessions/{{id}}/observe, GET /podgate/sessions/{{id}}/resume",
                    req.method()
                ),
            )),
            _ => status(&Status::api_error(
                404,
                "NotFound",
                "podgate serves /podgate/sessions, /podgate/sessions/{id} and /podgate/sessions/{id}/observe",
            )),
        }
    }

    /// The sessions `who` may see, each with what they may do to it (`may`: observe,
    /// terminate), and whether they may replay recordings (`may_replay`), so a UI offers only
    /// what podgate will allow.
    fn list(&self, who: &Identity) -> Response<Body> {
        let items: Vec<serde_json::Value> = self
            .sessions
            .live
            .list()
            .iter()
            .filter(|s| self.operators.allows(Right::See, who, &s.record.user))
            .map(|s| {
                let mut v = s.to_json();
                v["replica"] = self.replica.into();
                // A browser session that can be resumed, and whether it waits for its page
                // (its connection dropped) and for how long.
                if let Some(slot) = self.sessions.resume.get(&s.record.session_id) {
                    v["resume"] = serde_json::json!({
                        "waiting_seconds": slot.waiting_for().map(|d| d.as_secs_f64()),
                    });
                }
                // What the caller may do to it, so the web UI offers only what will work.
                let owner = &s.record.user;
                v["may"] = serde_json::json!({
                    "observe": s.recording.is_some()
                        && self.operators.allows(Right::Observe, who, owner),
                    "terminate": self.operators.allows(Right::Terminate, who, owner),
                });
                v
            })
            .collect();
        json(
            StatusCode::OK,
            &serde_json::json!({
                "kind": "SessionList",
                "replica": self.replica,
                "items": items,
                "may_replay": self.operators.allows(Right::Replay, who, ""),
            }),
        )
    }

    /// The session `id` if `who` may do `right` to it; the answer to give otherwise. A session
    /// the caller may not even see is "not found", as one that does not exist.
    fn find(
        &self,
        who: &Identity,
        id: &str,
        right: Right,
    ) -> Result<Arc<LiveSession>, Response<Body>> {
        let not_found = || {
            status(&Status::api_error(
                404,
                "NotFound",
                format!(
                    "session \"{}\" is not live on this replica ({})",
                    id.chars().take(80).collect::<String>(),
                    self.replica
                ),
            ))
        };
        let s = self.sessions.live.get(id).ok_or_else(not_found)?;
        if !self.operators.allows(Right::See, who, &s.record.user) {
            return Err(not_found());
        }
        if !self.operators.allows(right, who, &s.record.user) {
            let what = match right {
                Right::Observe => "watch",
                Right::Terminate => "end",
                _ => "use",
            };
            return Err(status(&Status::api_error(
                403,
                "Forbidden",
                format!(
                    "podgate: user \"{}\" may not {what} other people's sessions (operators.{} in podgate's config)",
                    who.user(),
                    if right == Right::Observe {
                        "observe"
                    } else {
                        "terminate"
                    }
                ),
            )));
        }
        Ok(s)
    }

    fn audit(
        &self,
        event: &str,
        who: &Identity,
        peer: Option<SocketAddr>,
        s: &LiveSession,
        reason: Option<&str>,
    ) {
        let r = &s.record;
        self.sessions.audit.event(
            event,
            &Audited {
                operator: who.user(),
                operator_groups: who.groups().iter().map(|g| g.as_str()).collect(),
                source: peer.map(|p| p.to_string()).unwrap_or_default(),
                session_id: &r.session_id,
                user: &r.user,
                cluster: &r.cluster,
                namespace: &r.namespace,
                pod: &r.pod,
                reason,
                time: crate::session::audit::timestamp(std::time::SystemTime::now()),
            },
        );
    }

    fn terminate(
        &self,
        req: &Request<hyper::body::Incoming>,
        peer: Option<SocketAddr>,
        who: &Identity,
        id: &str,
    ) -> Response<Body> {
        let s = match self.find(who, id, Right::Terminate) {
            Ok(s) => s,
            Err(answer) => return answer,
        };
        let reason = reason(req.uri().query());
        let mut told = format!("podgate: session closed by {}", who.user());
        if let Some(r) = &reason {
            told.push_str(": ");
            told.push_str(r);
        }
        tracing::info!(
            session_id = %s.record.session_id,
            operator = %who.user(),
            "session terminated by an operator: {told}"
        );
        self.audit("session_terminated", who, peer, &s, reason.as_deref());
        s.control.stop(Stop::Terminated, told);
        json(
            StatusCode::OK,
            &Status {
                message: Some(format!(
                    "session \"{}\" is being closed",
                    s.record.session_id
                )),
                ..Status::success()
            },
        )
    }

    async fn observe(
        &self,
        mut req: Request<hyper::body::Incoming>,
        peer: Option<SocketAddr>,
        who: &Identity,
        id: &str,
    ) -> Response<Body> {
        let s = match self.find(who, id, Right::Observe) {
            Ok(s) => s,
            Err(answer) => return answer,
        };
        let Some(recording) = &s.recording else {
            return status(&Status::api_error(
                409,
                "Conflict",
                format!(
                    "session \"{}\" is not recorded, so it cannot be watched: watching replays \
                     the session's recording (its cluster's recording is off)",
                    s.record.session_id
                ),
            ));
        };
        if !fastwebsockets::upgrade::is_upgrade_request(&req) {
            return status(&Status::bad_request(
                "watching a session needs a WebSocket upgrade",
            ));
        }
        let Some(joined) = recording.observe().await else {
            return status(&Status::api_error(
                410,
                "Gone",
                format!(
                    "session \"{}\" can no longer be watched: it ended, or its recording stopped",
                    s.record.session_id
                ),
            ));
        };
        let (response, upgrade) = match fastwebsockets::upgrade::upgrade(&mut req) {
            Ok(x) => x,
            Err(e) => return status(&Status::bad_request(format!("unable to upgrade: {e}"))),
        };
        self.audit("session_observed", who, peer, &s, None);
        let observer = who.user().to_string();
        let keepalive = self.sessions.settings.keepalive;
        let shutdown = self.sessions.shutdown.clone();
        let audit_end = ObserveEnd {
            sessions: self.sessions.clone(),
            who: who.clone(),
            peer,
        };
        self.sessions.tasks.spawn(async move {
            let Ok(ws) = upgrade.await else { return };
            s.control.tell(format!(
                "podgate: {observer} started watching this session (read-only)"
            ));
            let why = tokio::select! {
                why = pump(ws, joined, keepalive) => why,
                () = shutdown.cancelled() => "the gateway is shutting down",
            };
            tracing::info!(session_id = %s.record.session_id, observer = %observer, "observer left: {why}");
            s.control.tell(format!("podgate: {observer} stopped watching this session"));
            audit_end.done(&s);
        });
        crate::http::boxed_empty(response)
    }
}

/// The audit line when an observer leaves.
struct ObserveEnd {
    sessions: Arc<Sessions>,
    who: Identity,
    peer: Option<SocketAddr>,
}

impl ObserveEnd {
    fn done(&self, s: &LiveSession) {
        let r = &s.record;
        self.sessions.audit.event(
            "session_observe_end",
            &Audited {
                operator: self.who.user(),
                operator_groups: self.who.groups().iter().map(|g| g.as_str()).collect(),
                source: self.peer.map(|p| p.to_string()).unwrap_or_default(),
                session_id: &r.session_id,
                user: &r.user,
                cluster: &r.cluster,
                namespace: &r.namespace,
                pod: &r.pod,
                reason: None,
                time: crate::session::audit::timestamp(std::time::SystemTime::now()),
            },
        );
    }
}

/// `?reason=` as a person may be shown it: decoded, without control characters, bounded.
fn reason(query: Option<&str>) -> Option<String> {
    let raw = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "reason")
        .map(|(_, v)| v.into_owned())?;
    let clean: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .take(REASON_LIMIT)
        .collect();
    let clean = clean.trim().to_string();
    (!clean.is_empty()).then_some(clean)
}

type Upgraded = fastwebsockets::WebSocket<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;

/// The largest frame an observer may send (its frames are dropped: only its close matters).
const OBSERVER_FRAME_LIMIT: usize = 64 << 10;

/// Sends the recording so far, then each new line, until the session ends, the observer
/// leaves or falls behind; says why it stopped.
async fn pump(
    ws: Upgraded,
    mut joined: crate::recording::recorder::Joined,
    keepalive: std::time::Duration,
) -> &'static str {
    let (mut rx, mut tx) = crate::session::relay::io::split(ws, fastwebsockets::Role::Server);
    // An observer's frames are dropped unread, so none needs to be large: a bound keeps what
    // one can make the gateway buffer small (the reader refuses a larger frame by its header).
    rx.set_max_message_size(OBSERVER_FRAME_LIMIT);
    let (reader, len) = &mut joined.so_far;
    // The recording so far, line by line (it is whole lines up to `len`).
    let mut so_far = tokio::io::BufReader::new(reader.take(*len));
    let mut line = Vec::new();
    loop {
        line.clear();
        match tokio::io::AsyncBufReadExt::read_until(&mut so_far, b'\n', &mut line).await {
            Ok(0) => break,
            Ok(_) => {
                let text = line.strip_suffix(b"\n").unwrap_or(&line).to_vec();
                if tx
                    .write_frame(Frame::text(Payload::Owned(text)))
                    .await
                    .is_err()
                {
                    return "the connection failed";
                }
            }
            Err(_) => return "the recording could not be read",
        }
    }
    let mut ping = tokio::time::interval(keepalive);
    ping.tick().await;
    // The observer's frames: only its close (and pongs) matter; whatever it types is dropped.
    let reading = async {
        let mut nothing = |_: Frame<'static>| async { Ok::<(), std::io::Error>(()) };
        loop {
            match rx.read_frame(&mut nothing).await {
                Ok(f) if f.opcode == OpCode::Close => return None,
                Ok(_) => {}
                Err(fastwebsockets::WebSocketError::FrameTooLarge) => {
                    return Some("the observer sent a frame of 64 KiB or more");
                }
                Err(_) => return None,
            }
        }
    };
    tokio::pin!(reading);
    let mut refused = false;
    let why = loop {
        tokio::select! {
            next = joined.lines.next() => match next {
                Some(l) => {
                    let text = l.strip_suffix(b"\n").unwrap_or(&l).to_vec();
                    if tx.write_frame(Frame::text(Payload::Owned(text))).await.is_err() {
                        return "the connection failed";
                    }
                }
                None if joined.lines.fell_behind() => break "the observer fell behind",
                None => break "the session ended",
            },
            _ = ping.tick() => {
                if tx.write_frame(Frame::new(true, OpCode::Ping, None, Payload::Borrowed(b"podgate"))).await.is_err() {
                    return "the connection failed";
                }
            }
            too_large = &mut reading => match too_large {
                Some(why) => {
                    refused = true;
                    break why;
                }
                None => return "the observer closed",
            },
        }
    };
    let code = match why {
        "the session ended" => 1000,
        _ if refused => 1009,
        _ => 1013,
    };
    let _ = tx.write_frame(Frame::close(code, why.as_bytes())).await;
    if refused {
        // The refused frame's payload is unread: dropping the connection now would answer
        // with a TCP reset, on which the observer's kernel may discard our close unread.
        tokio::time::sleep(crate::session::relay::OUT_OF_STEP_HOLD).await;
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_decoded_cleaned_and_bounded() {
        assert_eq!(reason(None), None);
        assert_eq!(reason(Some("reason=")), None);
        assert_eq!(
            reason(Some("x=1&reason=incident%20%23412")).as_deref(),
            Some("incident #412")
        );
        assert_eq!(
            reason(Some("reason=a%0A2026-01-01%20INFO%1B%5B2J")).as_deref(),
            Some("a2026-01-01 INFO[2J")
        );
        let long = format!("reason={}", "x".repeat(1000));
        assert_eq!(reason(Some(&long)).map(|r| r.len()), Some(REASON_LIMIT));
    }
}
