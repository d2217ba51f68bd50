//! Over a limit, a client is told which one, and nothing else is disturbed.

mod common;
use common::*;
use futures_util::{SinkExt as _, StreamExt as _};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_get_a_503_status() {
    let env = start_with(&[], |o| o.connections.max_connections = 2).await;
    let gw = env.gateway.sessions.clone();
    let idle_tasks = gw.tasks.len();
    let _a = tls(&env).await;
    let _b = tls(&env).await;
    let mut c = tls(&env).await;
    c.write_all(b"GET /clusters/old/version HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut resp))
        .await
        .expect("answered")
        .ok();
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(
        text.contains(r#""kind":"Status""#) && text.contains("limit of 2 open connections"),
        "{text}"
    );
    // Once a slot is free, requests are served again.
    drop(_a);
    wait_for(
        Duration::from_secs(10),
        "the freed connection to be released",
        || gw.tasks.len() < idle_tasks + 2,
    )
    .await;
    let mut d = tls(&env).await;
    d.write_all(format!("GET /clusters/old/version HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), d.read_to_end(&mut resp))
        .await
        .expect("answered")
        .ok();
    assert!(
        String::from_utf8_lossy(&resp).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_is_closed_with_1009_and_a_reason() {
    let env = start_with(&[], |o| o.sessions.max_message = 1024).await;
    let echo =
        "/api/v1/namespaces/load/pods/echo-0/exec?command=x&stdin=true&stdout=true&stderr=false";
    let (mut ws, _) = connect(&env, echo, &["v5.channel.k8s.io"]).await;
    let mut big = vec![podgate_protocol::frame::STDIN];
    big.extend(std::iter::repeat_n(b'x', 4096));
    ws.send(Message::binary(big)).await.unwrap();
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(c))) => return c,
                Some(Ok(_)) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("closed in time")
    .expect("a close frame with a code");
    assert_eq!(close.code, CloseCode::Size);
    assert!(close.reason.contains("1024 byte limit"), "{}", close.reason);
    let limits = env.gateway.sessions.limits.clone();
    wait_for(Duration::from_secs(10), "the session to end", || {
        limits.active() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_and_oversized_headers_refused() {
    let env = start_with(&[], |o| {
        o.connections.header_read_timeout = Duration::from_millis(300);
        o.connections.max_header_bytes = 16 * 1024;
    })
    .await;
    // A client that never finishes its headers is disconnected once the timeout passes.
    let mut slow = tls(&env).await;
    slow.write_all(b"GET /clusters/old/version HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "the connection stayed open past the header read timeout"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );

    // Headers over the limit get 431, and the gateway goes on serving.
    let mut big = tls(&env).await;
    let huge = "a".repeat(64 * 1024);
    // The gateway may answer and close before the whole request is written.
    let _ = big
        .write_all(
            format!("GET /clusters/old/version HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n")
                .as_bytes(),
        )
        .await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), big.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    assert_eq!(get(&env, TOKEN, "/clusters/old/version").await.0, 200);
}
