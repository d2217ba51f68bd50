//! WebSocket messages through the gateway as real clients send them: bounded as assembled
//! however they are fragmented, text frames taken as channel frames (the official Python
//! client's `str` stdin and resizes), bytes as bytes.

use futures_util::SinkExt as _;
use podgate_testkit::gateway::{Builder, Cluster};
use podgate_testkit::process::{MIB, Process};
use podgate_testkit::python::{self, PIPES_STDOUT, RESIZE_STDOUT};
use podgate_testkit::ws::tungstenite::Message;
use podgate_testkit::ws::tungstenite::protocol::frame::coding::{Data, OpCode};
use podgate_testkit::ws::tungstenite::protocol::frame::{Frame, coding::CloseCode};
use podgate_testkit::ws::{Got, echo_round_trip, next_frame};
use std::time::Duration;

const ECHO: &str = "command=echo&stdin=true&stdout=true";

/// A client that starts a binary message and never finishes it, sending 64 KiB continuation
/// after continuation, is closed with 1009 as soon as the message passes the limit; the
/// gateway holds no more than the limit meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_fragmented_message_is_closed_at_the_limit() {
    let limit = 1 << 20;
    let env = Builder::new()
        .cluster(Cluster::new("dev-east"))
        .sessions(|s| s.max_message = limit)
        .start()
        .await;
    let ws = env.admin_exec("load", "echo-0", ECHO).await;
    let before = Process::this().rss_bytes();
    let (mut sink, mut stream) = futures_util::StreamExt::split(ws);
    // The client reads while it sends, as a browser does.
    let closed = tokio::spawn(async move {
        use futures_util::StreamExt as _;
        loop {
            match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
                Ok(Some(Ok(Message::Close(Some(f))))) => {
                    break Some((f.code, f.reason.to_string()));
                }
                Ok(Some(Ok(_))) => continue,
                _ => break None,
            }
        }
    });
    let chunk = vec![b'x'; 64 << 10];
    sink.send(Message::Frame(Frame::message(
        vec![0u8; 1024],
        OpCode::Data(Data::Binary),
        false,
    )))
    .await
    .expect("the first fragment");
    let mut sent = 1024usize;
    // Up to 64 MiB, unless the gateway closes first (it must, at 1 MiB).
    while sent < 64 << 20 && !closed.is_finished() {
        let f = Frame::message(chunk.clone(), OpCode::Data(Data::Continue), false);
        if sink.send(Message::Frame(f)).await.is_err() {
            break;
        }
        sent += chunk.len();
    }
    let (code, reason) = closed
        .await
        .expect("the reader")
        .unwrap_or_else(|| panic!("no close frame after {sent} bytes"));
    assert_eq!(code, CloseCode::Size, "{reason}");
    assert!(
        reason.contains(&format!("exceeded the {limit} byte limit")),
        "close reason: {reason:?} after {sent} bytes"
    );
    assert!(
        sent < 64 << 20,
        "the client sent all 64 MiB of one message before the gateway refused it"
    );
    let grown = Process::this().rss_bytes().saturating_sub(before);
    assert!(
        grown < 8 * MIB,
        "RSS grew by {} MiB for a 1 MiB limit",
        grown / MIB
    );
    assert!(env.sessions_end(Duration::from_secs(10)).await);
    env.shutdown().await;
}

/// The close code itself (tungstenite hides it behind the reason in `Got`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_over_the_limit_is_closed_with_1009() {
    let env = Builder::new()
        .cluster(Cluster::new("dev-east"))
        .sessions(|s| s.max_message = 4096)
        .start()
        .await;
    let mut ws = env.admin_exec("load", "echo-0", ECHO).await;
    let mut big = vec![0u8];
    big.extend(std::iter::repeat_n(b'x', 8192));
    ws.send(Message::binary(big)).await.expect("sent");
    let code = loop {
        use futures_util::StreamExt as _;
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => break f.code,
            Ok(Some(Ok(_))) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(code, CloseCode::Size);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_frames_on_binary_protocols_are_channel_frames() {
    let env = Builder::new()
        .cluster(Cluster::new("dev-east"))
        .start()
        .await;
    let mut ws = env.admin_exec("load", "echo-0", ECHO).await;
    // As the Python client's write_stdin("..."): the stream id as the first character.
    ws.send(Message::text("\u{0}text stdin\n"))
        .await
        .expect("sent");
    let mut got = Vec::new();
    while got.len() < "text stdin\n".len() {
        match next_frame(&mut ws, Duration::from_secs(10)).await {
            Got::Data(1, d) => got.extend_from_slice(&d),
            other => panic!("expected the echo, got {other:?}"),
        }
    }
    assert_eq!(got, b"text stdin\n");
    // And bytes stay bytes after it.
    echo_round_trip(&mut ws, &[0xff, 0x00, 0xfe]).await;
    env.shutdown().await;
}

/// The official Python client through the gateway: `str` stdin, `bytes` stdin and a `str`
/// resize all reach the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_execs_through_the_gateway() {
    let Some(python) = python::python() else {
        return;
    };
    let env = Builder::new()
        .cluster(Cluster::new("dev-east"))
        .start()
        .await;
    let kubeconfig = env.kubeconfig(podgate_testkit::gateway::ADMIN);
    let runs = python::exec(&python, &kubeconfig, Some("dev-east")).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    for r in &runs {
        assert_eq!(r.protocol.as_deref(), Some("v5.channel.k8s.io"), "{r:?}");
        assert_eq!(r.code, Some(0), "{r:?}");
    }
    assert_eq!(runs[0].stdout, PIPES_STDOUT);
    assert_eq!(runs[1].stdout, RESIZE_STDOUT);
    env.shutdown().await;
}
