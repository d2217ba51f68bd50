//! The web UI's pre-flight in real Chromium (gateway/web/tests/ui.mjs, group `preflight`): the
//! picker asks the cluster (a SelfSubjectAccessReview for `get pods/exec`, what a WebSocket
//! exec is authorized as) before it opens a shell. Bob (group viewers: may list, not exec)
//! reads the refusal in the picker and gets no terminal; admin opens a shell as before.

use podgate_testkit::browser as driver;
use podgate_testkit::gateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn picker_asks_the_cluster_before_opening_a_shell() {
    if !driver::available() {
        return;
    }
    let env = gateway::demo().await;
    let out = driver::run(&env.url(), "preflight", &[]).await;
    driver::assert_passed(
        &out,
        &[
            "bob may not exec: the picker says so with the cluster's answer, no terminal",
            "admin passes the pre-flight and gets a shell",
            "no errors in the page console",
        ],
    );
    env.shutdown().await;
}
