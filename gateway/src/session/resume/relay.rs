//! One resumable exec/attach session: the cluster side runs for the whole session, pages come
//! and go.
//!
//! Three parts, polled by one task:
//! - the **pump** reads the cluster, keeps the verdict, and appends output to the session's
//!   [`Ring`] (waiting for room when it is full: the program waits, as on a paused terminal);
//! - an **attachment** serves one page connection: output from the ring from the page's
//!   offset on, stdin and resizes to the cluster, acknowledgements back into the ring, the
//!   keepalive, the heartbeat and the session's policy timers;
//! - between attachments the session **waits** for a resume, up to the window.
//!
//! The pump is never cancelled while the session runs (fastwebsockets' reads are not
//! cancel-safe, and the cluster side must outlive pages); an attachment is dropped whole when
//! its connection is gone. The ending rules are the plain relay's: the cluster's verdict wins,
//! a failure is never relayed as success, and an exit status the cluster sent reaches the page
//! that comes back for it within the window.

use super::control::{self, FromPage, ToPage};
use super::ring::{PIECE, Resumption, Ring};
use super::store::Registration;
use super::{Attach, ResumeSettings};
use crate::session::SessionSettings;
use crate::session::audit::Audit;
use crate::session::log_scope::session_log;
use crate::session::registry::{Clock, LiveSession};
use crate::session::relay::deadlines::{self, Next, Now, Words, close_reason};
use crate::session::relay::ending::{self, Ending, Verdict};
use crate::session::relay::io::{
    self, ClientWriteError, Io, Liveness, ReadError, Reader, Writer, keepalive, next_message,
    split, to_client,
};
use crate::session::relay::{
    CLOSE_GRACE, client_read_error, encoded, finish_client, forward_input, upstream_read_error,
    wait_for_tap,
};
use crate::tap::{Stream, Tap};
use fastwebsockets::{Frame, OpCode, Role, WebSocket, WebSocketError};
use podgate_metrics::{Direction, ResumeFailure, ResumeMetrics};
use podgate_protocol::message::Assembler;
use podgate_protocol::{Protocol, frame};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const UPSTREAM_CLOSE: Duration = Duration::from_secs(1);
/// How long a refused resume's connection may take to read why.
const REFUSAL_GRACE: Duration = Duration::from_secs(2);
const WORDS: Words = Words {
    closed: "podgate: session closed",
    idle: "without input or output",
    after_shutdown: "reconnect to get a new session",
};
/// The page's side is always v5: resume is offered on nothing else.
const PAGE: Protocol = Protocol::V5;

/// What a resumable relay needs besides the two WebSockets.
pub struct Params<'a, C: Io> {
    pub upstream_protocol: Protocol,
    pub settings: &'a SessionSettings,
    pub resume: &'a ResumeSettings,
    pub metrics: &'a ResumeMetrics,
    pub audit: &'a Audit,
    pub session: &'a LiveSession,
    pub tap: Option<&'a dyn Tap>,
    pub shutdown: &'a CancellationToken,
    pub cluster: &'a str,
    pub registration: Registration<C>,
}

