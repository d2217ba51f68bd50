//! The pod search in real Chromium (gateway/web/tests/search.mjs): two clusters with thousands
//! of generated pods, search across namespaces and clusters, keyboard-only navigation opening
//! a shell on the chosen pod, screenshots in target/ui/. Skips loudly without node, Chromium or
//! the web build (fails under `CI=true`).
//!
//! The benchmark (`search_bench.mjs`, no assertions on time) is the ignored test here:
//! `cargo test -p podgate-testkit --test ui_search -- --ignored --nocapture` (also run by
//! `make bench`); it prints its figures and writes `target/bench/search.json`.

use podgate_testkit::browser as driver;
use podgate_testkit::gateway::{Builder, Cluster, Env};
use podgate_testkit::pod_fleet::{fleet, people};

async fn gateway(api_pods: usize, workers: usize) -> Env {
    ["dev-east", "dev-west"]
        .iter()
        .fold(Builder::new().tokens(&people()), |b, id| {
            b.cluster(Cluster::new(id).topology(fleet(api_pods, workers)))
        })
        .browser(|b| b.dev_login = true)
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_search_finds_pods_and_opens_a_shell_by_keyboard_in_chromium() {
    if !driver::available() {
        return;
    }
    let env = gateway(2000, 1000).await;
    let out = driver::run_script("search.mjs", &env.url(), "search", &[]).await;
    driver::assert_passed(
        &out,
        &[
            "search across namespaces among thousands of pods",
            "keyboard-only navigation opens a shell on the chosen pod",
            "search across the chosen cluster and the recent ones",
            "a person sees only the pods of the namespaces they may list",
            "no errors in the page console",
        ],
    );
    env.shutdown().await;
}

/// Time to first results and keystroke latency with 5,000 pods per cluster, in Chromium.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark: run with --ignored"]
async fn bench_pod_search_in_chromium() {
    if !driver::available() {
        return;
    }
    let env = gateway(3000, 2000).await;
    let out_dir = driver::screenshots()
        .parent()
        .map(|p| p.join("bench"))
        .expect("a target directory");
    let _ = std::fs::create_dir_all(&out_dir);
    let out_file = out_dir.join("search.json");
    let out = driver::run_script(
        "search_bench.mjs",
        &env.url(),
        "search-bench",
        &[(
            "PODGATE_BENCH_OUT",
            out_file.to_str().expect("a UTF-8 path"),
        )],
    )
    .await;
    driver::assert_passed(&out, &["bench"]);
    env.shutdown().await;
}
