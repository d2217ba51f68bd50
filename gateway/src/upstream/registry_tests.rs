//! Registry and health tests against the in-repo devcluster, which speaks the real
//! apiserver protocol; the timeout tests use sockets that refuse or never answer.

use super::*;
use podgate_config::Duration as ConfigDuration;
use podgate_devcluster::kubeconfig::{KubeCluster, KubeContext, KubeUser, Kubeconfig};
use podgate_devcluster::{DevCluster, Options};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

fn cluster_config(id: &str, kubeconfig: &Path, context: Option<&str>) -> ClusterConfig {
    ClusterConfig {
        id: id.to_string(),
        kubeconfig: Some(kubeconfig.to_path_buf()),
        context: context.map(str::to_string),
        in_cluster: false,
        agent: None,
        impersonate: true,
        access: Default::default(),
        display_name: None,
        environment: None,
        labels: Default::default(),
        recording: None,
        record_input: None,
    }
}

fn upstream(connect_timeout_ms: u64) -> UpstreamConfig {
    UpstreamConfig {
        connect_timeout: ConfigDuration::from_millis(connect_timeout_ms),
        ..UpstreamConfig::default()
    }
}

async fn devcluster(dir: &Path) -> (DevCluster, PathBuf) {
    podgate_devcluster::install_crypto_provider();
    let dc = DevCluster::start(Options::default())
        .await
        .expect("devcluster starts");
    let path = dir.join("kubeconfig");
    dc.kubeconfig().write(&path).expect("write kubeconfig");
    (dc, path)
}

/// Polls `cond` until it holds, failing the test after `within`.
async fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A kubeconfig for a server nothing useful listens on; the CA is real PEM so the client
/// builds, and the TLS handshake is never reached or never answered.
fn write_unreachable_kubeconfig(path: &Path, server: String) {
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("ca");
    Kubeconfig {
        clusters: vec![KubeCluster {
            name: "nowhere".into(),
            server,
            ca_pem: ca.cert.pem(),
        }],
        users: vec![KubeUser {
            name: "u".into(),
            token: "t".into(),
        }],
        contexts: vec![KubeContext {
            name: "nowhere".into(),
            cluster: "nowhere".into(),
            user: "u".into(),
            namespace: None,
        }],
        current_context: "nowhere".into(),
    }
    .write(path)
    .expect("write kubeconfig");
}

#[tokio::test]
async fn health_follows_the_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (dc, path) = devcluster(dir.path()).await;
    let registry = Registry::new();
    let summary = registry
        .apply(
            [cluster_config("dev", &path, Some("admin"))],
            &upstream(5000),
        )
        .await;
    assert_eq!(summary.added, ["dev"]);
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    let dev = registry.get("dev").expect("registered");
    assert_eq!(dev.server, dc.url());
    assert_eq!(
        dev.health(),
        Health::default(),
        "unknown before the first check"
    );

    let shutdown = CancellationToken::new();
    // A long interval: the first check must happen at start, not after a period.
    let task = spawn_health_checks(
        registry.clone(),
        Duration::from_secs(3600),
        Duration::from_secs(5),
        shutdown.clone(),
    );
    wait_for("the first check", Duration::from_secs(10), || {
        dev.health().checked_at.is_some()
    })
    .await;
    let h = dev.health();
    assert!(h.up, "{h:?}");
    assert_eq!(h.version.as_deref(), Some("v1.32.0"));
    assert_eq!(h.error, None);
    shutdown.cancel();
    task.await.expect("health loop ends on shutdown");

    dc.shutdown().await;
    let shutdown = CancellationToken::new();
    let task = spawn_health_checks(
        registry.clone(),
        Duration::from_millis(50),
        Duration::from_secs(5),
        shutdown.clone(),
    );
    wait_for(
        "the cluster to be seen down",
        Duration::from_secs(10),
        || !dev.health().up,
    )
    .await;
    let h = dev.health();
    assert!(h.checked_at.is_some());
    assert_eq!(h.version, None);
    let error = h.error.expect("an error");
    assert!(!error.is_empty());
    shutdown.cancel();
    task.await.expect("health loop ends on shutdown");
}

