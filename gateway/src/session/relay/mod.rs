//! One exec/attach session's frames, both ways, in a single task.
//!
//! [`Relay`] has one method per direction ([`client_to_upstream`](Relay::client_to_upstream),
//! [`upstream_to_client`](Relay::upstream_to_client)), a keepalive pinger and the policy
//! timers; [`run`] polls them in one `select!`, and once the first of them ends, finishes the
//! session by the rules in [`ending`]: the client is told what it was not told yet, the
//! cluster is sent a close, and the client's close reply is awaited (bounded) so the last
//! frames are not lost to a TCP reset while the client still sends. Frames are read by
//! [`reader::FrameReader`], which takes a frame out of its buffer only when it is whole (so a
//! cancelled read loses nothing) and holds no buffer between frames (so an idle shell costs no
//! read buffer); everything of a session is dropped together when `run` returns, so nothing of
//! it outlives it.
//!
//! A message read is written to the other side before the next one is read: at most one
//! message per direction is in the gateway's hands, and it is never larger than
//! `max_message` however it was fragmented, so a client that stops reading stops the
//! upstream reader, TCP pushes back to the pod, and the session's memory stays bounded. There
//! is no queue between reader and writer: a queue in the same task cost a self-wake, a copy and
//! a poll of every future of the session per frame (profile in BENCHMARKS.md).
//!
//! Generic over the two streams ([`Io`]), so every ending is tested on in-memory pipes with
//! paused time (`tests.rs`).

pub mod deadlines;
pub mod ending;
pub(crate) mod frames;
pub mod io;
pub(crate) mod reader;

pub use ending::{Ending, Policy, Verdict};
pub use frames::encoded;
pub use io::Io;

use super::SessionSettings;
use super::registry::{Clock, LiveSession};
use crate::session::log_scope::session_log;
use crate::tap::{Stream, Tap};
use deadlines::{Next, Now, Words, close_reason};
use fastwebsockets::{Frame, OpCode, Role, WebSocket, WebSocketError};
use frames::{Forward, relay_frame};
use io::{
    ClientWriteError, Liveness, ReadError, Reader, Writer, keepalive, next_message, to_client,
};
use podgate_metrics::Direction;
use podgate_protocol::message::Assembler;
use podgate_protocol::{Protocol, TerminalSize, frame};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long the closing messages may take to reach a client, and its close reply to come
/// back, before the connection is dropped anyway.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long a close frame to the cluster may take; the session ends either way.
const UPSTREAM_CLOSE: Duration = Duration::from_secs(1);
/// How long a client's connection is held after a frame refused by its header (the stream
/// cannot be read on), so the client reads our close before the connection is dropped.
pub(crate) const OUT_OF_STEP_HOLD: Duration = Duration::from_secs(1);
/// How an exec or attach session names itself in its endings.
const EXEC_WORDS: Words = Words {
    closed: "podgate: session closed",
    idle: "without input or output",
    after_shutdown: "reconnect to get a new session",
};

/// What a relay needs besides the two WebSockets.
pub struct Params<'a> {
    pub client_protocol: Protocol,
    pub upstream_protocol: Protocol,
    pub settings: &'a SessionSettings,
    pub session: &'a LiveSession,
    pub tap: Option<&'a dyn Tap>,
    pub shutdown: &'a CancellationToken,
    /// Names the cluster in what the client is told.
    pub cluster: &'a str,
}

/// Runs a session until it ends and says how.
///
/// Not an `async fn`: the two WebSockets are split before the future is made, so the future
/// holds their halves only, not room for the WebSockets too (an idle session's size).
pub fn run<C: Io, U: Io>(
    client: WebSocket<C>,
    upstream: WebSocket<U>,
    p: Params<'_>,
) -> impl Future<Output = Ending> {
    let (mut c_read, c_write) = io::split(client, Role::Server);
    let (mut u_read, u_write) = io::split(upstream, Role::Client);
    // The reader refuses a frame of `max` bytes or more before reading its payload (as
    // fastwebsockets does); the assembler bounds the whole message at exactly `max_message`.
    let per_frame = p.settings.max_message.saturating_add(1);
    c_read.set_max_message_size(per_frame);
    u_read.set_max_message_size(per_frame);
    let started = Instant::now();
    let relay = Relay {
        client: Writer::new(c_write),
        upstream: Writer::new(u_write),
        live: Liveness {
            alive: Clock::new(started),
            keepalive: p.settings.keepalive,
        },
        started,
        verdict: Mutex::new(None),
        client_fault: Mutex::new(None),
        output_offset: AtomicU64::new(0),
        p,
    };
    // The readers live here and the relay's futures borrow them: moved into `drive` they
    // would take room twice (an argument's slot is not reused).
    async move { relay.drive(&mut c_read, &mut u_read).await }
}

