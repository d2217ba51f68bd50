//! kubectl's port-forward tunnel: SPDY/3.1 frames inside binary WebSocket messages, served as
//! the kubelet's `httpstream.go` serves them (through kube-apiserver's `TunnelingHandler`).
//!
//! Per forwarded connection kubectl opens two streams named by `streamType` (`error`, then
//! `data`), `port` and `requestID`, and closes the error stream's write side at once. Each
//! stream is answered with an empty `SYN_REPLY` (a stream with bad headers gets `RST_STREAM`
//! instead, as `newSpdyStream` resets one its handler refuses); once both of a request have
//! come the pod's port is dialled and bytes flow until either side is done (containerd gives
//! the other direction a second more), then the error stream and the data stream are closed
//! (FIN), the error stream carrying the runtime's message first when the dial failed. Client
//! pings (odd ids) are echoed; `WINDOW_UPDATE` and `SETTINGS` are ignored, as spdystream
//! ignores them; a `GOAWAY` ends the connection. The frames may arrive cut anywhere
//! ([`Scanner`]); ours go out one per message.

use super::Pod;
use super::ws::{Out, QUEUE, owned, writer};
use crate::runtime::ports;
use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, WebSocket, WebSocketError};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use podgate_protocol::spdy::{
    self, Compressor, Control, Decompressor, Event, Headers, Scanner, frame,
};
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The largest control frame read (kubectl's are under 100 bytes).
const MAX_CONTROL: usize = 64 << 10;
/// Data frames written per read from the pod.
const CHUNK: usize = 32 << 10;
/// Chunks waiting for the pod per connection.
const INBOUND: usize = 8;
/// containerd waits this long for the second direction once the first is done.
const OTHER_DIRECTION: Duration = Duration::from_secs(1);
/// How long, after a GOAWAY or our close, the client's close is waited for.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Bytes for the pod, or its client's half-close.
enum Inbound {
    Data(Bytes),
    Fin,
}

/// Where a client stream's frames go.
enum Route {
    Data {
        to_pod: Option<mpsc::Sender<Inbound>>,
        reset: CancellationToken,
    },
    /// kubectl writes nothing on it but its FIN.
    Error,
}

/// A request whose first stream came.
#[derive(Default)]
struct Pending {
    /// The data stream and where its bytes wait until the pair is complete.
    data: Option<(u32, mpsc::Receiver<Inbound>, CancellationToken)>,
    error: Option<u32>,
}

/// Requests waiting for their second stream; past this a new one is refused.
const MAX_PENDING: usize = 1024;

pub async fn serve(
    ws: WebSocket<TokioIo<Upgraded>>,
    pod: Pod,
    max_message: usize,
) -> Result<(), WebSocketError> {
    let (mut read, write) = ws.split(tokio::io::split);
    // Messages are not assembled (bytes are bytes to the scanner), so each frame is bounded.
    read.set_max_message_size(max_message.saturating_add(1));
    let (out, rx) = mpsc::channel::<Out>(QUEUE);
    let mut writer = std::pin::pin!(writer(write, rx));
    let mut conn = Conn {
        pod,
        out: out.clone(),
        compressor: Compressor::new(),
        decompressor: Decompressor::new(),
        next_client_id: 1,
        routes: HashMap::new(),
        pending: HashMap::new(),
        forwards: JoinSet::new(),
    };
    let reader = async {
        let mut scanner = Scanner::new(MAX_CONTROL);
        let mut obligated = |f: Frame<'_>| {
            let f = owned(f);
            let out = out.clone();
            async move {
                let _ = out.send(Out::Obligated(f)).await;
                Ok::<(), std::convert::Infallible>(())
            }
        };
        let mut text = false;
        let mut closing = false;
        loop {
            let f = match read.read_frame(&mut obligated).await {
                Ok(f) => f,
                Err(e) => return Err(e),
            };
            match f.opcode {
                OpCode::Close => return Ok(()),
                OpCode::Ping | OpCode::Pong => continue,
                OpCode::Text => text = true,
                OpCode::Binary => text = false,
                OpCode::Continuation => {}
            }
            if closing {
                continue;
            }
            if text {
                // client-go's TunnelingConnection: "invalid message type received".
                tracing::debug!("a text message on the SPDY tunnel: closing");
                let _ = out.send(Out::Close(1003)).await;
                closing = true;
                continue;
            }
            let mut events = Vec::new();
            if let Err(e) = scanner.feed(&f.payload, &mut |e| events.push(OwnedEvent::from(e))) {
                tracing::debug!("unreadable SPDY from the client: {e}");
                let _ = out
                    .send(Out::Binary(frame::goaway(0, frame::GOAWAY_PROTOCOL_ERROR)))
                    .await;
                let _ = out.send(Out::Close(1002)).await;
                closing = true;
                continue;
            }
            for e in events {
                if !conn.handle(e).await {
                    let _ = out.send(Out::Close(1000)).await;
                    closing = true;
                    break;
                }
            }
            // Reap finished connections, so the set holds only live ones.
            while conn.forwards.try_join_next().is_some() {}
        }
    };
    let ended = {
        let mut reader = std::pin::pin!(reader);
        tokio::select! {
            r = &mut reader => r,
            w = &mut writer => {
                // Our close is out: wait (bounded) for the client's.
                if w.is_ok() {
                    let _ = tokio::time::timeout(CLOSE_WAIT, &mut reader).await;
                }
                return w;
            }
        }
    };
    // Every forwarded connection stops; the writer sends what is queued and the close.
    conn.forwards.abort_all();
    drop(conn);
    let _ = tokio::time::timeout(CLOSE_WAIT, out.send(Out::Close(1000))).await;
    drop(out);
    let _ = tokio::time::timeout(CLOSE_WAIT, &mut writer).await;
    ended
}

