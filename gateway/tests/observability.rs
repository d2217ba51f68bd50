//! What SREs see: per-session series that live exactly as long as the session, the admin
//! listener's pages (never on the public listener), and audit lines with exit code and bytes.

mod common;
use common::*;
use futures_util::{SinkExt as _, StreamExt as _};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::Message;

async fn admin_get(env: &Env, path: &str) -> (u16, String) {
    let addr = env.gateway.admin_addr.expect("admin listener");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut resp))
        .await
        .expect("admin answers")
        .unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        code,
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    )
}

/// The value of the sample `name{...}` carrying every label pair in `labels` (any order).
fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with(&format!("{name}{{"))
                || (labels.is_empty() && l.starts_with(&format!("{name} ")))
        })
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_series_live_and_die_with_the_session_and_audit_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let audit_path = dir.path().join("audit.jsonl");
    let audit =
        podgate::session::audit::Audit::open(audit_path.to_str().unwrap()).expect("audit file");
    let env = start_with(&[], move |o| o.audit = audit).await;

    for path in ["/healthz", "/readyz"] {
        assert_eq!(admin_get(&env, path).await.0, 200, "{path}");
    }
    // Admin pages are not on the public listener.
    let mut t = tls(&env).await;
    t.write_all(format!("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), t.read_to_end(&mut resp)).await;
    assert!(
        String::from_utf8_lossy(&resp).starts_with("HTTP/1.1 404"),
        "{}",
        String::from_utf8_lossy(&resp)
    );

    let echo =
        "/api/v1/namespaces/load/pods/echo-0/exec?command=x&stdin=true&stdout=true&stderr=false";
    let (mut ws, _) = connect(&env, echo, &["v5.channel.k8s.io"]).await;
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
    let (_, m) = admin_get(&env, "/metrics").await;
    let id = env.gateway.sessions.live.list()[0]
        .record
        .session_id
        .clone();
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
            "podgate_session_bytes",
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
    let (code, debug) = admin_get(&env, "/debug/sessions").await;
    assert_eq!(code, 200);
    let debug: serde_json::Value = serde_json::from_str(&debug).expect("JSON");
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
    let gw = env.gateway.sessions.clone();
    wait_for(Duration::from_secs(10), "the session to end", || {
        gw.live.is_empty()
    })
    .await;
    let (_, m) = admin_get(&env, "/metrics").await;
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
    let mut t = tls(&env).await;
    t.write_all(b"GET /clusters/old/api HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope-nope-nope\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut resp = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), t.read_to_end(&mut resp)).await;
    let (_, m) = admin_get(&env, "/metrics").await;
    assert_eq!(
        sample(
            &m,
            "podgate_auth_failures_total",
            &[("reason", "unknown_token")]
        ),
        Some(1.0),
        "{m}"
    );

    // A mutating request is audited too.
    let mut t = tls(&env).await;
    let body =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"audited"},"data":{"k":"v"}}"#;
    t.write_all(format!("POST /clusters/old/api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), t.read_to_end(&mut resp)).await;
    assert!(
        String::from_utf8_lossy(&resp).starts_with("HTTP/1.1 201"),
        "{}",
        String::from_utf8_lossy(&resp)
    );

    let lines = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&audit_path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each audit line is JSON"))
            .collect()
    };
    let mut all = Vec::new();
    wait_for(Duration::from_secs(10), "three audit lines", || {
        all = lines();
        all.len() >= 3
    })
    .await;
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
