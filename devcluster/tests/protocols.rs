//! The wire format, byte by byte, for every sub-protocol the devcluster speaks.

use futures_util::SinkExt as _;
use podgate_protocol::frame;
use podgate_protocol::{Protocol, Status, subprotocol};
use podgate_testkit::devcluster::{ADMIN, ALICE, start, start_with};
use podgate_testkit::http;
use podgate_testkit::ws::tungstenite::Message;
use podgate_testkit::ws::tungstenite::protocol::frame::Frame;
use podgate_testkit::ws::tungstenite::protocol::frame::coding::{Data, OpCode};
use podgate_testkit::ws::{self, decode as decode_all, read_to_close, stream};
const EXIT2: &str = "/api/v1/namespaces/default/pods/shell-0/exec?command=sh&command=-c&command=echo%20out%3B%20echo%20err%20%3E%262%3B%20exit%202&stdout=true&stderr=true";

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
        let (mut ws, chosen) = ws::open(&env, ADMIN, EXIT2, &[protocol.name()], &[])
            .await
            .expect("upgrade");
        assert_eq!(chosen.as_deref(), Some(protocol.name()));
        let msgs = read_to_close(&mut ws).await.messages();
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
    let (mut ws, chosen) = ws::open(
        &env,
        ADMIN,
        ok,
        &["v5.channel.k8s.io", "v4.channel.k8s.io"],
        &[],
    )
    .await
    .expect("upgrade");
    assert_eq!(chosen.as_deref(), Some("v5.channel.k8s.io"));
    let frames = decode_all(Protocol::V5, &read_to_close(&mut ws).await.messages());
    assert_eq!(
        stream(&frames, frame::STATUS),
        br#"{"metadata":{},"status":"Success"}"#
    );

    // No protocol: channel.k8s.io, no header echoed, nothing on stream 3 on success.
    let (mut ws, chosen) = ws::open(&env, ADMIN, ok, &[], &[]).await.expect("upgrade");
    assert_eq!(chosen, None);
    let frames = decode_all(Protocol::V1, &read_to_close(&mut ws).await.messages());
    assert_eq!(frames, vec![(frame::STDOUT, vec![])]);

    // Only unknown protocols: refused before the upgrade.
    let (code, body) = ws::open(&env, ADMIN, ok, &["chat"], &[])
        .await
        .expect_err("refused");
    assert_eq!(code, 400);
    assert!(body.contains("v5.channel.k8s.io"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_half_close_and_resize() {
    let env = start().await;
    let cat = "/api/v1/namespaces/default/pods/shell-0/exec?command=cat&stdin=true&stdout=true&stderr=true";
    let (mut ws, _) = ws::open(&env, ADMIN, cat, &["v5.channel.k8s.io"], &[])
        .await
        .expect("upgrade");
    let payload: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    for chunk in payload.chunks(30_000) {
        let mut m = vec![frame::STDIN];
        m.extend_from_slice(chunk);
        ws.send(Message::binary(m)).await.unwrap();
    }
    ws.send(Message::binary(vec![255, 0])).await.unwrap();
    let frames = decode_all(Protocol::V5, &read_to_close(&mut ws).await.messages());
    assert_eq!(stream(&frames, frame::STDOUT), payload);
    assert_eq!(
        stream(&frames, frame::STATUS),
        br#"{"metadata":{},"status":"Success"}"#
    );

    // Resize reaches the pty before the shell reads its size.
    let tty = "/api/v1/namespaces/default/pods/shell-0/exec?command=sh&command=-c&command=read%20x%3B%20stty%20size&stdin=true&stdout=true&stderr=false&tty=true";
    let (mut ws, _) = ws::open(&env, ADMIN, tty, &["v5.channel.k8s.io"], &[])
        .await
        .expect("upgrade");
    let mut resize = vec![frame::RESIZE];
    resize.extend_from_slice(br#"{"Width":111,"Height":33}"#);
    ws.send(Message::binary(resize)).await.unwrap();
    ws.send(Message::binary(b"\x00go\r".to_vec()))
        .await
        .unwrap();
    let frames = decode_all(Protocol::V5, &read_to_close(&mut ws).await.messages());
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
    let entry = subprotocol::bearer_entry(ALICE);
    let ok = "/api/v1/namespaces/default/pods/shell-0/exec?command=true";
    let (mut ws, chosen) = ws::open(&env, "", ok, &[&entry, "v4.base64.channel.k8s.io"], &[])
        .await
        .expect("upgrade");
    assert_eq!(
        chosen.as_deref(),
        Some("v4.base64.channel.k8s.io"),
        "the token entry is never echoed"
    );
    let frames = decode_all(Protocol::V4Base64, &read_to_close(&mut ws).await.messages());
    assert_eq!(
        stream(&frames, frame::STATUS),
        br#"{"metadata":{},"status":"Success"}"#
    );
    let (code, body) = ws::open(&env, "", ok, &["v5.channel.k8s.io"], &[])
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
    let http::Answer { code, body, .. } = http::send(&env, head.as_bytes()).await;
    assert_eq!(code, 400);
    let s: Status =
        serde_json::from_str(body.lines().find(|l| l.starts_with('{')).unwrap_or(&body))
            .expect("Status JSON");
    assert!(s.message.unwrap_or_default().contains("WebSocket"));
    // Attach with no upgrade at all.
    let head = format!(
        "GET /api/v1/namespaces/default/pods/shell-0/attach?stdin=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nConnection: close\r\n\r\n"
    );
    let http::Answer { code, body, .. } = http::send(&env, head.as_bytes()).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("Upgrade request required"), "{body}");
}

fn fragment(opcode: OpCode, fin: bool, data: &[u8]) -> Message {
    Message::Frame(Frame::message(data.to_vec(), opcode, fin))
}

const BINARY: OpCode = OpCode::Data(Data::Binary);
const TEXT: OpCode = OpCode::Data(Data::Text);
const CONTINUE: OpCode = OpCode::Data(Data::Continue);

fn exec_path(argv: &[&str], tty: bool) -> String {
    let mut q: String = argv
        .iter()
        .map(|a| {
            format!(
                "command={}&",
                form_urlencoded::byte_serialize(a.as_bytes()).collect::<String>()
            )
        })
        .collect();
    q.push_str(if tty {
        "stdin=true&stdout=true&stderr=false&tty=true"
    } else {
        "stdin=true&stdout=true&stderr=true"
    });
    format!("/api/v1/namespaces/default/pods/shell-0/exec?{q}")
}

/// kube-apiserver takes a text message on a binary protocol as a channel frame, byte for byte,
/// and decodes a binary one on a base64 protocol: so does the devcluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_frames_are_channel_frames_on_binary_protocols() {
    let env = start().await;
    let (mut ws, _) = ws::open(
        &env,
        ADMIN,
        &exec_path(&["cat"], false),
        &["v5.channel.k8s.io"],
        &[],
    )
    .await
    .expect("upgrade");
    ws.send(Message::text("\u{0}zoë, "))
        .await
        .expect("text stdin");
    ws.send(Message::binary(b"\x00bytes".to_vec()))
        .await
        .expect("binary stdin");
    ws.send(Message::binary(vec![255, 0])).await.expect("EOF");
    let frames = decode_all(Protocol::V5, &read_to_close(&mut ws).await.messages());
    assert_eq!(stream(&frames, frame::STDOUT), "zoë, bytes".as_bytes());
    assert_eq!(
        stream(&frames, frame::STATUS),
        br#"{"metadata":{},"status":"Success"}"#
    );

    // A text resize on v4 reaches the terminal.
    let tty = exec_path(&["sh", "-c", "read x; stty size"], true);
    let (mut ws, _) = ws::open(&env, ADMIN, &tty, &["v4.channel.k8s.io"], &[])
        .await
        .expect("upgrade");
    ws.send(Message::text("\u{4}{\"Width\":100,\"Height\":33}"))
        .await
        .expect("resize");
    ws.send(Message::text("\u{0}go\r")).await.expect("stdin");
    let frames = decode_all(Protocol::V4, &read_to_close(&mut ws).await.messages());
    assert_eq!(stream(&frames, frame::STDOUT), b"go\r\n33 100\r\n");

    // A binary message on a base64 protocol is decoded all the same.
    let (mut ws, _) = ws::open(
        &env,
        ADMIN,
        &exec_path(&["head", "-c", "5"], false),
        &["v4.base64.channel.k8s.io"],
        &[],
    )
    .await
    .expect("upgrade");
    ws.send(Message::binary(b"0aGVs".to_vec()))
        .await
        .expect("binary");
    ws.send(Message::text("0bG8=")).await.expect("text");
    let frames = decode_all(Protocol::V4Base64, &read_to_close(&mut ws).await.messages());
    assert_eq!(stream(&frames, frame::STDOUT), b"hello");
}

/// Messages up to the limit arrive whole however they are cut; past it, and on fragments out
/// of order, the session is failed with the RFC 6455 close code and a reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_messages_up_to_the_limit_and_refusals() {
    const LIMIT: usize = 64 << 10;
    let mut topology = podgate_devcluster::Topology::builtin();
    topology.max_message_bytes = LIMIT;
    let env = start_with(topology).await;
    let v5 = ["v5.channel.k8s.io"];

    // Exactly the limit: the stream byte and LIMIT - 1 bytes of stdin.
    let data: Vec<u8> = (0..LIMIT - 1).map(|i| (i * 7 % 251) as u8).collect();
    let mut message = vec![frame::STDIN];
    message.extend_from_slice(&data);
    let head = exec_path(&["head", "-c", &(LIMIT - 1).to_string()], false);
    let cuts: [&[usize]; 3] = [&[], &[1000, 11_000, 40_000], &[0, 1, 1, 30_000, LIMIT - 1]];
    for cut in cuts {
        let (mut ws, _) = ws::open(&env, ADMIN, &head, &v5, &[])
            .await
            .expect("upgrade");
        let mut bounds = vec![0];
        bounds.extend_from_slice(cut);
        bounds.push(LIMIT);
        let pieces: Vec<&[u8]> = bounds.windows(2).map(|w| &message[w[0]..w[1]]).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let op = if i == 0 { BINARY } else { CONTINUE };
            ws.send(fragment(op, i == pieces.len() - 1, piece))
                .await
                .expect("fragment");
            if i == 0 && pieces.len() > 1 {
                // Control frames may come between fragments.
                ws.send(Message::Ping(b"between".to_vec().into()))
                    .await
                    .expect("ping");
            }
        }
        let ws::Ended {
            messages: msgs,
            close,
            ..
        } = read_to_close(&mut ws).await;
        let frames = decode_all(Protocol::V5, &msgs);
        assert!(stream(&frames, frame::STDOUT) == data, "cut at {cut:?}");
        assert_eq!(
            stream(&frames, frame::STATUS),
            br#"{"metadata":{},"status":"Success"}"#,
            "cut at {cut:?}"
        );
        assert_eq!(close.map(|c| c.0), Some(1000), "cut at {cut:?}");
    }

    let too_big = format!("a WebSocket message exceeded the {LIMIT} byte limit");
    let over = vec![0u8; LIMIT + 1];
    let cases: Vec<(&str, Vec<Message>, u16, &str)> = vec![
        (
            "one frame a byte over",
            vec![fragment(BINARY, true, &over)],
            1009,
            &too_big,
        ),
        (
            "fragments a byte over",
            vec![
                fragment(BINARY, false, &over[..LIMIT]),
                fragment(CONTINUE, true, b"x"),
            ],
            1009,
            &too_big,
        ),
        (
            "a continuation without a start",
            vec![fragment(CONTINUE, true, b"\x00x")],
            1002,
            "a WebSocket continuation frame arrived without a fragmented message to continue",
        ),
        (
            "a new message inside a fragmented one",
            vec![
                fragment(BINARY, false, b"\x00a"),
                fragment(BINARY, true, b"\x00b"),
            ],
            1002,
            "a new WebSocket data frame arrived before the fragmented message before it was finished",
        ),
        (
            "fragmented text that is not UTF-8",
            vec![
                fragment(TEXT, false, b"\x00zo\xc3"),
                fragment(CONTINUE, true, b"("),
            ],
            1007,
            "a fragmented WebSocket text message is not valid UTF-8",
        ),
        (
            "a text frame that is not UTF-8",
            vec![fragment(TEXT, true, b"\x00\xff")],
            1007,
            "Invalid UTF-8",
        ),
    ];
    for (name, msgs, code, reason) in cases {
        let (mut ws, _) = ws::open(&env, ADMIN, &exec_path(&["cat"], false), &v5, &[])
            .await
            .expect("upgrade");
        for m in msgs {
            ws.send(m).await.expect("send");
        }
        let close = read_to_close(&mut ws).await.close;
        assert_eq!(close, Some((code, reason.to_string())), "{name}");
    }
    assert!(
        env.sessions_end(std::time::Duration::from_secs(10)).await,
        "every failed session ended, its process with it"
    );
}

