//! `pods/{pod}/exec` and `pods/{pod}/attach`: checks before the upgrade (each refusal the
//! `Status` kube-apiserver sends), then one WebSocket session per request.

use crate::access::{Attributes, UserInfo};
use crate::runtime::{self, Exit, Input, Launch, Output};
use crate::state::State;
use crate::topology::ContainerSpec;
use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload, WebSocketError};
use hyper::{Method, Request, Response, header};
use podgate_protocol::frame::{self, ChannelFrame};
use podgate_protocol::http::{Body, status};
use podgate_protocol::message::{Assembler, Kind, Opcode, Step};
use podgate_protocol::{ExecOptions, Protocol, Status, Subresource, TerminalSize, subprotocol};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Bounds on what one session may hold: a few frames each way.
const OUTPUT_FRAMES: usize = 8;
const INPUT_FRAMES: usize = 8;

/// How long the server waits, once it has sent its close frame, for the client's close frame
/// (or the end of the connection) before dropping the connection anyway. Dropping a socket with
/// unread bytes makes the kernel answer with a TCP RST, on which the client's kernel may discard
/// what it has not read yet: the exit status and the close frame. So the server reads (and
/// discards) until the client's close arrives, as the RFC 6455 closing handshake asks (§7.1.1:
/// the server closes the TCP connection once both close frames are through); a client that
/// never answers costs at most this long. (kube-apiserver does not wait: golang.org/x/net's
/// websocket `Conn.Close` writes the close frame and closes the connection at once, and only its
/// reader goroutine, draining the socket until then, makes the RST rare there.)
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How long a connection is held after a frame refused by its header, when the rest of the
/// client's bytes can no longer be read (see [`CLOSE_WAIT`]).
const OUT_OF_STEP_HOLD: Duration = Duration::from_secs(1);

pub fn handle(
    state: Arc<State>,
    mut req: Request<hyper::body::Incoming>,
    user: &UserInfo,
    sub: Subresource,
    ns: &str,
    pod_name: &str,
) -> Response<Body> {
    // WebSocket upgrades are GETs (`get`), SPDY ones POSTs (`create`).
    let verb = if req.method() == Method::POST {
        "create"
    } else {
        "get"
    };
    let resource = format!("pods/{}", sub.name());
    let attrs = Attributes {
        verb,
        group: "",
        resource: &resource,
        namespace: Some(ns),
        name: Some(pod_name),
    };
    if let Err(s) = state.access.authorize(user, &attrs) {
        return status(&s);
    }
    let Some(pod) = state.store.pod(ns, pod_name) else {
        return status(&Status::not_found("pods", pod_name));
    };
    let opts = match podgate_protocol::query::parse(req.uri().query().unwrap_or(""), sub) {
        Ok(o) => o,
        Err(e) => return status(&Status::bad_request(e.to_string())),
    };
    let container = match resolve_container(&pod, pod_name, opts.container.as_deref()) {
        Ok(c) => c,
        Err(e) => return status(&e),
    };
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if upgrade.to_ascii_lowercase().starts_with("spdy") {
        return status(&Status::bad_request(
            "SPDY is not supported: this server speaks remote-command over WebSocket only \
             (v5.channel.k8s.io); use kubectl 1.30 or newer, or a WebSocket client",
        ));
    }
    if !fastwebsockets::upgrade::is_upgrade_request(&req) {
        return status(&Status::bad_request("Upgrade request required"));
    }
    let negotiation = subprotocol::negotiate(
        req.headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        &state.topology.supported_protocols(),
    );
    let Some(protocol) = negotiation.protocol else {
        let names: Vec<_> = state
            .topology
            .supported_protocols()
            .iter()
            .map(|p| p.name())
            .collect();
        return status(&Status::bad_request(format!(
            "unable to upgrade: none of the offered WebSocket subprotocols is supported; supported: {}",
            names.join(", ")
        )));
    };
    let (mut response, upgraded) = match fastwebsockets::upgrade::upgrade(&mut req) {
        Ok(x) => x,
        Err(e) => return status(&Status::bad_request(format!("unable to upgrade: {e}"))),
    };
    if negotiation.echo {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            header::HeaderValue::from_static(protocol.name()),
        );
    }
    let command = match sub {
        Subresource::Exec => opts.command.clone(),
        Subresource::Attach => container.command.clone(),
    };
    let launch = Launch {
        command,
        tty: opts.tty,
        stdin: opts.stdin,
        stdout: opts.stdout,
        stderr: opts.stderr && !opts.tty,
        workdir: container.working_dir.clone().unwrap_or_else(|| {
            state
                .state_dir
                .join(ns)
                .join(pod_name)
                .join(&container.name)
        }),
        hostname: pod_name.to_string(),
        env: container
            .env
            .iter()
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect(),
        uid: container
            .security_context
            .as_ref()
            .and_then(|s| s.run_as_user),
        gid: container
            .security_context
            .as_ref()
            .and_then(|s| s.run_as_group),
    };
    let span = tracing::info_span!("session", user = %user.name, ns, pod = pod_name,
        container = %container.name, sub = sub.name(), %protocol);
    let tasks = state.tasks.clone();
    let max_message = state.topology.max_message_bytes;
    tasks.spawn(tracing::Instrument::instrument(
        async move {
            let _counted = state.session_guard();
            tokio::select! {
                _ = state.shutdown.cancelled() => {}
                r = session(upgraded, protocol, opts, container, launch, max_message) => {
                    if let Err(e) = r {
                        tracing::debug!("session ended with an error: {e}");
                    }
                }
            }
        },
        span,
    ));
    response.map(|b| {
        http_body_util::BodyExt::boxed(http_body_util::BodyExt::map_err(b, |never| match never {}))
    })
}

