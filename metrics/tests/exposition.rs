//! The `/metrics` text passes `promtool check metrics` (Prometheus' own parser and linter),
//! with every kind of series present, including per-session label values a user controls.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use podgate_metrics::{Direction, Metrics, Outcome, ReloadResult, SessionLabels, SessionSeries};
use podgate_testkit::prometheus as support;

fn busy_metrics() -> (Metrics, Vec<podgate_metrics::SessionMetrics>) {
    let m = Metrics::new(
        ["prod", "staging"],
        SessionSeries {
            enabled: true,
            max_sessions: 3,
        },
    );
    let users = ["alice", "o\"brien", "back\\slash", "new\nline", "ünïcode"];
    let live: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            let id = format!("s-{i}");
            let s = m.session_started(SessionLabels {
                session_id: &id,
                user,
                cluster: if i % 2 == 0 { "prod" } else { "staging" },
                namespace: "default",
                pod: "shell-0",
                container: if i == 0 { "" } else { "main" },
            });
            s.established(Duration::from_millis(20 * i as u64 + 5));
            s.add(Direction::Stdout, 1000);
            s
        })
        .collect();
    let ended = m.session_started(SessionLabels {
        session_id: "ended",
        user: "bob",
        cluster: "prod",
        namespace: "default",
        pod: "shell-0",
        container: "main",
    });
    ended.finish(Outcome::ExitNonzero, Duration::from_secs(42));
    m.session_rejected("prod", Outcome::LimitReached);
    m.auth_failure("expired");
    m.upstream_request("prod", Some(200), Duration::from_millis(12));
    m.upstream_request("staging", None, Duration::from_secs(5));
    m.set_cluster_up("prod", true);
    m.set_cluster_up("staging", false);
    m.config_reload(ReloadResult::Failure);
    m.tls_handshake_failure();
    (m, live)
}

#[test]
fn render_passes_promtool_check_metrics() {
    let Some(promtool) = support::tool("promtool") else {
        return;
    };
    let (metrics, _live) = busy_metrics();
    let text = metrics.render();
    assert!(text.contains("podgate_session_info{"), "{text}");
    assert!(text.contains("process_resident_memory_bytes"), "{text}");

    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write metrics to promtool");
    let out = child.wait_with_output().expect("promtool");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics ({}):\n{report}\n--- input ---\n{text}",
        out.status
    );
}