/// A scanner event, owned so it can be handled across awaits.
enum OwnedEvent {
    SynStream { stream_id: u32, block: Vec<u8> },
    HeaderBlock(Vec<u8>),
    Rst { stream_id: u32 },
    Ping { id: u32 },
    GoAway,
    Ignored,
    Data { stream_id: u32, bytes: Bytes },
    DataEnd { stream_id: u32, fin: bool },
}

impl From<Event<'_>> for OwnedEvent {
    fn from(e: Event<'_>) -> OwnedEvent {
        match e {
            Event::Control(Control::SynStream {
                stream_id,
                header_block,
                ..
            }) => OwnedEvent::SynStream {
                stream_id,
                block: header_block.to_vec(),
            },
            Event::Control(c @ (Control::SynReply { .. } | Control::Headers { .. })) => {
                OwnedEvent::HeaderBlock(c.header_block().unwrap_or_default().to_vec())
            }
            Event::Control(Control::RstStream { stream_id, .. }) => OwnedEvent::Rst { stream_id },
            Event::Control(Control::Ping { id }) => OwnedEvent::Ping { id },
            Event::Control(Control::GoAway { .. }) => OwnedEvent::GoAway,
            Event::Control(_) => OwnedEvent::Ignored,
            Event::Data { stream_id, bytes } => OwnedEvent::Data {
                stream_id,
                bytes: Bytes::copy_from_slice(bytes),
            },
            Event::DataEnd { stream_id, fin, .. } => OwnedEvent::DataEnd { stream_id, fin },
        }
    }
}

struct Conn {
    pod: Pod,
    out: mpsc::Sender<Out>,
    compressor: Compressor,
    decompressor: Decompressor,
    /// spdystream's `receivedStreamId`: client stream ids are odd and increase.
    next_client_id: u32,
    routes: HashMap<u32, Route>,
    pending: HashMap<String, Pending>,
    forwards: JoinSet<()>,
}

impl Conn {
    async fn send(&self, frame: Vec<u8>) {
        let _ = self.out.send(Out::Binary(frame)).await;
    }

