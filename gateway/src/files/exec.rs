//! One exec in a container for a file transfer: the WebSocket to the cluster (as the person,
//! through the cluster's client like every other request), its streams as events, stdin out.

use crate::session::relay::io::{self, Reader, Writer};
use crate::upstream::{Cluster, UpstreamError, empty_body};
use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload};
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use podgate_auth::Identity;
use podgate_metrics::Metrics;
use podgate_protocol::frame::{self, ChannelFrame};
use podgate_protocol::{ExecOptions, Protocol, Status};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

type Io = TokioIo<hyper::upgrade::Upgraded>;

/// The largest message read from the cluster (kube-apiserver sends at most 32 KiB of output
/// per message; its bound for what it takes is 32 MiB).
const MAX_MESSAGE: usize = 4 << 20;
/// The largest stdin message sent.
pub const STDIN_CHUNK: usize = 256 << 10;
/// How much of a refusal's body is read.
const REFUSAL_BODY: usize = 64 << 10;

/// What the container's command did.
#[derive(Debug)]
pub enum Event {
    Stdout(Bytes),
    Stderr(Bytes),
    /// The exit status (stream 3).
    Status(Box<Status>),
    /// The connection ended; with why when it broke.
    Closed(Option<String>),
}

/// Why the exec did not start.
#[derive(Debug)]
pub enum OpenError {
    /// The cluster answered with this refusal (RBAC, no such pod or container, ...).
    Refused(Status),
    /// The cluster could not be reached, or the request could not be made.
    Upstream(Status),
}

/// A running exec.
pub struct Exec {
    writer: Arc<Writer<Io>>,
    pub events: mpsc::Receiver<Event>,
    protocol: Protocol,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Exec {
    fn drop(&mut self) {
        // Dropping the connection ends the command (the cluster closes its streams).
        self.reader.abort();
    }
}

/// Starts `opts` in `namespace/pod` of `cluster` as `identity`.
pub async fn open(
    metrics: &Metrics,
    cluster: &Cluster,
    identity: &Identity,
    namespace: &str,
    pod: &str,
    opts: &ExecOptions,
) -> Result<Exec, OpenError> {
    let path = format!(
        "/api/v1/namespaces/{namespace}/pods/{pod}/exec?{}",
        podgate_protocol::query::to_query(opts)
    );
    let mut headers =
        crate::upstream::headers::forward(&HeaderMap::new(), identity, cluster.impersonate);
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static("v5.channel.k8s.io, v4.channel.k8s.io"),
    );
    let key = fastwebsockets::handshake::generate_key();
    let bad = |m: &str| OpenError::Upstream(Status::api_error(500, "InternalError", m));
    headers.insert(
        header::SEC_WEBSOCKET_KEY,
        HeaderValue::from_str(&key).map_err(|_| bad("podgate could not build the exec request"))?,
    );
    let mut req = Request::new(empty_body());
    *req.uri_mut() = path
        .parse()
        .map_err(|_| bad("podgate could not build the exec request's path"))?;
    *req.headers_mut() = headers;
    let sent = Instant::now();
    let resp = match cluster.upstream.send(req).await {
        Ok(r) => r,
        Err(e) => {
            metrics.upstream_request(&cluster.id, None, sent.elapsed());
            return Err(OpenError::Upstream(unreachable(&cluster.id, &e)));
        }
    };
    metrics.upstream_request(&cluster.id, Some(resp.status().as_u16()), sent.elapsed());
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(OpenError::Refused(refusal(resp).await));
    }
    let protocol = resp
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Protocol::from_name(v.trim()))
        .filter(|p| matches!(p, Protocol::V5 | Protocol::V4))
        .ok_or_else(|| {
            OpenError::Upstream(Status::api_error(
                502,
                "InternalError",
                format!(
                    "cluster \"{}\" does not speak v5.channel.k8s.io or v4.channel.k8s.io, \
                     which file transfers need",
                    cluster.id
                ),
            ))
        })?;
    let upgraded = hyper::upgrade::on(resp).await.map_err(|e| {
        OpenError::Upstream(Status::api_error(
            502,
            "InternalError",
            format!("the cluster's upgrade failed: {e}"),
        ))
    })?;
    let ws = fastwebsockets::WebSocket::after_handshake(
        TokioIo::new(upgraded),
        fastwebsockets::Role::Client,
    );
    let (read, write) = io::split(ws, fastwebsockets::Role::Client);
    let writer = Arc::new(Writer::new(write));
    let (tx, events) = mpsc::channel(16);
    let reader = tokio::spawn(read_events(read, writer.clone(), protocol, tx));
    Ok(Exec {
        writer,
        events,
        protocol,
        reader,
    })
}