/// The stream the server announces itself on: the lowest one it will write to.
fn ready_stream(opts: &ExecOptions) -> u8 {
    if opts.stdout {
        frame::STDOUT
    } else if opts.stderr && !opts.tty {
        frame::STDERR
    } else {
        frame::STATUS
    }
}

fn encoded(protocol: Protocol, stream: u8, data: &[u8]) -> Frame<'static> {
    let e = frame::encode(protocol, stream, data);
    let opcode = if e.text { OpCode::Text } else { OpCode::Binary };
    Frame::new(true, opcode, None, Payload::Owned(e.payload))
}

/// What the reader asks the writer to send.
enum Ctl {
    /// A frame fastwebsockets obliges us to send: a pong, or the echo of the client's close.
    Obligated(Frame<'static>),
    /// Fail the connection (RFC 6455 §7.1.7): close with this code and reason.
    Fail(u16, String),
}

/// How the reader stopped.
enum ReadEnd {
    /// The client's close frame arrived (its echo is queued, unless we closed first).
    PeerClosed,
    /// The framing is broken past reading on (fastwebsockets refused a frame header); a close
    /// with the error's code is queued.
    Broken,
    /// The connection ended or failed without a close frame.
    Gone(WebSocketError),
}

async fn session(
    upgraded: fastwebsockets::upgrade::UpgradeFut,
    protocol: Protocol,
    opts: ExecOptions,
    container: ContainerSpec,
    launch: Launch,
    max_message: usize,
) -> Result<(), WebSocketError> {
    let ws = upgraded.await?;
    let (mut read, mut write) = ws.split(tokio::io::split);
    // fastwebsockets refuses a frame whose length is `>=` this, before buffering its payload:
    // one more than the limit lets a message of exactly the limit through in one frame. The
    // assembler bounds the message across fragments, which fastwebsockets does not.
    read.set_max_message_size(max_message.saturating_add(1));
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(OUTPUT_FRAMES);
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<Ctl>(2);
    let (in_tx, in_rx) = mpsc::channel::<Input>(INPUT_FRAMES);
    // Set once our close frame is on its way: nothing may be sent after it (RFC 6455 §5.5.1).
    let close_sent = AtomicBool::new(false);

    // Ends once it has sent a close frame: after the process's exit status (1000), as the echo
    // of the client's close, or failing the connection on the reader's word.
    let writer = async {
        write
            .write_frame(encoded(protocol, ready_stream(&opts), b""))
            .await?;
        let close = loop {
            tokio::select! {
                biased;
                ctl = ctl_rx.recv() => match ctl {
                    Some(Ctl::Obligated(f)) if f.opcode == OpCode::Close => break f,
                    Some(Ctl::Obligated(f)) => write.write_frame(f).await?,
                    Some(Ctl::Fail(code, reason)) => break Frame::close(code, reason.as_bytes()),
                    // The reader is gone: so is the connection.
                    None => return Ok(()),
                },
                out = out_rx.recv() => match out {
                    Some((stream, data)) => write.write_frame(encoded(protocol, stream, &data)).await?,
                    None => break Frame::close(1000, b""),
                },
            }
        };
        close_sent.store(true, Ordering::Relaxed);
        write.write_frame(close).await?;
        write.flush().await
    };

    let process = async {
        let exit = runtime::run(&container, launch, in_rx, Output::new(out_tx.clone())).await;
        let status = match exit {
            Exit::Code(0, _) => Status::success(),
            Exit::Code(code, message) => Status::exit_code(code, &message),
            Exit::Failed(message) => Status::stream_failure(message),
        };
        let payload = if protocol.has_status_json() {
            Some(status.to_json())
        } else {
            // v1-v3 carry only a failure's message, and nothing on success.
            status
                .message
                .filter(|_| status.status != "Success")
                .map(String::into_bytes)
        };
        if let Some(p) = payload {
            let _ = out_tx.send((frame::STATUS, Bytes::from(p))).await;
        }
        drop(out_tx);
    };

    // The writer ends the session; the process alone does not (its end ends the writer, after
    // the exit status). A writer that ends first (the client closed) kills the process.
    let sender = async {
        let mut writer = std::pin::pin!(writer);
        let mut process = std::pin::pin!(process);
        let mut process_done = false;
        loop {
            tokio::select! {
                () = &mut process, if !process_done => process_done = true,
                w = &mut writer => return w,
            }
        }
    };

    // Reads until the client's close frame or the end of the connection. Once our close is
    // sent (or the client broke the protocol) it only discards, so the client's last frames
    // are read and never answered with a TCP RST.
    let reader = async {
        let mut assembler = Assembler::new(max_message);
        let mut failed = false;
        let ctl = &ctl_tx;
        let close_sent = &close_sent;
        let mut obligated = |f: Frame<'static>| {
            let drop_it = close_sent.load(Ordering::Relaxed);
            async move {
                if drop_it {
                    return Ok(());
                }
                // A writer already gone has sent its close: the frame is moot.
                let _ = ctl.send(Ctl::Obligated(f)).await;
                Ok::<(), std::convert::Infallible>(())
            }
        };
        loop {
            let f = match read.read_frame(&mut obligated).await {
                Ok(f) => f,
                Err(e) => match refused_frame(&e, max_message) {
                    Some(refusal) if !failed => {
                        tracing::debug!("failing the connection: {e}");
                        failed = true;
                        let _ = ctl.send(Ctl::Fail(refusal.code, refusal.reason)).await;
                        if refusal.frame_consumed {
                            continue;
                        }
                        return ReadEnd::Broken;
                    }
                    _ => return ReadEnd::Gone(e),
                },
            };
            let opcode = match f.opcode {
                OpCode::Close => return ReadEnd::PeerClosed,
                OpCode::Text => Opcode::Text,
                OpCode::Binary => Opcode::Binary,
                OpCode::Continuation => Opcode::Continuation,
                OpCode::Ping | OpCode::Pong => continue,
            };
            if failed || close_sent.load(Ordering::Relaxed) {
                continue;
            }
            let assembled;
            let (is_text, payload): (bool, &[u8]) = match assembler.push(opcode, f.fin, &f.payload)
            {
                Ok(Step::Whole(kind)) => (kind == Kind::Text, &f.payload),
                Ok(Step::Pending) => continue,
                Ok(Step::Assembled(kind, bytes)) => {
                    assembled = bytes;
                    (kind == Kind::Text, &assembled)
                }
                Err(e) => {
                    tracing::debug!("failing the connection: {e}");
                    failed = true;
                    let _ = ctl
                        .send(Ctl::Fail(e.close_code(), close_reason(&e.to_string())))
                        .await;
                    continue;
                }
            };
            let msg = match frame::decode(protocol, is_text, payload) {
                Ok(ChannelFrame::Data {
                    stream: frame::STDIN,
                    data,
                }) if opts.stdin => Input::Stdin(Bytes::copy_from_slice(&data)),
                Ok(ChannelFrame::Data {
                    stream: frame::RESIZE,
                    data,
                }) if protocol.has_resize() => match TerminalSize::parse(&data) {
                    Ok(size) => Input::Resize(size),
                    Err(e) => {
                        tracing::debug!("ignoring a malformed resize message: {e}");
                        continue;
                    }
                },
                Ok(ChannelFrame::Close {
                    stream: frame::STDIN,
                }) => Input::StdinClosed,
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!("ignoring a malformed channel frame: {e}");
                    continue;
                }
            };
            // An error means the process is done with input; keep reading so pings and the
            // close are seen.
            let _ = in_tx.send(msg).await;
        }
    };

    let mut reader = std::pin::pin!(reader);
    let mut sender = std::pin::pin!(sender);
    tokio::select! {
        end = &mut reader => match end {
            // The echo of the client's close, or our failure close, is queued: let the writer
            // send it (the process, if still running, is killed when the writer returns).
            ReadEnd::PeerClosed => match tokio::time::timeout(CLOSE_WAIT, &mut sender).await {
                Ok(r) => r,
                Err(_) => Ok(()),
            },
            // A frame refused by its header: the stream cannot be read on, so the client's
            // bytes stay unread and dropping the connection would reset it, possibly before
            // the client read our close. Hold it a moment once the close is out.
            ReadEnd::Broken => {
                let sent = match tokio::time::timeout(CLOSE_WAIT, &mut sender).await {
                    Ok(r) => r,
                    Err(_) => Ok(()),
                };
                tokio::time::sleep(OUT_OF_STEP_HOLD).await;
                sent
            }
            ReadEnd::Gone(e) => match e {
                WebSocketError::UnexpectedEOF | WebSocketError::ConnectionClosed => Ok(()),
                e => Err(e),
            },
        },
        w = &mut sender => {
            // Our close frame is sent: finish the closing handshake, bounded.
            if w.is_ok() {
                let _ = tokio::time::timeout(CLOSE_WAIT, &mut reader).await;
            }
            w
        }
    }
}

