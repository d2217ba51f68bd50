//! The token login and the kubeconfig download in real Chromium
//! (gateway/web/tests/token_login.mjs) against a gateway with static tokens and no OIDC login:
//! a wrong token shows the gateway's message, login and logout (after which the page is logged
//! out and API calls answer 401), and the header's kubeconfig button, whose downloads (without
//! a secret, and with the token typed again) real kubectl then uses to list pods and exec.
//! Skips loudly without node, Chromium or the web build (fails under `CI=true`).

use podgate_testkit::browser as driver;
use podgate_testkit::gateway::{ALICE, Builder};
use podgate_testkit::kubectl::{self, Kubectl};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_login_logout_and_kubeconfig_download_in_chromium() {
    if !driver::available() || !kubectl::available() {
        return;
    }
    let out = tempfile::tempdir().expect("a temp dir");
    let env = Builder::demo()
        .browser(|b| b.token_login = true)
        .start()
        .await;
    let out_dir = out.path().to_str().expect("a UTF-8 temp dir").to_string();
    let stdout = driver::run_script(
        "token_login.mjs",
        &env.url(),
        "token",
        &[("PODGATE_OUT", &out_dir), ("PODGATE_TOKEN", ALICE)],
    )
    .await;
    driver::assert_passed(
        &stdout,
        &[
            "the login page offers a token field (a password input) and no other login",
            "a wrong token shows the message and logs nobody in",
            "token login, then logout: the page is logged out and API calls answer 401",
            "the kubeconfig button downloads a kubeconfig, and one with the token typed again",
            "no token ever went into a URL, and the page logged no errors",
        ],
    );

    // The downloads, with real kubectl.
    let plain = out.path().join("kubeconfig-plain.yaml");
    let text = std::fs::read_to_string(&plain).expect("the plain kubeconfig");
    assert!(!text.contains(ALICE), "{text}");
    let embedded = out.path().join("kubeconfig-embedded.yaml");
    let k = Kubectl::new("/usr/bin/kubectl", &embedded, env.dir.path()).context("dev-west");
    let pods = k.run(&["get", "pods", "-o", "name"], b"").await;
    assert_eq!(pods.code, 0, "{}", pods.stderr);
    assert!(pods.text().contains("pod/shell-0"), "{}", pods.text());
    let exec = k.sh("echo from-the-download").await;
    assert_eq!(exec.code, 0, "{}", exec.stderr);
    assert_eq!(exec.text().trim(), "from-the-download");
    env.shutdown().await;
}
