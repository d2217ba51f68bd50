//! A client that starts a fragmented message and never finishes it (FIN=0, then endless
//! continuations) is closed with 1009 once the message passes the limit, and the devcluster,
//! which runs in this process, holds no more than about the limit meanwhile.
//!
//! The only test in its binary, so nothing else allocates while the process's RSS is watched.

use futures_util::{SinkExt as _, StreamExt as _};
use podgate_testkit::devcluster::{ADMIN, start_with};
use podgate_testkit::process::Process;
use podgate_testkit::ws::tungstenite::protocol::frame::Frame;
use podgate_testkit::ws::tungstenite::protocol::frame::coding::{Data, OpCode};
use podgate_testkit::ws::{self, tungstenite::Message};

const MIB: usize = 1 << 20;
const LIMIT: usize = MIB;
const CHUNK: usize = 64 << 10;
/// What the client sends in all, unless the server stops it first: 64 times the limit.
const FLOOD: usize = 64 * MIB;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_continuations_are_closed_with_1009_in_bounded_memory() {
    let mut topology = podgate_devcluster::Topology::builtin();
    topology.max_message_bytes = LIMIT;
    let env = start_with(topology).await;
    let cat = "/api/v1/namespaces/default/pods/shell-0/exec?command=cat&stdin=true&stdout=true&stderr=true";
    let (ws, _) = ws::open(&env, ADMIN, cat, &[ws::V5], &[])
        .await
        .expect("upgrade");
    let (mut tx, mut rx) = ws.split();

    // Start the peak from here where the kernel lets us (Linux >= 4.0: "5" resets VmHWM);
    // otherwise the peak so far only makes the check stricter.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let me = Process::this();
    let before = me.status_kib("VmRSS");

    let reader = tokio::spawn(async move {
        loop {
            match rx.next().await {
                Some(Ok(Message::Close(frame))) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("websocket error before the close frame: {e}"),
                None => panic!("the connection ended without a close frame"),
            }
        }
    });

    let chunk = bytes::Bytes::from(vec![b'y'; CHUNK]);
    let mut first = vec![0u8];
    first.extend_from_slice(&chunk[1..]);
    let binary = OpCode::Data(Data::Binary);
    let continuation = OpCode::Data(Data::Continue);
    tx.send(Message::Frame(Frame::message(first, binary, false)))
        .await
        .expect("first fragment");
    let mut sent = CHUNK;
    while sent < FLOOD {
        // Refused once the client has seen the server's close: it stops, as a client must.
        if tx
            .send(Message::Frame(Frame::message(
                chunk.clone(),
                continuation,
                false,
            )))
            .await
            .is_err()
        {
            break;
        }
        sent += CHUNK;
    }
    let close = tokio::time::timeout(std::time::Duration::from_secs(30), reader)
        .await
        .expect("a close frame within 30 s")
        .expect("reader");
    let peak = me.status_kib("VmHWM");
    let (code, reason) = close.expect("a close frame with a status code");
    assert_eq!(code, 1009, "{reason}");
    assert_eq!(
        reason,
        format!("a WebSocket message exceeded the {LIMIT} byte limit")
    );
    let grown_mib = peak.saturating_sub(before) as f64 / 1024.0;
    eprintln!(
        "sent {} MiB, peak RSS growth {grown_mib:.1} MiB",
        sent / MIB
    );
    // The limit, plus frame and TLS buffers on both ends: far from the flood sent.
    assert!(
        grown_mib < (LIMIT / MIB) as f64 + 6.0,
        "RSS grew by {grown_mib:.1} MiB while the client sent {} MiB with a {} MiB limit",
        sent / MIB,
        LIMIT / MIB
    );
    // The session is over: its process is gone too.
    assert!(
        env.sessions_end(std::time::Duration::from_secs(10)).await,
        "the session did not end"
    );
}