#[tokio::test]
async fn apply_rebuilds_only_what_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (dc, path) = devcluster(dir.path()).await;
    let up = upstream(5000);
    let registry = Registry::new();

    let a = cluster_config("a", &path, Some("admin"));
    let b = cluster_config("b", &path, Some("alice"));
    let s = registry.apply([a.clone(), b.clone()], &up).await;
    assert_eq!(
        (s.added, s.removed, s.changed),
        (vec!["a".to_string(), "b".into()], vec![], vec![])
    );
    let (a1, b1) = (registry.get("a").expect("a"), registry.get("b").expect("b"));

    // Same list again: nothing to do, same clusters.
    let s = registry.apply([a.clone(), b.clone()], &up).await;
    assert!(s.is_empty(), "{s:?}");
    assert!(Arc::ptr_eq(&a1, &registry.get("a").expect("a")));

    // b changes, c is new, a is untouched.
    let b2_config = ClusterConfig {
        impersonate: false,
        access: Default::default(),
        display_name: None,
        environment: None,
        labels: Default::default(),
        recording: None,
        record_input: None,
        ..b.clone()
    };
    let c = cluster_config("c", &path, None);
    let s = registry
        .apply([a.clone(), b2_config.clone(), c.clone()], &up)
        .await;
    assert_eq!(s.added, ["c"]);
    assert_eq!(s.changed, ["b"]);
    assert!(s.removed.is_empty() && s.failed.is_empty(), "{s:?}");
    assert!(Arc::ptr_eq(&a1, &registry.get("a").expect("a")));
    let b2 = registry.get("b").expect("b");
    assert!(!Arc::ptr_eq(&b1, &b2));
    assert!(!b2.impersonate && b1.impersonate);
    let ids: Vec<String> = registry.list().iter().map(|c| c.id.clone()).collect();
    assert_eq!(ids, ["a", "b", "c"]);

    // A new connect timeout rebuilds every client.
    let s = registry
        .apply([a.clone(), b2_config.clone(), c.clone()], &upstream(4000))
        .await;
    assert_eq!(s.changed, ["a", "b", "c"]);
    let a2 = registry.get("a").expect("a");
    let c1 = registry.get("c").expect("c");

    // A rotated kubeconfig file (same entry) is picked up too, and only its users rebuild.
    let other = dir.path().join("other");
    dc.kubeconfig().write(&other).expect("write");
    let c_other = cluster_config("c", &other, None);
    let s = registry
        .apply(
            [a.clone(), b2_config.clone(), c_other.clone()],
            &upstream(4000),
        )
        .await;
    assert_eq!(s.changed, ["c"]);
    let c2 = registry.get("c").expect("c");
    let tmp = dir.path().join("other.tmp");
    dc.kubeconfig().write(&tmp).expect("write");
    std::fs::rename(&tmp, &other).expect("rename");
    let s = registry
        .apply(
            [a.clone(), b2_config.clone(), c_other.clone()],
            &upstream(4000),
        )
        .await;
    assert_eq!(s.changed, ["c"], "{s:?}");
    assert!(!Arc::ptr_eq(&c2, &registry.get("c").expect("c")));
    assert!(Arc::ptr_eq(&a2, &registry.get("a").expect("a")));

    // Removal: gone from the registry, but a holder of the old Arc keeps a working client.
    let s = registry.apply([c_other.clone()], &upstream(4000)).await;
    assert_eq!(s.removed, ["a", "b"]);
    assert!(registry.get("a").is_none() && registry.get("b").is_none());
    let v = a1.check_health(Duration::from_secs(5)).await;
    assert!(v.up, "a removed cluster still answers its holders: {v:?}");
    assert_eq!(v.version.as_deref(), Some("v1.32.0"));
    drop(c1);

    // Prebuilt clusters: the same Arc is unchanged, another Arc replaces it.
    let kc = kube::config::Kubeconfig::read_from(&path).expect("read");
    let kube_config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    let demo =
        Arc::new(Cluster::from_kube_config("demo", kube_config.clone(), true).expect("build"));
    let s = registry.apply([demo.clone()], &up).await;
    assert_eq!(
        (s.added, s.removed),
        (vec!["demo".to_string()], vec!["c".to_string()])
    );
    let s = registry.apply([demo.clone()], &up).await;
    assert!(s.is_empty(), "{s:?}");
    assert!(Arc::ptr_eq(&demo, &registry.get("demo").expect("demo")));
    let demo2 = Arc::new(Cluster::from_kube_config("demo", kube_config, true).expect("build"));
    let s = registry.apply([demo2.clone()], &up).await;
    assert_eq!(s.changed, ["demo"]);
    assert!(Arc::ptr_eq(&demo2, &registry.get("demo").expect("demo")));

    // Twice the same id: the second is refused, the first served.
    let s = registry.apply([a.clone(), a.clone()], &up).await;
    assert_eq!(s.added, ["a"]);
    assert_eq!(s.failed.len(), 1);
    assert_eq!(s.failed[0].to_string(), "cluster a: listed more than once");

    dc.shutdown().await;
}

