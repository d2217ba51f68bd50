//! Sessions on record in the web UI, in real Chromium (gateway/web/tests/sessions.mjs): an
//! observer in a second browser sees the first one's screen, the output from before it joined
//! included, then live output; an operator ends a session from the sessions page and both the
//! person and the observer read who and why; a finished session's replay reaches the live
//! terminal's last screen (a resize and a character split across frames on the way); the
//! same file replayed in pyte, another terminal emulator, ends on that screen too; the
//! recordings page filters and pages; a `kubectl exec` is watched and ended from the browser
//! (kubectl reads who and why); and people without rights see only their own sessions,
//! are offered nothing for others', and are refused by podgate. Skips loudly without node,
//! Chromium or the web build (fails under `CI=true`).

use podgate_config::{OperatorsConfig, Principals, RecordingMode};
use podgate_testkit::browser as driver;
use podgate_testkit::casts;
use podgate_testkit::gateway::{self, ADMIN, ALICE, Builder};
use podgate_testkit::{http, kubectl, wait};
use std::path::Path;
use std::time::Duration;

const CAROL: &str = "podgate-test-carol";

/// The demo's people and carol (group `dev`, as alice: she may exec in `default`).
fn people() -> String {
    format!(
        "{}- token: {CAROL}\n  user: carol\n  groups: [dev]\n",
        gateway::people()
    )
}

/// The admins (`system:masters`) may do everything; alice may see every session, nothing more.
fn operators() -> OperatorsConfig {
    let admins = Principals {
        users: vec![],
        groups: vec!["system:masters".into()],
    };
    OperatorsConfig {
        sessions: Principals {
            users: vec!["alice".into()],
            groups: vec![],
        },
        observe: admins.clone(),
        terminate: admins.clone(),
        replay: admins,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_observe_terminate_and_replay_in_chromium() {
    if !driver::available() {
        return;
    }
    let recordings = tempfile::tempdir().expect("a temp dir");
    let out = tempfile::tempdir().expect("a temp dir");
    let env = Builder::demo()
        .tokens(&people())
        .recording(casts::into_dir(
            recordings.path(),
            RecordingMode::BestEffort,
            "podgate-ui-test",
        ))
        .operators(operators())
        .browser(|b| b.dev_login = true)
        .start()
        .await;
    let out_dir = out.path().to_str().expect("a UTF-8 temp dir").to_string();
    let stdout = driver::run_script(
        "sessions.mjs",
        &env.url(),
        "sessions",
        &[("PODGATE_OUT", &out_dir)],
    )
    .await;
    driver::assert_passed(
        &stdout,
        &[
            "an observer in another browser sees the screen from before it joined, then live output",
            "an operator ends a session from the sessions page: the person and the observer read who and why",
            "a finished session's replay reaches the live terminal's last screen, through a resize and a split character",
            "the recordings page filters by user and pages with continue, and links to the replay",
            "without rights: only your own sessions, no controls for others, and podgate refuses",
            "no errors in the page console",
        ],
    );

    // The replayed recording is the file on disk, as the browser was given it.
    let final_screen: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("replay-final.json"))
            .expect("the driver's output"),
    )
    .expect("JSON");
    let id = final_screen["recording"].as_str().expect("a recording id");
    let file = casts::path(recordings.path(), id).expect("a recording id");
    let cast = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    // The character split across frames is whole in its event.
    assert!(cast.contains("\"😀 done"), "{cast}");
    assert!(
        cast.contains("\"r\", \""),
        "the resize is in the file: {cast}"
    );

    // Another terminal emulator, pyte, replays the same file (the resize applied) to the screen
    // xterm.js showed in Chromium.
    if let Some(pyte) = casts::pyte_screen(&file) {
        let xterm: Vec<String> = final_screen["visible"]
            .as_array()
            .expect("the visible rows")
            .iter()
            .map(|l| l.as_str().unwrap_or_default().trim_end().to_string())
            .collect();
        assert_eq!(
            (u64::from(pyte.cols), u64::from(pyte.rows)),
            (
                final_screen["cols"].as_u64().unwrap_or_default(),
                final_screen["rows"].as_u64().unwrap_or_default()
            ),
            "the final size"
        );
        assert!(
            xterm.iter().any(|l| l == "café € 😀 done"),
            "the split characters are on the last screen: {xterm:#?}"
        );
        assert_eq!(
            pyte.display, xterm,
            "pyte's last screen (left) is not xterm.js's (right)"
        );
    }

    // A kubectl session (no terminal) is watched and ended from the browser as a browser
    // session is, and kubectl reads who ended it and why.
    if kubectl::available() {
        kubectl_session_watched_and_ended(&env).await;
    }
    env.shutdown().await;
}

async fn kubectl_session_watched_and_ended(env: &gateway::Env) {
    let kubectl = env.kubectl(Path::new(kubectl::DEFAULT), ALICE, "dev-east");
    let script = "echo kubectl-was-here; printf 'caf\\303\\251\\n'; sleep 300";
    let child = kubectl
        .command(&["exec", "-n", "default", "shell-0", "--", "sh", "-c", script])
        .spawn()
        .expect("kubectl starts");
    let mut id = String::new();
    let listed = wait::wait_until(
        Duration::from_secs(60),
        Duration::from_millis(100),
        async || {
            let list = http::get(env, "/podgate/sessions", ADMIN).await;
            let v: serde_json::Value = serde_json::from_str(&list.body).unwrap_or_default();
            let found = v["items"]
                .as_array()
                .and_then(|items| items.iter().find(|s| s["client"] == "kubectl"))
                .and_then(|s| s["id"].as_str())
                .map(str::to_string);
            id = found.unwrap_or_default();
            !id.is_empty()
        },
    )
    .await;
    assert!(listed, "the kubectl session is never listed");
    let out = driver::run_script(
        "sessions.mjs",
        &env.url(),
        "kubectl",
        &[("PODGATE_SESSION", &id)],
    )
    .await;
    driver::assert_passed(
        &out,
        &["a kubectl session is watched and ended from the browser"],
    );
    let ended = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("kubectl ends once its session is ended")
        .expect("kubectl's output");
    let stderr = String::from_utf8_lossy(&ended.stderr);
    assert!(!ended.status.success(), "kubectl exited 0: {stderr}");
    assert!(
        stderr.contains("podgate: session closed by admin: kubectl done"),
        "kubectl was not told who and why: {stderr}"
    );
    assert!(
        String::from_utf8_lossy(&ended.stdout).contains("kubectl-was-here"),
        "{ended:?}"
    );
}