pub struct Relay<'a, C: Io, U: Io> {
    client: Writer<C>,
    upstream: Writer<U>,
    live: Liveness,
    started: Instant,
    /// What the cluster said on the error stream.
    verdict: Mutex<Option<Verdict>>,
    /// Why a write the client reader was obliged to make (a pong, a close echo) failed.
    client_fault: Mutex<Option<ClientWriteError>>,
    /// Output bytes (stdout and stderr) so far: the tap's offsets.
    output_offset: AtomicU64,
    p: Params<'a>,
}

/// Which side an ending came from decides how the session is finished.
fn from_upstream(e: &Ending) -> bool {
    matches!(
        e,
        Ending::UpstreamClosed | Ending::UpstreamLost(_) | Ending::UpstreamError(_)
    )
}

impl<C: Io, U: Io> Relay<'_, C, U> {
    async fn drive(&self, c_read: &mut Reader<C>, u_read: &mut Reader<U>) -> Ending {
        let first = {
            let mut c2u = std::pin::pin!(self.client_to_upstream(&mut *c_read));
            let u2c = self.upstream_to_client(u_read);
            let first = tokio::select! {
                e = &mut c2u => e,
                e = u2c => e,
                e = self.timers() => e,
            };
            if matches!(first, Ending::Policy { .. }) || from_upstream(&first) {
                // Everything the cluster sent is written; say what is left, then close, and
                // let the client's reader run until its close reply (it discards stdin
                // meanwhile).
                let ending = Ending::decide(first, self.verdict());
                Box::pin(self.finish_client(&ending)).await;
                self.close_upstream(1000).await;
                let _ = tokio::time::timeout(CLOSE_GRACE, &mut c2u).await;
                return self.ended(ending);
            }
            first
        };
        if let Ending::ClientError {
            code,
            reason,
            consumed,
        } = &first
        {
            let reason = close_reason(reason);
            let _ = tokio::time::timeout(
                CLOSE_GRACE,
                to_client(
                    &self.client,
                    Frame::close(*code, reason.as_bytes()),
                    &self.live,
                ),
            )
            .await;
            self.close_upstream(1000).await;
            // The client may still be sending (a flood of fragments): dropping the connection
            // with its bytes unread would answer with a TCP reset, on which the client's
            // kernel may discard our close before it is read. So read on, dropping what comes,
            // until its close reply. After a frame refused by its header the stream is out of
            // step and cannot be read: hold the connection a moment instead.
            if *consumed {
                let _ = tokio::time::timeout(CLOSE_GRACE, io::drain(c_read)).await;
            } else {
                tokio::time::sleep(OUT_OF_STEP_HOLD).await;
            }
        } else {
            self.close_upstream(1000).await;
        }
        let ending = Ending::decide(first, self.verdict());
        self.ended(ending)
    }

    /// The session is over: the tap's last word.
    fn ended(&self, ending: Ending) -> Ending {
        if let Some(tap) = self.p.tap {
            tap.ended(&crate::tap::Ended {
                outcome: ending.outcome(),
                exit_code: ending.exit_code(),
                message: ending.message().map(str::to_string),
            });
        }
        ending
    }

    fn verdict(&self) -> Option<Verdict> {
        self.verdict
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Tells the client what the cluster did not, then closes its side.
    async fn finish_client(&self, ending: &Ending) {
        finish_client(
            &self.client,
            &self.live,
            self.p.client_protocol,
            self.p.tap,
            ending,
        )
        .await;
    }

    /// Writes `text` into the person's terminal (stdout with a terminal, where there is no
    /// stderr; stderr without, so piped output stays clean), and marks it for the tap (it is
    /// not output of the session, and counts in no offset).
    async fn tell(&self, text: &str) {
        if let Some(tap) = self.p.tap {
            tap.notice(text);
        }
        let stream = if self.p.session.record.tty {
            frame::STDOUT
        } else {
            frame::STDERR
        };
        let line = format!("\r\n[{text}]\r\n");
        let f = encoded(self.p.client_protocol, stream, line.as_bytes());
        let _ = tokio::time::timeout(CLOSE_GRACE, to_client(&self.client, f, &self.live)).await;
    }

    /// Sends the cluster a close (once, bounded): its side of the session is over.
    async fn close_upstream(&self, code: u16) {
        let _ =
            tokio::time::timeout(UPSTREAM_CLOSE, self.upstream.send(Frame::close(code, b""))).await;
    }

    /// Client → cluster. Ends only with the client: a close, a broken connection, a protocol
    /// error, or a client that stopped taking even the pongs it is owed. A failed write
    /// towards the cluster is not an ending (the cluster may have finished and closed while
    /// stdin still flows): the rest of the client's messages are dropped, and the session
    /// ends when the cluster's side does.
    async fn client_to_upstream(&self, reader: &mut Reader<C>) -> Ending {
        let mut assembler = Assembler::new(self.p.settings.max_message);
        let mut obligated = |f: Frame<'static>| async move {
            to_client(&self.client, f, &self.live).await.map_err(|e| {
                *self
                    .client_fault
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(e);
                std::io::Error::other("writing to the client failed")
            })
        };
        loop {
            wait_for_tap(
                self.p.tap,
                true,
                &self.live.alive,
                self.p.settings.keepalive,
            )
            .await;
            let f = match next_message(reader, &mut assembler, &mut obligated).await {
                Ok(f) => f,
                Err(ReadError::Message(e)) => {
                    return Ending::ClientError {
                        code: e.close_code(),
                        reason: format!("podgate: {e}"),
                        consumed: true,
                    };
                }
                Err(ReadError::Ws(WebSocketError::SendError(_))) => {
                    return match *self
                        .client_fault
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                    {
                        Some(ClientWriteError::Unresponsive) => Ending::ClientUnresponsive,
                        _ => Ending::ClientClosed,
                    };
                }
                Err(ReadError::Ws(e)) => return client_read_error(&e, self.p.settings.max_message),
            };
            match f.opcode {
                OpCode::Close => return Ending::ClientClosed,
                OpCode::Pong => self.live.alive.touch(),
                OpCode::Text | OpCode::Binary => {
                    forward_input(
                        f,
                        self.p.client_protocol,
                        self.p.upstream_protocol,
                        &self.upstream,
                        self.p.session,
                        self.p.tap,
                    )
                    .await;
                }
                _ => {}
            }
        }
    }

    /// Cluster → client: every message, in order, until the cluster's stream ends.
    async fn upstream_to_client(&self, reader: &mut Reader<U>) -> Ending {
        let mut assembler = Assembler::new(self.p.settings.max_message);
        // Pongs the cluster is owed, and the echo of its close (unless ours went first). Best
        // effort: a connection that cannot take them fails the next read, and the cluster's
        // close must not be lost to a failed echo.
        let mut obligated = |f: Frame<'static>| async move {
            let _ = self.upstream.send(f).await;
            Ok::<(), std::io::Error>(())
        };
        loop {
            wait_for_tap(
                self.p.tap,
                false,
                &self.live.alive,
                self.p.settings.keepalive,
            )
            .await;
            let f = match next_message(reader, &mut assembler, &mut obligated).await {
                Ok(f) => f,
                Err(ReadError::Message(e)) => {
                    self.close_upstream(e.close_code()).await;
                    return Ending::UpstreamError(format!(
                        "podgate: the session with cluster \"{}\" failed: the cluster broke the protocol ({e})",
                        self.p.cluster
                    ));
                }
                Err(ReadError::Ws(e)) => return upstream_read_error(self.p.cluster, &e),
            };
            match f.opcode {
                OpCode::Close => return Ending::UpstreamClosed,
                OpCode::Text | OpCode::Binary => {
                    self.p.session.activity.touch();
                    let mut seen = |stream: u8, data: &[u8]| match stream {
                        frame::STDOUT | frame::STDERR => {
                            let (direction, tapped) = if stream == frame::STDOUT {
                                (Direction::Stdout, Stream::Stdout)
                            } else {
                                (Direction::Stderr, Stream::Stderr)
                            };
                            self.p.session.metrics.add(direction, data.len() as u64);
                            if let Some(tap) = self.p.tap {
                                let offset =
                                    self.output_offset.fetch_add(data.len() as u64, Relaxed);
                                tap.output(tapped, offset, data);
                            }
                        }
                        frame::STATUS if !data.is_empty() => {
                            let v =
                                ending::verdict(self.p.upstream_protocol.has_status_json(), data);
                            *self.verdict.lock().unwrap_or_else(PoisonError::into_inner) = Some(v);
                        }
                        _ => {}
                    };
                    match relay_frame(
                        f,
                        self.p.upstream_protocol,
                        self.p.client_protocol,
                        &mut seen,
                    ) {
                        Forward::Frame(out) => match to_client(&self.client, out, &self.live).await
                        {
                            Ok(()) => self.live.alive.touch(),
                            Err(ClientWriteError::Unresponsive) => {
                                return Ending::ClientUnresponsive;
                            }
                            Err(ClientWriteError::Failed) => return Ending::ClientClosed,
                        },
                        Forward::CloseUpstream | Forward::Drop => {}
                    }
                }
                _ => {}
            }
        }
    }

    /// The session's clock: pings the client every `keepalive` (ending the session when it
    /// has shown no sign of life for too long), and the gateway's own reasons to end it
    /// (timeouts, shutdown, an expired or revoked credential). One timer for all deadlines,
    /// so the relay's task polls three futures here per wake, not one per deadline.
    async fn timers(&self) -> Ending {
        let settings = self.p.settings;
        let control = &self.p.session.control;
        let mut next_ping = self.started + settings.keepalive;
        let (policy, message) = loop {
            let now = Now {
                now: Instant::now(),
                started: self.started,
                activity: self.p.session.activity.get(),
                expires_at: control.expires_at(),
                unix: deadlines::unix_now(),
                next_ping,
            };
            match deadlines::next(settings, &now, &EXEC_WORDS) {
                Next::End(policy, message) => break (policy, message),
                // The ping and the notice are boxed: they are rare, and inline they would
                // be most of the session's resting size (see BENCHMARKS.md, idle memory).
                Next::Ping => {
                    if let Err(e) = Box::pin(keepalive(&self.client, &self.live)).await {
                        return e.ending();
                    }
                    next_ping = Instant::now().max(next_ping) + settings.keepalive;
                }
                Next::Sleep(wake) => tokio::select! {
                    _ = tokio::time::sleep_until(wake) => {}
                    _ = self.p.shutdown.cancelled() => break deadlines::shutdown(&EXEC_WORDS),
                    (stop, why) = control.stopped() => break (deadlines::stopped(stop), why),
                    text = control.next_notice() => {
                        Box::pin(self.tell(&text)).await;
                    }
                },
            }
        };
        session_log!(INFO, "{message}");
        Ending::Policy { policy, message }
    }
}

