//! 200 sessions, ended from either side, leave the devcluster process with the fds, threads
//! and child processes it had before.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use podgate_testkit::process::Process;
use podgate_testkit::wait::wait_for;
use std::io::BufRead as _;
use std::time::Duration;
use tokio::io::AsyncReadExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_leave_no_fds_threads_or_children() {
    podgate_devcluster::install_crypto_provider();
    let dir = tempfile::tempdir().expect("a temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_devcluster"))
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("devcluster binary starts");
    let devcluster = Process::pid(child.id());
    // Kill the devcluster however the test ends.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let _guard = Kill(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("listening on https://127.0.0.1:"),
        "{line}"
    );

    let client = podgate_testkit::kubeconfig::client(&kubeconfig, None).await;
    let pods: Api<Pod> = Api::namespaced(client, "default");

    let run = |ended_by_client: bool| {
        let pods = pods.clone();
        async move {
            if ended_by_client {
                let mut p = pods
                    .exec(
                        "shell-0",
                        ["sh", "-c", "echo ready; sleep 600"],
                        &AttachParams::default().stderr(false),
                    )
                    .await
                    .expect("exec");
                let mut out = p.stdout().unwrap();
                let mut buf = [0u8; 6];
                out.read_exact(&mut buf).await.expect("ready");
                drop(p); // the client goes away mid-session
            } else {
                let mut p = pods
                    .exec(
                        "shell-0",
                        ["sh", "-c", "echo bye"],
                        &AttachParams::default().stderr(false),
                    )
                    .await
                    .expect("exec");
                let status = p.take_status().unwrap();
                assert_eq!(
                    status.await.and_then(|s| s.status).as_deref(),
                    Some("Success")
                );
            }
        }
    };
    // Warm up, so lazily created state is in the baseline.
    run(false).await;
    run(true).await;
    assert!(wait_for(Duration::from_secs(20), || devcluster.children() == 0).await);
    let (fds, threads) = (devcluster.fds(), devcluster.threads());

    for i in 0..200 {
        run(i % 2 == 0).await;
    }
    let settled = wait_for(Duration::from_secs(30), || {
        devcluster.children() == 0 && devcluster.fds() <= fds && devcluster.threads() <= threads
    })
    .await;
    let now = (
        devcluster.children(),
        devcluster.fds(),
        devcluster.threads(),
    );
    assert!(
        settled,
        "before: 0 children, {fds} fds, {threads} threads; after: {now:?} (children, fds, threads)"
    );
}
