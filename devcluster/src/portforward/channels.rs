//! The kubelet's own WebSocket port-forward (`websocket.go`), which the official Python client
//! speaks: the ports come from the query; for the i-th port channel 2i carries data both ways
//! and 2i+1 the server's errors; the server's first frame on each channel is the port,
//! little-endian. One connection per port is dialled at once; the WebSocket closes once every
//! port's connection is done (or the client closes it).

use super::Pod;
use super::ws::{Out, QUEUE, owned, writer};
use crate::runtime::ports;
use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, WebSocket, WebSocketError};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use podgate_protocol::Protocol;
use podgate_protocol::frame::{self, ChannelFrame};
use podgate_protocol::portforward::{channel, port_of, port_prefix};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

const CHUNK: usize = 32 << 10;
const INBOUND: usize = 8;
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// containerd waits this long for the second direction once the first is done.
const OTHER_DIRECTION: Duration = Duration::from_secs(1);

pub async fn serve(
    ws: WebSocket<TokioIo<Upgraded>>,
    protocol: Protocol,
    pod: Pod,
    port_list: Vec<u16>,
    max_message: usize,
) -> Result<(), WebSocketError> {
    let (mut read, write) = ws.split(tokio::io::split);
    read.set_max_message_size(max_message.saturating_add(1));
    let (out, rx) = mpsc::channel::<Out>(QUEUE);
    let mut writer = std::pin::pin!(writer(write, rx));
    let encode = move |ch: u8, data: &[u8]| {
        let e = frame::encode(protocol, ch, data);
        if e.text {
            Out::Text(e.payload)
        } else {
            Out::Binary(e.payload)
        }
    };
    // Every channel announces its port first, before any connection's bytes.
    let mut to_pods = Vec::new();
    let mut forwards = JoinSet::new();
    for (i, &port) in port_list.iter().enumerate() {
        let (Some(data), Some(error)) = (channel(i, false), channel(i, true)) else {
            break;
        };
        for ch in [data, error] {
            let _ = out.send(encode(ch, &port_prefix(port))).await;
        }
        let (tx, rx) = mpsc::channel::<Bytes>(INBOUND);
        to_pods.push(Some(tx));
        forwards.spawn(forward(
            pod.clone(),
            out.clone(),
            encode,
            port,
            data,
            error,
            rx,
        ));
    }
    let reader = async {
        let mut obligated = |f: Frame<'_>| {
            let f = owned(f);
            let out = out.clone();
            async move {
                let _ = out.send(Out::Obligated(f)).await;
                Ok::<(), std::convert::Infallible>(())
            }
        };
        loop {
            let f = read.read_frame(&mut obligated).await?;
            let is_text = match f.opcode {
                OpCode::Close => return Ok(()),
                OpCode::Text => true,
                OpCode::Binary => false,
                // kube-apiserver's codec takes every frame as a message of its own.
                _ => continue,
            };
            // Text frames are channel frames too, as kube-apiserver reads them.
            match frame::decode(protocol, is_text, &f.payload) {
                Ok(ChannelFrame::Data { stream, data }) => {
                    let (index, is_error) = port_of(stream);
                    let Some(Some(tx)) = to_pods.get(index).filter(|_| !is_error) else {
                        continue;
                    };
                    if tx.send(Bytes::copy_from_slice(&data)).await.is_err() {
                        to_pods[index] = None;
                    }
                }
                Ok(ChannelFrame::Close { .. }) => {}
                Err(e) => tracing::debug!("ignoring a malformed channel frame: {e}"),
            }
        }
    };
    let ended = {
        let mut reader = std::pin::pin!(reader);
        tokio::select! {
            r = &mut reader => r,
            () = async { while forwards.join_next().await.is_some() {} } => {
                // Every port is done: close, then wait (bounded) for the client's close.
                let _ = out.send(Out::Close(1000)).await;
                let w = tokio::time::timeout(CLOSE_WAIT, &mut writer).await.unwrap_or(Ok(()));
                let _ = tokio::time::timeout(CLOSE_WAIT, &mut reader).await;
                return w;
            }
            w = &mut writer => return w,
        }
    };
    forwards.abort_all();
    let _ = tokio::time::timeout(CLOSE_WAIT, out.send(Out::Close(1000))).await;
    drop(out);
    let _ = tokio::time::timeout(CLOSE_WAIT, &mut writer).await;
    ended
}

/// One port's connection: its bytes on the data channel, its failure on the error channel.
async fn forward(
    pod: Pod,
    out: mpsc::Sender<Out>,
    encode: impl Fn(u8, &[u8]) -> Out,
    port: u16,
    data: u8,
    error: u8,
    mut inbound: mpsc::Receiver<Bytes>,
) {
    let (conn, server) = match ports::dial(&pod.spec, &pod.name, &pod.sandbox, port) {
        Ok(x) => x,
        Err(message) => {
            let _ = out.send(encode(error, message.as_bytes())).await;
            return;
        }
    };
    let (mut from_pod, mut to_pod) = tokio::io::split(conn);
    let to_client = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from_pod.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if out.send(encode(data, &buf[..n])).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    // The channel protocol has no half-close: the client's bytes flow until it closes.
    let from_client = async move {
        while let Some(b) = inbound.recv().await {
            if to_pod.write_all(&b).await.is_err() {
                return;
            }
        }
        let _ = to_pod.shutdown().await;
    };
    let forwarding = async move {
        let mut to_client = std::pin::pin!(to_client);
        let mut from_client = std::pin::pin!(from_client);
        tokio::select! {
            () = &mut to_client => {
                let _ = tokio::time::timeout(OTHER_DIRECTION, from_client).await;
            }
            () = &mut from_client => {
                let _ = tokio::time::timeout(OTHER_DIRECTION, to_client).await;
            }
        }
    };
    // The pod's end is served alongside; the connection's end closes with the forwarding
    // (the halves are dropped with it), which ends the server too.
    tokio::join!(forwarding, server);
}
