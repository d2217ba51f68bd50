//! A client that starts a fragmented message and never finishes it (FIN=0, then endless
//! continuations) is closed with 1009 once the message passes the limit, and the devcluster,
//! which runs in this process, holds no more than about the limit meanwhile.
//!
//! The only test in its binary, so nothing else allocates while the process's RSS is watched.

mod common;
use common::*;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

const MIB: usize = 1 << 20;
const LIMIT: usize = MIB;
const CHUNK: usize = 64 << 10;
/// What the client sends in all, unless the server stops it first: 64 times the limit.
const FLOOD: usize = 64 * MIB;

/// A `/proc/self/status` field in KiB.
fn status_kib(field: &str) -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(str::to_string))
        })
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_continuations_are_closed_with_1009_in_bounded_memory() {
    let mut topology = podgate_devcluster::Topology::builtin();
    topology.max_message_bytes = LIMIT;
    let env = start_with(topology).await;
    let cat = "/api/v1/namespaces/default/pods/shell-0/exec?command=cat&stdin=true&stdout=true&stderr=true";
    let (ws, _) = raw_ws(&env, "devcluster-admin-token", cat, &["v5.channel.k8s.io"])
        .await
        .expect("upgrade");
    let (mut tx, mut rx) = ws.split();

    // Start the peak from here where the kernel lets us (Linux >= 4.0: "5" resets VmHWM);
    // otherwise the peak so far only makes the check stricter.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kib("VmRSS");

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
    let peak = status_kib("VmHWM");
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
        wait_for(std::time::Duration::from_secs(10), || env
            .cluster
            .active_sessions()
            == 0)
        .await,
        "the session did not end"
    );
}
