//! Reading whole messages, bounded, and writing frames to a side shared by several writers.

use super::super::registry::Clock;
use super::reader::FrameReader;
use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocket, WebSocketError, WebSocketWrite};
use podgate_protocol::message::{AssembleError, Assembler, Kind, Opcode, Step};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::time::Instant;

/// What a relay side's stream must be: anything that reads and writes (TLS in production,
/// in-memory pipes in tests).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

pub type Reader<S> = FrameReader<ReadHalf<S>>;

/// A WebSocket whose handshake is done, as its two halves: our reader (no buffer while idle)
/// and fastwebsockets' writer. `role` is this end's. The WebSocket must not have read a frame
/// yet: what its own buffer holds is not carried over.
pub fn split<S: Io>(ws: WebSocket<S>, role: Role) -> (Reader<S>, WebSocketWrite<WriteHalf<S>>) {
    let (r, w) = tokio::io::split(ws.into_inner());
    let (_, writer) = fastwebsockets::after_handshake_split(tokio::io::empty(), w, role);
    (FrameReader::new(r, role), writer)
}

/// One side's write half, shared by the frames relayed to that side and the gateway's own
/// pings, pongs and closes. tokio's lock is FIFO and, the session being one task, only orders
/// writes: it never blocks a thread. Once a close frame went out (or writing failed), nothing
/// more is written: the check and the write happen under the same lock.
pub struct Writer<S: Io>(tokio::sync::Mutex<WriteSide<S>>);

struct WriteSide<S: Io> {
    w: WebSocketWrite<WriteHalf<S>>,
    closed: bool,
}

impl<S: Io> Writer<S> {
    pub fn new(w: WebSocketWrite<WriteHalf<S>>) -> Self {
        Writer(tokio::sync::Mutex::new(WriteSide { w, closed: false }))
    }

    /// Writes one frame and pushes it out (rustls buffers records until flushed). `Ok(false)`:
    /// not written, this side is closed already.
    pub async fn send(&self, f: Frame<'_>) -> Result<bool, WebSocketError> {
        let mut side = self.0.lock().await;
        if side.closed {
            return Ok(false);
        }
        if f.opcode == OpCode::Close {
            side.closed = true;
        }
        let written = async {
            side.w.write_frame(f).await?;
            side.w.flush().await
        }
        .await;
        if written.is_err() {
            side.closed = true;
        }
        written.map(|()| true)
    }

    /// Writes nothing more to this side.
    pub async fn mark_closed(&self) {
        self.0.lock().await.closed = true;
    }
}

/// Why reading the next message failed.
#[derive(Debug)]
pub enum ReadError {
    /// The connection or the WebSocket framing failed (EOF without a close, reset, TLS).
    Ws(WebSocketError),
    /// The message broke a bound or the fragmentation rules.
    Message(AssembleError),
}

/// The next frame the relay acts on: a whole data message (assembled from its fragments,
/// never more than the assembler's limit), a close, or a pong. Pings and closes are answered
/// through `obligated` as fastwebsockets requires.
pub async fn next_message<S, F, R, E>(
    reader: &mut Reader<S>,
    assembler: &mut Assembler,
    obligated: &mut F,
) -> Result<Frame<'static>, ReadError>
where
    S: Io,
    F: FnMut(Frame<'static>) -> R,
    R: std::future::Future<Output = Result<(), E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
{
    loop {
        let f = reader
            .read_frame(&mut |f: Frame<'_>| obligated(owned(f)))
            .await
            .map_err(ReadError::Ws)?;
        let opcode = match f.opcode {
            OpCode::Text => Opcode::Text,
            OpCode::Binary => Opcode::Binary,
            OpCode::Continuation => Opcode::Continuation,
            _ => return Ok(owned(f)),
        };
        match assembler
            .push(opcode, f.fin, &f.payload)
            .map_err(ReadError::Message)?
        {
            Step::Whole(_) => return Ok(owned(f)),
            Step::Pending => continue,
            Step::Assembled(kind, bytes) => {
                let opcode = match kind {
                    Kind::Text => OpCode::Text,
                    Kind::Binary => OpCode::Binary,
                };
                return Ok(Frame::new(true, opcode, None, Payload::Owned(bytes)));
            }
        }
    }
}

/// Takes a frame out of a reader's buffer as an owned frame, unmasked, ready to be written.
pub fn owned(f: Frame<'_>) -> Frame<'static> {
    let payload = match f.payload {
        Payload::Bytes(b) => Payload::Bytes(b),
        Payload::Owned(v) => Payload::Owned(v),
        other => Payload::Owned(other.to_vec()),
    };
    Frame::new(f.fin, f.opcode, None, payload)
}

/// What the client side's writes need to tell a slow client from a gone one.
pub struct Liveness {
    /// Evidence the client is there: a pong, or a data frame it took off our hands.
    pub alive: Clock,
    pub keepalive: Duration,
}

impl Liveness {
    /// Two and a half keepalive periods without a sign of life: the client is gone.
    pub fn limit(&self) -> Duration {
        self.keepalive * 2 + self.keepalive / 2
    }
}

/// Why a write to the client did not go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientWriteError {
    /// The connection failed.
    Failed,
    /// The client stopped reading and stopped answering pings.
    Unresponsive,
}

impl ClientWriteError {
    /// How the session ends when a write to its client did not go through.
    pub fn ending(self) -> super::ending::Ending {
        match self {
            ClientWriteError::Unresponsive => super::ending::Ending::ClientUnresponsive,
            ClientWriteError::Failed => super::ending::Ending::ClientClosed,
        }
    }
}

/// The keepalive: a ping to a client that has shown life within its limit; `Unresponsive`
/// for one that has not (exec and port-forward sessions alike).
pub async fn keepalive<S: Io>(w: &Writer<S>, live: &Liveness) -> Result<(), ClientWriteError> {
    if live.alive.get().elapsed() > live.limit() {
        return Err(ClientWriteError::Unresponsive);
    }
    let f = Frame::new(true, OpCode::Ping, None, Payload::Borrowed(b"podgate"));
    to_client(w, f, live).await
}

/// Writes a frame to the client. A client that stops reading blocks the write; it is alive
/// only while it still answers pings, so a write that waits past the liveness limit with no
/// sign of life fails. The deadline timer is only armed when the write does not complete at
/// once (the common case needs no timer).
pub async fn to_client<S: Io>(
    w: &Writer<S>,
    f: Frame<'_>,
    live: &Liveness,
) -> Result<(), ClientWriteError> {
    use std::task::Poll;
    let mut write = std::pin::pin!(w.send(f));
    if let Poll::Ready(r) = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
        return r.map(|_| ()).map_err(|_| ClientWriteError::Failed);
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
        r = write => r.map(|_| ()).map_err(|_| ClientWriteError::Failed),
        _ = stalled => Err(ClientWriteError::Unresponsive),
    }
}

/// Reads a client's frames, dropping them, until its close or the end of its connection (so
/// our close is not lost to a TCP reset while the client still sends).
pub async fn drain<S: Io>(reader: &mut Reader<S>) {
    let mut nothing = |_: Frame<'static>| async { Ok::<(), std::io::Error>(()) };
    loop {
        match reader.read_frame(&mut nothing).await {
            Ok(f) if f.opcode == OpCode::Close => return,
            Ok(_) => {}
            Err(_) => return,
        }
    }
}
