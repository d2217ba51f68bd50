//! One shell as a real client opens it: TCP from a spread source address, TLS, an HTTP/1.1
//! upgrade with a bearer token and `v5.channel.k8s.io`, then channel frames.

use crate::target::Target;
use anyhow::{Context as _, bail};
use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocket, WebSocketRead, WebSocketWrite};
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use podgate_protocol::{ExecOptions, Status, frame, query};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

type Io = TokioIo<hyper::upgrade::Upgraded>;
pub type Ws = WebSocket<Io>;
pub type Rd = WebSocketRead<tokio::io::ReadHalf<Io>>;
pub type Wr = WebSocketWrite<tokio::io::WriteHalf<Io>>;

pub const PROTOCOL: &str = "v5.channel.k8s.io";

/// The pod, container and command of an exec.
#[derive(Clone, Debug)]
pub struct Exec {
    pub namespace: String,
    pub pod: String,
    pub container: Option<String>,
    pub command: Vec<String>,
}

impl Exec {
    /// The request path after the target's prefix: stdin and stdout, no stderr, no tty.
    pub fn path(&self) -> String {
        let opts = ExecOptions {
            command: self.command.clone(),
            container: self.container.clone(),
            stdin: true,
            stdout: true,
            stderr: false,
            tty: false,
        };
        format!(
            "/api/v1/namespaces/{}/pods/{}/exec?{}",
            self.namespace,
            self.pod,
            query::to_query(&opts)
        )
    }
}

/// An open session and how long it took to get there.
pub struct Opened {
    pub ws: Ws,
    /// From the start of the TCP connect to the server's ready frame (to the upgrade's answer
    /// with [`Ready::Skip`]): everything a person waits for before the shell answers.
    pub setup: Duration,
}

/// Opens an exec session and waits for its ready frame, within `timeout`.
pub async fn open(target: &Target, exec: &Exec, timeout: Duration) -> anyhow::Result<Opened> {
    let path = format!("{}{}", target.prefix, exec.path());
    open_upgrade(target, &path, &[PROTOCOL], Ready::Expect, timeout).await
}

/// Whether the first frame after the upgrade must be the empty stdout ("ready") frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    /// A plain exec: the server's `[1]` frame says the shell is there; it is read and checked.
    Expect,
    /// Resume (`podgate.resume.v1`): the ready frame is not relayed, a control frame on
    /// channel 128 comes first, so the caller reads the first frame itself.
    Skip,
}

/// A WebSocket upgrade of `path` (everything after the authority, the target's prefix
/// included when wanted) offering `protocols`, within `timeout`. The server must choose
/// [`PROTOCOL`] (it does for resume too). Exec and resume share this so both pay the same
/// connect, TLS and upgrade costs and their latencies compare.
pub async fn open_upgrade(
    target: &Target,
    path: &str,
    protocols: &[&str],
    ready: Ready,
    timeout: Duration,
) -> anyhow::Result<Opened> {
    let started = Instant::now();
    match tokio::time::timeout(timeout, open_inner(target, path, protocols, ready)).await {
        Ok(Ok(ws)) => Ok(Opened {
            ws,
            setup: started.elapsed(),
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => bail!("session setup timed out after {timeout:?}"),
    }
}

async fn open_inner(
    target: &Target,
    path: &str,
    protocols: &[&str],
    ready: Ready,
) -> anyhow::Result<Ws> {
    let socket = tokio::net::TcpSocket::new_v4().context("socket")?;
    let source = SocketAddr::new(target.sources.next(), 0);
    socket
        .bind(source)
        .with_context(|| format!("bind {source}"))?;
    socket.set_nodelay(true).context("TCP_NODELAY")?;
    let tcp = socket
        .connect(target.addr)
        .await
        .with_context(|| format!("connect {} from {}", target.addr, source.ip()))?;
    let tls = target
        .tls
        .connect(target.server_name.clone(), tcp)
        .await
        .context("TLS handshake")?;
    let req = Request::get(path)
        .header(header::HOST, &target.authority)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(
            header::SEC_WEBSOCKET_KEY,
            fastwebsockets::handshake::generate_key(),
        )
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_PROTOCOL, protocols.join(", "))
        .header(header::AUTHORIZATION, format!("Bearer {}", target.token))
        .body(Empty::<Bytes>::new())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .context("HTTP handshake")?;
    tokio::spawn(async move {
        // Ends when the connection is upgraded (or fails, which the request reports).
        let _ = conn.with_upgrades().await;
    });
    let mut resp = sender.send_request(req).await.context("upgrade request")?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let code = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), 16 << 10)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let message = serde_json::from_slice::<Status>(&body)
            .ok()
            .and_then(|s| s.message)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        bail!("HTTP {}: {}", code.as_u16(), message.trim());
    }
    let chosen = resp
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if chosen != PROTOCOL {
        bail!("the server chose subprotocol {chosen:?}, not {PROTOCOL}");
    }
    let upgraded = hyper::upgrade::on(&mut resp).await.context("upgrade")?;
    let mut ws = WebSocket::after_handshake(TokioIo::new(upgraded), Role::Client);
    // Client frames are masked in place: owned payloads avoid a copy per frame.
    ws.set_auto_apply_mask(true);
    if ready == Ready::Skip {
        return Ok(ws);
    }
    let ready = ws.read_frame().await.context("reading the ready frame")?;
    if ready.opcode != OpCode::Binary || ready.payload.first() != Some(&frame::STDOUT) {
        bail!(
            "expected the ready frame [1], got {:?} {:?}",
            ready.opcode,
            &ready.payload[..ready.payload.len().min(16)]
        );
    }
    Ok(ws)
}

