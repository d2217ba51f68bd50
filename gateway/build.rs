//! Embeds the browser terminal (web/dist, built by `make web`) in the binary, so one file
//! deploys. Without a build the gateway still compiles, and `/` says how to make one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
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
