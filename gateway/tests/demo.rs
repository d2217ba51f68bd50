//! `podgate demo` as a person runs it: the banner first and quiet, the kubeconfig and the CA
//! certificate written where it says, audit lines in the file it names, and real kubectl
//! through it.

use podgate_testkit::kubectl::{self, DEFAULT, Kubectl};
use podgate_testkit::wait::read_until;
use std::time::Duration;
use tokio::io::AsyncReadExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_says_where_everything_is_and_needs_no_warning() {
    if !kubectl::available() {
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let kubeconfig = dir.path().join("demo.kubeconfig");
    let audit = dir.path().join("demo.audit.jsonl");
    let recordings = dir.path().join("recordings");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_podgate"))
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .arg("--audit-out")
        .arg(&audit)
        .arg("--recordings")
        .arg(&recordings)
        .env("PODGATE_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("podgate demo starts");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut banner = Vec::new();
    read_until(
        &mut stdout,
        &mut banner,
        Duration::from_secs(60),
        "the banner",
        |s| s.contains("Ctrl-C stops it."),
    )
    .await;
    let banner = String::from_utf8_lossy(&banner).into_owned();
    let ca = dir.path().join("demo.ca.crt");
    for line in [
        format!("  kubeconfig: {}", kubeconfig.display()),
        format!("  CA:       {}", ca.display()),
        format!("  audit:    {}", audit.display()),
        format!("  recordings: {}", recordings.display()),
    ] {
        assert!(banner.contains(&line), "{line:?} not in:\n{banner}");
    }
    assert!(
        banner.starts_with("podgate demo is running at https://127.0.0.1:"),
        "{banner}"
    );
    // The CA written next to the kubeconfig is the one in it.
    let written = std::fs::read_to_string(&ca).expect("the CA certificate");
    let kc = std::fs::read_to_string(&kubeconfig).expect("the kubeconfig");
    assert!(
        written.starts_with("-----BEGIN CERTIFICATE-----"),
        "{written}"
    );
    use base64::Engine as _;
    let inline = base64::engine::general_purpose::STANDARD.encode(written.as_bytes());
    assert!(kc.contains(&inline), "the kubeconfig carries another CA");

    // Through it, as the README shows; the session lands in the audit file.
    let k = Kubectl::new(DEFAULT, &kubeconfig, dir.path()).context("dev-west");
    let out = k
        .run(
            &["exec", "-n", "default", "shell-0", "--", "echo", "hi"],
            b"",
        )
        .await;
    assert_eq!(
        (out.code, out.text().as_str()),
        (0, "hi\n"),
        "{}",
        out.stderr
    );
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        lines = std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        if lines.iter().any(|l| l.contains("\"session_end\"")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"session_end\"") && l.contains("\"dev-west\"")),
        "{lines:?}"
    );
    // The session is recorded where the banner says, under its audit line's recording id.
    let end = lines
        .iter()
        .find(|l| l.contains("\"session_end\""))
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .expect("the session's end line");
    let id = end["recording"].as_str().expect("a recording id");
    let key = podgate::recording::Key::parse(id).expect("a recording id");
    let file = recordings.join(key.path());
    let written = podgate_testkit::wait::wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&file).is_ok_and(|c| c.contains("end: completed, exit code 0"))
    })
    .await;
    assert!(written, "{} holds no finished recording", file.display());
    // Audit lines are not on the console.
    assert!(!banner.contains("session_start"), "{banner}");

    child.start_kill().expect("stop the demo");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .await
        .expect("the log");
    // Its own limits fit the machine: no open-files warning to alarm anyone.
    assert!(!stderr.contains("open-files limit"), "{stderr}");
    assert!(!stderr.contains(" WARN "), "{stderr}");
}
