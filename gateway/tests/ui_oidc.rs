//! The web UI's OIDC login in real Chromium: a deep link, "Log in with OIDC", the test
//! provider's own login and consent pages (panva's oidc-provider, run by the auth crate's test
//! support), back to the deep link with a shell open as the provider's user; then log out.
//! The browser driver is gateway/web/tests/ui.mjs (group "oidc"); the demo-login scenarios are
//! in tests/tests/ui.rs.
//!
//! Skipped with a loud note when node, Chromium, the provider or the web build is missing;
//! under `CI=true` that is a failure instead.

use podgate_testkit::browser as driver;
use podgate_testkit::oidc::keys;
use podgate_testkit::oidc::provider::{self, ALICE, Provider};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_login_in_chromium() {
    if !driver::available() || !provider::prerequisites() {
        return;
    }
    let Some(key) = keys::TestKey::rs256("k1") else {
        keys::available(false, "openssl or node, to generate RSA keys");
        return;
    };
    let port = podgate_testkit::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let oidc = provider::oidc_config(&issuer, |_| {});
    let (env, options) = provider::gateway(&oidc, None).await;
    let provider = Provider::start_with(port, &[&key], &options).await;

    let out = driver::run(
        &env.url(),
        "oidc",
        &[
            ("PODGATE_OIDC_USER", ALICE.0),
            ("PODGATE_OIDC_PASSWORD", ALICE.1),
        ],
    )
    .await;
    driver::assert_passed(
        &out,
        &[
            "OIDC login returns to the deep link and opens the shell",
            "log out ends the browser session",
        ],
    );
    provider.stop().await;
}
