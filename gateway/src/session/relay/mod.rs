//! One exec/attach session's frames, both ways, in a single task.
//!
//! Two long-lived relay futures (one per direction: read a frame on one side, write it to the
//! other), a keepalive pinger and the session timers run in one `select!` and are dropped
//! together when the session ends, so nothing of a session outlives it. Readers are never
//! raced per frame (fastwebsockets' `read_frame` is not cancel-safe).
//!
//! A frame read is written to the other side before the next one is read: at most one frame
//! per direction is in the gateway's hands, so a client that stops reading stops the
//! upstream reader, TCP pushes back to the pod, and the session's memory stays bounded by
//! `max_message`. There is no queue between reader and writer: a queue in the same task cost
//! a self-wake, a copy and a poll of every future of the session per frame (profile in
//! BENCHMARKS.md). Each side's write half is shared, through a FIFO async lock, by the frames
//! relayed to it and by the pings, pongs and closes the gateway sends on its own.
//!
//! Frames pass without re-encoding when both sides speak the same sub-protocol; otherwise
//! each is decoded and re-encoded (`podgate_protocol::frame`).

use crate::sessions::Clock;
use fastwebsockets::{Frame, OpCode, Payload, WebSocketError};
use podgate_metrics::Direction;
use podgate_protocol::frame::{self, ChannelFrame};
use podgate_protocol::{Protocol, Status};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;
use tokio::time::Instant;

/// How long a closing message may take to reach a client that is not reading.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Per-session timing and size settings (from the config's `sessions` and `limits`).
#[derive(Clone, Copy, Debug)]
pub struct SessionSettings {
    pub keepalive: Duration,
    pub idle_timeout: Option<Duration>,
    pub max_duration: Option<Duration>,
    pub max_message: usize,
}

/// How a session ended: a bounded set, used for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The command ended with exit code 0.
    Completed,
    /// The command ended with a non-zero exit code.
    ExitNonZero(i32),
    ClientClosed,
    /// The cluster closed without an exit status.
    UpstreamClosed,
    IdleTimeout,
    MaxDuration,
    /// The client stopped answering pings.
    ClientUnresponsive,
    UpstreamError,
    ClientError,
    Shutdown,
}

impl Outcome {
    /// The outcome as the metrics' bounded set counts it. A gateway shutdown is the
    /// gateway's own policy ending the session, like max_duration, not a failure.
    pub fn metric(self) -> podgate_metrics::Outcome {
        use podgate_metrics::Outcome as M;
        match self {
            Outcome::Completed => M::Completed,
            Outcome::ExitNonZero(_) => M::ExitNonzero,
            Outcome::ClientClosed | Outcome::ClientUnresponsive | Outcome::ClientError => {
                M::ClientClosed
            }
            Outcome::UpstreamClosed => M::UpstreamClosed,
            Outcome::IdleTimeout => M::IdleTimeout,
            Outcome::MaxDuration | Outcome::Shutdown => M::MaxDuration,
            Outcome::UpstreamError => M::UpstreamError,
        }
    }

    pub fn exit_code(self) -> Option<i32> {
        match self {
            Outcome::Completed => Some(0),
            Outcome::ExitNonZero(c) => Some(c),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::ExitNonZero(_) => "exit_nonzero",
            Outcome::ClientClosed | Outcome::ClientUnresponsive | Outcome::ClientError => {
                "client_closed"
            }
            Outcome::UpstreamClosed => "upstream_closed",
            Outcome::IdleTimeout => "idle_timeout",
            Outcome::MaxDuration => "max_duration",
            Outcome::UpstreamError => "upstream_error",
            Outcome::Shutdown => "shutdown",
        }
    }
}

type Io = hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>;
pub type Ws = fastwebsockets::WebSocket<Io>;

/// Takes a frame out of a reader's buffer as an owned frame, unmasked, ready to be written.
fn owned(f: Frame<'_>) -> Frame<'static> {
    let payload = match f.payload {
        Payload::Bytes(b) => Payload::Bytes(b),
        Payload::Owned(v) => Payload::Owned(v),
        other => Payload::Owned(other.to_vec()),
    };
    Frame::new(true, f.opcode, None, payload)
}

pub(crate) fn encoded(protocol: Protocol, stream: u8, data: &[u8]) -> Frame<'static> {
    let e = frame::encode(protocol, stream, data);
    let opcode = if e.text { OpCode::Text } else { OpCode::Binary };
    Frame::new(true, opcode, None, Payload::Owned(e.payload))
}