/// One message from the client toward the cluster: counted, shown to the tap, translated and
/// sent. A write that fails is not an ending (rule 3): the rest of the client's messages are
/// dropped and the cluster's side tells how the session ends.
pub(crate) async fn forward_input<U: Io>(
    f: Frame<'static>,
    from: Protocol,
    to: Protocol,
    upstream: &Writer<U>,
    session: &LiveSession,
    tap: Option<&dyn Tap>,
) {
    session.activity.touch();
    let mut seen = |stream: u8, data: &[u8]| match stream {
        frame::STDIN => {
            session.metrics.add(Direction::Stdin, data.len() as u64);
            if let Some(tap) = tap {
                tap.input(data);
            }
        }
        frame::RESIZE => {
            if let (Some(tap), Ok(size)) = (tap, TerminalSize::parse(data)) {
                tap.resize(size);
            }
        }
        _ => {}
    };
    let sent = match relay_frame(f, from, to, &mut seen) {
        Forward::Frame(out) => upstream.send(out).await,
        Forward::CloseUpstream => upstream.send(Frame::close(1000, b"")).await,
        Forward::Drop => Ok(true),
    };
    if let Err(e) = sent {
        session_log!(DEBUG, "stdin to the cluster not delivered: {e}");
        upstream.mark_closed().await;
    }
}

