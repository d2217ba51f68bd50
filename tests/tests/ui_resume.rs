//! Resume after a dropped connection in real Chromium (gateway/web/tests/resume.mjs): a TCP
//! proxy of the test's own between the browser and the gateway ([`podgate_testkit::link`],
//! steered by node through [`podgate_testkit::link_control`]) resets its connections, or
//! goes silent, and refuses new ones for 10 s; once it is restored the page shows every line
//! of a program that numbers its output exactly once and in order, the same shell (same PID)
//! answers, and the resume really happened: a new connection through the proxy, and podgate
//! counted it. Also: input typed while disconnected (kept, then sent; past 4 KiB refused
//! visibly), another user's resume (refused), a drop longer than the resume window (the tab
//! says the session could not be resumed and offers a new one), and a full buffer with
//! `resume_overflow: overwrite` (the skipped bytes reported, the screen redrawn). Skips
//! loudly without node, Chromium or the web build (fails under `CI=true`).

use podgate_testkit::browser as driver;
use podgate_testkit::gateway::{Builder, Env};
use podgate_testkit::link::Link;
use podgate_testkit::link_control;
use std::sync::Arc;
use std::time::Duration;

/// The proxy in front of `env`, its controls, and the scenarios of `group` run through it.
async fn run(env: &Env, group: &str, scenarios: &[&str]) -> Arc<Link> {
    let proxy = Arc::new(Link::to(env.addr()).await);
    let metrics = env.gateway.metrics().clone();
    let (control, task) = link_control::serve(
        &proxy,
        Arc::new(move |path: &str| (path == "/metrics").then(|| metrics.render())),
    )
    .await;
    let url = format!("https://{}", proxy.addr());
    let control = format!("http://{control}");
    let out = driver::run_script(
        "resume.mjs",
        &url,
        group,
        &[("PODGATE_CONTROL", control.as_str())],
    )
    .await;
    task.abort();
    let mut all = scenarios.to_vec();
    all.push("no errors in the page console");
    driver::assert_passed(&out, &all);
    proxy
}

/// The sum of `name`'s samples carrying `labels`, as the gateway of `env` exports them now.
fn metric(env: &Env, name: &str, labels: &[(&str, &str)]) -> f64 {
    env.gateway
        .metrics()
        .render()
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_in_chromium() {
    if !driver::available() {
        return;
    }

    // Default resume settings (a 2 minute window, 256 KiB, backpressure, 5 s heartbeats).
    let env = Builder::demo()
        .browser(|b| b.dev_login = true)
        .start()
        .await;
    let proxy = run(
        &env,
        "resume",
        &[
            "a reset connection resumes: every number once, in order, the same shell",
            "a silent connection is detected and resumes: every number once, in order, the same shell",
            "input typed while disconnected is sent after the resume; past 4 KiB it is refused visibly",
            "another user's resume is refused; a session id without its credential resumes nothing",
        ],
    )
    .await;
    // Three resumes (reset, silent, the queued input), each on a new connection; the refusals
    // counted by reason; the output the page missed replayed.
    let succeeded = metric(&env, "podgate_resumes_total", &[("result", "succeeded")]);
    assert!(
        succeeded >= 3.0,
        "podgate_resumes_total succeeded {succeeded}"
    );
    let forbidden = metric(
        &env,
        "podgate_resumes_total",
        &[("result", "failed"), ("reason", "forbidden")],
    );
    assert!(
        forbidden >= 1.0,
        "podgate_resumes_total forbidden {forbidden}"
    );
    let replayed = metric(&env, "podgate_resume_replayed_bytes_total", &[]);
    assert!(
        replayed > 0.0,
        "podgate_resume_replayed_bytes_total {replayed}"
    );
    assert_eq!(metric(&env, "podgate_resume_gap_bytes_total", &[]), 0.0);
    assert!(proxy.stats().accepted > 4, "{:?}", proxy.stats());
    // Every page closed: nothing waits for a page any more.
    assert!(
        env.sessions_end(Duration::from_secs(30)).await,
        "sessions still open after every page closed: {} waiting",
        metric(&env, "podgate_resume_waiting_sessions", &[])
    );
    assert_eq!(metric(&env, "podgate_resume_waiting_sessions", &[]), 0.0);
    env.shutdown().await;

    // A window of 3 s: a longer drop ends the session.
    let env = Builder::demo()
        .browser(|b| b.dev_login = true)
        .sessions(|s| s.resume.window = Some(Duration::from_secs(3)))
        .start()
        .await;
    run(
        &env,
        "window",
        &["a drop longer than the window ends the tab: it says the session could not be resumed, Enter starts a new one"],
    )
    .await;
    assert_eq!(
        metric(&env, "podgate_resumes_total", &[("result", "succeeded")]),
        0.0
    );
    env.shutdown().await;

    // A 16 KiB buffer that drops its oldest output when full.
    let env = Builder::demo()
        .browser(|b| b.dev_login = true)
        .sessions(|s| {
            s.resume.buffer = 16 << 10;
            s.resume.overwrite = true;
        })
        .start()
        .await;
    run(
        &env,
        "overflow",
        &["output past a full buffer (overwrite) while dropped: the skipped bytes are reported and the screen redrawn"],
    )
    .await;
    let gap = metric(&env, "podgate_resume_gap_bytes_total", &[]);
    assert!(gap > 16.0 * 1024.0, "podgate_resume_gap_bytes_total {gap}");
    env.shutdown().await;
}