/// What one reader makes of a data frame: the frame to forward (if any) after translation.
enum Forward {
    Frame(Frame<'static>),
    /// v5 close signal for a v4 upstream: the only way left is closing its socket.
    CloseUpstream,
    Drop,
}

/// Translates a frame between sub-protocols (or passes it through) and reports its stream
/// and payload length to `seen`.
fn relay_frame(
    f: Frame<'_>,
    from: Protocol,
    to: Protocol,
    seen: &mut impl FnMut(u8, &[u8]),
) -> Forward {
    let is_text = f.opcode == OpCode::Text;
    let decoded = match frame::decode(from, is_text, &f.payload) {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!("dropping a malformed channel frame: {e}");
            return Forward::Drop;
        }
    };
    match &decoded {
        ChannelFrame::Data { stream, data } => seen(*stream, data),
        ChannelFrame::Close { stream } => seen(frame::CLOSE_SIGNAL, &[*stream]),
    }
    if from == to {
        drop(decoded);
        return Forward::Frame(owned(f));
    }
    match decoded {
        ChannelFrame::Data { stream, data } => Forward::Frame(encoded(to, stream, &data)),
        ChannelFrame::Close { stream } => match frame::close_signal(to, stream) {
            Some(e) => Forward::Frame(Frame::new(
                true,
                OpCode::Binary,
                None,
                Payload::Owned(e.payload),
            )),
            None if stream == frame::STDIN => Forward::CloseUpstream,
            None => Forward::Drop,
        },
    }
}

/// One side's write half, shared by the frames relayed to that side and the gateway's own
/// pings, pongs and closes. tokio's lock is FIFO and, the session being one task, only orders
/// writes: it never blocks a thread.
type Writer = tokio::sync::Mutex<fastwebsockets::WebSocketWrite<tokio::io::WriteHalf<Io>>>;

/// Writes one frame and pushes it out (rustls buffers records until flushed).
async fn send(w: &Writer, f: Frame<'_>) -> Result<(), WebSocketError> {
    let mut w = w.lock().await;
    w.write_frame(f).await?;
    w.flush().await
}

/// What the client side's writes need to tell a slow client from a gone one.
struct ClientLiveness<'a> {
    /// Evidence the client is there: a pong, or a data frame it took off our hands.
    alive: &'a Clock,
    keepalive: Duration,
}

impl ClientLiveness<'_> {
    /// Two and a half keepalive periods without a sign of life: the client is gone.
    fn limit(&self) -> Duration {
        self.keepalive * 2 + self.keepalive / 2
    }
}

/// Writes a frame to the client. A client that stops reading blocks the write; it is alive
/// only while it still answers pings, so a write that waits past the liveness limit with no
/// sign of life ends the session. The deadline timer is only armed when the write does not
/// complete at once (the common case needs no timer).
async fn to_client(w: &Writer, f: Frame<'_>, live: &ClientLiveness<'_>) -> Result<(), Outcome> {
    use std::task::Poll;
    let mut write = std::pin::pin!(send(w, f));
    if let Poll::Ready(r) = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
        return r.map_err(|_| Outcome::ClientError);
    }
    let write_started = Instant::now();
    let stalled = async {
        loop {
            tokio::time::sleep(live.keepalive / 2).await;
            let limit = live.limit();
            if write_started.elapsed() > limit && live.alive.get().elapsed() > limit {
                return;
            }
        }
    };
    tokio::select! {
        r = write => r.map_err(|_| Outcome::ClientError),
        _ = stalled => Err(Outcome::ClientUnresponsive),
    }
}

/// How long the echo of a peer's close frame may take; the session ends either way.
const CLOSE_ECHO: Duration = Duration::from_secs(1);