/// Waits while the tap cannot take more (a required recording whose disk is behind). Not
/// reading the client on purpose (`for_input`) counts as the client's sign of life.
pub(crate) async fn wait_for_tap(
    tap: Option<&dyn Tap>,
    for_input: bool,
    alive: &Clock,
    keepalive: Duration,
) {
    let Some(tap) = tap else { return };
    loop {
        let Some(drained) = tap.backlog(for_input) else {
            return;
        };
        let wake = drained.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        if tap.backlog(for_input).is_none() {
            return;
        }
        if for_input {
            alive.touch();
        }
        tokio::select! {
            () = wake => {}
            () = tokio::time::sleep(keepalive) => {}
        }
    }
}

/// How a failed read of the cluster ends the session: lost (a reset, an EOF without a close)
/// or broken.
pub(crate) fn upstream_read_error(cluster: &str, e: &WebSocketError) -> Ending {
    let cause = match e {
        WebSocketError::UnexpectedEOF => {
            "it closed the connection without ending the stream".to_string()
        }
        WebSocketError::IoError(io) => format!("{io}"),
        other => format!("{other}"),
    };
    let message = format!(
        "podgate: lost the connection to cluster \"{cluster}\" before the command's exit status arrived ({cause})"
    );
    session_log!(INFO, "{message}");
    match e {
        WebSocketError::UnexpectedEOF
        | WebSocketError::IoError(_)
        | WebSocketError::ConnectionClosed => Ending::UpstreamLost(message),
        _ => Ending::UpstreamError(message),
    }
}