#[tokio::test]
async fn a_missing_kubeconfig_names_the_cluster_and_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-kubeconfig");
    let registry = Registry::new();
    let s = registry
        .apply([cluster_config("prod-eu", &missing, None)], &upstream(5000))
        .await;
    assert!(s.added.is_empty());
    assert_eq!(s.failed.len(), 1);
    let msg = s.failed[0].to_string();
    assert!(msg.contains("cluster prod-eu"), "{msg}");
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
    assert!(msg.contains("No such file"), "{msg}");
    assert!(registry.get("prod-eu").is_none());

    // A context that is not in the file.
    let path = dir.path().join("kubeconfig");
    write_unreachable_kubeconfig(&path, "https://127.0.0.1:1".into());
    let s = registry
        .apply(
            [cluster_config("staging", &path, Some("nope"))],
            &upstream(5000),
        )
        .await;
    let msg = s.failed.first().expect("refused").to_string();
    assert_eq!(
        msg,
        format!(
            "cluster staging: kubeconfig {}: no context \"nope\"",
            path.display()
        )
    );
}

#[tokio::test]
async fn a_changed_cluster_that_fails_to_build_is_not_served() {
    podgate_devcluster::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    write_unreachable_kubeconfig(&path, "https://127.0.0.1:1".into());
    let registry = Registry::new();
    let s = registry
        .apply([cluster_config("x", &path, None)], &upstream(5000))
        .await;
    assert_eq!(s.added, ["x"]);
    let s = registry
        .apply([cluster_config("x", &path, Some("nope"))], &upstream(5000))
        .await;
    assert_eq!(s.failed.len(), 1);
    assert_eq!(s.removed, ["x"]);
    assert!(registry.get("x").is_none());
}

