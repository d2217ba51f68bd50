//! 1,000 sessions ended by the client and 1,000 ended by the pod leave the gateway with the
//! tasks, sessions, fds and memory it had before. Alone in its test binary: fds and RSS are
//! this process's.

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use podgate_testkit::gateway::{self, ADMIN};
use podgate_testkit::process::{MIB, Process};
use podgate_testkit::wait::wait_for;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const CONCURRENCY: usize = 20;

/// exec or attach on `load/echo-0`; one echo seen; then the client goes away mid-session.
async fn ended_by_client(pods: &Api<Pod>, i: usize) {
    let ap = AttachParams::default().stdin(true).stderr(false);
    let mut p = if i.is_multiple_of(2) {
        pods.exec("echo-0", ["echo"], &ap).await
    } else {
        pods.attach("echo-0", &ap).await
    }
    .unwrap_or_else(|e| panic!("session {i}: {e}"));
    let mut stdin = p.stdin().expect("stdin");
    let mut stdout = p.stdout().expect("stdout");
    stdin.write_all(b"ping").await.expect("stdin");
    let mut buf = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(20), stdout.read_exact(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("session {i}: no echo within 20 s"))
        .expect("echo");
    assert_eq!(&buf, b"ping");
    // Dropping the process aborts kube-rs's task: the connection just goes away.
    drop(p);
}

/// The pod ends it: `flood-0` writes 100 bytes and exits, or `echo-0` exits when stdin
/// closes. Both end with exit status Success.
async fn ended_by_pod(pods: &Api<Pod>, i: usize) {
    let status = if i.is_multiple_of(2) {
        let mut p = pods
            .exec("flood-0", ["100"], &AttachParams::default().stderr(false))
            .await
            .unwrap_or_else(|e| panic!("session {i}: {e}"));
        let mut stdout = p.stdout().expect("stdout");
        let status = p.take_status().expect("status");
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).await.expect("stdout");
        assert_eq!(out.len(), 100, "session {i}");
        status
    } else {
        let mut p = pods
            .exec(
                "echo-0",
                ["echo"],
                &AttachParams::default().stdin(true).stderr(false),
            )
            .await
            .unwrap_or_else(|e| panic!("session {i}: {e}"));
        let mut stdin = p.stdin().expect("stdin");
        let mut stdout = p.stdout().expect("stdout");
        let status = p.take_status().expect("status");
        stdin.write_all(b"bye").await.expect("stdin");
        stdin.shutdown().await.expect("stdin close");
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).await.expect("stdout");
        assert_eq!(out, b"bye", "session {i}");
        status
    };
    let st = tokio::time::timeout(Duration::from_secs(20), status)
        .await
        .unwrap_or_else(|_| panic!("session {i}: no exit status within 20 s"));
    assert_eq!(
        st.and_then(|s| s.status).as_deref(),
        Some("Success"),
        "session {i}"
    );
}

async fn run(pods: &Api<Pod>, n: usize, by_client: bool) {
    futures_util::stream::iter(0..n)
        .for_each_concurrent(CONCURRENCY, |i| async move {
            if by_client {
                ended_by_client(pods, i).await
            } else {
                ended_by_pod(pods, i).await
            }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_sessions_leave_no_tasks_fds_or_memory_behind() {
    podgate_devcluster::install_crypto_provider();
    let env = gateway::demo().await;
    let gw = env.sessions().clone();
    let me = Process::this();
    let pods: Api<Pod> = Api::namespaced(env.kube_client(ADMIN, "dev-east").await, "load");
    let settled = |tasks: usize| {
        gw.limits.active() == 0
            && gw.live.is_empty()
            && gw.tasks.len() <= tasks
            && env.clusters.iter().all(|c| c.active_sessions() == 0)
    };

    // Warm-up, so lazily made state and allocator arenas are in the baseline.
    run(&pods, 25, true).await;
    run(&pods, 25, false).await;
    assert!(
        wait_for(Duration::from_secs(20), || settled(0)).await,
        "after warm-up: {} sessions, {} live, {} tasks",
        gw.limits.active(),
        gw.live.len(),
        gw.tasks.len()
    );
    let (tasks, fds, rss) = (gw.tasks.len(), me.fds(), me.rss_bytes());
    let sessions_before = env.clusters[0].total_sessions();

    let started = Instant::now();
    run(&pods, 1000, true).await;
    run(&pods, 1000, false).await;
    let took = started.elapsed();
    assert_eq!(
        env.clusters[0].total_sessions() - sessions_before,
        2000,
        "sessions that reached the cluster"
    );

    let back = wait_for(Duration::from_secs(20), || {
        settled(tasks) && me.fds() <= fds + 8 && me.rss_bytes() <= rss + 32 * MIB
    })
    .await;
    assert!(
        back,
        "2000 sessions in {took:?}; before: {tasks} tasks, {fds} fds, {} MiB RSS; after: \
         {} tasks, {} sessions, {} live, {} on the clusters, {} fds, {} MiB RSS",
        rss / MIB,
        gw.tasks.len(),
        gw.limits.active(),
        gw.live.len(),
        env.clusters
            .iter()
            .map(|c| c.active_sessions())
            .sum::<usize>(),
        me.fds(),
        me.rss_bytes() / MIB
    );
    eprintln!(
        "2000 sessions in {took:?}; fds {fds} → {}, RSS {} → {} MiB",
        me.fds(),
        rss / MIB,
        me.rss_bytes() / MIB
    );
}
