//! What SREs see: per-session series that live exactly as long as the session, the admin
//! listener's pages (never on the public listener), and audit lines with exit code and bytes.

use futures_util::{SinkExt as _, StreamExt as _};
use podgate_testkit::gateway::{ADMIN, Builder, Cluster, Env};
use podgate_testkit::http;
use podgate_testkit::metrics::sample;
use podgate_testkit::wait::wait_for;
use podgate_testkit::ws::{self, tungstenite::Message};
use std::time::Duration;

async fn admin_get(env: &Env, path: &str) -> http::Answer {
    let addr = env.gateway.admin_addr.expect("admin listener");
    http::plain(addr, "GET", path, &[], "")
        .await
        .expect("admin answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_series_live_and_die_with_the_session_and_audit_records_it() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let audit_path = dir.path().join("audit.jsonl");
    let env = Builder::new()
        .cluster(Cluster::new("old"))
        .admin(true)
        .audit_file(&audit_path)
        .start()
        .await;

    for path in ["/healthz", "/readyz"] {
        assert_eq!(admin_get(&env, path).await.code, 200, "{path}");
    }
    // Admin pages are not on the public listener.
    let r = http::get(&env, "/metrics", ADMIN).await;
    assert!(r.head.starts_with("HTTP/1.1 404"), "{r:?}");

    let echo = "/clusters/old/api/v1/namespaces/load/pods/echo-0/exec?command=x&stdin=true&stdout=true&stderr=false";
    let (mut ws, _) = ws::open(&env, ADMIN, echo, &[ws::V5], &[])
        .await
        .expect("upgrade");
    ws.send(Message::binary(b"\x00hello".to_vec()))
        .await
        .unwrap();
    let mut got = 0;
    while got < 5 {
        if let Some(Ok(Message::Binary(b))) = ws.next().await
            && b.len() > 1
        {
            got += b.len() - 1;
        }
    }
    let m = admin_get(&env, "/metrics").await.body;
    let id = env.sessions().live.list()[0].record.session_id.clone();
    let info = [
        ("session_id", id.as_str()),
        ("user", "admin"),
        ("cluster", "old"),
        ("namespace", "load"),
        ("pod", "echo-0"),
        ("container", ""),
    ];
    assert_eq!(sample(&m, "podgate_session_info", &info), Some(1.0), "{m}");
    assert_eq!(
        sample(
            &m,
            "podgate_session_relayed_bytes_total",
            &[("session_id", &id), ("direction", "stdin")]
        ),
        Some(5.0)
    );
    assert!(
        sample(
            &m,
            "podgate_session_start_time_seconds",
            &[("session_id", &id)]
        )
        .is_some()
    );
    assert_eq!(
        sample(&m, "podgate_sessions_active", &[("cluster", "old")]),
        Some(1.0)
    );
    let debug = admin_get(&env, "/debug/sessions").await;
    assert_eq!(debug.code, 200);
    let debug: serde_json::Value = serde_json::from_str(&debug.body).expect("JSON");
    assert_eq!(debug["sessions"][0]["id"], id);
    assert_eq!(debug["sessions"][0]["bytes"]["stdout"], 5);
    assert!(debug["sessions"][0]["idle_seconds"].is_number());

    // The pod ends the session: stdin closed, echo exits 0.
    ws.send(Message::binary(vec![255, 0])).await.unwrap();
    while let Some(Ok(m)) = ws.next().await {
        if m.is_close() {
            break;
        }
    }
    let gw = env.sessions().clone();
    assert!(
        wait_for(Duration::from_secs(10), || gw.live.is_empty()).await,
        "timed out waiting for the session to end"
    );
    let m = admin_get(&env, "/metrics").await.body;
    assert!(
        !m.contains(&id),
        "per-session series outlived the session:\n{m}"
    );
    assert_eq!(
        sample(&m, "podgate_sessions_active", &[("cluster", "old")]),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &m,
            "podgate_sessions_total",
            &[("cluster", "old"), ("outcome", "completed")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "podgate_session_bytes_total",
            &[("cluster", "old"), ("direction", "stdout")]
        ),
        Some(5.0)
    );
    assert!(
        sample(
            &m,
            "podgate_session_setup_seconds_count",
            &[("cluster", "old")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert!(
        sample(
            &m,
            "podgate_upstream_requests_total",
            &[("cluster", "old"), ("code", "101")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );

    // A refused token is counted by reason.
    http::get(&env, "/clusters/old/api", "nope-nope-nope").await;
    let m = admin_get(&env, "/metrics").await.body;
    assert_eq!(
        sample(
            &m,
            "podgate_auth_failures_total",
            &[("reason", "unknown_token")]
        ),
        Some(1.0),
        "{m}"
    );

    // No credential at all (a logged-out page asking who it is) is not a failed credential:
    // counted apart, so it pages nobody.
    let anonymous = http::get(&env, "/podgate/whoami", "").await;
    assert_eq!(anonymous.code, 401);
    let m = admin_get(&env, "/metrics").await.body;
    assert_eq!(
        sample(&m, "podgate_unauthenticated_requests_total", &[]),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "podgate_auth_failures_total", &[("reason", "missing")]),
        None,
        "{m}"
    );
    // The build says what it is: the version, and the git revision of this checkout.
    let revision = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(revision) = revision {
        assert_eq!(
            sample(
                &m,
                "podgate_build_info",
                &[
                    ("version", env!("CARGO_PKG_VERSION")),
                    ("revision", &revision)
                ]
            ),
            Some(1.0),
            "{m}"
        );
    }

    // A mutating request is audited too.
    let body =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"audited"},"data":{"k":"v"}}"#;
    let bearer = format!("Bearer {ADMIN}");
    let r = http::request(
        &env,
        "POST",
        "/clusters/old/api/v1/namespaces/default/configmaps",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .await;
    assert!(r.head.starts_with("HTTP/1.1 201"), "{r:?}");

    let lines = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&audit_path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each audit line is JSON"))
            .collect()
    };
    let mut all = Vec::new();
    assert!(
        wait_for(Duration::from_secs(10), || {
            all = lines();
            all.len() >= 3
        })
        .await,
        "timed out waiting for three audit lines"
    );
    let start = all
        .iter()
        .find(|l| l["event"] == "session_start")
        .expect("start line");
    assert_eq!(
        (
            start["user"].as_str(),
            start["pod"].as_str(),
            start["protocol"].as_str()
        ),
        (Some("admin"), Some("echo-0"), Some("v5.channel.k8s.io"))
    );
    assert!(
        start["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("127.0.0.1:"))
    );
    let end = all
        .iter()
        .find(|l| l["event"] == "session_end")
        .expect("end line");
    assert_eq!(end["exit_code"], 0);
    assert_eq!(end["close_reason"], "completed");
    assert_eq!(
        (end["stdin_bytes"].as_u64(), end["stdout_bytes"].as_u64()),
        (Some(5), Some(5))
    );
    assert_eq!(end["session_id"], id);
    let req = all
        .iter()
        .find(|l| l["event"] == "request")
        .expect("request line");
    assert_eq!(
        (req["method"].as_str(), req["code"].as_u64()),
        (Some("POST"), Some(201))
    );
    assert_eq!(req["path"], "/api/v1/namespaces/default/configmaps");
}