/// Runs a resumable session until it ends and says how.
pub async fn run<C: Io, U: Io>(
    client: WebSocket<C>,
    upstream: WebSocket<U>,
    p: Params<'_, C>,
) -> Ending {
    let (mut u_read, u_write) = split(upstream, Role::Client);
    u_read.set_max_message_size(p.settings.max_message.saturating_add(1));
    let Params {
        upstream_protocol,
        settings,
        resume,
        metrics,
        audit,
        session,
        tap,
        shutdown,
        cluster,
        registration,
    } = p;
    let mut registration = registration;
    let reg = &mut registration;
    let (slot, attached, credential) = (&reg.slot, &mut reg.attached, &reg.credential);
    let relay = Relay {
        upstream: Writer::new(u_write),
        upstream_protocol,
        settings,
        resume,
        metrics,
        audit,
        session,
        tap,
        shutdown,
        cluster,
        slot_give_way: &slot.give_way,
        credential,
        started: Instant::now(),
        out: Output {
            ring: Mutex::new(Ring::new(resume.buffer)),
            produced: Notify::new(),
            room: Notify::new(),
            sent: AtomicU64::new(0),
            attached: AtomicBool::new(true),
            upstream_end: Mutex::new(None),
            status: Mutex::new(None),
            verdict: Mutex::new(None),
        },
    };
    let ending = {
        let pump = async {
            let e = relay.pump(&mut u_read).await;
            *lock(&relay.out.upstream_end) = Some(e);
            relay.out.produced.notify_waiters();
            std::future::pending::<()>().await
        };
        let attachments = relay.attachments(client, attached, |waiting| slot.set_waiting(waiting));
        tokio::select! {
            () = pump => unreachable_pending(),
            e = attachments => e,
        }
    };
    let _ =
        tokio::time::timeout(UPSTREAM_CLOSE, relay.upstream.send(Frame::close(1000, b""))).await;
    if let Some(tap) = relay.tap {
        tap.ended(&crate::tap::Ended {
            outcome: ending.outcome(),
            exit_code: ending.exit_code(),
            message: ending.message().map(str::to_string),
        });
    }
    drop(relay);
    drop(registration);
    ending
}

/// `pending()` never resolves; this names the arm that cannot be taken.
fn unreachable_pending() -> Ending {
    Ending::UpstreamError("podgate: internal error: the cluster reader stopped".into())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Output on its way from the pump to pages.
struct Output {
    ring: Mutex<Ring>,
    /// Output was appended, or the cluster side ended.
    produced: Notify,
    /// Room may have appeared (an acknowledgement, output sent, a page gone).
    room: Notify,
    /// What the attached page was sent so far.
    sent: AtomicU64,
    attached: AtomicBool,
    /// How the cluster side ended, once it did.
    upstream_end: Mutex<Option<Ending>>,
    /// The cluster's status message (stream 3), as it sent it, for the page.
    status: Mutex<Option<Vec<u8>>>,
    verdict: Mutex<Option<Verdict>>,
}

struct Relay<'a, U: Io> {
    upstream: Writer<U>,
    upstream_protocol: Protocol,
    settings: &'a SessionSettings,
    resume: &'a ResumeSettings,
    metrics: &'a ResumeMetrics,
    audit: &'a Audit,
    session: &'a LiveSession,
    tap: Option<&'a dyn Tap>,
    shutdown: &'a CancellationToken,
    cluster: &'a str,
    slot_give_way: &'a CancellationToken,
    credential: &'a str,
    started: Instant,
    out: Output,
}

/// How one attachment ended.
enum Attachment<C> {
    /// The session is over.
    Over(Ending),
    /// The connection is gone without a close: wait for a resume.
    Dropped(&'static str),
    /// A resume took over; it continues from there.
    TakenOver(Attach<C>, Resumption),
}

/// How the page side of an attachment ended.
enum PageEnd {
    /// A close frame: the page ended the session.
    Closed,
    Lost(&'static str),
    Broke {
        code: u16,
        reason: String,
        consumed: bool,
    },
}

#[derive(serde::Serialize)]
struct DropRecord<'a> {
    #[serde(flatten)]
    session: &'a crate::session::audit::SessionRecord,
    reason: &'a str,
    output_offset: u64,
    window_seconds: u64,
}

#[derive(serde::Serialize)]
struct ResumeRecord<'a> {
    #[serde(flatten)]
    session: &'a crate::session::audit::SessionRecord,
    resume_source: String,
    offset: u64,
    gap: u64,
    replayed: u64,
}

