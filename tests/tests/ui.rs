//! The web UI in real Chromium: Debian's `/usr/bin/chromium` driven by `playwright-core`
//! (gateway/web/tests/ui.mjs) against the demo gateway started here, in-process. The driver
//! logs in, opens shells through the pickers and by deep link, types, resizes, exits, drops
//! connections, and reads everything back from xterm's buffer; screenshots go to
//! `<target>/ui/`. Without node, Chromium or the web build this test skips loudly, except
//! under `CI=true`, where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repo")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_relative() { repo().join(p) } else { p })
        .unwrap_or_else(|| repo().join("target"))
}

/// What the browser test needs, or why it cannot run.
fn missing() -> Option<String> {
    let web = repo().join("gateway/web");
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node {
        return Some("node is not installed".into());
    }
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("/usr/bin/chromium is not installed (scripts/setup.sh installs it)".into());
    }
    if !web
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return Some("gateway/web/node_modules is missing (run scripts/setup.sh)".into());
    }
    if podgate::web::ASSETS.is_empty() {
        return Some(
            "the web UI was not built into this podgate binary (run `make web`, then the test)"
                .into(),
        );
    }
    None
}

/// Runs the browser driver's scenario `group` against `env`; returns its stdout after
/// asserting that every scenario passed.
async fn driver(env: &common::Env, group: &str, shots: &Path) -> String {
    let _ = std::fs::create_dir_all(shots);
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(repo().join("gateway/web/tests/ui.mjs"))
        .current_dir(repo().join("gateway/web"))
        .env("PODGATE_URL", env.demo.gateway.url())
        .env("PODGATE_GROUP", group)
        .env("PODGATE_SCREENSHOTS", shots)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .expect("the browser test finishes within 5 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- browser scenarios {group} ---\n{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success() && stdout.contains(" passed, 0 failed"),
        "the browser scenarios {group} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_in_chromium() {
    if let Some(why) = missing() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("the web UI test cannot run under CI: {why}");
        }
        eprintln!("\n\n!!!!!! SKIPPED: the web UI test in Chromium did not run: {why} !!!!!!\n\n");
        return;
    }
    let env = common::start_demo().await;

    // The page itself, as served: before any login, with its headers.
    let index = common::get(&env, "/", "", &[]).await;
    assert_eq!(index.code, 200, "{}", index.body);
    assert_eq!(
        index.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(index.header("cache-control").as_deref(), Some("no-store"));
    let csp = index.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    let script = index
        .body
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("index.html names its script");
    let js = common::get(&env, script, "", &[]).await;
    assert_eq!(js.code, 200);
    assert_eq!(
        js.header("content-type").as_deref(),
        Some("text/javascript; charset=utf-8")
    );
    assert!(
        js.header("cache-control")
            .is_some_and(|c| c.contains("immutable")),
        "{:?}",
        js.head
    );

    let shots = target_dir().join("ui");
    let out = driver(&env, "main", &shots).await;
    for scenario in [
        "demo login, open shell-0, echo hello",
        "the first size reaches the pod before the shell draws, and resizes follow",
        "multi-byte UTF-8 split across frames renders",
        "exit 3 shows code 3, and Enter starts a new session",
        "copy on select puts the selection on the clipboard",
        "two tabs work at once",
        "search, theme toggle remembered",
        "a deep link opens the right pod",
        "narrow window at 200% zoom stays usable",
        "a dropped connection offers reconnect, and Enter reconnects",
        "bob on a pod he may not exec reads Forbidden",
        "a missing pod reads Not found",
        "no errors in the page console",
    ] {
        assert!(
            out.contains(&format!("ok - {scenario}")),
            "scenario {scenario:?} did not pass:\n{out}"
        );
    }
    assert!(
        shots.join("shell-0.png").exists(),
        "screenshots in {}",
        shots.display()
    );

    // A cluster that stops answering.
    let mut env = env;
    env.stop_cluster("dev-west").await;
    let out = driver(&env, "unreachable", &shots).await;
    assert!(
        out.contains("ok - a stopped cluster reads unreachable"),
        "{out}"
    );
    env.demo.shutdown().await;

    // The gateway's own endings: idle timeout, maximum duration, the per-user session limit.
    let env = common::start_with(|t| {
        t.sessions.idle_timeout = Some(Duration::from_secs(4));
        t.sessions.max_duration = Some(Duration::from_secs(12));
        t.limits.per_user = 1;
        t.dev_login = true;
    })
    .await;
    let out = driver(&env, "limits", &shots).await;
    for scenario in [
        "a second session past the per-user limit is refused with a reason",
        "maximum session duration is shown",
        "idle timeout is shown, and Enter reconnects",
    ] {
        assert!(
            out.contains(&format!("ok - {scenario}")),
            "scenario {scenario:?} did not pass:\n{out}"
        );
    }
    env.demo.shutdown().await;
}
