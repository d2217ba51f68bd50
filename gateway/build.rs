//! Embeds the browser terminal (web/dist, built by `make web`) in the binary, so one file
//! deploys. Without a build the gateway still compiles, and `/` says how to make one.
//!
//! Also names the git revision the binary is built from (`podgate_build_info{revision}`):
//! `PODGATE_REVISION` when set (the Docker build passes it, having no `.git`), else `git
//! rev-parse` of the checkout, else `unknown`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    revision(&manifest);
    let dist = manifest.join("web").join("dist");
    // A missing dist is watched through its parent, so building the UI later is noticed
    // without re-running this script on every build.
    let watched = if dist.is_dir() {
        dist.clone()
    } else {
        manifest.join("web")
    };
    println!("cargo:rerun-if-changed={}", watched.display());
    let mut files = Vec::new();
    if dist.is_dir() {
        collect(&dist, &mut files);
    }
    files.sort();
    let mut out = String::from(
        "/// The files of web/dist as `(URL path, contents)`, embedded by build.rs.\n\
         pub static ASSETS: &[(&str, &[u8])] = &[\n",
    );
    for f in &files {
        let Ok(rel) = f.strip_prefix(&dist) else {
            continue;
        };
        let url: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let _ = writeln!(
            out,
            "    ({:?}, include_bytes!({:?})),",
            format!("/{}", url.join("/")),
            f.display().to_string()
        );
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    std::fs::write(out_dir.join("web_assets.rs"), out).expect("OUT_DIR is writable");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, files);
        } else {
            files.push(p);
        }
    }
}

/// `cargo:rustc-env=PODGATE_REVISION=...`, rebuilt when HEAD moves.
fn revision(manifest: &Path) {
    println!("cargo:rerun-if-env-changed=PODGATE_REVISION");
    let from_env = std::env::var("PODGATE_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty());
    let git_dir = manifest.join("..").join(".git");
    if git_dir.is_dir() {
        println!("cargo:rerun-if-changed={}", git_dir.join("HEAD").display());
        if let Ok(head) = std::fs::read_to_string(git_dir.join("HEAD"))
            && let Some(reference) = head.trim().strip_prefix("ref: ")
        {
            println!(
                "cargo:rerun-if-changed={}",
                git_dir.join(reference).display()
            );
        }
    }
    let from_git = || {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(manifest)
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        let rev = text.trim();
        (out.status.success() && !rev.is_empty() && rev.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| rev.to_string())
    };
    let revision = from_env
        .or_else(from_git)
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=PODGATE_REVISION={revision}");
}