    /// Handles one event; `false` when the connection is over.
    async fn handle(&mut self, e: OwnedEvent) -> bool {
        match e {
            OwnedEvent::SynStream { stream_id, block } => {
                // Decompressed first, whatever becomes of the stream: the zlib stream is one.
                let headers = match self.decompressor.headers(&block) {
                    Ok(h) => h,
                    Err(e) => {
                        tracing::debug!("unreadable SYN_STREAM headers: {e}");
                        self.send(frame::goaway(0, frame::GOAWAY_PROTOCOL_ERROR))
                            .await;
                        return false;
                    }
                };
                if stream_id % 2 == 0 || stream_id < self.next_client_id {
                    self.send(frame::rst_stream(stream_id, frame::RST_PROTOCOL_ERROR))
                        .await;
                    return true;
                }
                self.next_client_id = stream_id + 2;
                self.stream(stream_id, &headers).await;
            }
            OwnedEvent::HeaderBlock(block) => {
                if let Err(e) = self.decompressor.decompress(&block) {
                    tracing::debug!("unreadable header block: {e}");
                    self.send(frame::goaway(0, frame::GOAWAY_PROTOCOL_ERROR))
                        .await;
                    return false;
                }
            }
            OwnedEvent::Rst { stream_id } => match self.routes.remove(&stream_id) {
                Some(Route::Data { reset, .. }) => reset.cancel(),
                Some(Route::Error) | None => {}
            },
            OwnedEvent::Ping { id } => {
                // Odd ids are the client's: echoed. Even ones would answer ours; we send none.
                if id % 2 == 1 {
                    self.send(frame::ping(id)).await;
                }
            }
            OwnedEvent::GoAway => return false,
            OwnedEvent::Ignored => {}
            OwnedEvent::Data { stream_id, bytes } => {
                if let Some(Route::Data {
                    to_pod: Some(tx), ..
                }) = self.routes.get(&stream_id)
                    && tx.send(Inbound::Data(bytes)).await.is_err()
                {
                    // The connection to the pod is done; what more comes is dropped.
                    if let Some(Route::Data { to_pod, .. }) = self.routes.get_mut(&stream_id) {
                        *to_pod = None;
                    }
                }
            }
            OwnedEvent::DataEnd {
                stream_id,
                fin: true,
            } => match self.routes.get_mut(&stream_id) {
                Some(Route::Data { to_pod, .. }) => {
                    if let Some(tx) = to_pod.take() {
                        let _ = tx.send(Inbound::Fin).await;
                    }
                }
                // kubectl's FIN on the error stream, at once: nothing more comes on it.
                Some(Route::Error) => {
                    self.routes.remove(&stream_id);
                }
                None => {}
            },
            OwnedEvent::DataEnd { .. } => {}
        }
        true
    }

    /// A new client stream: checked as the kubelet's `httpStreamReceived`, answered, paired.
    async fn stream(&mut self, stream_id: u32, headers: &Headers) {
        let (kind, port, request) = match check(headers, stream_id) {
            Ok(x) => x,
            Err(why) => {
                tracing::debug!("stream {stream_id} rejected: {why}");
                self.send(frame::rst_stream(stream_id, frame::RST_CANCEL))
                    .await;
                return;
            }
        };
        let known = self.pending.contains_key(&request);
        if !known && self.pending.len() >= MAX_PENDING {
            self.send(frame::rst_stream(stream_id, frame::RST_REFUSED_STREAM))
                .await;
            return;
        }
        let reply = self.compressor.compress(&Headers::default());
        self.send(frame::syn_reply(stream_id, false, &reply)).await;
        let pending = self.pending.entry(request.clone()).or_default();
        let duplicate = if kind == spdy::STREAM_TYPE_DATA {
            pending.data.is_some()
        } else {
            pending.error.is_some()
        };
        if duplicate {
            tracing::debug!("request {request}: a second {kind} stream");
            self.send(frame::rst_stream(stream_id, frame::RST_PROTOCOL_ERROR))
                .await;
            return;
        }
        if kind == spdy::STREAM_TYPE_DATA {
            // Its bytes wait in the pipe until the pair is complete.
            let (tx, rx) = mpsc::channel(INBOUND);
            let reset = CancellationToken::new();
            self.routes.insert(
                stream_id,
                Route::Data {
                    to_pod: Some(tx),
                    reset: reset.clone(),
                },
            );
            pending.data = Some((stream_id, rx, reset));
        } else {
            self.routes.insert(stream_id, Route::Error);
            pending.error = Some(stream_id);
        }
        if pending.data.is_none() || pending.error.is_none() {
            return;
        }
        let Some(Pending {
            data: Some((data, rx, reset)),
            error: Some(error),
        }) = self.pending.remove(&request)
        else {
            return;
        };
        let (pod, out) = (self.pod.clone(), self.out.clone());
        self.forwards
            .spawn(forward(pod, out, port, data, error, rx, reset));
    }
}

