//! 200 sessions, ended from either side, leave the devcluster process with the fds, threads
//! and child processes it had before.

mod common;
use common::wait_for;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use std::io::BufRead as _;
use std::time::Duration;
use tokio::io::AsyncReadExt as _;

fn count(dir: String) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.count())
        .unwrap_or(usize::MAX)
}

fn children(pid: u32) -> usize {
    // Field 4 of /proc/N/stat is the parent pid (after the parenthesised command name).
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            stat.rsplit_once(") ")
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(pid)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_leave_no_fds_threads_or_children() {
    podgate_devcluster::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_devcluster"))
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("devcluster binary starts");
    let pid = child.id();
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

    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(kube::Client::try_from(cfg).unwrap(), "default");

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
    assert!(wait_for(Duration::from_secs(20), || children(pid) == 0).await);
    let (fds, threads) = (
        count(format!("/proc/{pid}/fd")),
        count(format!("/proc/{pid}/task")),
    );

    for i in 0..200 {
        run(i % 2 == 0).await;
    }
    let settled = wait_for(Duration::from_secs(30), || {
        children(pid) == 0
            && count(format!("/proc/{pid}/fd")) <= fds
            && count(format!("/proc/{pid}/task")) <= threads
    })
    .await;
    let now = (
        children(pid),
        count(format!("/proc/{pid}/fd")),
        count(format!("/proc/{pid}/task")),
    );
    assert!(
        settled,
        "before: 0 children, {fds} fds, {threads} threads; after: {now:?} (children, fds, threads)"
    );
}