/// Runs a session until it ends and says how.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    client: Ws,
    upstream: Ws,
    client_protocol: Protocol,
    upstream_protocol: Protocol,
    settings: &SessionSettings,
    session: &crate::sessions::SessionInfo,
    shutdown: tokio_util::sync::CancellationToken,
) -> Outcome {
    let (mut c_read, c_write) = client.split(tokio::io::split);
    let (mut u_read, u_write) = upstream.split(tokio::io::split);
    c_read.set_max_message_size(settings.max_message);
    u_read.set_max_message_size(settings.max_message);
    let mut c_read = fastwebsockets::FragmentCollectorRead::new(c_read);
    let mut u_read = fastwebsockets::FragmentCollectorRead::new(u_read);
    let c_write: Writer = tokio::sync::Mutex::new(c_write);
    let u_write: Writer = tokio::sync::Mutex::new(u_write);

    let started = Instant::now();
    let last_activity = &session.activity;
    let last_alive = Clock::new(started);
    let live = ClientLiveness {
        alive: &last_alive,
        keepalive: settings.keepalive,
    };
    let exit = Mutex::new(None::<Outcome>);
    let exit_get = || *exit.lock().unwrap_or_else(|p| p.into_inner());
    let exit_set = |o: Outcome| *exit.lock().unwrap_or_else(|p| p.into_inner()) = Some(o);
    // A close frame went to the cluster: nothing may follow it.
    let upstream_closed = AtomicBool::new(false);
    // Why a write the readers were obliged to make (a pong, a close echo) failed.
    let client_fault = Mutex::new(None::<Outcome>);

    let client_to_upstream = async {
        let mut obligated = |f: Frame<'static>| {
            let (c_write, live, client_fault) = (&c_write, &live, &client_fault);
            async move {
                if f.opcode == OpCode::Close {
                    // The echo of the client's close: best effort, the session ends anyway.
                    let _ = tokio::time::timeout(CLOSE_ECHO, send(c_write, f)).await;
                    return Ok(());
                }
                to_client(c_write, f, live).await.map_err(|o| {
                    *client_fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(o);
                    std::io::Error::other("writing to the client failed")
                })
            }
        };
        loop {
            let f = match c_read.read_frame(&mut obligated).await {
                Ok(f) => f,
                Err(WebSocketError::FrameTooLarge) => {
                    // Say why before closing (1009: message too big), as RFC 6455 asks.
                    let why = format!(
                        "podgate: a message exceeded the {} byte limit",
                        settings.max_message
                    );
                    exit_set(Outcome::ClientError);
                    let _ = tokio::time::timeout(
                        CLOSE_GRACE,
                        to_client(&c_write, Frame::close(1009, why.as_bytes()), &live),
                    )
                    .await;
                    return Outcome::ClientError;
                }
                Err(WebSocketError::SendError(_)) => {
                    let fault = *client_fault.lock().unwrap_or_else(|p| p.into_inner());
                    return fault.unwrap_or(Outcome::ClientError);
                }
                Err(e) => {
                    return outcome_of_read_error(&e, Outcome::ClientClosed, Outcome::ClientError);
                }
            };
            match f.opcode {
                OpCode::Close => return Outcome::ClientClosed,
                OpCode::Pong => last_alive.touch(),
                OpCode::Text | OpCode::Binary => {
                    last_activity.touch();
                    let mut seen = |stream: u8, data: &[u8]| {
                        if stream == frame::STDIN {
                            session.metrics.add(Direction::Stdin, data.len() as u64);
                        }
                    };
                    match relay_frame(f, client_protocol, upstream_protocol, &mut seen) {
                        Forward::Frame(_) if upstream_closed.load(Relaxed) => {
                            tracing::debug!("dropping client data after closing the upstream");
                        }
                        Forward::Frame(out) => {
                            if send(&u_write, out).await.is_err() {
                                return Outcome::UpstreamError;
                            }
                        }
                        Forward::CloseUpstream => {
                            if !upstream_closed.swap(true, Relaxed)
                                && send(&u_write, Frame::close(1000, b"")).await.is_err()
                            {
                                return Outcome::UpstreamError;
                            }
                        }
                        Forward::Drop => {}
                    }
                }
                _ => {}
            }
        }
    };

    let upstream_to_client = async {
        let mut obligated = |f: Frame<'static>| {
            let (u_write, upstream_closed) = (&u_write, &upstream_closed);
            async move {
                if f.opcode == OpCode::Close {
                    // The echo of the cluster's close, unless ours went first.
                    if !upstream_closed.swap(true, Relaxed) {
                        let _ = tokio::time::timeout(CLOSE_ECHO, send(u_write, f)).await;
                    }
                    return Ok(());
                }
                send(u_write, f).await
            }
        };
        let end = loop {
            let f = match u_read.read_frame(&mut obligated).await {
                Ok(f) => f,
                // A pong the cluster was owed could not be written.
                Err(WebSocketError::SendError(_)) => return Outcome::UpstreamError,
                Err(e) => {
                    break outcome_of_read_error(
                        &e,
                        Outcome::UpstreamClosed,
                        Outcome::UpstreamError,
                    );
                }
            };
            match f.opcode {
                OpCode::Close => break Outcome::UpstreamClosed,
                OpCode::Text | OpCode::Binary => {
                    last_activity.touch();
                    let mut seen = |stream: u8, data: &[u8]| match stream {
                        frame::STDOUT => {
                            session.metrics.add(Direction::Stdout, data.len() as u64);
                        }
                        frame::STDERR => {
                            session.metrics.add(Direction::Stderr, data.len() as u64);
                        }
                        frame::STATUS if !data.is_empty() => {
                            exit_set(status_outcome(upstream_protocol, data))
                        }
                        _ => {}
                    };
                    match relay_frame(f, upstream_protocol, client_protocol, &mut seen) {
                        Forward::Frame(out) => match to_client(&c_write, out, &live).await {
                            Ok(()) => last_alive.touch(),
                            Err(o) => return o,
                        },
                        Forward::CloseUpstream | Forward::Drop => {}
                    }
                }
                _ => {}
            }
        };
        // Everything the cluster sent is written; the close follows it and ends the session.
        exit_set(exit_get().unwrap_or(end));
        match to_client(&c_write, Frame::close(1000, b""), &live).await {
            Ok(()) => exit_get().unwrap_or(end),
            Err(o) => o,
        }
    };

    let pinger = async {
        let mut ping = tokio::time::interval_at(started + settings.keepalive, settings.keepalive);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ping.tick().await;
            if last_alive.get().elapsed() > live.limit() {
                return Outcome::ClientUnresponsive;
            }
            let f = Frame::new(true, OpCode::Ping, None, Payload::Borrowed(b"podgate"));
            if let Err(o) = to_client(&c_write, f, &live).await {
                return o;
            }
        }
    };

    let timers = async {
        let max = async {
            match settings.max_duration {
                Some(d) => tokio::time::sleep_until(started + d).await,
                None => std::future::pending().await,
            }
        };
        let idle = async {
            let Some(idle) = settings.idle_timeout else {
                return std::future::pending().await;
            };
            loop {
                let due = last_activity.get() + idle;
                if Instant::now() >= due {
                    return;
                }
                tokio::time::sleep_until(due).await;
            }
        };
        let (outcome, why) = tokio::select! {
            _ = max => (Outcome::MaxDuration, format!(
                "podgate: session closed: it reached the maximum session duration of {}",
                human(settings.max_duration.unwrap_or_default()))),
            _ = idle => (Outcome::IdleTimeout, format!(
                "podgate: session closed after {} without input or output (idle timeout)",
                human(settings.idle_timeout.unwrap_or_default()))),
            _ = shutdown.cancelled() => (Outcome::Shutdown,
                "podgate: session closed: the gateway is shutting down; reconnect to get a new session".to_string()),
        };
        tracing::info!("{why}");
        let status = Status {
            reason: Some(reason_of(outcome).into()),
            ..Status::stream_failure(why.clone())
        };
        let body = if client_protocol.has_status_json() {
            status.to_json()
        } else {
            why.clone().into_bytes()
        };
        exit_set(outcome);
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            to_client(
                &c_write,
                encoded(client_protocol, frame::STATUS, &body),
                &live,
            )
            .await?;
            let reason: Vec<u8> = why.bytes().take(120).collect();
            to_client(&c_write, Frame::close(1000, &reason), &live).await
        })
        .await;
        outcome
    };

    tokio::select! {
        o = client_to_upstream => o,
        o = upstream_to_client => o,
        o = pinger => o,
        o = timers => o,
    }
}

