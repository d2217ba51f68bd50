//! Session lifetime through the gateway: keepalive pings keep a quiet shell open and drop a
//! client that no longer answers; idle timeout and maximum duration end a session with a
//! readable reason before the close.

use futures_util::StreamExt as _;
use podgate_testkit::gateway::{Builder, Env};
use podgate_testkit::process::MIB;
use podgate_testkit::wait::wait_for;
use podgate_testkit::ws::tungstenite::Message;
use podgate_testkit::ws::{Got, Ws, echo_round_trip, next_frame, read_stdout, send_stdin};
use std::time::Duration;

const ECHO: &str = "command=echo&stdin=true&stdout=true";

/// The demo's assembly where only `keepalive` ends sessions (no idle timeout, no maximum).
async fn with_keepalive(keepalive: Duration) -> Env {
    Builder::demo()
        .sessions(|s| {
            s.keepalive = keepalive;
            s.idle_timeout = None;
            s.max_duration = None;
        })
        .start()
        .await
}

/// A quiet session whose client reads (and so answers pings) outlives many keepalive periods,
/// then still echoes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_session_outlives_keepalive_periods() {
    podgate_devcluster::install_crypto_provider();
    let keepalive = Duration::from_millis(200);
    let env = with_keepalive(keepalive).await;
    let gw = env.sessions().clone();
    let mut ws = env.admin_exec("load", "echo-0", ECHO).await;
    echo_round_trip(&mut ws, b"before").await;

    // Silence for 5 keepalive periods (elapsed time is what is tested), reading all along:
    // tungstenite answers each ping while it reads.
    let quiet = keepalive * 5;
    let deadline = tokio::time::Instant::now() + quiet;
    let mut pings = 0;
    while let Ok(next) = tokio::time::timeout_at(deadline, ws.next()).await {
        match next {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Binary(b))) if b.len() <= 1 => {}
            other => panic!("the quiet session got {other:?}"),
        }
    }
    assert!(pings >= 3, "only {pings} pings in {quiet:?}");
    assert_eq!(gw.limits.active(), 1, "the session ended while quiet");
    echo_round_trip(&mut ws, b"after the silence").await;
}

/// A client that completes the handshake and then neither reads nor answers pings is dropped,
/// and its session ends on the cluster too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_answering_pings_is_dropped() {
    podgate_devcluster::install_crypto_provider();
    let env = with_keepalive(Duration::from_millis(200)).await;
    let gw = env.sessions().clone();
    let ws = env.admin_exec("load", "echo-0", ECHO).await;
    assert!(
        wait_for(Duration::from_secs(5), || gw.limits.active() == 1
            && env.clusters[0].active_sessions() == 1)
        .await,
        "the session never started"
    );
    // `ws` is held, never polled: no pongs go back.
    let dropped = env.sessions_end(Duration::from_secs(10)).await;
    assert!(
        dropped,
        "still open: {} gateway sessions, {} on the cluster",
        gw.limits.active(),
        env.clusters[0].active_sessions()
    );
    drop(ws);
}

/// A client that stops reading while the pod writes stops answering pings too (it reads
/// none): it is dropped like any other unresponsive client, and the pod's session ends,
/// rather than holding the session, its slot and the pod's command open forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_output_is_dropped_as_unresponsive() {
    podgate_devcluster::install_crypto_provider();
    let env = with_keepalive(Duration::from_millis(200)).await;
    let gw = env.sessions().clone();
    // flood-0 with no byte count: 1 GiB, far more than any buffer on the way.
    let mut ws = env
        .admin_exec("load", "flood-0", "command=flood&stdout=true&stderr=false")
        .await;
    read_stdout(&mut ws, MIB).await;
    // From now on `ws` is held, never polled: no reads, no pongs.
    let dropped = env.sessions_end(Duration::from_secs(10)).await;
    let relayed = gw
        .live
        .list()
        .first()
        .map(|s| s.bytes(podgate_metrics::Direction::Stdout) / MIB);
    assert!(
        dropped,
        "a client that has read nothing (and answered no ping) for 10 s, 50 keepalive periods, \
         still holds its session: {} open at the gateway ({relayed:?} MiB relayed), {} on the cluster",
        gw.limits.active(),
        env.clusters[0].active_sessions()
    );
    drop(ws);
}

