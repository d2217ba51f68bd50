//! Protocol translation in the relay: a client and a cluster that speak different versions
//! of the remote-command protocol still understand each other through the gateway.

use futures_util::{SinkExt as _, StreamExt as _};
use podgate_protocol::frame;
use podgate_protocol::{Protocol, Status};
use podgate_testkit::gateway::{ADMIN, Builder, Cluster, Env};
use podgate_testkit::wait::wait_for;
use podgate_testkit::ws::tungstenite::Message;
use podgate_testkit::ws::{self, Ws, read_to_close, stream};
use std::time::Duration;

/// A gateway in front of cluster `old`, a devcluster that speaks only `protocols`.
async fn start(protocols: &[Protocol]) -> Env {
    Builder::new()
        .cluster(Cluster::new("old").protocols(protocols))
        .start()
        .await
}

/// An exec WebSocket to `old` as admin, offering `protocols`: the socket and the chosen one.
async fn connect(env: &Env, path: &str, protocols: &[&str]) -> (Ws, Option<String>) {
    ws::open(env, ADMIN, &format!("/clusters/old{path}"), protocols, &[])
        .await
        .expect("upgrade")
}

/// A browser speaking only base64 text frames, to a cluster speaking only binary v5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base64_client_to_binary_cluster() {
    let env = start(&[Protocol::V5]).await;
    let path = "/api/v1/namespaces/default/pods/shell-0/exec?command=sh&command=-c&command=head%20-c%205%3B%20printf%20%27%5C377%5C000%27%3B%20exit%206&stdin=true&stdout=true&stderr=true";
    let (mut ws, chosen) = connect(&env, path, &["v4.base64.channel.k8s.io"]).await;
    assert_eq!(chosen.as_deref(), Some("v4.base64.channel.k8s.io"));
    let stdin = frame::encode(Protocol::V4Base64, frame::STDIN, b"hello");
    ws.send(Message::text(String::from_utf8(stdin.payload).unwrap()))
        .await
        .unwrap();
    let f = read_to_close(&mut ws).await.frames(Protocol::V4Base64);
    assert_eq!(f[0], (frame::STDOUT, vec![]));
    assert_eq!(stream(&f, frame::STDOUT), b"hello\xff\x00");
    let status: Status = serde_json::from_slice(&stream(&f, frame::STATUS)).expect("status JSON");
    assert_eq!(status.exit_code_value(), Some(6));
    env.gateway.shutdown().await;
}

/// kubectl 1.30+ offers only v5; a cluster that speaks only v4 gets the stdin half-close as
/// the close of its WebSocket, the only way v4 has to say it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_client_to_v4_cluster() {
    let env = start(&[Protocol::V4]).await;
    let ok = "/api/v1/namespaces/default/pods/shell-0/exec?command=sh&command=-c&command=exit%209&stdout=true&stderr=true";
    let (mut ws, chosen) = connect(&env, ok, &["v5.channel.k8s.io"]).await;
    assert_eq!(chosen.as_deref(), Some("v5.channel.k8s.io"));
    let f = read_to_close(&mut ws).await.frames(Protocol::V5);
    let status: Status = serde_json::from_slice(&stream(&f, frame::STATUS)).expect("status JSON");
    assert_eq!(status.exit_code_value(), Some(9));

    let cat =
        "/api/v1/namespaces/load/pods/echo-0/exec?command=x&stdin=true&stdout=true&stderr=false";
    let (mut ws, _) = connect(&env, cat, &["v5.channel.k8s.io"]).await;
    ws.send(Message::binary(vec![frame::STDIN, b'h', b'i']))
        .await
        .unwrap();
    let mut got = Vec::new();
    while got != b"hi" {
        match tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("echo in time")
        {
            Some(Ok(Message::Binary(b))) if b.len() > 1 && b[0] == frame::STDOUT => {
                got.extend_from_slice(&b[1..])
            }
            Some(Ok(_)) => {}
            other => panic!("session ended early: {other:?}"),
        }
    }
    ws.send(Message::binary(vec![255, frame::STDIN]))
        .await
        .unwrap();
    // The cluster sees its socket closed and ends the session; so does the client.
    read_to_close(&mut ws).await;
    let sessions = env.sessions().limits.clone();
    assert!(
        wait_for(Duration::from_secs(20), || sessions.active() == 0).await,
        "the session never ended"
    );
    env.gateway.shutdown().await;
}
