//! The web UI in real Chromium: Debian's `/usr/bin/chromium` driven by `playwright-core`
//! (gateway/web/tests/ui.mjs) against the demo gateway started here, in-process. The driver
//! logs in, opens shells through the pickers and by deep link, types, resizes, exits, drops
//! connections, and reads everything back from xterm's buffer; screenshots go to
//! `<target>/ui/`. Without node, Chromium or the web build this test skips loudly, except
//! under `CI=true`, where it fails.

use podgate_testkit::browser as driver;
use podgate_testkit::gateway::{self, Builder};
use podgate_testkit::http;
use std::time::Duration;

/// The web UI's pure parts (deep links, framing, UTF-8 boundaries, messages, command lines)
/// under node's test runner: gateway/web/tests/unit.test.ts.
#[test]
fn web_unit_tests() {
    if !driver::node_available() {
        return;
    }
    let out = std::process::Command::new("node")
        .arg("tests/unit.mjs")
        .current_dir(podgate_testkit::repo().join("gateway/web"))
        .output()
        .expect("node runs");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "web unit tests failed:\n{text}");
    assert!(text.contains("fail 0"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_in_chromium() {
    if !driver::available() {
        return;
    }
    let env = gateway::demo().await;

    // The page itself, as served: before any login, with its headers.
    let index = http::get(&env, "/", "").await;
    assert_eq!(index.code, 200, "{}", index.body);
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(index.header("cache-control"), Some("no-store"));
    let csp = index.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    let script = index
        .body
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("index.html names its script");
    let js = http::get(&env, script, "").await;
    assert_eq!(js.code, 200);
    assert_eq!(js.header("content-encoding"), None);
    let gz = http::request(&env, "GET", script, &[("Accept-Encoding", "gzip, br")], "").await;
    assert_eq!(gz.code, 200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(
        gz.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(
        js.header("cache-control")
            .is_some_and(|c| c.contains("immutable")),
        "{:?}",
        js.head
    );

    // A production cluster (on dev-east's devcluster): marked in the picker, the tab and the frame.
    let registry = env.gateway.clusters().clone();
    let mut specs: Vec<podgate::upstream::ClusterSpec> =
        registry.list().into_iter().map(Into::into).collect();
    let config = podgate::app::demo::kube_config_for(env.cluster("dev-east"))
        .await
        .expect("the devcluster's kube config");
    let mut prod =
        podgate::upstream::Cluster::from_kube_config("prod-eu", config, true).expect("a cluster");
    prod.meta.display_name = Some("Production EU".into());
    prod.meta.environment = Some("production".into());
    specs.push(std::sync::Arc::new(prod).into());
    let applied = registry.apply(specs, &Default::default()).await;
    assert_eq!(applied.added.len(), 1, "{applied:?}");

    let url = env.url();
    let out = driver::run(&url, "main", &[]).await;
    driver::assert_passed(
        &out,
        &[
            "nothing is preselected: Open waits for a pod the person chose",
            "demo login, open shell-0, echo hello",
            "the first size reaches the pod before the shell draws, and resizes follow",
            "multi-byte UTF-8 split across frames renders",
            "exit 3 shows code 3, and Enter starts a new session",
            "copy on select puts the selection on the clipboard",
            "Ctrl+Shift+C copies the selection and Ctrl+Shift+V pastes",
            "links in the output are clickable",
            "two tabs work at once",
            "tab titles start with the cluster, then pod and container; the full path heads the terminal",
            "search, theme toggle remembered",
            "recently used pods are offered first after a reload",
            "font size control changes the terminal's font and survives a reload",
            "copy and paste keys are documented in the page, and Shift+Insert / Ctrl+Insert work",
            "a production cluster is marked in the picker, the tab and the frame at 360 px",
            "a deep link opens the right pod",
            "a command as its first act sees the window size, then exits 0",
            "narrow window at 200% zoom stays usable",
            "a dropped connection resumes the same session by itself",
            "bob on a pod he may not exec reads Forbidden",
            "a missing pod reads Not found",
            "a missing container reads Container not found",
            "log out returns to the login screen",
            "no errors in the page console",
        ],
    );
    let shots = driver::screenshots();
    assert!(
        shots.join("shell-0.png").exists(),
        "screenshots in {}",
        shots.display()
    );

    // A cluster that stops answering.
    let mut env = env;
    env.stop_cluster("dev-west").await;
    let out = driver::run(&url, "unreachable", &[]).await;
    driver::assert_passed(&out, &["a stopped cluster reads unreachable"]);
    env.shutdown().await;

    // The gateway's own endings: idle timeout, maximum duration, the per-user session limit.
    let env = Builder::demo()
        .sessions(|s| {
            s.idle_timeout = Some(Duration::from_secs(4));
            s.max_duration = Some(Duration::from_secs(12));
        })
        .limits(|l| l.per_user = 1)
        .browser(|b| b.dev_login = true)
        .start()
        .await;
    let out = driver::run(&env.url(), "limits", &[]).await;
    driver::assert_passed(
        &out,
        &[
            "the session's limits are shown, counting down when near",
            "a second session past the per-user limit is refused with a reason",
            "maximum session duration is shown",
            "idle timeout is shown, and Enter reconnects",
        ],
    );
    env.shutdown().await;
}