/// Reads frames until the close, returning the stream-3 payloads and the close reason
/// (echoes of input still in flight are skipped).
async fn until_close(ws: &mut Ws) -> (Vec<String>, Option<String>) {
    let mut status = Vec::new();
    loop {
        match next_frame(ws, Duration::from_secs(10)).await {
            Got::Data(3, d) => status.push(String::from_utf8_lossy(&d).into_owned()),
            Got::Data(1, _) => {}
            Got::Data(s, d) => panic!("unexpected data on stream {s}: {d:?}"),
            Got::Close(reason) => {
                // Our close reply, queued by tungstenite as it read the close, goes out now
                // (else podgate waits its close grace for it).
                let _ = futures_util::SinkExt::flush(ws).await;
                return (status, reason);
            }
        }
    }
}

/// Checks the one Status JSON on stream 3 before a close and returns its message.
fn timeout_status(status: &[String]) -> String {
    assert_eq!(status.len(), 1, "stream 3 before the close: {status:?}");
    let v: serde_json::Value = serde_json::from_str(&status[0])
        .unwrap_or_else(|e| panic!("stream 3 is not a Status JSON ({e}): {:?}", status[0]));
    assert_eq!(v["status"], "Failure", "{}", status[0]);
    v["message"].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_sends_a_reason_then_closes() {
    podgate_devcluster::install_crypto_provider();
    let idle = Duration::from_millis(500);
    let env = Builder::demo()
        .sessions(|s| {
            s.idle_timeout = Some(idle);
            s.max_duration = None;
        })
        .start()
        .await;
    let gw = env.sessions().clone();
    let mut ws = env.admin_exec("load", "echo-0", ECHO).await;
    // Traffic keeps it alive past the idle timeout (the pauses are the behaviour tested).
    for i in 0..5 {
        echo_round_trip(&mut ws, format!("busy {i}").as_bytes()).await;
        tokio::time::sleep(idle / 2).await;
    }
    assert_eq!(gw.limits.active(), 1, "a busy session hit the idle timeout");
    // Then quiet: the reason, then the close.
    let (status, reason) = until_close(&mut ws).await;
    let msg = timeout_status(&status);
    assert!(msg.contains("idle"), "{msg}");
    assert!(
        reason.as_deref().unwrap_or("").contains("idle"),
        "close reason {reason:?}"
    );
    assert!(
        env.sessions_end(Duration::from_secs(5)).await,
        "{} sessions still counted",
        gw.limits.active()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_duration_ends_even_a_busy_session_with_a_reason() {
    podgate_devcluster::install_crypto_provider();
    let max = Duration::from_millis(500);
    let env = Builder::demo()
        .sessions(|s| {
            s.idle_timeout = None;
            s.max_duration = Some(max);
        })
        .start()
        .await;
    let gw = env.sessions().clone();
    let mut ws = env.admin_exec("load", "echo-0", ECHO).await;
    // Busy all along: input every 100 ms, echoed.
    let mut status = Vec::new();
    let mut sent = 0;
    let reason = loop {
        let ask = tokio::time::Instant::now();
        send_stdin(&mut ws, b"x").await;
        sent += 1;
        assert!(
            sent < 100,
            "the session outlived its maximum duration by far"
        );
        match next_frame(&mut ws, Duration::from_secs(10)).await {
            Got::Data(1, d) => assert_eq!(d, b"x"),
            Got::Data(3, d) => {
                status.push(String::from_utf8_lossy(&d).into_owned());
                let (more, reason) = until_close(&mut ws).await;
                status.extend(more);
                break reason;
            }
            Got::Data(s, d) => panic!("unexpected data on stream {s}: {d:?}"),
            Got::Close(r) => break r,
        }
        tokio::time::sleep_until(ask + Duration::from_millis(100)).await;
    };
    let msg = timeout_status(&status);
    assert!(msg.contains("maximum session duration"), "{msg}");
    assert!(
        reason
            .as_deref()
            .unwrap_or("")
            .contains("maximum session duration"),
        "close reason {reason:?}"
    );
    assert!(sent >= 3, "closed after only {sent} round trips");
    assert!(
        env.sessions_end(Duration::from_secs(5)).await,
        "{} sessions still counted",
        gw.limits.active()
    );
}