#[tokio::test]
async fn a_refused_connection_is_reported_at_once() {
    podgate_devcluster::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    // A port that was free a moment ago: connecting is refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let path = dir.path().join("kubeconfig");
    write_unreachable_kubeconfig(&path, format!("https://127.0.0.1:{port}"));
    let registry = Registry::new();
    registry
        .apply([cluster_config("gone", &path, None)], &upstream(2000))
        .await;
    let gone = registry.get("gone").expect("built");
    let started = Instant::now();
    let h = gone.check_health(Duration::from_secs(30)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(!h.up);
    let error = h.error.expect("error");
    assert!(!error.contains("no answer"), "{error}");
    assert!(error.contains("Connection refused"), "{error}");
    assert!(
        !error.contains("ServiceError"),
        "kube's wrapper is left out: {error}"
    );
}

#[tokio::test]
async fn a_silent_server_fails_within_the_connect_timeout() {
    podgate_devcluster::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    // Bound and listening but never accepting: the kernel completes the TCP handshake, the
    // TLS handshake never gets an answer. Only the connect timeout can end it.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let path = dir.path().join("kubeconfig");
    write_unreachable_kubeconfig(&path, format!("https://127.0.0.1:{port}"));
    let registry = Registry::new();
    registry
        .apply([cluster_config("mute", &path, None)], &upstream(300))
        .await;
    let mute = registry.get("mute").expect("built");
    let started = Instant::now();
    let h = mute.check_health(Duration::from_secs(30)).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(!h.up);
    assert_eq!(
        h.error.as_deref(),
        Some("cannot connect within 300ms (TCP and TLS handshake)")
    );
    drop(silent);
}

#[tokio::test]
async fn the_health_timeout_bounds_a_check() {
    podgate_devcluster::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let path = dir.path().join("kubeconfig");
    write_unreachable_kubeconfig(&path, format!("https://127.0.0.1:{port}"));
    let registry = Registry::new();
    registry
        .apply([cluster_config("slow", &path, None)], &upstream(60_000))
        .await;
    let slow = registry.get("slow").expect("built");
    let h = slow.check_health(Duration::from_millis(200)).await;
    assert!(!h.up);
    assert_eq!(
        h.error.as_deref(),
        Some("no answer to GET /version within 200ms")
    );
    drop(silent);
}

#[tokio::test]
async fn clusters_share_tls_per_ca_and_resume_sessions_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (one, one_path) = devcluster(dir.path()).await;
    let dir2 = tempfile::tempdir().expect("tempdir");
    let (two, two_path) = devcluster(dir2.path()).await;
    let registry = Registry::new();
    let configs: Vec<ClusterConfig> = (0..6)
        .map(|i| {
            let path = if i % 2 == 0 { &one_path } else { &two_path };
            cluster_config(&format!("c{i}"), path, Some("podgate"))
        })
        .collect();
    let s = registry.apply(configs.clone(), &upstream(5000)).await;
    assert_eq!(s.added.len(), 6, "{s:?}");
    let c: Vec<Arc<Cluster>> = (0..6)
        .map(|i| registry.get(&format!("c{i}")).expect("registered"))
        .collect();
    assert!(c[0].upstream.shares_tls_with(&c[2].upstream));
    assert!(c[0].upstream.shares_tls_with(&c[4].upstream));
    assert!(c[1].upstream.shares_tls_with(&c[5].upstream));
    assert!(
        !c[0].upstream.shares_tls_with(&c[1].upstream),
        "another CA, another config"
    );
    for cluster in &c {
        let h = cluster.check_health(Duration::from_secs(5)).await;
        assert!(h.up, "{h:?}");
    }
    // Nothing changed: the same snapshot, nothing rebuilt.
    let before = registry.snapshot();
    let s = registry.apply(configs, &upstream(5000)).await;
    assert!(s.is_empty(), "{s:?}");
    assert!(Arc::ptr_eq(&before, &registry.snapshot()));

    // Resumption: two cluster ids of one apiserver (same CA, same address) are one TLS peer
    // and share its tickets; an id of another apiserver keeps its own.
    let kc = kube::config::Kubeconfig::read_from(&one_path).expect("read");
    let options = kube::config::KubeConfigOptions {
        context: Some("podgate".into()),
        ..Default::default()
    };
    let kube_config = kube::Config::from_custom_kubeconfig(kc, &options)
        .await
        .expect("config");
    let x = Arc::new(
        super::super::tls::for_cluster(&kube_config)
            .expect("tls")
            .config,
    );
    let y = Arc::new(
        super::super::tls::for_cluster(&kube_config)
            .expect("tls")
            .config,
    );
    let kinds = |config: Arc<rustls::ClientConfig>| {
        let addr = one.addr();
        async move { handshake_kind(config, addr).await }
    };
    let mut elsewhere = kube_config.clone();
    elsewhere.cluster_url = format!("https://localhost:{}", one.addr().port())
        .parse()
        .expect("url");
    let z = Arc::new(
        super::super::tls::for_cluster(&elsewhere)
            .expect("tls")
            .config,
    );
    use rustls::HandshakeKind::{Full, Resumed};
    assert_eq!(
        kinds(z.clone()).await,
        Full,
        "another server address: a store of its own"
    );
    assert_eq!(kinds(z).await, Resumed, "z resumes its own session");
    assert_eq!(
        kinds(x.clone()).await,
        Resumed,
        "x: the ticket c0's probe of the same apiserver got"
    );
    assert_eq!(kinds(y.clone()).await, Resumed, "y too");
    assert_eq!(kinds(y).await, Resumed);
    assert_eq!(kinds(x).await, Resumed);
    one.shutdown().await;
    two.shutdown().await;
}

/// Connects to `addr` with `config`, sends a request and reads the answer to its end (so
/// TLS 1.3 session tickets arrive), and says how the handshake went.
async fn handshake_kind(
    config: Arc<rustls::ClientConfig>,
    addr: std::net::SocketAddr,
) -> rustls::HandshakeKind {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::from(addr.ip());
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .expect("handshake");
    let kind = tls.get_ref().1.handshake_kind().expect("handshake done");
    tls.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    assert!(answer.starts_with(b"HTTP/1.1 "), "{answer:?}");
    kind
}
