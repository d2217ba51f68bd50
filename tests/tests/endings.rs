//! Every ending told truthfully, with real kubectl through the gateway: a cluster connection
//! that dies mid-session is a failure kubectl reports (never exit 0), and the command's exit
//! status reaches kubectl while its stdin still flows, in every run.

use podgate_testkit::gateway::{ADMIN, Builder, Cluster};
use podgate_testkit::kubectl::{self, DEFAULT, Input, WAITING};
use podgate_testkit::link::Link;
use podgate_testkit::wait::read_until;
use std::path::Path;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_connection_lost_mid_session_fails_the_exec() {
    if !kubectl::available() {
        return;
    }
    let link = Link::start().await;
    let env = Builder::new()
        .cluster(Cluster::new("dev-east"))
        .dial(link.dialer("dev-east"))
        .start()
        .await;
    let kubectl = env.kubectl(Path::new(DEFAULT), ADMIN, "dev-east");
    type Cut = fn(&Link) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;
    let cuts: [(&str, Cut); 3] = [
        ("a reset", |l| Box::pin(l.cut_reset())),
        ("an end of stream without a close", |l| {
            Box::pin(l.cut_eof())
        }),
        ("a broken TLS stream", |l| Box::pin(l.inject_garbage())),
    ];
    for (how, cut) in cuts {
        let mut child = kubectl.command(&WAITING).spawn().expect("kubectl starts");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut seen = Vec::new();
        read_until(
            &mut stdout,
            &mut seen,
            Duration::from_secs(30),
            "ready",
            |s| s.contains("ready"),
        )
        .await;
        let cut_at = Instant::now();
        cut(&link).await;
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{how}: kubectl still runs 30 s after the cut"))
            .expect("kubectl's output");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{how}: kubectl exited 0 after the cluster connection was lost; stderr: {stderr}"
        );
        assert!(
            stderr.contains("lost the connection to cluster \"dev-east\""),
            "{how}: kubectl does not say why: {stderr}"
        );
        assert!(
            cut_at.elapsed() < Duration::from_secs(10),
            "{how}: took {:?}",
            cut_at.elapsed()
        );
        assert!(
            env.sessions_end(Duration::from_secs(10)).await,
            "{how}: the session outlived its cluster connection"
        );
    }
    env.shutdown().await;
}

/// `yes | kubectl exec -i POD -- head -c 2`: the pod's command ends while kubectl still sends
/// stdin. Writing that stdin to a cluster that has finished fails, and must not end the session
/// before the output, the exit status and the close reach kubectl. Every kubectl version the
/// machine has, many runs each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exit_status_arrives_while_stdin_still_flows() {
    if !kubectl::available() {
        return;
    }
    let env = Builder::new()
        .cluster(Cluster::new("dev-east"))
        .start()
        .await;
    let bins = kubectl::binaries();
    for (i, bin) in bins.iter().enumerate() {
        let kubectl = env.kubectl(bin, ADMIN, "dev-east");
        let runs = if i == 0 { 20 } else { 8 };
        for run in 0..runs {
            for (script, code) in [("head -c 2", 0), ("head -c 2; exit 3", 3)] {
                let out = kubectl
                    .run(
                        &[
                            "exec", "-i", "-n", "default", "shell-0", "--", "sh", "-c", script,
                        ],
                        Input::Yes,
                    )
                    .await;
                let what = format!("{} run {run} of {script:?}", bin.display());
                assert_eq!(out.code, code, "{what}: stderr {}", out.stderr);
                assert_eq!(out.text(), "y\n", "{what}");
                if code == 3 {
                    assert!(
                        out.stderr.contains("command terminated with exit code 3"),
                        "{what}: {}",
                        out.stderr
                    );
                }
            }
        }
    }
    assert!(env.sessions_end(Duration::from_secs(10)).await);
    env.shutdown().await;
}