/// The closing handshake: after its close frame the server reads on until the client's close,
/// then ends the connection at once; a client that never answers is dropped after a bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_handshake() {
    use futures_util::StreamExt as _;
    use std::time::{Duration, Instant};
    let env = start().await;
    let head = exec_path(&["head", "-c", "2"], false);

    // The client keeps sending stdin after the process has exited.
    let (ws, _) = ws::open(&env, ADMIN, &head, &["v5.channel.k8s.io"], &[])
        .await
        .expect("upgrade");
    let (mut tx, mut rx) = ws.split();
    let feeder = tokio::spawn(async move {
        let mut ys = vec![frame::STDIN];
        ys.extend(b"y\n".repeat(4096));
        while tx.send(Message::binary(ys.clone())).await.is_ok() {}
    });
    let mut msgs = Vec::new();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(30), rx.next())
            .await
            .expect("an answer within 30 s")
        {
            Some(Ok(Message::Binary(b))) => msgs.push((false, b.to_vec())),
            Some(Ok(Message::Close(c))) => break c.map(|c| u16::from(c.code)),
            Some(Ok(_)) => {}
            other => panic!("the connection ended before the close frame: {other:?}"),
        }
    };
    let closed_at = Instant::now();
    assert_eq!(close, Some(1000));
    let frames = decode_all(Protocol::V5, &msgs);
    assert_eq!(stream(&frames, frame::STDOUT), b"y\n");
    assert_eq!(
        stream(&frames, frame::STATUS),
        br#"{"metadata":{},"status":"Success"}"#
    );
    // Polling on sends our close reply; the server then ends the connection.
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = rx.next().await {}
    })
    .await;
    assert!(end.is_ok(), "the connection did not end");
    assert!(
        closed_at.elapsed() < Duration::from_millis(1500),
        "the server waited {:?} though the client answered its close",
        closed_at.elapsed()
    );
    feeder.abort();
    assert!(env.sessions_end(Duration::from_secs(10)).await);

    // A client that reads the close but never answers it.
    let (mut ws, _) = ws::open(&env, ADMIN, &head, &["v5.channel.k8s.io"], &[])
        .await
        .expect("upgrade");
    ws.send(Message::binary(b"\x00ab".to_vec()))
        .await
        .expect("stdin");
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("an answer within 30 s")
        {
            Some(Ok(Message::Close(c))) => break c.map(|c| u16::from(c.code)),
            Some(Ok(_)) => {}
            other => panic!("the connection ended before the close frame: {other:?}"),
        }
    };
    assert_eq!(close, Some(1000));
    let closed_at = Instant::now();
    // Not polled from here on: no close reply goes out.
    assert!(env.sessions_end(Duration::from_secs(10)).await);
    let waited = closed_at.elapsed();
    assert!(
        waited >= Duration::from_millis(1000),
        "the server dropped the connection after {waited:?}, without waiting for the client's close"
    );
    drop(ws);
}
