//! File upload and download in real Chromium (gateway/web/tests/files.mjs): a terminal's
//! Files button, a binary file uploaded and downloaded byte-exact with progress observed, a
//! missing file, and the message for a container without tar. Skips loudly without node,
//! Chromium or the web build (fails under `CI=true`).

use podgate_testkit::browser as driver;
use podgate_testkit::devcluster::builtin_with_pods;
use podgate_testkit::gateway::{ADMIN, Builder, Cluster};
use std::os::unix::fs::PermissionsExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_upload_and_download_byte_exact_with_progress_in_chromium() {
    if !driver::available() {
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let bin = dir.path().join("bin");
    let rw = dir.path().join("rw");
    for d in [&bin, &rw] {
        std::fs::create_dir(d).expect("mkdir");
    }
    // A PATH with a shell and no tar.
    std::os::unix::fs::symlink("/bin/sh", bin.join("sh")).expect("symlink sh");
    let yaml = format!(
        r#"
namespaces:
  - name: default
    pods:
      - name: files-0
        containers:
          - name: main
            runtime: process
          - name: notar
            runtime: process
            env: [{{name: PATH, value: "{}"}}]
"#,
        bin.display()
    );
    let topology = builtin_with_pods(&yaml);
    let env = Builder::new()
        .cluster(Cluster::new("dev").topology(topology))
        .browser(|b| b.dev_login = true)
        .start()
        .await;
    let out = driver::run_script(
        "files.mjs",
        &env.url(),
        "files",
        &[
            ("PODGATE_TOKEN", ADMIN),
            ("PODGATE_FILES_DIR", rw.to_str().expect("a UTF-8 path")),
        ],
    )
    .await;
    driver::assert_passed(
        &out,
        &[
            "the Files button opens the panel",
            "upload of a binary file byte-exact with progress",
            "download of a binary file byte-exact with progress",
            "a missing file is named in the error",
            "a container without tar says so, both ways",
            "no errors in the page console",
        ],
    );
    env.shutdown().await;
}
