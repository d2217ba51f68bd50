//! The web UI's OIDC login in real Chromium: a deep link, "Log in with OIDC", the test
//! provider's own login and consent pages (panva's oidc-provider, run by the auth crate's test
//! support), back to the deep link with a shell open as the provider's user; then log out.
//! The browser driver is gateway/web/tests/ui.mjs (group "oidc"); the demo-login scenarios are
//! in tests/tests/ui.rs.
//!
//! Skipped with a loud note when node, Chromium, the provider or the web build is missing;
//! under `CI=true` that is a failure instead.

mod common;
#[allow(dead_code)]
#[path = "../web/tests/driver.rs"]
mod driver;
#[path = "../../auth/tests/support/keys.rs"]
mod keys;
#[allow(dead_code)]
#[path = "../../auth/tests/support/provider.rs"]
mod provider;

use podgate::browser::Browser;
use podgate::browser::oidc::OidcLogin;
use podgate_auth::login::LoginConfig;
use podgate_auth::oidc::{OidcAuthenticator, OidcConfig};
use podgate_config::AccessPolicy;
use provider::{ALICE, LOGIN_CLIENT_ID, LOGIN_CLIENT_SECRET, Provider};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_login_in_chromium() {
    if !driver::available() || !provider::prerequisites() {
        return;
    }
    let Some(key) = keys::TestKey::rs256("k1") else {
        keys::available(false, "openssl or node, to generate RSA keys");
        return;
    };
    let port = provider::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let config = provider::issuer_config(&issuer);
    let mut oidc = OidcConfig::new(vec![config]);
    let mut login = LoginConfig::new(issuer, LOGIN_CLIENT_ID);
    login.client_secret = Some(LOGIN_CLIENT_SECRET.to_owned());
    oidc.login = Some(login);
    let authn = Arc::new(OidcAuthenticator::new(&oidc).expect("valid OIDC config"));
    let oidc_login = OidcLogin::from_config(&oidc, &authn)
        .expect("valid login config")
        .expect("a login");
    let policy = AccessPolicy {
        groups: vec!["dev".into()],
        ..Default::default()
    };
    let env = common::start_full(&[], policy, |o| {
        o.authenticator = authn;
        o.browser = Some(Browser {
            oidc: Some(oidc_login),
            ..Browser::ephemeral().expect("browser")
        });
    })
    .await;
    // The gateway listens first, so its callback URL can be registered at the provider.
    let options = provider::Options {
        redirects: vec![format!("{}/auth/callback", env.gateway.url())],
        id_token_ttl: None,
    };
    let provider = Provider::start_with(port, &[&key], &options).await;

    let out = driver::run(
        &env.gateway.url(),
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
