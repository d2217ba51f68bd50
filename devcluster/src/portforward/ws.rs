//! The WebSocket side of a port-forward session: one writer task fed by a bounded queue (so
//! every forwarded connection's output waits when the client is slow), and the frames the
//! reader is obliged to answer.

use fastwebsockets::{Frame, OpCode, Payload, WebSocketError, WebSocketWrite};
use tokio::io::WriteHalf;
use tokio::sync::mpsc;

/// Messages queued for the client.
pub const QUEUE: usize = 16;

pub enum Out {
    Binary(Vec<u8>),
    Text(Vec<u8>),
    /// A pong or the echo of the client's close, as fastwebsockets obliges.
    Obligated(Frame<'static>),
    /// Our close: nothing is written after it.
    Close(u16),
}

/// Writes what comes until a close went out or the queue is gone (then a close 1000).
pub async fn writer<S>(
    mut w: WebSocketWrite<WriteHalf<S>>,
    mut rx: mpsc::Receiver<Out>,
) -> Result<(), WebSocketError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let close = loop {
        match rx.recv().await {
            Some(Out::Binary(b)) => {
                w.write_frame(Frame::binary(Payload::Owned(b))).await?;
            }
            Some(Out::Text(b)) => {
                w.write_frame(Frame::text(Payload::Owned(b))).await?;
            }
            Some(Out::Obligated(f)) if f.opcode == OpCode::Close => break f,
            Some(Out::Obligated(f)) => w.write_frame(f).await?,
            Some(Out::Close(code)) => break Frame::close(code, b""),
            None => break Frame::close(1000, b""),
        }
    };
    w.write_frame(close).await?;
    w.flush().await
}

/// Owned, unmasked, ready to queue.
pub fn owned(f: Frame<'_>) -> Frame<'static> {
    Frame::new(f.fin, f.opcode, None, Payload::Owned(f.payload.to_vec()))
}
