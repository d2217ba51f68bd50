//! The web UI in real Chromium: the browser driver (`gateway/web/tests/ui.mjs`: playwright-core
//! driving Debian's `/usr/bin/chromium`), run from a Rust test against a gateway it started;
//! and node, for the UI's own unit tests.

use crate::repo;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Where screenshots go: `<cargo target dir>/ui`.
pub fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_relative() { repo().join(p) } else { p })
        .unwrap_or_else(|| repo().join("target"));
    target.join("ui")
}

/// Why node and the web UI's npm dependencies are not usable here, if they are not.
fn missing_node() -> Option<String> {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node {
        return Some("node is not installed".into());
    }
    if !repo()
        .join("gateway/web/node_modules/esbuild/package.json")
        .exists()
    {
        return Some("gateway/web/node_modules is missing (run scripts/setup.sh)".into());
    }
    None
}

/// Why the browser test cannot run here, if it cannot.
fn missing() -> Option<String> {
    if let Some(why) = missing_node() {
        return Some(why);
    }
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("/usr/bin/chromium is not installed (scripts/setup.sh installs it)".into());
    }
    if !repo()
        .join("gateway/web/node_modules/playwright-core/package.json")
        .exists()
    {
        return Some("gateway/web/node_modules is missing (run scripts/setup.sh)".into());
    }
    if podgate::browser::assets::ASSETS.is_empty() {
        return Some("the web UI was not built into this podgate (run `make web` first)".into());
    }
    None
}

/// Whether the browser test can run; a loud skip note when not, and a panic under `CI=true`.
pub fn available() -> bool {
    skip_unless(missing())
}

/// Whether node and the web UI's npm dependencies are here (for its unit tests); as
/// [`available`] when not.
pub fn node_available() -> bool {
    skip_unless(missing_node())
}

fn skip_unless(missing: Option<String>) -> bool {
    let why = missing.unwrap_or_default();
    crate::available(
        why.is_empty(),
        &format!("the web UI test in Chromium: {why}"),
    )
}

/// Runs the driver's scenario `group` against the gateway at `url` with `extra` environment;
/// returns its output after asserting that every scenario passed.
pub async fn run(url: &str, group: &str, extra: &[(&str, &str)]) -> String {
    run_script("ui.mjs", url, group, extra).await
}

/// As [`run`], with another scenario file of `gateway/web/tests/` (one that uses its
/// `driver.mjs`, and so takes the same environment).
pub async fn run_script(script: &str, url: &str, group: &str, extra: &[(&str, &str)]) -> String {
    let shots = screenshots();
    let _ = std::fs::create_dir_all(&shots);
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(repo().join("gateway/web/tests").join(script))
        .current_dir(repo().join("gateway/web"))
        .env("PODGATE_URL", url)
        .env("PODGATE_GROUP", group)
        .env("PODGATE_SCREENSHOTS", &shots)
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .expect("the browser scenarios finish within 5 minutes")
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

/// Asserts that each of `scenarios` passed in `out`.
pub fn assert_passed(out: &str, scenarios: &[&str]) {
    for s in scenarios {
        assert!(
            out.contains(&format!("ok - {s}")),
            "scenario {s:?} did not pass:\n{out}"
        );
    }
}
