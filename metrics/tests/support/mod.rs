//! Helpers shared by the integration tests of deploy/: the repository's paths, external tools
//! (required in CI, skipped with a note elsewhere), rendering kustomizations, and the alerts
//! and dashboard queries of deploy/monitoring/ ([`monitoring`]).
//!
//! The metrics crate's tests use it as `mod support;`; the end-to-end crate's Prometheus test
//! (tests/tests/prometheus.rs) includes the same file by `#[path]`, so there is one copy.

#![allow(dead_code)] // each test binary uses a different part

pub mod monitoring;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (the parent of the crate including this file: metrics/ or tests/).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate's directory has a parent")
        .to_path_buf()
}

pub fn deploy(rel: &str) -> PathBuf {
    repo().join("deploy").join(rel)
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The path of `tool` on `PATH`. When it is missing: in CI (`CI=true`) the test fails, since
/// scripts/setup.sh installs it; elsewhere the test is skipped with a note.
pub fn tool(tool: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !in_ci,
            "{tool} is not installed, and CI=true: scripts/setup.sh (run by `make test`) installs it"
        );
        eprintln!(
            "note: skipping this test: {tool} is not installed (scripts/setup.sh installs it)"
        );
    }
    found
}

/// Runs a command and returns its stdout; panics with its stderr when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// `kubectl kustomize deploy/{dir}`, as JSON values (one per object).
pub fn kustomize(kubectl: &Path, dir: &str) -> Vec<serde_json::Value> {
    let yaml = run(Command::new(kubectl).arg("kustomize").arg(deploy(dir)));
    let mut objects = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&yaml) {
        let value: serde_json::Value = serde::Deserialize::deserialize(doc)
            .unwrap_or_else(|e| panic!("kustomize output of {dir} is not YAML: {e}"));
        if !value.is_null() {
            objects.push(value);
        }
    }
    assert!(!objects.is_empty(), "{dir} renders no objects");
    objects
}
