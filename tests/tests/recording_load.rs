//! 1,000 sessions recorded onto a slow disk hold no more memory than their recordings'
//! buffers allow (a `best_effort` recording drops what its buffer cannot take, and counts
//! it), every recording still ends with its session's end, and the gateway is left with the
//! tasks and fds it had. Alone in its test binary: RSS and fds are this process's.

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use podgate::recording::{Recording, Sink};
use podgate_config::{ByteSize, RecordingConfig, RecordingMode};
use podgate_testkit::disks::GatedSink;
use podgate_testkit::gateway::{ADMIN, Builder, Cluster};
use podgate_testkit::metrics::sample;
use podgate_testkit::process::{MIB, Process};
use podgate_testkit::wait::wait_for;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt as _;

const SESSIONS: usize = 1000;
const CONCURRENCY: usize = 20;
/// Each session's output.
const BYTES: usize = 1 << 20;
const BUFFER: u64 = 64 << 10;

async fn flood(pods: &Api<Pod>, i: usize) {
    let mut p = pods
        .exec(
            "flood-0",
            [BYTES.to_string()],
            &AttachParams::default().stderr(false),
        )
        .await
        .unwrap_or_else(|e| panic!("session {i}: {e}"));
    let mut stdout = p.stdout().expect("stdout");
    let mut n = 0;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match stdout.read(&mut buf).await.expect("stdout") {
            0 => break,
            k => n += k,
        }
    }
    assert_eq!(n, BYTES, "session {i}");
    let _ = p.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_sessions_on_a_slow_disk_hold_bounded_memory() {
    let dir = tempfile::tempdir().expect("dir");
    let sink = GatedSink::slow(dir.path(), Duration::from_millis(2));
    let config = RecordingConfig {
        default: RecordingMode::BestEffort,
        dir: Some(dir.path().to_path_buf()),
        buffer_bytes: ByteSize(BUFFER),
        ..Default::default()
    };
    let recording = Recording::new(Some(sink as Arc<dyn Sink>), &config, &[], "load".into());
    let env = Builder::new()
        .cluster(Cluster::new("dev-east"))
        .recording(recording)
        .start()
        .await;
    let gw = env.sessions().clone();
    let me = Process::this();
    let pods: Api<Pod> = Api::namespaced(env.kube_client(ADMIN, "dev-east").await, "load");
    let metric = |name: &str, labels: &[(&str, &str)]| {
        sample(&env.gateway.metrics().render(), name, labels).unwrap_or(0.0)
    };
    let written = || metric("podgate_recordings_total", &[("result", "written")]);
    let settled =
        |tasks: usize| gw.limits.active() == 0 && gw.live.is_empty() && gw.tasks.len() <= tasks;

    // Warm-up, so lazily made state and allocator arenas are in the baseline.
    futures_util::stream::iter(0..CONCURRENCY)
        .for_each_concurrent(CONCURRENCY, |i| flood(&pods, i))
        .await;
    assert!(
        wait_for(Duration::from_secs(30), || settled(0)
            && written() == CONCURRENCY as f64)
        .await
    );
    let (tasks, fds, rss) = (gw.tasks.len(), me.fds(), me.rss_bytes());

    // The peak, sampled while the sessions run.
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(rss));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            let me = Process::this();
            loop {
                peak.fetch_max(me.rss_bytes(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    futures_util::stream::iter(0..SESSIONS)
        .for_each_concurrent(CONCURRENCY, |i| flood(&pods, i))
        .await;
    let all_written = wait_for(Duration::from_secs(60), || {
        written() == (CONCURRENCY + SESSIONS) as f64
    })
    .await;
    sampler.abort();
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    let dropped = metric(
        "podgate_recording_events_dropped_total",
        &[("cluster", "dev-east")],
    );
    eprintln!(
        "{SESSIONS} sessions of {} MiB recorded onto a slow disk: RSS {} MiB before, peak {} MiB; {dropped} events dropped",
        BYTES / (1 << 20),
        rss / MIB,
        peak / MIB
    );
    assert!(
        all_written,
        "{} recordings written of {}",
        written(),
        CONCURRENCY + SESSIONS
    );
    assert!(
        dropped > 0.0,
        "a slow disk with a 64 KiB buffer dropped nothing"
    );
    // What the recordings may hold at once: a buffer per session being recorded (the
    // sessions running, and the recordings still finishing), with room for everything else
    // the gateway does (about 13 MiB here; with the buffers unbounded, 29 MiB and more).
    let bound = 24 * MIB;
    assert!(
        peak <= rss + bound,
        "RSS rose from {} MiB to {} MiB recording onto a slow disk",
        rss / MIB,
        peak / MIB
    );
    let back = wait_for(Duration::from_secs(30), || {
        settled(tasks) && me.fds() <= fds + 8
    })
    .await;
    assert!(
        back,
        "after: {} tasks (before {tasks}), {} fds (before {fds})",
        gw.tasks.len(),
        me.fds()
    );
    env.shutdown().await;
}