impl<U: Io> Relay<'_, U> {
    /// Pages, one after the other, until the session is over.
    async fn attachments<C: Io>(
        &self,
        first: WebSocket<C>,
        attached: &mut tokio::sync::mpsc::Receiver<Attach<C>>,
        set_waiting: impl Fn(bool),
    ) -> Ending {
        let mut conn = first;
        let mut greeting = Greeting::Hello;
        let mut from = 0;
        loop {
            self.out.sent.store(from, Relaxed);
            self.out.attached.store(true, Relaxed);
            let end = self.attached(conn, greeting, from, attached).await;
            self.out.attached.store(false, Relaxed);
            self.out.room.notify_waiters();
            let (next, resumption) = match end {
                Attachment::Over(e) => return e,
                Attachment::TakenOver(a, r) => (a, r),
                Attachment::Dropped(why) => {
                    let window = self.resume.window.unwrap_or_default();
                    self.audit.event(
                        "session_dropped",
                        &DropRecord {
                            session: &self.session.record,
                            reason: why,
                            output_offset: lock(&self.out.ring).end(),
                            window_seconds: window.as_secs(),
                        },
                    );
                    session_log!(
                        INFO,
                        "client connection dropped ({why}); waiting {window:?} for a resume"
                    );
                    self.metrics.waiting(1);
                    set_waiting(true);
                    let r = self.wait_for_resume(attached, window).await;
                    set_waiting(false);
                    self.metrics.waiting(-1);
                    match r {
                        Ok(x) => x,
                        Err(e) => return e,
                    }
                }
            };
            let replayed = lock(&self.out.ring).end() - resumption.from;
            self.metrics.succeeded(replayed, resumption.gap);
            self.audit.event(
                "session_resumed",
                &ResumeRecord {
                    session: &self.session.record,
                    resume_source: next.source.map(|a| a.to_string()).unwrap_or_default(),
                    offset: next.offset,
                    gap: resumption.gap,
                    replayed,
                },
            );
            session_log!(
                INFO,
                offset = next.offset,
                gap = resumption.gap,
                replayed,
                "session resumed"
            );
            conn = next.client;
            greeting = Greeting::Resumed(resumption);
            from = resumption.from;
        }
    }

    /// Waits for a resume that can be served, up to `window`, the session's own deadlines
    /// and its giving way to a new session.
    async fn wait_for_resume<C: Io>(
        &self,
        attached: &mut tokio::sync::mpsc::Receiver<Attach<C>>,
        window: Duration,
    ) -> Result<(Attach<C>, Resumption), Ending> {
        let deadline = Instant::now() + window;
        let mut timers = std::pin::pin!(self.timers::<C>(None));
        loop {
            tokio::select! {
                // A session chosen to give way has given its budget back already: it must
                // not take a resume that arrives at the same moment.
                biased;
                () = self.slot_give_way.cancelled() => {
                    return Err(Ending::ResumeWindowExpired(
                        "podgate: the session waited for its client and gave way to a new session (sessions.resume_buffer_total is taken)".into(),
                    ));
                }
                a = attached.recv() => {
                    let Some(a) = a else {
                        return Err(Ending::ResumeWindowExpired(
                            "podgate: the session could no longer be resumed".into(),
                        ));
                    };
                    if let Some(r) = self.admit(a).await {
                        return Ok(r);
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    return Err(Ending::ResumeWindowExpired(format!(
                        "podgate: the client's connection dropped and it did not come back within {}s (sessions.resume_window)",
                        window.as_secs()
                    )));
                }
                t = &mut timers => match t {
                    Timer::End(e) => return Err(e),
                    // Without a page nothing is written, so nothing is lost.
                    Timer::Lost(why) => return Err(Ending::ResumeWindowExpired(why.into())),
                },
            }
        }
    }

    /// Whether `a`'s offset can be served; a resume that cannot is told why and closed.
    async fn admit<C: Io>(&self, a: Attach<C>) -> Option<(Attach<C>, Resumption)> {
        let r = lock(&self.out.ring).replay_from(a.offset);
        match r {
            Ok(r) => Some((a, r)),
            Err(beyond) => {
                self.metrics.failed(ResumeFailure::BadRequest);
                let message = format!(
                    "podgate: offset {} is past the session's output ({} bytes)",
                    a.offset, beyond.end
                );
                refuse(a.client, ResumeFailure::BadRequest, &message).await;
                None
            }
        }
    }

    /// Serves one page connection until it ends, the session ends, or a resume takes over.
    async fn attached<C: Io>(
        &self,
        conn: WebSocket<C>,
        greeting: Greeting,
        from: u64,
        attached: &mut tokio::sync::mpsc::Receiver<Attach<C>>,
    ) -> Attachment<C> {
        let (mut reader, writer) = split(conn, Role::Server);
        reader.set_max_message_size(self.settings.max_message.saturating_add(1));
        let page = Page {
            writer: Writer::new(writer),
            live: Liveness {
                alive: Clock::new(Instant::now()),
                keepalive: self.settings.keepalive,
            },
            fault: Mutex::new(None),
        };
        let hello = match greeting {
            Greeting::Hello => ToPage::Hello {
                session: &self.session.record.session_id,
                credential: self.credential,
                window_seconds: self.resume.window.unwrap_or_default().as_secs(),
                heartbeat_seconds: self.resume.heartbeat.as_secs().max(1),
                buffer_bytes: self.resume.buffer as u64,
                limits: control::Limits {
                    idle_timeout_seconds: self.settings.idle_timeout.map(|d| d.as_secs()),
                    max_duration_seconds: self.settings.max_duration.map(|d| d.as_secs()),
                },
            },
            Greeting::Resumed(r) => ToPage::Resumed {
                session: &self.session.record.session_id,
                offset: r.from,
                gap: r.gap,
                credential: self.credential,
            },
        };
        if to_client(&page.writer, control_frame(&hello), &page.live)
            .await
            .is_err()
        {
            return Attachment::Dropped("the greeting could not be written");
        }
        let broke = {
            let mut page_reader = std::pin::pin!(self.read_page(&mut reader, &page));
            let mut to_page = std::pin::pin!(self.to_page(&page, from));
            let mut timers = std::pin::pin!(self.timers(Some(&page)));
            loop {
                tokio::select! {
                    e = &mut page_reader => match e {
                        PageEnd::Closed => {
                            return Attachment::Over(Ending::decide(Ending::ClientClosed, self.verdict()));
                        }
                        PageEnd::Lost(why) => return Attachment::Dropped(why),
                        PageEnd::Broke { code, reason, consumed } => break (code, reason, consumed),
                    },
                    d = &mut to_page => return match d {
                        Ok(ending) => {
                            // Everything is told; the page's close reply, bounded.
                            let _ = tokio::time::timeout(CLOSE_GRACE, &mut page_reader).await;
                            Attachment::Over(ending)
                        }
                        Err(why) => Attachment::Dropped(why),
                    },
                    t = &mut timers => match t {
                        Timer::End(e) => {
                            let ending = Ending::decide(e, self.verdict());
                            finish_client(&page.writer, &page.live, PAGE, self.tap, &ending).await;
                            let _ = tokio::time::timeout(CLOSE_GRACE, &mut page_reader).await;
                            return Attachment::Over(ending);
                        }
                        Timer::Lost(why) => return Attachment::Dropped(why),
                    },
                    a = attached.recv() => {
                        let Some(a) = a else { continue };
                        if let Some((a, r)) = self.admit(a).await {
                            let close = Frame::close(1000, b"podgate: resumed on another connection");
                            let _ = tokio::time::timeout(REFUSAL_GRACE, to_client(&page.writer, close, &page.live)).await;
                            return Attachment::TakenOver(a, r);
                        }
                    }
                }
            }
        };
        // The page broke the protocol: it is told, and its stream read on (dropping what
        // comes) until its close reply, so our close is not lost to a reset. After a frame
        // refused by its header the stream cannot be read on.
        let (code, reason, consumed) = broke;
        let close = Frame::close(code, close_reason(&reason).as_bytes());
        let _ = tokio::time::timeout(CLOSE_GRACE, to_client(&page.writer, close, &page.live)).await;
        if consumed {
            let _ = tokio::time::timeout(CLOSE_GRACE, io::drain(&mut reader)).await;
        }
        Attachment::Over(Ending::decide(
            Ending::ClientError {
                code,
                reason,
                consumed,
            },
            self.verdict(),
        ))
    }

    fn verdict(&self) -> Option<Verdict> {
        lock(&self.out.verdict).clone()
    }

    /// Output from the ring to the page, from `from`; once the cluster side ended and all
    /// of it is sent, its verdict (or what the gateway must say instead) and a close.
    /// `Err`: the connection is gone.
    async fn to_page<C: Io>(&self, page: &Page<C>, from: u64) -> Result<Ending, &'static str> {
        let mut at = from;
        loop {
            let produced = self.out.produced.notified();
            let mut produced = std::pin::pin!(produced);
            produced.as_mut().enable();
            let next = lock(&self.out.ring).next_from(at);
            if let Some(p) = next {
                let stream = match p.stream {
                    Stream::Stdout => frame::STDOUT,
                    Stream::Stderr => frame::STDERR,
                };
                match to_client(&page.writer, encoded(PAGE, stream, &p.data), &page.live).await {
                    Ok(()) => page.live.alive.touch(),
                    Err(e) => return Err(lost(e)),
                }
                at = p.offset + p.data.len() as u64;
                self.out.sent.store(at, Relaxed);
                if self.resume.overwrite {
                    self.out.room.notify_waiters();
                }
                continue;
            }
            let upstream_end = lock(&self.out.upstream_end).clone();
            if let Some(first) = upstream_end {
                let status = lock(&self.out.status).clone();
                if let Some(status) = status {
                    let f = encoded(PAGE, frame::STATUS, &status);
                    to_client(&page.writer, f, &page.live).await.map_err(lost)?;
                }
                let ending = Ending::decide(first, self.verdict());
                finish_client(&page.writer, &page.live, PAGE, self.tap, &ending).await;
                return Ok(ending);
            }
            produced.await;
        }
    }

    /// The page's messages: stdin and resizes to the cluster, acknowledgements into the ring.
    async fn read_page<C: Io>(&self, reader: &mut Reader<C>, page: &Page<C>) -> PageEnd {
        let mut assembler = Assembler::new(self.settings.max_message);
        let mut obligated = |f: Frame<'static>| async move {
            to_client(&page.writer, f, &page.live).await.map_err(|e| {
                *lock(&page.fault) = Some(e);
                std::io::Error::other("writing to the client failed")
            })
        };
        loop {
            wait_for_tap(self.tap, true, &page.live.alive, self.settings.keepalive).await;
            let f = match next_message(reader, &mut assembler, &mut obligated).await {
                Ok(f) => f,
                Err(ReadError::Message(e)) => {
                    return PageEnd::Broke {
                        code: e.close_code(),
                        reason: format!("podgate: {e}"),
                        consumed: true,
                    };
                }
                Err(ReadError::Ws(WebSocketError::SendError(_))) => {
                    return PageEnd::Lost(match *lock(&page.fault) {
                        Some(ClientWriteError::Unresponsive) => "the client stopped answering",
                        _ => "writing to the client failed",
                    });
                }
                Err(ReadError::Ws(e)) => {
                    return match client_read_error(&e, self.settings.max_message) {
                        Ending::ClientError {
                            code,
                            reason,
                            consumed,
                        } => PageEnd::Broke {
                            code,
                            reason,
                            consumed,
                        },
                        _ => PageEnd::Lost("the connection was lost"),
                    };
                }
            };
            match f.opcode {
                OpCode::Close => return PageEnd::Closed,
                OpCode::Pong => page.live.alive.touch(),
                OpCode::Text | OpCode::Binary => {
                    page.live.alive.touch();
                    if f.payload.first() == Some(&control::CHANNEL) {
                        if let FromPage::Ack { offset } = FromPage::decode(&f.payload[1..]) {
                            // Never past what this page was sent.
                            let offset = offset.min(self.out.sent.load(Relaxed));
                            lock(&self.out.ring).ack(offset);
                            self.out.room.notify_waiters();
                        }
                        continue;
                    }
                    forward_input(
                        f,
                        PAGE,
                        self.upstream_protocol,
                        &self.upstream,
                        self.session,
                        self.tap,
                    )
                    .await;
                }
                _ => {}
            }
        }
    }

    /// The cluster's messages, for the whole session: output into the ring, the verdict kept.
    async fn pump(&self, reader: &mut Reader<U>) -> Ending {
        let mut assembler = Assembler::new(self.settings.max_message);
        let mut obligated = |f: Frame<'static>| async move {
            let _ = self.upstream.send(f).await;
            Ok::<(), std::io::Error>(())
        };
        let idle = Liveness {
            alive: Clock::new(Instant::now()),
            keepalive: self.settings.keepalive,
        };
        loop {
            wait_for_tap(self.tap, false, &idle.alive, self.settings.keepalive).await;
            let f = match next_message(reader, &mut assembler, &mut obligated).await {
                Ok(f) => f,
                Err(ReadError::Message(e)) => {
                    let _ = tokio::time::timeout(
                        UPSTREAM_CLOSE,
                        self.upstream.send(Frame::close(e.close_code(), b"")),
                    )
                    .await;
                    return Ending::UpstreamError(format!(
                        "podgate: the session with cluster \"{}\" failed: the cluster broke the protocol ({e})",
                        self.cluster
                    ));
                }
                Err(ReadError::Ws(e)) => return upstream_read_error(self.cluster, &e),
            };
            match f.opcode {
                OpCode::Close => return Ending::UpstreamClosed,
                OpCode::Text | OpCode::Binary => {
                    self.session.activity.touch();
                    let decoded =
                        frame::decode(self.upstream_protocol, f.opcode == OpCode::Text, &f.payload);
                    let Ok(frame::ChannelFrame::Data { stream, data }) = decoded else {
                        // Empty, malformed (skipped as kube-apiserver does) or a close signal.
                        continue;
                    };
                    match stream {
                        frame::STDOUT | frame::STDERR => {
                            let (direction, tapped) = if stream == frame::STDOUT {
                                (Direction::Stdout, Stream::Stdout)
                            } else {
                                (Direction::Stderr, Stream::Stderr)
                            };
                            self.session.metrics.add(direction, data.len() as u64);
                            if let Some(tap) = self.tap {
                                tap.output(tapped, lock(&self.out.ring).end(), &data);
                            }
                            for piece in data.chunks(PIECE) {
                                self.append(tapped, piece).await;
                                // Each piece at once: the next may wait for the page to take
                                // this one.
                                self.out.produced.notify_waiters();
                            }
                        }
                        frame::STATUS if !data.is_empty() => {
                            let v =
                                ending::verdict(self.upstream_protocol.has_status_json(), &data);
                            *lock(&self.out.verdict) = Some(v);
                            // The page speaks v5: a v1–v3 cluster's bare text becomes a Status.
                            let body = if self.upstream_protocol.has_status_json() {
                                data.to_vec()
                            } else {
                                podgate_protocol::Status::stream_failure(
                                    String::from_utf8_lossy(&data).into_owned(),
                                )
                                .to_json()
                            };
                            *lock(&self.out.status) = Some(body);
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
    }

    /// Appends one piece, waiting while the ring has no room for it.
    async fn append(&self, stream: Stream, piece: &[u8]) {
        loop {
            let room = self.out.room.notified();
            let mut room = std::pin::pin!(room);
            room.as_mut().enable();
            let evictable = if !self.resume.overwrite {
                0
            } else if self.out.attached.load(Relaxed) {
                self.out.sent.load(Relaxed)
            } else {
                u64::MAX
            };
            if lock(&self.out.ring).push(stream, piece, evictable).is_ok() {
                return;
            }
            room.await;
        }
    }

    /// The session's own deadlines (as the plain relay's), and while a page is attached its
    /// keepalive pings, heartbeats and notices. `Lost`: the attached page stopped answering
    /// (or a write to it failed).
    async fn timers<C: Io>(&self, page: Option<&Page<C>>) -> Timer {
        let settings = self.settings;
        let control = &self.session.control;
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let (mut next_ping, mut next_beat) = match page {
            Some(_) => (
                Instant::now() + settings.keepalive,
                Instant::now() + self.resume.heartbeat,
            ),
            None => (far, far),
        };
        let (policy, message) = loop {
            let now = Now {
                now: Instant::now(),
                started: self.started,
                activity: self.session.activity.get(),
                expires_at: control.expires_at(),
                unix: deadlines::unix_now(),
                next_ping,
            };
            match deadlines::next(settings, &now, &WORDS) {
                Next::End(policy, message) => break (policy, message),
                Next::Ping => {
                    if let Some(page) = page
                        && let Err(e) = keepalive(&page.writer, &page.live).await
                    {
                        return Timer::Lost(lost(e));
                    }
                    next_ping = Instant::now().max(next_ping) + settings.keepalive;
                }
                Next::Sleep(wake) => tokio::select! {
                    _ = tokio::time::sleep_until(wake.min(next_beat)) => {
                        if let Some(page) = page && Instant::now() >= next_beat {
                            let beat = ToPage::Heartbeat { offset: lock(&self.out.ring).end() };
                            if let Err(e) = to_client(&page.writer, control_frame(&beat), &page.live).await {
                                return Timer::Lost(lost(e));
                            }
                            next_beat = Instant::now() + self.resume.heartbeat;
                        }
                    }
                    _ = self.shutdown.cancelled() => break deadlines::shutdown(&WORDS),
                    (stop, why) = control.stopped() => break (deadlines::stopped(stop), why),
                    text = control.next_notice() => {
                        if let Some(tap) = self.tap {
                            tap.notice(&text);
                        }
                        if let Some(page) = page {
                            let n = ToPage::Notice { text: &text };
                            if let Err(e) = to_client(&page.writer, control_frame(&n), &page.live).await {
                                return Timer::Lost(lost(e));
                            }
                        }
                    }
                },
            }
        };
        session_log!(INFO, "{message}");
        Timer::End(Ending::Policy { policy, message })
    }
}

/// What the timers say.
enum Timer {
    End(Ending),
    Lost(&'static str),
}

/// A page connection's write side and what tells a slow page from a gone one.
struct Page<C: Io> {
    writer: Writer<C>,
    live: Liveness,
    /// Why a write the reader was obliged to make failed.
    fault: Mutex<Option<ClientWriteError>>,
}

#[derive(Clone, Copy)]
enum Greeting {
    Hello,
    Resumed(Resumption),
}

/// A control message as a frame on the control channel.
fn control_frame(m: &ToPage<'_>) -> Frame<'static> {
    Frame::binary(fastwebsockets::Payload::Owned(m.encode()))
}

fn lost(e: ClientWriteError) -> &'static str {
    match e {
        ClientWriteError::Unresponsive => "the client stopped reading and answering",
        ClientWriteError::Failed => "writing to the client failed",
    }
}

/// Tells a resume it cannot be served (in-band: a browser cannot read a refused handshake),
/// then closes it with 1008.
pub async fn refuse<C: Io>(client: WebSocket<C>, reason: ResumeFailure, message: &str) {
    let (_, writer) = split(client, Role::Server);
    let writer = Writer::new(writer);
    let m = ToPage::Refused {
        reason: reason.as_str(),
        message,
    };
    let _ = tokio::time::timeout(REFUSAL_GRACE, async {
        writer.send(control_frame(&m)).await?;
        writer
            .send(Frame::close(1008, close_reason(message).as_bytes()))
            .await
    })
    .await;
}