impl Exec {
    /// Writes `data` to the command's stdin, in messages of at most [`STDIN_CHUNK`].
    pub async fn stdin(&self, data: &[u8]) -> Result<(), String> {
        for chunk in data.chunks(STDIN_CHUNK) {
            let e = frame::encode(self.protocol, frame::STDIN, chunk);
            let opcode = if e.text { OpCode::Text } else { OpCode::Binary };
            match self
                .writer
                .send(Frame::new(true, opcode, None, Payload::Owned(e.payload)))
                .await
            {
                Ok(true) => {}
                Ok(false) => return Err("the connection to the container is closed".into()),
                Err(e) => return Err(format!("writing to the container failed: {e}")),
            }
        }
        Ok(())
    }

    /// Ends stdin (v5's close signal; v4 has none, the archive's end marks it).
    pub async fn close_stdin(&self) -> Result<(), String> {
        let Some(e) = frame::close_signal(self.protocol, frame::STDIN) else {
            return Ok(());
        };
        self.writer
            .send(Frame::new(
                true,
                OpCode::Binary,
                None,
                Payload::Owned(e.payload),
            ))
            .await
            .map(|_| ())
            .map_err(|e| format!("writing to the container failed: {e}"))
    }

    /// The next event, or `Closed` with why when none comes within `limit`.
    pub async fn next(&mut self, limit: Duration) -> Event {
        match tokio::time::timeout(limit, self.events.recv()).await {
            Ok(Some(e)) => e,
            Ok(None) => Event::Closed(None),
            Err(_) => Event::Closed(Some(format!(
                "the container sent nothing for {}s",
                limit.as_secs_f64()
            ))),
        }
    }
}

async fn read_events(
    mut read: Reader<Io>,
    writer: Arc<Writer<Io>>,
    protocol: Protocol,
    tx: mpsc::Sender<Event>,
) {
    let mut assembler = podgate_protocol::message::Assembler::new(MAX_MESSAGE);
    let mut obligated = |f: Frame<'static>| {
        let w = writer.clone();
        async move { w.send(f).await.map(|_| ()) }
    };
    loop {
        let f = match io::next_message(&mut read, &mut assembler, &mut obligated).await {
            Ok(f) => f,
            Err(e) => {
                let _ = tx
                    .send(Event::Closed(Some(format!(
                        "the connection to the cluster broke: {e:?}"
                    ))))
                    .await;
                return;
            }
        };
        let event = match f.opcode {
            OpCode::Close => {
                let _ = tx.send(Event::Closed(None)).await;
                return;
            }
            OpCode::Text | OpCode::Binary => {
                match frame::decode(protocol, f.opcode == OpCode::Text, &f.payload) {
                    Ok(ChannelFrame::Data { stream, data }) => match stream {
                        frame::STDOUT => Event::Stdout(Bytes::copy_from_slice(&data)),
                        frame::STDERR => Event::Stderr(Bytes::copy_from_slice(&data)),
                        frame::STATUS => {
                            Event::Status(Box::new(serde_json::from_slice(&data).unwrap_or_else(
                                |_| Status::stream_failure(String::from_utf8_lossy(&data)),
                            )))
                        }
                        _ => continue,
                    },
                    Ok(ChannelFrame::Close { .. }) => continue,
                    Err(e) => Event::Closed(Some(format!("the cluster sent a bad frame: {e}"))),
                }
            }
            _ => continue,
        };
        if tx.send(event).await.is_err() {
            return;
        }
    }
}

fn unreachable(cluster: &str, e: &UpstreamError) -> Status {
    tracing::warn!(cluster, "upstream request failed: {e}");
    crate::upstream::proxy::unreachable_status(cluster, e)
}

/// The cluster's refusal as a `Status` (its own when it sent one).
async fn refusal(resp: http::Response<hyper::body::Incoming>) -> Status {
    let code = resp.status().as_u16();
    let body = http_body_util::Limited::new(resp.into_body(), REFUSAL_BODY);
    let bytes = match tokio::time::timeout(Duration::from_secs(5), body.collect()).await {
        Ok(Ok(c)) => c.to_bytes(),
        _ => Bytes::new(),
    };
    match serde_json::from_slice::<Status>(&bytes) {
        Ok(mut s) if s.message.is_some() => {
            s.code = Some(code);
            s
        }
        _ => Status::api_error(
            code,
            "Unknown",
            format!(
                "the cluster refused the exec ({code}): {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
            ),
        ),
    }
}
