//! Over a limit, a client is told which one, and nothing else is disturbed.

use futures_util::{SinkExt as _, StreamExt as _};
use podgate_testkit::gateway::{ADMIN, Builder, Cluster};
use podgate_testkit::http::{self, exchange};
use podgate_testkit::tls;
use podgate_testkit::wait::wait_for;
use podgate_testkit::ws;
use podgate_testkit::ws::tungstenite::Message;
use podgate_testkit::ws::tungstenite::protocol::frame::coding::CloseCode;
use std::time::Duration;

fn old() -> Builder {
    Builder::new().cluster(Cluster::new("old"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_get_a_503_status() {
    let env = old().connections(|c| c.max_connections = 2).start().await;
    let gw = env.sessions().clone();
    let idle_tasks = gw.tasks.len();
    let _a = tls::connect(&env).await;
    let _b = tls::connect(&env).await;
    let mut c = tls::connect(&env).await;
    let r = exchange(
        &mut c,
        b"GET /clusters/old/version HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await
    .expect("answered");
    assert!(r.head.starts_with("HTTP/1.1 503"), "{r:?}");
    assert!(
        r.body.contains(r#""kind":"Status""#) && r.body.contains("limit of 2 open connections"),
        "{r:?}"
    );
    // Once a slot is free, requests are served again.
    drop(_a);
    assert!(
        wait_for(Duration::from_secs(10), || gw.tasks.len() < idle_tasks + 2).await,
        "timed out waiting for the freed connection to be released"
    );
    let r = http::get(&env, "/clusters/old/version", ADMIN).await;
    assert!(r.head.starts_with("HTTP/1.1 200"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_is_closed_with_1009_and_a_reason() {
    let env = old().sessions(|s| s.max_message = 1024).start().await;
    let echo = "/clusters/old/api/v1/namespaces/load/pods/echo-0/exec?command=x&stdin=true&stdout=true&stderr=false";
    let (mut ws, _) = ws::open(&env, ADMIN, echo, &[ws::V5], &[])
        .await
        .expect("upgrade");
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
    let limits = env.sessions().limits.clone();
    assert!(
        wait_for(Duration::from_secs(10), || limits.active() == 0).await,
        "timed out waiting for the session to end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_and_oversized_headers_refused() {
    let env = old()
        .connections(|c| {
            c.header_read_timeout = Duration::from_millis(300);
            c.max_header_bytes = 16 * 1024;
        })
        .start()
        .await;
    // A client that never finishes its headers is disconnected once the timeout passes.
    let mut slow = tls::connect(&env).await;
    let closed = exchange(
        &mut slow,
        b"GET /clusters/old/version HTTP/1.1\r\nHost: x\r\n",
    )
    .await;
    let r = closed.expect("the connection stayed open past the header read timeout");
    assert!(
        r.head.is_empty() || r.head.starts_with("HTTP/1.1 408"),
        "{r:?}"
    );

    // Headers over the limit get 431, and the gateway goes on serving (it may answer and
    // close before the whole request is written).
    let huge = "a".repeat(64 * 1024);
    let big = format!("GET /clusters/old/version HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n");
    let r = http::send(&env, big.as_bytes()).await;
    assert!(r.head.starts_with("HTTP/1.1 431"), "{r:?}");
    assert_eq!(
        http::get(&env, "/clusters/old/version", ADMIN).await.code,
        200
    );
}
