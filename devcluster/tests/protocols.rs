//! The wire format, byte by byte, for every sub-protocol the devcluster speaks.

mod common;
use common::*;
use futures_util::SinkExt as _;
use podgate_protocol::frame::{self, ChannelFrame};
use podgate_protocol::{Protocol, Status, subprotocol};
use tokio_tungstenite::tungstenite::Message;

const ADMIN: &str = "devcluster-admin-token";
const EXIT2: &str = "/api/v1/namespaces/default/pods/shell-0/exec?command=sh&command=-c&command=echo%20out%3B%20echo%20err%20%3E%262%3B%20exit%202&stdout=true&stderr=true";

/// Decodes every message: (stream, bytes), in order.
fn decode_all(protocol: Protocol, msgs: &[(bool, Vec<u8>)]) -> Vec<(u8, Vec<u8>)> {
    msgs.iter()
        .map(
            |(text, p)| match frame::decode(protocol, *text, p).expect("valid frame") {
                ChannelFrame::Data { stream, data } => (stream, data.into_owned()),
                ChannelFrame::Close { stream } => (255, vec![stream]),
            },
        )
        .collect()
}

fn stream(frames: &[(u8, Vec<u8>)], id: u8) -> Vec<u8> {
    frames
        .iter()
        .filter(|(s, _)| *s == id)
        .flat_map(|(_, d)| d.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_frames_streams_and_exit_status() {
    let env = start().await;
    for protocol in [
        Protocol::V5,
        Protocol::V4,
        Protocol::V1,
        Protocol::Base64,
        Protocol::V4Base64,
    ] {
        let (mut ws, chosen) = raw_ws(&env, ADMIN, EXIT2, &[protocol.name()])
            .await
            .expect("upgrade");
        assert_eq!(chosen.as_deref(), Some(protocol.name()));
        let msgs = read_all(&mut ws).await;
        assert!(
            msgs.iter().all(|(text, _)| *text == protocol.is_base64()),
            "{protocol}: wrong frame type"
        );
        let frames = decode_all(protocol, &msgs);
        assert_eq!(
            frames[0],
            (frame::STDOUT, vec![]),
            "{protocol}: the ready frame comes first"
        );
        assert_eq!(stream(&frames, frame::STDOUT), b"out\n", "{protocol}");
        assert_eq!(stream(&frames, frame::STDERR), b"err\n", "{protocol}");
        let status = stream(&frames, frame::STATUS);
        assert_eq!(
            frames.last().map(|f| f.0),
            Some(frame::STATUS),
            "{protocol}: status is last"
        );
        if protocol.has_status_json() {
            let s: Status = serde_json::from_slice(&status).expect("status JSON");
            assert_eq!(s.exit_code_value(), Some(2), "{protocol}");
            assert_eq!(s.reason.as_deref(), Some("NonZeroExitCode"));
        } else {
            let text = String::from_utf8(status).expect("utf-8");
            assert!(
                text.starts_with("command terminated with non-zero exit code"),
                "{protocol}: {text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_and_no_protocol_offered() {
    let env = start().await;
    let ok = "/api/v1/namespaces/default/pods/shell-0/exec?command=true";
    let (mut ws, chosen) = raw_ws(&env, ADMIN, ok, &["v5.channel.k8s.io", "v4.channel.k8s.io"])
        .await
        .expect("upgrade");
    assert_eq!(chosen.as_deref(), Some("v5.channel.k8s.io"));
    let frames = decode_all(Protocol::V5, &read_all(&mut ws).await);
    assert_eq!(
        stream(&frames, frame::STATUS),
        br#"{"metadata":{},"status":"Success"}"#
    );

    // No protocol: channel.k8s.io, no header echoed, nothing on stream 3 on success.
    let (mut ws, chosen) = raw_ws(&env, ADMIN, ok, &[]).await.expect("upgrade");
    assert_eq!(chosen, None);
    let frames = decode_all(Protocol::V1, &read_all(&mut ws).await);
    assert_eq!(frames, vec![(frame::STDOUT, vec![])]);

    // Only unknown protocols: refused before the upgrade.
    let (code, body) = raw_ws(&env, ADMIN, ok, &["chat"])
        .await
        .expect_err("refused");
    assert_eq!(code, 400);
    assert!(body.contains("v5.channel.k8s.io"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_half_close_and_resize() {
    let env = start().await;
    let cat = "/api/v1/namespaces/default/pods/shell-0/exec?command=cat&stdin=true&stdout=true&stderr=true";
    let (mut ws, _) = raw_ws(&env, ADMIN, cat, &["v5.channel.k8s.io"])
        .await
        .expect("upgrade");
    let payload: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    for chunk in payload.chunks(30_000) {
        let mut m = vec![frame::STDIN];
        m.extend_from_slice(chunk);
        ws.send(Message::binary(m)).await.unwrap();
    }
    ws.send(Message::binary(vec![255, 0])).await.unwrap();
    let frames = decode_all(Protocol::V5, &read_all(&mut ws).await);
    assert_eq!(stream(&frames, frame::STDOUT), payload);
    assert_eq!(
        stream(&frames, frame::STATUS),
        br#"{"metadata":{},"status":"Success"}"#
    );

    // Resize reaches the pty before the shell reads its size.
    let tty = "/api/v1/namespaces/default/pods/shell-0/exec?command=sh&command=-c&command=read%20x%3B%20stty%20size&stdin=true&stdout=true&stderr=false&tty=true";
    let (mut ws, _) = raw_ws(&env, ADMIN, tty, &["v5.channel.k8s.io"])
        .await
        .expect("upgrade");
    let mut resize = vec![frame::RESIZE];
    resize.extend_from_slice(br#"{"Width":111,"Height":33}"#);
    ws.send(Message::binary(resize)).await.unwrap();
    ws.send(Message::binary(b"\x00go\r".to_vec()))
        .await
        .unwrap();
    let frames = decode_all(Protocol::V5, &read_all(&mut ws).await);
    let out = String::from_utf8_lossy(&stream(&frames, frame::STDOUT)).into_owned();
    assert!(out.contains("33 111"), "{out:?}");
    assert!(
        stream(&frames, frame::STDERR).is_empty(),
        "a tty has no stderr stream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_in_subprotocol() {
    let env = start().await;
    let entry = subprotocol::bearer_entry("devcluster-alice-token");
    let ok = "/api/v1/namespaces/default/pods/shell-0/exec?command=true";
    let (mut ws, chosen) = raw_ws(&env, "", ok, &[&entry, "v4.base64.channel.k8s.io"])
        .await
        .expect("upgrade");
    assert_eq!(
        chosen.as_deref(),
        Some("v4.base64.channel.k8s.io"),
        "the token entry is never echoed"
    );
    let frames = decode_all(Protocol::V4Base64, &read_all(&mut ws).await);
    assert_eq!(
        stream(&frames, frame::STATUS),
        br#"{"metadata":{},"status":"Success"}"#
    );
    let (code, body) = raw_ws(&env, "", ok, &["v5.channel.k8s.io"])
        .await
        .expect_err("no token");
    assert_eq!(code, 401);
    assert!(body.contains(r#""reason":"Unauthorized""#), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spdy_gets_websocket_required() {
    let env = start().await;
    let head = format!(
        "POST /api/v1/namespaces/default/pods/shell-0/exec?command=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
         Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n"
    );
    let (code, body) = raw_http(&env, &head).await;
    assert_eq!(code, 400);
    let s: Status =
        serde_json::from_str(body.lines().find(|l| l.starts_with('{')).unwrap_or(&body))
            .expect("Status JSON");
    assert!(s.message.unwrap_or_default().contains("WebSocket"));
    // Attach with no upgrade at all.
    let head = format!(
        "GET /api/v1/namespaces/default/pods/shell-0/attach?stdin=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nConnection: close\r\n\r\n"
    );
    let (code, body) = raw_http(&env, &head).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("Upgrade request required"), "{body}");
}
