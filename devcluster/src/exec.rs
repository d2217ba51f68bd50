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
use podgate_protocol::{ExecOptions, Protocol, Status, Subresource, TerminalSize, subprotocol};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Bounds on what one session may hold: a few frames each way.
const OUTPUT_FRAMES: usize = 8;
const INPUT_FRAMES: usize = 8;
const MAX_MESSAGE: usize = 4 << 20;

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
    let container = match resolve_container(pod, pod_name, opts.container.as_deref()) {
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
        workdir: state
            .state_dir
            .join(ns)
            .join(pod_name)
            .join(&container.name),
        hostname: pod_name.to_string(),
    };
    let span = tracing::info_span!("session", user = %user.name, ns, pod = pod_name,
        container = %container.name, sub = sub.name(), %protocol);
    let tasks = state.tasks.clone();
    tasks.spawn(tracing::Instrument::instrument(
        async move {
            let _counted = state.session_guard();
            tokio::select! {
                _ = state.shutdown.cancelled() => {}
                r = session(upgraded, protocol, opts, container, launch) => {
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

async fn session(
    upgraded: fastwebsockets::upgrade::UpgradeFut,
    protocol: Protocol,
    opts: ExecOptions,
    container: ContainerSpec,
    launch: Launch,
) -> Result<(), WebSocketError> {
    let ws = upgraded.await?;
    let (mut read, mut write) = ws.split(tokio::io::split);
    read.set_max_message_size(MAX_MESSAGE);
    let mut read = fastwebsockets::FragmentCollectorRead::new(read);
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(OUTPUT_FRAMES);
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<Frame<'static>>(2);
    let (in_tx, in_rx) = mpsc::channel::<Input>(INPUT_FRAMES);

    let writer = async {
        write
            .write_frame(encoded(protocol, ready_stream(&opts), b""))
            .await?;
        loop {
            tokio::select! {
                biased;
                Some(f) = ctl_rx.recv() => write.write_frame(f).await?,
                out = out_rx.recv() => match out {
                    Some((stream, data)) => write.write_frame(encoded(protocol, stream, &data)).await?,
                    None => break,
                },
            }
        }
        write.write_frame(Frame::close(1000, b"")).await?;
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

    let reader = async {
        let mut obligated = |f: Frame<'static>| {
            let ctl = ctl_tx.clone();
            async move { ctl.send(f).await }
        };
        loop {
            let f = read.read_frame(&mut obligated).await?;
            let is_text = match f.opcode {
                OpCode::Close => return Ok::<(), WebSocketError>(()),
                OpCode::Text => true,
                OpCode::Binary => false,
                _ => continue,
            };
            let msg = match frame::decode(protocol, is_text, &f.payload) {
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
            if in_tx.send(msg).await.is_err() {
                // The process is done with input; keep reading so pings and close are seen.
                continue;
            }
        }
    };

    tokio::select! {
        r = reader => r,
        (w, ()) = async { tokio::join!(writer, process) } => w,
    }
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