/// One forwarded connection, as containerd's `portForward` and the kubelet's
/// `httpStreamHandler.portForward` run it.
async fn forward(
    pod: Pod,
    out: mpsc::Sender<Out>,
    port: u16,
    data: u32,
    error: u32,
    mut inbound: mpsc::Receiver<Inbound>,
    reset: CancellationToken,
) {
    let send = |frame: Vec<u8>| {
        let out = out.clone();
        async move { out.send(Out::Binary(frame)).await.is_ok() }
    };
    match ports::dial(&pod.spec, &pod.name, &pod.sandbox, port) {
        Err(message) => {
            tracing::debug!("{message}");
            if let Ok(f) = frame::data(error, false, message.as_bytes()) {
                send(f).await;
            }
        }
        Ok((conn, server)) => {
            let (mut from_pod, mut to_pod) = tokio::io::split(conn);
            let cancelled = reset.clone();
            let to_client = async move {
                let mut buf = vec![0u8; CHUNK];
                loop {
                    let n = tokio::select! {
                        n = from_pod.read(&mut buf) => n,
                        _ = cancelled.cancelled() => return,
                    };
                    match n {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let Ok(f) = frame::data(data, false, &buf[..n]) else {
                                return;
                            };
                            if !send(f).await {
                                return;
                            }
                        }
                    }
                }
            };
            let from_client = async move {
                while let Some(i) = inbound.recv().await {
                    match i {
                        Inbound::Data(b) => {
                            if to_pod.write_all(&b).await.is_err() {
                                return;
                            }
                        }
                        Inbound::Fin => break,
                    }
                }
                let _ = to_pod.shutdown().await;
            };
            let forwarding = async move {
                let mut to_client = std::pin::pin!(to_client);
                let mut from_client = std::pin::pin!(from_client);
                // The first direction to finish ends it; the other gets a second more.
                tokio::select! {
                    () = &mut to_client => {
                        let _ = tokio::time::timeout(OTHER_DIRECTION, from_client).await;
                    }
                    () = &mut from_client => {
                        let _ = tokio::time::timeout(OTHER_DIRECTION, to_client).await;
                    }
                }
            };
            // The pod's end of the pipe is served alongside; both are dropped together.
            // The pod's end is served alongside; the connection's end closes with the
            // forwarding (the halves are dropped with it), which ends the server too.
            tokio::join!(forwarding, server);
        }
    }
    // The kubelet's deferred closes: the error stream, then the data stream.
    if let Ok(f) = frame::data(error, true, b"") {
        send(f).await;
    }
    if !reset.is_cancelled()
        && let Ok(f) = frame::data(data, true, b"")
    {
        send(f).await;
    }
}

/// The stream's (type, port, request id), or why the kubelet refuses it.
fn check(headers: &Headers, stream_id: u32) -> Result<(&'static str, u16, String), String> {
    let port = headers.get(spdy::PORT).unwrap_or("");
    if port.is_empty() {
        return Err("\"port\" header is required".into());
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("unable to parse {port:?} as a port"))?;
    if port == 0 {
        return Err(format!("port \"{port}\" must be > 0"));
    }
    let kind = match headers.get(spdy::STREAM_TYPE) {
        None | Some("") => return Err("\"streamType\" header is required".into()),
        Some(spdy::STREAM_TYPE_DATA) => spdy::STREAM_TYPE_DATA,
        Some(spdy::STREAM_TYPE_ERROR) => spdy::STREAM_TYPE_ERROR,
        Some(other) => return Err(format!("invalid stream type {other:?}")),
    };
    // Older clients send no request id: the kubelet pairs consecutive streams.
    let request = match headers.get(spdy::REQUEST_ID) {
        Some(r) if !r.is_empty() => r.to_string(),
        _ if kind == spdy::STREAM_TYPE_ERROR => stream_id.to_string(),
        _ => stream_id.saturating_sub(2).to_string(),
    };
    Ok((kind, port, request))
}
