//! `kubectl port-forward` (1.31+: SPDY/3.1 inside WebSocket) and the Python client's
//! `portforward` (the v4 channel protocol) through podgate to the devcluster's `shop/web-0`
//! (`builtin:http` on 80, a TCP echo on 7, nothing on 9): bytes byte-exact, parallel
//! connections, the tunnel and every task gone when kubectl ends, ports and bytes in the audit
//! line, the cluster's and podgate's refusals, limits and the idle timeout.

use futures_util::future::join_all;
use podgate_config::AccessPolicy;
use podgate_testkit::gateway::{ADMIN, ALICE, Builder, Cluster};
use podgate_testkit::portforward::{self, SPDY_KUBECTL, echo, fetch_pattern, http_get};
use podgate_testkit::process::Process;
use podgate_testkit::wait::wait_for;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn audit_lines(path: &Path, event: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["event"] == event)
        .collect()
}

async fn audited(path: &Path, event: &str, n: usize) -> Vec<serde_json::Value> {
    wait_for(Duration::from_secs(10), || {
        audit_lines(path, event).len() >= n
    })
    .await;
    audit_lines(path, event)
}

/// A pattern that is not periodic in 2^n, every byte value.
fn data(n: usize) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_port_forward_through_podgate_is_byte_exact_and_leaves_nothing_behind() {
    if !podgate_testkit::kubectl::available() {
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let audit = dir.path().join("audit.jsonl");
    let env = Builder::new()
        .cluster(Cluster::new("dev-east"))
        .audit_file(&audit)
        .start()
        .await;
    let me = Process::this();
    let mut fds_before = None;
    let kubectls = portforward::websocket_kubectls();
    for (i, k) in kubectls.iter().enumerate() {
        let l = k.display().to_string();
        let kubectl = env.kubectl(k, ADMIN, "dev-east");
        let pf = portforward::start(&kubectl, "shop", "web-0", &[80, 7])
            .await
            .unwrap_or_else(|e| panic!("{l}: port-forward did not start: {e}"));
        let (status, body) = http_get(pf.local[0], "/").await.expect("GET /");
        assert!(status.contains(" 200 "), "{l}: {status}");
        assert_eq!(body, b"web-0\n", "{l}");
        // And as people try it: curl through the forwarded port.
        let curl = tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "30"])
            .arg(format!("http://127.0.0.1:{}/", pf.local[0]))
            .output()
            .await
            .expect("curl runs");
        assert!(
            curl.status.success(),
            "{l}: curl: {}",
            String::from_utf8_lossy(&curl.stderr)
        );
        assert_eq!(curl.stdout, b"web-0\n", "{l}: curl");
        // Several connections at once over the one tunnel, each byte-exact.
        let parallel = join_all((0..6).map(|_| fetch_pattern(pf.local[0], 1 << 20))).await;
        for r in parallel {
            assert_eq!(r.expect("a parallel GET"), (1 << 20, true), "{l}");
        }
        let sent = data(1 << 20);
        assert!(
            echo(pf.local[1], &sent).await.expect("echo") == sent,
            "{l}: echo"
        );
        if i == 0 {
            let (n, exact) = fetch_pattern(pf.local[0], 100 << 20)
                .await
                .expect("100 MiB");
            assert_eq!((n, exact), (100 << 20, true), "{l}: the 100 MiB transfer");
        }
        pf.stop().await;
        assert!(
            env.sessions_end(Duration::from_secs(30)).await,
            "{l}: the tunnel is still open at the gateway or the cluster after kubectl ended"
        );
        assert!(
            wait_for(Duration::from_secs(10), || env.sessions().tasks.is_empty()).await,
            "{l}: a session task outlived kubectl"
        );
        // The first run warms the gateway's pools: later runs may not add descriptors.
        match fds_before {
            None => fds_before = Some(me.fds()),
            Some(before) => assert!(
                wait_for(Duration::from_secs(10), || me.fds() <= before + 2).await,
                "{l}: descriptors grew from {before} to {}",
                me.fds()
            ),
        }
    }
    let ends = audited(&audit, "session_end", kubectls.len()).await;
    assert_eq!(ends.len(), kubectls.len(), "{ends:?}");
    for end in &ends {
        assert_eq!(end["ports"], serde_json::json!([7, 80]), "{end}");
        assert_eq!(end["close_reason"], "client_closed", "{end}");
        assert!(end["connections"].as_u64() >= Some(8), "{end}");
        assert_eq!(end["protocol"], "SPDY/3.1+portforward.k8s.io", "{end}");
        assert_eq!(end["pod"], "web-0", "{end}");
        // Client → pod: the GETs and the echo's MiB; pod → client: six MiB, the echo, more.
        assert!(end["stdin_bytes"].as_u64() >= Some(1 << 20), "{end}");
        assert!(end["stdout_bytes"].as_u64() >= Some(7 << 20), "{end}");
    }
    assert!(
        ends[0]["stdout_bytes"].as_u64() >= Some(107 << 20),
        "{}",
        ends[0]
    );
    // Counted as sessions, with their bytes per direction, in the gateway's metrics.
    let metrics = env.sessions().metrics.render();
    let sample = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let closed = sample("podgate_sessions_total{cluster=\"dev-east\",outcome=\"client_closed\"} ");
    assert_eq!(closed as usize, kubectls.len(), "{metrics}");
    let out = sample("podgate_session_bytes_total{cluster=\"dev-east\",direction=\"stdout\"} ");
    assert!(out >= f64::from(107u32 << 20), "{metrics}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_refusals_are_the_clusters_or_podgates_own() {
    if !podgate_testkit::kubectl::available() {
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let audit = dir.path().join("audit.jsonl");
    let env = Builder::new()
        .cluster(Cluster::new("dev-east"))
        .cluster(Cluster::new("default-only").access(AccessPolicy {
            namespaces: vec!["default".into()],
            ..Default::default()
        }))
        .audit_file(&audit)
        .start()
        .await;
    let kubectl = |token: &str, ctx: &str| {
        env.kubectl(Path::new(podgate_testkit::kubectl::DEFAULT), token, ctx)
    };
    // RBAC: alice may port-forward in `default` only; the cluster's words.
    let e = portforward::start(&kubectl(ALICE, "dev-east"), "shop", "web-0", &[80])
        .await
        .err()
        .expect("alice is refused in shop");
    assert!(
        e.contains("forbidden") && e.contains("\"pods/portforward\"") && e.contains("alice"),
        "{e}"
    );
    // The edge policy: a namespace outside the cluster's `access`.
    let e = portforward::start(&kubectl(ADMIN, "default-only"), "shop", "web-0", &[80])
        .await
        .err()
        .expect("refused at the edge");
    assert!(e.contains("podgate") && e.contains("shop"), "{e}");
    // A kubectl that only speaks plain SPDY.
    if Path::new(SPDY_KUBECTL).exists() {
        let old = env.kubectl(Path::new(SPDY_KUBECTL), ADMIN, "dev-east");
        let e = portforward::start(&old, "shop", "web-0", &[80])
            .await
            .err()
            .expect("plain SPDY is refused");
        assert!(
            e.contains("podgate relays port-forward over WebSocket only"),
            "{e}"
        );
    }
    // A port nothing listens on: the runtime's error, as a real cluster makes kubectl print it.
    let mut pf = portforward::start(&kubectl(ADMIN, "dev-east"), "shop", "web-0", &[9])
        .await
        .expect("the tunnel opens");
    let stderr = pf.fail_one_connection().await;
    assert!(
        stderr.contains("error forwarding port 9 to pod")
            && stderr.contains("connect: connection refused"),
        "{stderr}"
    );
    // Audited: alice's (kubectl tries WebSocket, then SPDY: both refused by the cluster) and
    // the plain SPDY one (the edge's refusal came earlier, on kubectl's GET of the pod).
    let refused = audited(&audit, "session_refused", 2).await;
    assert!(
        refused
            .iter()
            .any(|r| r["close_reason"] == "denied" && r["user"] == "alice" && r["code"] == 403),
        "{refused:?}"
    );
    if Path::new(SPDY_KUBECTL).exists() {
        assert!(
            refused
                .iter()
                .any(|r| r["close_reason"] == "bad_request" && r["user"] == "admin"),
            "{refused:?}"
        );
    }
    assert!(env.sessions_end(Duration::from_secs(30)).await);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_forward_is_a_session_under_limits_and_the_idle_timeout() {
    if !podgate_testkit::kubectl::available() {
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let audit = dir.path().join("audit.jsonl");
    // kubectl pings its tunnel every 10 s (SPDY PING): were pings activity, this session would
    // never idle.
    let idle = Duration::from_secs(13);
    let env = Builder::new()
        .cluster(Cluster::new("dev-east"))
        .limits(|l| l.per_user = 1)
        .sessions(|s| s.idle_timeout = Some(idle))
        .audit_file(&audit)
        .start()
        .await;
    let kubectl = env.kubectl(
        Path::new(podgate_testkit::kubectl::DEFAULT),
        ADMIN,
        "dev-east",
    );
    let mut pf = portforward::start(&kubectl, "shop", "web-0", &[7])
        .await
        .expect("the first port-forward opens");
    // An open connection, silent after one round trip.
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", pf.local[0]))
        .await
        .expect("kubectl accepts");
    conn.write_all(b"ping").await.expect("written");
    let mut back = [0u8; 4];
    conn.read_exact(&mut back).await.expect("echoed");
    assert_eq!(&back, b"ping");
    // The second one is over the per-user limit of 1.
    let e = portforward::start(&kubectl, "shop", "web-0", &[80])
        .await
        .err()
        .expect("over the limit");
    assert!(e.contains("already has 1 open sessions"), "{e}");
    let (_, stderr) = pf
        .exited(Duration::from_secs(60))
        .await
        .expect("the idle tunnel is closed");
    // Told on the open connection's error stream.
    assert!(stderr.contains("idle timeout"), "{stderr}");
    let ends = audited(&audit, "session_end", 1).await;
    assert_eq!(ends[0]["close_reason"], "idle_timeout", "{ends:?}");
    assert!(ends[0]["duration_seconds"].as_f64() >= Some(idle.as_secs_f64()));
    assert!(env.sessions_end(Duration::from_secs(30)).await);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_clients_portforward_works_through_podgate() {
    let Some(python) = podgate_testkit::python::python() else {
        return;
    };
    let env = Builder::new()
        .cluster(Cluster::new("dev-east"))
        .start()
        .await;
    let run = portforward::python(&python, &env.kubeconfig(ADMIN), Some("dev-east")).await;
    assert_eq!(run.http, "web-0\n", "{run:?}");
    assert!(run.echoed, "{run:?}");
    let refused = run.refused.unwrap_or_default();
    assert!(refused.contains("connect: connection refused"), "{refused}");
    assert!(env.sessions_end(Duration::from_secs(30)).await);
    env.shutdown().await;
}