/// stdin bytes as a channel frame.
pub fn stdin(data: &[u8]) -> Frame<'static> {
    let mut payload = Vec::with_capacity(1 + data.len());
    payload.push(frame::STDIN);
    payload.extend_from_slice(data);
    Frame::binary(Payload::Owned(payload))
}

/// v5 close of stdin: the builtin pods exit 0 on it.
pub fn close_stdin() -> Frame<'static> {
    Frame::binary(Payload::Owned(vec![frame::CLOSE_SIGNAL, frame::STDIN]))
}

/// What a frame from the server means to a client.
pub enum Event {
    Stdout(usize),
    /// The exit status on stream 3: `Ok` on success, the message otherwise.
    Exit(Result<(), String>),
    Close,
    Other,
}

pub fn event(f: &Frame<'_>) -> Event {
    match f.opcode {
        OpCode::Close => Event::Close,
        OpCode::Binary => match f.payload.split_first() {
            Some((&frame::STDOUT, data)) => Event::Stdout(data.len()),
            Some((&frame::STATUS, data)) if !data.is_empty() => Event::Exit(exit_status(data)),
            _ => Event::Other,
        },
        _ => Event::Other,
    }
}

fn exit_status(data: &[u8]) -> Result<(), String> {
    match serde_json::from_slice::<Status>(data) {
        Ok(s) if s.status == "Success" => Ok(()),
        Ok(s) => Err(s.message.unwrap_or_else(|| "Failure".into())),
        Err(_) => Err(format!(
            "unreadable status: {}",
            String::from_utf8_lossy(&data[..data.len().min(200)])
        )),
    }
}

/// Reads until the server closes; returns stdout bytes seen and the exit status.
pub async fn drain(ws: &mut Ws) -> anyhow::Result<(u64, Result<(), String>)> {
    let mut stdout = 0u64;
    let mut exit = Err("the session closed without an exit status".to_string());
    loop {
        let f = ws.read_frame().await?;
        match event(&f) {
            Event::Stdout(n) => stdout += n as u64,
            Event::Exit(e) => exit = e,
            Event::Close => return Ok((stdout, exit)),
            Event::Other => {}
        }
    }
}

/// Closes stdin and waits for a successful exit and the close handshake.
pub async fn finish(ws: &mut Ws) -> anyhow::Result<()> {
    ws.write_frame(close_stdin()).await?;
    let (_, exit) = drain(ws).await?;
    exit.map_err(|m| anyhow::anyhow!("exit: {m}"))
}

/// The write half shared between a session's writer and its reader (which owes pongs and the
/// close reply).
pub type SharedWr = tokio::sync::Mutex<Wr>;

pub async fn send(wr: &SharedWr, f: Frame<'static>) -> Result<(), fastwebsockets::WebSocketError> {
    let mut w = wr.lock().await;
    w.write_frame(f).await?;
    w.flush().await
}

/// Reads one frame from a split session, answering pings and the close through `wr`.
pub async fn read(rd: &mut Rd, wr: &SharedWr) -> anyhow::Result<Frame<'static>> {
    let mut obligated = |f: Frame<'_>| {
        let f = Frame::new(true, f.opcode, None, Payload::Owned(f.payload.to_vec()));
        async move { send(wr, f).await }
    };
    let f = rd.read_frame(&mut obligated).await?;
    Ok(Frame::new(
        f.fin,
        f.opcode,
        None,
        match f.payload {
            Payload::Bytes(b) => Payload::Bytes(b),
            other => Payload::Owned(other.to_vec()),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_path_has_stdin_stdout_only() {
        let e = Exec {
            namespace: "load".into(),
            pod: "flood-0".into(),
            container: None,
            command: vec!["1048576".into()],
        };
        assert_eq!(
            e.path(),
            "/api/v1/namespaces/load/pods/flood-0/exec?command=1048576&stdin=true&stdout=true&stderr=false&tty=false"
        );
    }

    #[test]
    fn events_of_server_frames() {
        let bin = |p: &[u8]| Frame::binary(Payload::Owned(p.to_vec()));
        assert!(matches!(event(&bin(&[1, b'a', b'b'])), Event::Stdout(2)));
        assert!(matches!(event(&bin(&[1])), Event::Stdout(0)));
        let ok = [&[3u8][..], &Status::success().to_json()].concat();
        assert!(matches!(event(&bin(&ok)), Event::Exit(Ok(()))));
        let bad = [&[3u8][..], &Status::exit_code(2, "x").to_json()].concat();
        assert!(matches!(event(&bin(&bad)), Event::Exit(Err(_))));
        assert!(matches!(event(&bin(&[3])), Event::Other));
        assert!(matches!(event(&Frame::close(1000, b"")), Event::Close));
        assert_eq!(&*close_stdin().payload, &[255, 0]);
        assert_eq!(&*stdin(b"k").payload, &[0, b'k']);
    }
}
