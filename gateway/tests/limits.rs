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
    let gw = env.gateway.gateway.clone();
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
    let limits = env.gateway.gateway.limits.clone();
    wait_for(Duration::from_secs(10), "the session to end", || {
        limits.active() == 0
    })
    .await;
}