/// Tells the client what the cluster did not (a lost connection, the gateway's policy), then
/// closes its side; bounded by [`CLOSE_GRACE`]. Exec sessions, resumable or not, end this way.
pub(crate) async fn finish_client<C: Io>(
    client: &Writer<C>,
    live: &Liveness,
    protocol: Protocol,
    tap: Option<&dyn Tap>,
    ending: &Ending,
) {
    let (notice, code) = match ending.notice() {
        Some((status, code)) => (Some(status), code),
        None => (None, 1000),
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        if let Some(status) = &notice {
            let message = status.message.clone().unwrap_or_default();
            if let Some(tap) = tap {
                tap.notice(&message);
            }
            let body = if protocol.has_status_json() {
                status.to_json()
            } else {
                message.clone().into_bytes()
            };
            let f = encoded(protocol, frame::STATUS, &body);
            to_client(client, f, live).await?;
        }
        let reason = notice
            .as_ref()
            .and_then(|s| s.message.as_deref())
            .map(close_reason)
            .unwrap_or_default();
        to_client(client, Frame::close(code, reason.as_bytes()), live).await
    })
    .await;
}

pub(crate) fn client_read_error(e: &WebSocketError, limit: usize) -> Ending {
    match e {
        WebSocketError::UnexpectedEOF
        | WebSocketError::ConnectionClosed
        | WebSocketError::IoError(_) => Ending::ClientClosed,
        // One frame over the limit, refused before its payload was read.
        WebSocketError::FrameTooLarge => {
            let e = podgate_protocol::message::AssembleError::TooBig { limit };
            Ending::ClientError {
                code: e.close_code(),
                reason: format!("podgate: {e}"),
                consumed: false,
            }
        }
        // A whole text frame that is not UTF-8: read, so the stream is in step.
        WebSocketError::InvalidUTF8 => Ending::ClientError {
            code: 1007,
            reason: format!("podgate: {e}"),
            consumed: true,
        },
        other => Ending::ClientError {
            code: 1002,
            reason: format!("podgate: {other}"),
            consumed: false,
        },
    }
}

#[cfg(test)]
pub(crate) mod tests;