fn reason_of(o: Outcome) -> &'static str {
    match o {
        Outcome::IdleTimeout | Outcome::MaxDuration => "Timeout",
        _ => "ServiceUnavailable",
    }
}

fn outcome_of_read_error(e: &WebSocketError, closed: Outcome, failed: Outcome) -> Outcome {
    match e {
        WebSocketError::UnexpectedEOF | WebSocketError::ConnectionClosed => closed,
        WebSocketError::IoError(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::BrokenPipe
            ) =>
        {
            closed
        }
        other => {
            tracing::debug!("websocket read error: {other}");
            failed
        }
    }
}

/// Reads the exit status the cluster sent on stream 3.
fn status_outcome(protocol: Protocol, data: &[u8]) -> Outcome {
    if !protocol.has_status_json() {
        // v1–v3 send only a failure's text.
        return Outcome::ExitNonZero(1);
    }
    match serde_json::from_slice::<Status>(data)
        .ok()
        .and_then(|s| s.exit_code_value())
    {
        Some(0) => Outcome::Completed,
        Some(code) => Outcome::ExitNonZero(code),
        None => Outcome::UpstreamError,
    }
}

/// Durations as the config file writes them (`30m`, `1h30m`), so messages match settings.
fn human(d: Duration) -> String {
    podgate_config::Duration::from(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(p: &[u8]) -> Frame<'static> {
        Frame::new(true, OpCode::Binary, None, Payload::Owned(p.to_vec()))
    }

    #[test]
    fn same_protocol_passes_through_and_counts() {
        let mut seen = Vec::new();
        let out = relay_frame(
            bin(&[1, b'h', b'i']),
            Protocol::V5,
            Protocol::V5,
            &mut |s, d: &[u8]| seen.push((s, d.len())),
        );
        let Forward::Frame(f) = out else {
            panic!("forwarded")
        };
        assert_eq!(&*f.payload, &[1, b'h', b'i']);
        assert_eq!(seen, [(1, 2)]);
    }

    #[test]
    fn binary_to_base64_and_back() {
        let Forward::Frame(f) = relay_frame(
            bin(&[1, 0xff, 0]),
            Protocol::V4,
            Protocol::V4Base64,
            &mut |_, _: &[u8]| {},
        ) else {
            panic!()
        };
        assert_eq!(f.opcode, OpCode::Text);
        assert_eq!(&*f.payload, b"1/wA=");
        let back = Frame::new(true, OpCode::Text, None, Payload::Owned(b"0aGk=".to_vec()));
        let Forward::Frame(f) = relay_frame(
            back,
            Protocol::V4Base64,
            Protocol::V5,
            &mut |_, _: &[u8]| {},
        ) else {
            panic!()
        };
        assert_eq!(&*f.payload, &[0, b'h', b'i']);
    }

    #[test]
    fn v5_stdin_close_to_v4_closes_the_upstream() {
        assert!(matches!(
            relay_frame(
                bin(&[255, 0]),
                Protocol::V5,
                Protocol::V4,
                &mut |_, _: &[u8]| {}
            ),
            Forward::CloseUpstream
        ));
        assert!(matches!(
            relay_frame(
                bin(&[255, 0]),
                Protocol::V5,
                Protocol::V5,
                &mut |_, _: &[u8]| {}
            ),
            Forward::Frame(_)
        ));
        assert!(matches!(
            relay_frame(bin(&[]), Protocol::V5, Protocol::V5, &mut |_, _: &[u8]| {}),
            Forward::Drop
        ));
    }

    #[test]
    fn exit_status_is_read() {
        assert_eq!(
            status_outcome(Protocol::V5, &Status::success().to_json()),
            Outcome::Completed
        );
        assert_eq!(
            status_outcome(Protocol::V4, &Status::exit_code(7, "x").to_json()),
            Outcome::ExitNonZero(7)
        );
        assert_eq!(
            status_outcome(Protocol::V5, b"garbage"),
            Outcome::UpstreamError
        );
        assert_eq!(human(Duration::from_secs(1800)), "30m");
    }
}
