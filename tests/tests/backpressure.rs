//! A client that stops reading while `builtin:flood` writes 1 GiB: the pod's output stalls
//! (back-pressure through the gateway), the process's memory stays bounded, and the flow
//! resumes when the client reads again. Alone in its test binary: RSS is this process's.

use podgate_testkit::gateway;
use podgate_testkit::process::{MIB, Process};
use podgate_testkit::ws::{Got, next_frame, read_stdout};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_stalls_the_flood_with_bounded_memory() {
    podgate_devcluster::install_crypto_provider();
    let env = gateway::demo().await;
    let gw = env.sessions().clone();
    let me = Process::this();
    let rss_before = me.rss_bytes();

    // flood-0 with no byte count: 1 GiB.
    let mut ws = env
        .admin_exec("load", "flood-0", "command=flood&stdout=true&stderr=false")
        .await;
    read_stdout(&mut ws, MIB).await;
    let live = gw.live.list();
    assert_eq!(live.len(), 1, "one live session");
    let session = live[0].clone();
    assert_eq!(session.record.pod, "flood-0");
    let stdout = || session.bytes(podgate_metrics::Direction::Stdout);

    // Stop reading; poll until the relayed byte count stops growing.
    let mut last = stdout();
    let mut unchanged = 0;
    let stalled = tokio::time::timeout(Duration::from_secs(30), async {
        while unchanged < 5 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = stdout();
            unchanged = if now == last { unchanged + 1 } else { 0 };
            last = now;
        }
        last
    })
    .await
    .unwrap_or_else(|_| panic!("the flood never stalled: {} MiB relayed", stdout() / MIB));
    let grown = me.rss_bytes().saturating_sub(rss_before);
    eprintln!(
        "stalled at {} KiB relayed; RSS grew {} KiB",
        stalled / 1024,
        grown / 1024
    );
    assert!(
        stalled < 64 * MIB,
        "{} MiB relayed to a client that reads nothing",
        stalled / MIB
    );
    assert!(
        grown < 64 * MIB,
        "RSS grew by {} MiB while the client did not read",
        grown / MIB
    );
    assert_eq!(gw.limits.active(), 1, "the session is still open");

    // Read again: the flow resumes.
    let resumed = tokio::time::timeout(Duration::from_secs(30), async {
        while stdout() < stalled + 16 * MIB {
            match next_frame(&mut ws, Duration::from_secs(10)).await {
                Got::Data(1, _) => {}
                other => panic!("expected stdout, got {other:?}"),
            }
        }
    })
    .await;
    assert!(
        resumed.is_ok(),
        "the flow did not resume: {} MiB relayed, stalled at {} MiB",
        stdout() / MIB,
        stalled / MIB
    );

    // Going away ends the session on both sides.
    drop(ws);
    assert!(
        env.sessions_end(Duration::from_secs(10)).await,
        "{} sessions still open",
        gw.limits.active()
    );
}
