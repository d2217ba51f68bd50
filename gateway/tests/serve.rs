//! `podgate serve` and `podgate check-config` as an operator runs them: a config file, a
//! tokens file, TLS files, kubeconfigs; real kubectl through the gateway; reload on change.

use podgate_testkit::serve::{self, ADMIN, BOB, Config, Held, cluster};
use podgate_testkit::wait::wait_until;
use std::path::Path;
use std::time::Duration;

/// The binary under test (only the gateway package's own tests know where it is).
const PODGATE: &str = env!("CARGO_BIN_EXE_podgate");

fn check_config(config: &Path) -> std::process::Output {
    serve::check_config(Path::new(PODGATE), config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_accepts_good_and_names_the_problem() {
    let east = cluster("east").await;
    let files = serve::setup(&Config::new(&[("east", &east)]));
    let out = check_config(&files.config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (1 clusters"));

    let bad = files.dir.path().join("bad.yaml");
    std::fs::write(&bad, "tls: {cert_file: tls.crt, key_file: tls.key}\nclusters:\n  - id: Prod_1\n    kubeconfig: east.kubeconfig\n").expect("a config file");
    let out = check_config(&bad);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml") && err.contains("clusters[0].id") && err.contains("Prod_1"),
        "{err}"
    );

    // The OIDC section is checked by the auth crate, with the file and field named.
    let oidc = files.dir.path().join("oidc.yaml");
    std::fs::write(&oidc, "tls: {cert_file: tls.crt, key_file: tls.key}\nclusters:\n  - id: east\n    kubeconfig: east.kubeconfig\nauth:\n  oidc:\n    issuers:\n      - issuer: http://127.0.0.1:1/realm\n        audiences: [podgate]\n        insecure_http_for_loopback: true\n").expect("a config file");
    let out = check_config(&oidc);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 OIDC issuers"));
    std::fs::write(&oidc, "tls: {cert_file: tls.crt, key_file: tls.key}\nclusters:\n  - id: east\n    kubeconfig: east.kubeconfig\nauth:\n  oidc:\n    issuers:\n      - issuer: https://idp.example\n        audiences: []\n").expect("a config file");
    let out = check_config(&oidc);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("oidc.yaml: auth.oidc.issuers[0].audiences"),
        "{err}"
    );

    // The browser login: its client secret file (relative to the config) must be readable,
    // and its client id must be an audience of its issuer.
    let login = |client_id: &str| {
        format!(
            "tls: {{cert_file: tls.crt, key_file: tls.key}}\nclusters:\n  - id: east\n    \
             kubeconfig: east.kubeconfig\nauth:\n  oidc:\n    issuers:\n      - issuer: \
             http://127.0.0.1:1/realm\n        audiences: [podgate]\n        \
             insecure_http_for_loopback: true\n    login:\n      issuer: \
             http://127.0.0.1:1/realm\n      client_id: {client_id}\n      \
             client_secret_file: client-secret\n"
        )
    };
    std::fs::write(&oidc, login("podgate")).expect("a config file");
    let out = check_config(&oidc);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("oidc.yaml: auth.oidc.login.client_secret_file: cannot read")
            && err.contains("client-secret"),
        "{err}"
    );
    std::fs::write(files.dir.path().join("client-secret"), "s3cret\n").expect("a config file");
    let out = check_config(&oidc);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&oidc, login("web")).expect("a config file");
    let out = check_config(&oidc);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("oidc.yaml: auth.oidc.login.client_id: \"web\" is not among the audiences"),
        "{err}"
    );

    let missing = files.dir.path().join("missing.yaml");
    std::fs::write(&missing, "tls: {cert_file: tls.crt, key_file: tls.key}\nclusters:\n  - id: x\n    kubeconfig: nope.kubeconfig\n").expect("a config file");
    let out = check_config(&missing);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cluster x") && err.contains("nope.kubeconfig"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_relays_kubectl_and_reloads_clusters() {
    let east = cluster("east").await;
    let west = cluster("west").await;
    let files = serve::setup(&Config::new(&[("east", &east)]));
    let gw = serve::start(Path::new(PODGATE), &files).await;

    let admin_east = gw.kubectl("east", ADMIN.token);
    let out = admin_east.sh("echo via-serve; exit 5").await;
    assert_eq!(
        (out.code, out.text().as_str()),
        (5, "via-serve\n"),
        "{}",
        out.stderr
    );
    let bob_east = gw.kubectl("east", BOB.token);
    let out = bob_east.run(&["exec", "shell-0", "--", "true"], b"").await;
    out.assert_fails_saying(&[r#"User "bob" cannot"#], "");

    // Add west by editing the file: no restart, east keeps working.
    let admin_west = gw.kubectl("west", ADMIN.token);
    let out = admin_west.run(&["get", "pods"], b"").await;
    assert_ne!(out.code, 0, "west is not configured yet");
    files.write_config(&Config::new(&[("east", &east), ("west", &west)]));
    let reachable = wait_until(
        Duration::from_secs(30),
        Duration::from_millis(200),
        async || {
            let out = admin_west.run(&["get", "pods", "-o", "name"], b"").await;
            out.code == 0 && out.text().contains("pod/shell-0")
        },
    )
    .await;
    assert!(
        reachable,
        "west never became reachable after the config change"
    );
    let out = admin_east
        .run(&["exec", "shell-0", "--", "echo", "still"], b"")
        .await;
    assert_eq!(
        (out.code, out.text().as_str()),
        (0, "still\n"),
        "{}",
        out.stderr
    );

    // Remove east with SIGHUP after an edit.
    files.write_config(&Config::new(&[("west", &west)]));
    gw.sighup();
    let mut err = String::new();
    let removed = wait_until(
        Duration::from_secs(30),
        Duration::from_millis(200),
        async || {
            let out = admin_east.run(&["get", "pods"], b"").await;
            err = out.stderr;
            out.code != 0
                && (err.contains("not known to podgate")
                    || err.contains("could not find the requested resource"))
        },
    )
    .await;
    assert!(removed, "east was never removed: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_names_what_needs_a_restart_and_applies_the_rest() {
    if !podgate_testkit::kubectl::available() {
        return;
    }
    let east = cluster("east").await;
    let west = cluster("west").await;
    let files = serve::setup(&Config::new(&[("east", &east)]));
    let gw = serve::start(Path::new(PODGATE), &files).await;
    // One connection held open: were `max_connections: 1` applied, no other could open.
    let mut held = Held::open(
        &gw.kubectl("east", ADMIN.token),
        "default",
        "shell-0",
        "cat",
    )
    .await;

    let restart = Config::new(&[("east", &east), ("west", &west)])
        .set("limits", "{max_connections: 1}")
        .set("sessions", "{keepalive: 5s, idle_timeout: 1m}");
    let mark = gw.mark();
    let reload = gw.reload(|| files.write_config(&restart)).await;
    assert!(
        reload.contains("config reloaded: clusters: 1 added, 0 removed, 0 rebuilt (added west)"),
        "{reload}"
    );
    let warning = gw
        .line_after(mark, Duration::from_secs(5), "the restart warning", |l| {
            l.contains("config reload: sessions, limits changed and need(s) a restart")
        })
        .await;
    assert!(
        warning.contains(" WARN ") && warning.contains("the running values stay"),
        "{warning}"
    );
    // What reloads live took effect: west answers, over a second connection.
    let out = gw
        .kubectl("west", ADMIN.token)
        .run(&["get", "pods", "-o", "name"], b"")
        .await;
    assert!(
        out.code == 0 && out.text().contains("pod/shell-0"),
        "{}",
        out.stderr
    );
    held.echoes("the session from before the reload").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_without_effect_are_warned_about() {
    let east = cluster("east").await;
    let files = serve::setup(
        &Config::new(&[("east", &east)]).set("limits", "{session_buffer_bytes: 64KiB}"),
    );
    let warning = format!(
        "{}: limits.session_buffer_bytes has no effect",
        files.config.display()
    );
    let out = check_config(&files.config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("warning: {warning}"))),
        "{stdout}"
    );
    // And `serve` says it in its log at start.
    let gw = serve::start(Path::new(PODGATE), &files).await;
    let line = gw
        .line_after(0, Duration::from_secs(5), "the warning", |l| {
            l.contains(&warning)
        })
        .await;
    assert!(line.contains(" WARN "), "{line}");
}

/// The moment podgate prints its address, it acts on what it is sent: a SIGHUP reloads
/// (SIGHUP's default would end the process), a file edited at once is reloaded (its stamp is
/// the one from before the file was read), and a SIGTERM drains and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_and_edits_right_after_start_are_acted_on() {
    let east = cluster("east").await;
    let west = cluster("west").await;
    let files = serve::setup(&Config::new(&[("east", &east)]));

    let mut gw = serve::start(Path::new(PODGATE), &files).await;
    gw.sighup();
    let line = gw.reload_after(0).await;
    assert!(line.contains("SIGHUP"), "{line}");
    assert!(gw.exited().is_none(), "SIGHUP ended podgate");
    drop(gw);

    let gw = serve::start(Path::new(PODGATE), &files).await;
    files.write_config(&Config::new(&[("east", &east), ("west", &west)]));
    let line = gw.reload_after(0).await;
    assert!(line.contains("added west"), "{line}");
    gw.sigterm();
    drop(gw);

    let mut gw = serve::start(Path::new(PODGATE), &files).await;
    gw.sigterm();
    let status = gw.exit_within(Duration::from_secs(15)).await;
    assert!(status.success(), "SIGTERM at start: {status:?}");
}