/// Why fastwebsockets refused a frame, when the client broke the protocol (rather than the
/// connection just ending).
struct Refusal {
    code: u16,
    reason: String,
    /// Whether the whole frame was read, so reading on finds the next one: otherwise the
    /// stream is out of step (a header refused before its payload) and cannot be read on.
    frame_consumed: bool,
}

fn refused_frame(e: &WebSocketError, max_message: usize) -> Option<Refusal> {
    let (code, frame_consumed) = match e {
        // The header announced more than the limit: refused before the payload was read.
        WebSocketError::FrameTooLarge => {
            return Some(Refusal {
                code: 1009,
                reason: close_reason(
                    &podgate_protocol::AssembleError::TooBig { limit: max_message }.to_string(),
                ),
                frame_consumed: false,
            });
        }
        // A whole text frame that is not UTF-8.
        WebSocketError::InvalidUTF8 => (1007, true),
        WebSocketError::InvalidCloseFrame | WebSocketError::InvalidCloseCode => (1002, true),
        WebSocketError::ReservedBitsNotZero
        | WebSocketError::ControlFrameFragmented
        | WebSocketError::PingFrameTooLarge
        | WebSocketError::InvalidValue
        | WebSocketError::InvalidFragment
        | WebSocketError::InvalidContinuationFrame => (1002, false),
        _ => return None,
    };
    Some(Refusal {
        code,
        reason: close_reason(&e.to_string()),
        frame_consumed,
    })
}

/// A close reason fits a control frame: 125 bytes with the 2-byte code (RFC 6455 §5.5).
fn close_reason(text: &str) -> String {
    let mut end = text.len().min(123);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// The container a request means: the named one, or the pod's only container; kube-apiserver's
/// messages otherwise.
pub(crate) fn resolve_container(
    pod: &crate::store::PodEntry,
    pod_name: &str,
    name: Option<&str>,
) -> Result<ContainerSpec, Status> {
    match name {
        Some(name) => pod.container(name).cloned().ok_or_else(|| {
            Status::bad_request(format!("container {name} is not valid for pod {pod_name}"))
        }),
        None if pod.spec.containers.len() == 1 => Ok(pod.spec.containers[0].clone()),
        None => {
            let names = |cs: &[ContainerSpec]| {
                cs.iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let mut msg = format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                names(&pod.spec.containers)
            );
            if !pod.spec.init_containers.is_empty() {
                msg.push_str(&format!(
                    " or one of the init containers: [{}]",
                    names(&pod.spec.init_containers)
                ));
            }
            Err(Status::bad_request(msg))
        }
    }
}
