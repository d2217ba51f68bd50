//! One exec/attach session's frames, both ways, in a single task.
//!
//! Four long-lived futures (a reader and a writer per side) run in one `select!` and are
//! dropped together when the session ends, so nothing of a session outlives it. Readers are
//! never raced per frame (fastwebsockets' `read_frame` is not cancel-safe). Each writer is fed
//! by a small bounded channel: a client that stops reading fills its channel, the upstream
//! reader stops, TCP pushes back to the pod, and the session's memory stays bounded.
//!
//! Frames pass without re-encoding when both sides speak the same sub-protocol; otherwise
//! each is decoded and re-encoded (`podgate_protocol::frame`).

use crate::sessions::Clock;
use fastwebsockets::{Frame, OpCode, Payload, WebSocketError};
use podgate_metrics::Direction;
use podgate_protocol::frame::{self, ChannelFrame};
use podgate_protocol::{Protocol, Status};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Frames queued per direction; with `max_message` this bounds a session's buffers.
const QUEUE: usize = 4;
/// How long a closing message may take to reach a client that is not reading.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

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

fn encoded(protocol: Protocol, stream: u8, data: &[u8]) -> Frame<'static> {
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
    let (mut c_read, mut c_write) = client.split(tokio::io::split);
    let (mut u_read, mut u_write) = upstream.split(tokio::io::split);
    c_read.set_max_message_size(settings.max_message);
    u_read.set_max_message_size(settings.max_message);
    let mut c_read = fastwebsockets::FragmentCollectorRead::new(c_read);
    let mut u_read = fastwebsockets::FragmentCollectorRead::new(u_read);

    let (to_client, mut to_client_rx) = mpsc::channel::<Frame<'static>>(QUEUE);
    let (to_client_ctl, mut to_client_ctl_rx) = mpsc::channel::<Frame<'static>>(2);
    let (to_upstream, mut to_upstream_rx) = mpsc::channel::<Frame<'static>>(QUEUE);
    let (to_upstream_ctl, mut to_upstream_ctl_rx) = mpsc::channel::<Frame<'static>>(2);

    let started = Instant::now();
    let last_activity = &session.activity;
    // Evidence the client is there: a pong, or a data frame it took off our hands.
    let last_alive = Clock::new(started);
    let exit = Mutex::new(None::<Outcome>);
    let exit_get = || *exit.lock().unwrap_or_else(|p| p.into_inner());
    let exit_set = |o: Outcome| *exit.lock().unwrap_or_else(|p| p.into_inner()) = Some(o);

    let client_reader = async {
        let mut obligated = |f: Frame<'static>| {
            let ctl = to_client_ctl.clone();
            async move { ctl.send(f).await }
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
                    let _ = tokio::time::timeout(CLOSE_GRACE, async {
                        let _ = to_client_ctl.send(Frame::close(1009, why.as_bytes())).await;
                        std::future::pending::<()>().await
                    })
                    .await;
                    return Outcome::ClientError;
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
                        Forward::Frame(out) => {
                            if to_upstream.send(out).await.is_err() {
                                return Outcome::UpstreamError;
                            }
                        }
                        Forward::CloseUpstream => {
                            let _ = to_upstream_ctl.send(Frame::close(1000, b"")).await;
                        }
                        Forward::Drop => {}
                    }
                }
                _ => {}
            }
        }
    };

    let upstream_reader = async {
        let mut obligated = |f: Frame<'static>| {
            let ctl = to_upstream_ctl.clone();
            async move { ctl.send(f).await }
        };
        let end = loop {
            let f = match u_read.read_frame(&mut obligated).await {
                Ok(f) => f,
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
                        Forward::Frame(out) => {
                            if to_client.send(out).await.is_err() {
                                break Outcome::ClientError;
                            }
                        }
                        Forward::CloseUpstream | Forward::Drop => {}
                    }
                }
                _ => {}
            }
        };
        // Everything the cluster sent is queued; the close follows it and the client writer
        // ends the session once it is written.
        let _ = to_client.send(Frame::close(1000, b"")).await;
        exit_set(exit_get().unwrap_or(end));
        std::future::pending::<Outcome>().await
    };

    let client_writer = async {
        let mut ping = tokio::time::interval_at(started + settings.keepalive, settings.keepalive);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let f = tokio::select! {
                biased;
                Some(f) = to_client_ctl_rx.recv() => f,
                Some(f) = to_client_rx.recv() => f,
                _ = ping.tick() => {
                    // Two and a half keepalive periods without a sign of life: the client is gone.
                    if last_alive.get().elapsed() > settings.keepalive * 2 + settings.keepalive / 2 {
                        return Outcome::ClientUnresponsive;
                    }
                    Frame::new(true, OpCode::Ping, None, Payload::Borrowed(b"podgate"))
                }
            };
            let closing = f.opcode == OpCode::Close;
            // A client that stops reading blocks this write; it is alive only if it still
            // answers pings, so the write races the same deadline the ping timer applies.
            let write_started = Instant::now();
            let stalled = async {
                loop {
                    tokio::time::sleep(settings.keepalive / 2).await;
                    let limit = settings.keepalive * 2 + settings.keepalive / 2;
                    if write_started.elapsed() > limit && last_alive.get().elapsed() > limit {
                        return;
                    }
                }
            };
            let data = matches!(f.opcode, OpCode::Binary | OpCode::Text);
            // Flush when nothing else is queued: batches under load, no delay when quiet.
            let flush = closing || (to_client_rx.is_empty() && to_client_ctl_rx.is_empty());
            let write = async {
                c_write.write_frame(f).await?;
                if flush {
                    c_write.flush().await?;
                }
                Ok::<(), WebSocketError>(())
            };
            tokio::select! {
                r = write => if r.is_err() {
                    return Outcome::ClientError;
                },
                _ = stalled => return Outcome::ClientUnresponsive,
            }
            if data {
                last_alive.touch();
            }
            if closing {
                return exit_get().unwrap_or(Outcome::UpstreamClosed);
            }
        }
    };

    let upstream_writer = async {
        loop {
            let f = tokio::select! {
                biased;
                Some(f) = to_upstream_ctl_rx.recv() => f,
                Some(f) = to_upstream_rx.recv() => f,
                else => break,
            };
            let closing = f.opcode == OpCode::Close;
            if u_write.write_frame(f).await.is_err() {
                return Outcome::UpstreamError;
            }
            if (closing || (to_upstream_rx.is_empty() && to_upstream_ctl_rx.is_empty()))
                && u_write.flush().await.is_err()
            {
                return Outcome::UpstreamError;
            }
            if closing {
                break;
            }
        }
        // Half-closed towards the cluster: keep relaying what it still sends.
        std::future::pending::<Outcome>().await
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
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            let _ = to_client_ctl
                .send(encoded(client_protocol, frame::STATUS, &body))
                .await;
            let reason: Vec<u8> = why.bytes().take(120).collect();
            let _ = to_client_ctl.send(Frame::close(1000, &reason)).await;
            exit_set(outcome);
            std::future::pending::<()>().await
        })
        .await;
        outcome
    };

    tokio::select! {
        o = client_reader => o,
        o = upstream_reader => o,
        o = client_writer => o,
        o = upstream_writer => o,
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
