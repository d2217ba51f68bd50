//! `podgate serve` and `podgate check-config` as an operator runs them: a config file, a
//! tokens file, TLS files, kubeconfigs; real kubectl through the gateway; reload on change.

use podgate_devcluster::{DevCluster, Options};
use podgate_testkit::kubectl::{DEFAULT, Kubectl};
use podgate_testkit::wait::wait_until;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Files {
    dir: tempfile::TempDir,
    config: PathBuf,
}

async fn cluster(name: &str) -> DevCluster {
    DevCluster::start(Options {
        name: name.into(),
        ..Options::default()
    })
    .await
    .expect("devcluster")
}

fn write_config(dir: &Path, clusters: &[(&str, &DevCluster)]) -> PathBuf {
    let mut yaml = String::from(
        "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\ntls: {cert_file: tls.crt, key_file: tls.key}\nauth: {tokens_file: tokens.yaml}\nsessions: {keepalive: 5s}\nclusters:\n",
    );
    for (id, dc) in clusters {
        let kc = dir.join(format!("{id}.kubeconfig"));
        dc.kubeconfig().write(&kc).expect("kubeconfig");
        yaml.push_str(&format!(
            "  - id: {id}\n    kubeconfig: {id}.kubeconfig\n    context: podgate\n"
        ));
    }
    let path = dir.join("podgate.yaml");
    // Write then rename, as config management does, so a reader never sees half a file.
    let tmp = dir.join(".podgate.yaml.tmp");
    std::fs::write(&tmp, yaml).expect("config");
    std::fs::rename(&tmp, &path).expect("rename");
    path
}

fn setup(clusters: &[(&str, &DevCluster)]) -> Files {
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = podgate_devcluster::tls::generate_pem(&["127.0.0.1".into()]).expect("cert");
    std::fs::write(dir.path().join("tls.crt"), &pem.cert_pem).unwrap();
    std::fs::write(dir.path().join("tls.key"), &pem.key_pem).unwrap();
    std::fs::write(dir.path().join("ca.crt"), &pem.ca_pem).unwrap();
    std::fs::write(
        dir.path().join("tokens.yaml"),
        "- token: serve-test-admin-token\n  user: admin\n  groups: [system:masters]\n- token: serve-test-bob-token\n  user: bob\n",
    )
    .unwrap();
    let config = write_config(dir.path(), clusters);
    Files { dir, config }
}

struct Serve {
    child: std::process::Child,
    url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(config: &Path) -> Serve {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_podgate"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("podgate serve starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Serve { child, url }
}

/// kubectl on the gateway at `url`'s `cluster` with `token`, HOME and cache in the files' dir.
fn kubectl(files: &Files, url: &str, cluster: &str, token: &str) -> Kubectl {
    let ca = std::fs::read_to_string(files.dir.path().join("ca.crt")).expect("ca.crt");
    let kc = podgate_testkit::kubeconfig::for_gateway(url, &ca, &[cluster], token);
    let path = podgate_testkit::kubeconfig::write_for(
        &kc,
        files.dir.path(),
        &format!("{cluster}-{token}"),
    );
    Kubectl::new(DEFAULT, path, files.dir.path())
}

fn check_config(config: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_podgate"))
        .args(["check-config", "--config"])
        .arg(config)
        .output()
        .expect("podgate check-config runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_accepts_good_and_names_the_problem() {
    podgate_devcluster::install_crypto_provider();
    let east = cluster("east").await;
    let files = setup(&[("east", &east)]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_podgate"))
        .args(["check-config", "--config"])
        .arg(&files.config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (1 clusters"));

    let bad = files.dir.path().join("bad.yaml");
    std::fs::write(&bad, "tls: {cert_file: tls.crt, key_file: tls.key}\nclusters:\n  - id: Prod_1\n    kubeconfig: east.kubeconfig\n").unwrap();
    let out = check_config(&bad);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml") && err.contains("clusters[0].id") && err.contains("Prod_1"),
        "{err}"
    );

    // The OIDC section is checked by the auth crate, with the file and field named.
    let oidc = files.dir.path().join("oidc.yaml");
    std::fs::write(&oidc, "tls: {cert_file: tls.crt, key_file: tls.key}\nclusters:\n  - id: east\n    kubeconfig: east.kubeconfig\nauth:\n  oidc:\n    issuers:\n      - issuer: http://127.0.0.1:1/realm\n        audiences: [podgate]\n        insecure_http_for_loopback: true\n").unwrap();
    let out = check_config(&oidc);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 OIDC issuers"));
    std::fs::write(&oidc, "tls: {cert_file: tls.crt, key_file: tls.key}\nclusters:\n  - id: east\n    kubeconfig: east.kubeconfig\nauth:\n  oidc:\n    issuers:\n      - issuer: https://idp.example\n        audiences: []\n").unwrap();
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
    std::fs::write(&oidc, login("podgate")).unwrap();
    let out = check_config(&oidc);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("oidc.yaml: auth.oidc.login.client_secret_file: cannot read")
            && err.contains("client-secret"),
        "{err}"
    );
    std::fs::write(files.dir.path().join("client-secret"), "s3cret\n").unwrap();
    let out = check_config(&oidc);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&oidc, login("web")).unwrap();
    let out = check_config(&oidc);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("oidc.yaml: auth.oidc.login.client_id: \"web\" is not among the audiences"),
        "{err}"
    );

    let missing = files.dir.path().join("missing.yaml");
    std::fs::write(&missing, "tls: {cert_file: tls.crt, key_file: tls.key}\nclusters:\n  - id: x\n    kubeconfig: nope.kubeconfig\n").unwrap();
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
    podgate_devcluster::install_crypto_provider();
    let east = cluster("east").await;
    let west = cluster("west").await;
    let files = setup(&[("east", &east)]);
    let gw = serve(&files.config);

    let admin_east = kubectl(&files, &gw.url, "east", "serve-test-admin-token");
    let out = admin_east.sh("echo via-serve; exit 5").await;
    assert_eq!(
        (out.code, out.text().as_str()),
        (5, "via-serve\n"),
        "{}",
        out.stderr
    );
    let bob_east = kubectl(&files, &gw.url, "east", "serve-test-bob-token");
    let out = bob_east.run(&["exec", "shell-0", "--", "true"], b"").await;
    out.assert_fails_saying(&[r#"User "bob" cannot"#], "");

    // Add west by editing the file: no restart, east keeps working.
    let admin_west = kubectl(&files, &gw.url, "west", "serve-test-admin-token");
    let out = admin_west.run(&["get", "pods"], b"").await;
    assert_ne!(out.code, 0, "west is not configured yet");
    write_config(files.dir.path(), &[("east", &east), ("west", &west)]);
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
    write_config(files.dir.path(), &[("west", &west)]);
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &gw.child.id().to_string()])
        .status();
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
