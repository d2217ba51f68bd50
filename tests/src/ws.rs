//! A raw WebSocket client for the Kubernetes channel protocols: opened with a token, offered
//! protocols and extra headers; frames read one at a time or to the close and decoded per
//! protocol; stdin sent; echo round trips.

use crate::tls::{self, Endpoint};
use futures_util::{SinkExt as _, StreamExt as _};
use podgate_protocol::Protocol;
use podgate_protocol::frame::{self, ChannelFrame};
use std::time::Duration;
use tokio_tungstenite::tungstenite::{Error, Message, client::IntoClientRequest as _};

pub use tokio_tungstenite::tungstenite;

/// The binary v5 protocol, as kubectl 1.30+ offers it.
pub const V5: &str = "v5.channel.k8s.io";

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// How long the server has to answer the upgrade, and each message after it.
const ANSWER: Duration = Duration::from_secs(30);

/// Opens a WebSocket to `path` on `to` with `token` as a bearer (none when empty), offering
/// `protocols` (no header when empty) and sending `headers`; returns the socket and the
/// protocol the server chose, or the HTTP status and body of a refusal.
pub async fn open(
    to: &impl Endpoint,
    token: &str,
    path: &str,
    protocols: &[&str],
    headers: &[(&str, &str)],
) -> Result<(Ws, Option<String>), (u16, String)> {
    let stream = tls::connect(to).await;
    let mut request = format!("wss://{}{path}", to.addr())
        .into_client_request()
        .expect("a WebSocket request");
    let h = request.headers_mut();
    if !token.is_empty() {
        h.insert(
            "Authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    if !protocols.is_empty() {
        h.insert(
            "Sec-WebSocket-Protocol",
            protocols.join(", ").parse().expect("header"),
        );
    }
    for (name, value) in headers {
        h.append(
            http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            value.parse().expect("header value"),
        );
    }
    let handshake = tokio::time::timeout(ANSWER, tokio_tungstenite::client_async(request, stream))
        .await
        .unwrap_or_else(|_| panic!("no answer to the upgrade of {path} within {ANSWER:?}"));
    match handshake {
        Ok((ws, response)) => {
            let chosen = response
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            Ok((ws, chosen))
        }
        Err(Error::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err((response.status().as_u16(), body))
        }
        Err(e) => panic!("the WebSocket handshake for {path} failed: {e}"),
    }
}

/// A channel frame: stream id and payload, or the close (with its reason).
#[derive(Debug, PartialEq)]
pub enum Got {
    Data(u8, Vec<u8>),
    Close(Option<String>),
}

/// The next binary channel frame with a payload (frames of length ≤ 1 are skipped, as clients
/// do; pings are answered by tungstenite while it reads), within `limit`.
pub async fn next_frame(ws: &mut Ws, limit: Duration) -> Got {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no frame within {limit:?}"));
        match next {
            Some(Ok(Message::Binary(b))) if b.len() > 1 => return Got::Data(b[0], b[1..].to_vec()),
            Some(Ok(Message::Close(f))) => return Got::Close(f.map(|f| f.reason.to_string())),
            None => return Got::Close(None),
            Some(Err(e)) => panic!("websocket error: {e}"),
            Some(Ok(_)) => {}
        }
    }
}

/// Sends stdin bytes (stream 0) as one binary frame.
pub async fn send_stdin(ws: &mut Ws, data: &[u8]) {
    let mut message = vec![frame::STDIN];
    message.extend_from_slice(data);
    ws.send(Message::binary(message)).await.expect("stdin sent");
}

/// Sends stdin and waits for the same bytes back on stdout (for `builtin:echo`, or `cat`).
pub async fn echo_round_trip(ws: &mut Ws, data: &[u8]) {
    send_stdin(ws, data).await;
    let mut got = Vec::new();
    while got.len() < data.len() {
        match next_frame(ws, Duration::from_secs(10)).await {
            Got::Data(1, d) => got.extend_from_slice(&d),
            other => panic!("expected the echo of {data:?}, got {other:?}"),
        }
    }
    assert_eq!(got, data);
}

/// Reads stdout frames until at least `bytes` arrived (anything else fails the test); returns
/// how many did.
pub async fn read_stdout(ws: &mut Ws, bytes: u64) -> u64 {
    let mut read = 0u64;
    while read < bytes {
        match next_frame(ws, Duration::from_secs(10)).await {
            Got::Data(1, d) => read += d.len() as u64,
            other => panic!("expected stdout, got {other:?}"),
        }
    }
    read
}

/// A WebSocket message as read: whether it was text, and its payload.
pub type Msg = (bool, Vec<u8>);

/// Everything a server sent until it closed.
#[derive(Debug)]
pub struct Ended {
    pub messages: Vec<Msg>,
    /// The close frame's code and reason; `None` when the connection ended without one.
    pub close: Option<(u16, String)>,
    /// The error that ended the connection, if one did.
    pub error: Option<String>,
}

impl Ended {
    /// The messages of a connection that ended cleanly (closed, or just gone), or a panic with
    /// the error that ended it.
    pub fn messages(self) -> Vec<Msg> {
        if let Some(e) = self.error {
            panic!("websocket error: {e}");
        }
        self.messages
    }

    /// The messages decoded for `protocol`.
    pub fn frames(&self, protocol: Protocol) -> Vec<(u8, Vec<u8>)> {
        decode(protocol, &self.messages)
    }
}

/// Reads every message until the server's close (or the end of the connection), each within
/// 30 s.
pub async fn read_to_close(ws: &mut Ws) -> Ended {
    let mut messages = Vec::new();
    loop {
        let next = tokio::time::timeout(ANSWER, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no message within {ANSWER:?}; so far {messages:?}"));
        match next {
            Some(Ok(Message::Binary(b))) => messages.push((false, b.to_vec())),
            Some(Ok(Message::Text(t))) => messages.push((true, t.as_bytes().to_vec())),
            Some(Ok(Message::Close(c))) => {
                let close = c.map(|c| (u16::from(c.code), c.reason.to_string()));
                return Ended {
                    messages,
                    close,
                    error: None,
                };
            }
            Some(Ok(_)) => {}
            None => {
                return Ended {
                    messages,
                    close: None,
                    error: None,
                };
            }
            Some(Err(e)) => {
                return Ended {
                    messages,
                    close: None,
                    error: Some(e.to_string()),
                };
            }
        }
    }
}

/// Decodes messages for `protocol`: (stream, bytes) in order; a v5 stream close is
/// `(255, [stream])`.
pub fn decode(protocol: Protocol, messages: &[Msg]) -> Vec<(u8, Vec<u8>)> {
    messages
        .iter()
        .map(|(text, payload)| {
            match frame::decode(protocol, *text, payload).expect("a valid frame for the protocol") {
                ChannelFrame::Data { stream, data } => (stream, data.into_owned()),
                ChannelFrame::Close { stream } => (255, vec![stream]),
            }
        })
        .collect()
}

/// Every byte of stream `id`, in order.
pub fn stream(frames: &[(u8, Vec<u8>)], id: u8) -> Vec<u8> {
    frames
        .iter()
        .filter(|(s, _)| *s == id)
        .flat_map(|(_, d)| d.clone())
        .collect()
}
