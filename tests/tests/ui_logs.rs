//! The logs pane beside a terminal in real Chromium (gateway/web/tests/logs.mjs): the pod's
//! `pods/log` through the gateway, new lines arriving while it follows, search, timestamps, a
//! download of the text, the previous instance of shop/db-0 and the API's message for a pod
//! without one. Skips loudly without node, Chromium or the web build (fails under `CI=true`).

use podgate_testkit::browser as driver;
use podgate_testkit::gateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_pane_follows_searches_and_downloads_in_chromium() {
    if !driver::available() {
        return;
    }
    let env = gateway::demo().await;
    let out = driver::run_script("logs.mjs", &env.url(), "logs", &[]).await;
    driver::assert_passed(
        &out,
        &[
            "logs pane following new lines",
            "search highlights matches and jumps between them",
            "timestamps put each line's time in front of it",
            "download produces the text",
            "previous on a pod without restarts shows the API's message",
            "full width shows the log instead of the terminal, and back",
            "closing the pane ends it; the Logs button opens it again",
            "previous on shop/db-0 shows the previous instance's log",
            "no errors in the page console",
        ],
    );
    env.shutdown().await;
}
