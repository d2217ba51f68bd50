//! Draining `podgate serve` on SIGTERM: from the signal until the process exits, `/readyz`
//! says 503 (never "connection refused" while it lives, so probes see "draining"); sessions are
//! told why they end; requests in flight get their 10 s, and the process exits 0 soon after.

use podgate_testkit::kubectl;
use podgate_testkit::serve::{self, ADMIN, Held};
use podgate_testkit::wait::{read_until, wait_for};
use podgate_testkit::{http, tls};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

const PODGATE: &str = env!("CARGO_BIN_EXE_podgate");

/// What one `/readyz` on a fresh connection to the admin listener got.
#[derive(Debug)]
enum Probe {
    Answer(u16, String),
    /// Refused, closed without an answer, or no answer in time.
    Nothing(String),
}

async fn readyz(admin: SocketAddr) -> Probe {
    let asked = http::plain(admin, "GET", "/readyz", &[], "");
    match tokio::time::timeout(Duration::from_secs(2), asked).await {
        Ok(Ok(a)) if a.code != 0 => Probe::Answer(a.code, a.body),
        Ok(Ok(a)) => Probe::Nothing(format!("closed without an answer ({:?})", a.head)),
        Ok(Err(e)) => Probe::Nothing(e.to_string()),
        Err(_) => Probe::Nothing("no answer within 2 s".into()),
    }
}

/// `GET /readyz` on a connection that stays open after the answer.
const KEEP_ALIVE_READYZ: &[u8] = b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_with_readyz_503_until_the_process_exits() {
    if !kubectl::available() {
        return;
    }
    let mut site = serve::one_cluster(Path::new(PODGATE), |c| c).await;
    let gw = &mut site.gw;
    let admin = gw.kubectl("east", ADMIN.token);
    let session = Held::open(&admin, "default", "shell-0", "sleep 600").await;
    // A request in flight for the whole drain: a watch, which gets the drain's 10 s.
    let mut watch = admin
        .command(&["get", "pods", "-w", "-n", "default"])
        .spawn()
        .expect("kubectl get -w starts");
    let mut first = Vec::new();
    let stdout = watch.stdout.as_mut().expect("stdout is piped");
    read_until(
        stdout,
        &mut first,
        Duration::from_secs(30),
        "the watch's first rows",
        |s| s.contains("shell-0"),
    )
    .await;
    match readyz(gw.admin).await {
        Probe::Answer(200, _) => {}
        other => panic!("/readyz before the drain: {other:?}"),
    }
    // A connection to the public listener, opened before it stops accepting.
    let mut public = Some(tls::connect(gw).await);
    let before = http::exchange(public.as_mut().expect("the connection"), KEEP_ALIVE_READYZ)
        .await
        .expect("the public /readyz answers");
    assert_eq!(before.code, 200, "{before:?}");

    let mark = gw.mark();
    gw.sigterm();
    let signalled = Instant::now();
    let mut draining = 0;
    let mut public_probe = None;
    let status = loop {
        if let Some(status) = gw.exited() {
            break status;
        }
        match readyz(gw.admin).await {
            Probe::Answer(503, body) => {
                assert_eq!(body, "shutting down\n");
                draining += 1;
                // Draining has begun: whatever the public listener still answers is 503.
                if let Some(mut public) = public.take() {
                    public_probe = Some(tokio::spawn(async move {
                        http::exchange(&mut public, KEEP_ALIVE_READYZ).await
                    }));
                }
            }
            // The signal may take a moment to be handled; never once draining has begun.
            Probe::Answer(200, _) if draining == 0 => assert!(
                signalled.elapsed() < Duration::from_secs(2),
                "/readyz still 200 {:?} after SIGTERM",
                signalled.elapsed()
            ),
            Probe::Answer(code, body) => {
                panic!("/readyz answered {code} {body:?} after {draining} answers of 503")
            }
            // The admin listener closes last, just before the process exits.
            Probe::Nothing(why) => {
                let at = signalled.elapsed();
                let mut exited = None;
                wait_for(Duration::from_secs(2), || {
                    exited = gw.exited();
                    exited.is_some()
                })
                .await;
                match exited {
                    Some(status) => break status,
                    None => panic!(
                        "/readyz got no answer ({why}) {at:?} after SIGTERM, and podgate still \
                         runs; its log:\n{}",
                        gw.log().join("\n")
                    ),
                }
            }
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(15),
            "podgate still drains {:?} after SIGTERM",
            signalled.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = signalled.elapsed();
    assert!(status.success(), "podgate exited with {status}");
    assert!(took < Duration::from_secs(15), "the drain took {took:?}");
    // The watch held the drain open for its 10 s; the process waited for it, bounded.
    assert!(
        took >= Duration::from_secs(9),
        "the drain took only {took:?}"
    );
    assert!(
        draining >= 10,
        "{draining} answers of 503 in {took:?} of draining"
    );
    let exit = gw.exit_within(Duration::from_secs(5)).await;
    assert!(exit.success());
    gw.line_after(mark, Duration::ZERO, "the drain's start", |l| {
        l.contains("shutting down: /readyz answers 503")
    })
    .await;

    let out = session.ended(Duration::from_secs(5)).await;
    out.assert_fails_saying(&["the gateway is shutting down"], "the open session");
    let public = public_probe
        .expect("a public probe once draining")
        .await
        .expect("the public probe's task");
    // Answered 503, or closed unanswered (it stops accepting and closes idle connections).
    match public {
        Ok(a) => assert!(a.code == 503 || a.code == 0, "public /readyz: {a:?}"),
        Err(e) => panic!("the public connection neither answered nor closed: {e}"),
    }
    let _ = watch.kill().await;
}

/// The `session_end` lines a shutdown wrote (`close_reason: shutdown`), by session id.
fn ended_by_shutdown(gw: &serve::Serve) -> std::collections::BTreeSet<String> {
    gw.stdout()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "session_end" && v["close_reason"] == "shutdown")
        .filter_map(|v| v["session_id"].as_str().map(String::from))
        .collect()
}

/// The audit writer batches lines (it lingers after a write); the shutdown waits for it, so
/// the ends of the sessions it closed are written before the process exits, all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_audits_the_end_of_every_session_it_closes() {
    if !kubectl::available() {
        return;
    }
    let mut site = serve::one_cluster(Path::new(PODGATE), |c| c).await;
    let gw = &mut site.gw;
    let admin = gw.kubectl("east", ADMIN.token);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(Held::open(&admin, "default", "shell-0", "sleep 600").await);
    }
    let started = || {
        gw.stdout()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == "session_start")
            .filter_map(|v| v["session_id"].as_str().map(String::from))
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert!(
        wait_for(Duration::from_secs(10), || started().len() == 4).await,
        "four session_start lines; stdout:\n{}",
        gw.stdout().join("\n")
    );
    let ids = started();
    gw.sigterm();
    let status = gw.exit_within(Duration::from_secs(15)).await;
    assert!(status.success(), "podgate exited with {status}");
    for s in held {
        let out = s.ended(Duration::from_secs(5)).await;
        out.assert_fails_saying(
            &["the gateway is shutting down"],
            "a session open at SIGTERM",
        );
    }
    // The process is gone: what it wrote is in the pipe, or was never written.
    wait_for(Duration::from_secs(5), || ended_by_shutdown(gw) == ids).await;
    assert_eq!(
        ended_by_shutdown(gw),
        ids,
        "a session_end line for every session the shutdown closed; stdout:\n{}",
        gw.stdout().join("\n")
    );
}
