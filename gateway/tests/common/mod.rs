//! A gateway in front of one devcluster, assembled in-process with settings a test chooses,
//! and a raw WebSocket client for it.
#![allow(dead_code)]

use futures_util::StreamExt as _;
use podgate::app::StartOptions;
use podgate::upstream::{Cluster, ClusterSpec, Registry};
use podgate_devcluster::{DevCluster, Options, Topology};
use podgate_protocol::Protocol;
use podgate_protocol::frame::{self, ChannelFrame};
use rustls::pki_types::pem::PemObject as _;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _};

pub const ALICE: &str = "translate-test-alice-token";
pub const TOKEN: &str = "translate-test-admin-token";

pub struct Env {
    pub gateway: podgate::app::Running,
    pub cluster: DevCluster,
    pub ca_pem: String,
}

/// A gateway in front of one devcluster (cluster id `old`) that speaks only `protocols`
/// (all when empty), with the default settings changed by `adjust`.
pub async fn start_with(protocols: &[Protocol], adjust: impl FnOnce(&mut StartOptions)) -> Env {
    start_full(protocols, Default::default(), adjust).await
}

/// As [`start_with`], with an edge access policy on the cluster.
pub async fn start_full(
    protocols: &[Protocol],
    access: podgate_config::AccessPolicy,
    adjust: impl FnOnce(&mut StartOptions),
) -> Env {
    podgate_devcluster::install_crypto_provider();
    let mut topology = Topology::builtin();
    topology.protocols = protocols.iter().map(|p| p.name().to_string()).collect();
    let dc = DevCluster::start(Options {
        topology,
        ..Options::default()
    })
    .await
    .expect("devcluster");
    let config = podgate::app::demo::kube_config_for(&dc)
        .await
        .expect("kube config");
    let registry = Registry::new();
    let mut cluster = Cluster::from_kube_config("old", config, true).expect("cluster");
    cluster.access = access;
    let summary = registry
        .apply(
            [ClusterSpec::Prebuilt(Arc::new(cluster))],
            &Default::default(),
        )
        .await;
    assert!(summary.failed.is_empty());
    let (tls, ca_pem) = podgate::app::demo::self_signed_tls(&[]).expect("cert");
    let tokens = podgate_auth::parse_tokens(
        std::path::Path::new("t"),
        &format!("- token: {TOKEN}\n  user: admin\n  groups: [system:masters]\n- token: {ALICE}\n  user: alice\n  groups: [dev]\n"),
    )
    .expect("tokens");
    let (session_limits, sessions, connections) =
        StartOptions::settings_from(&Default::default(), &Default::default());
    let mut opts = StartOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls,
        clusters: registry,
        authenticator: Arc::new(podgate_auth::StaticTokens::new(tokens)),
        browser: None,
        session_limits,
        sessions,
        connections,
        session_series: Default::default(),
        audit: podgate::session::audit::Audit::off(),
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
    };
    adjust(&mut opts);
    let gateway = podgate::app::start(opts).await.expect("gateway");
    Env {
        gateway,
        cluster: dc,
        ca_pem,
    }
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

pub async fn connect(env: &Env, path: &str, protocols: &[&str]) -> (Ws, Option<String>) {
    let tls = tls(env).await;
    let mut req = format!("wss://{}/clusters/old{path}", env.gateway.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {TOKEN}").parse().unwrap());
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        protocols.join(", ").parse().unwrap(),
    );
    let (ws, resp) = tokio_tungstenite::client_async(req, tls)
        .await
        .expect("upgrade");
    let p = resp
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (ws, p)
}

pub async fn frames(ws: &mut Ws, protocol: Protocol) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("answer within 20 s");
        let (text, payload) = match m {
            Some(Ok(Message::Binary(b))) => (false, b.to_vec()),
            Some(Ok(Message::Text(t))) => (true, t.as_bytes().to_vec()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return out,
            Some(Ok(_)) => continue,
        };
        match frame::decode(protocol, text, &payload)
            .expect("a valid frame for the client's protocol")
        {
            ChannelFrame::Data { stream, data } => out.push((stream, data.into_owned())),
            ChannelFrame::Close { stream } => out.push((255, vec![stream])),
        }
    }
}

pub async fn start(protocols: &[Protocol]) -> Env {
    start_with(protocols, |_| {}).await
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after `timeout`.
pub async fn wait_for(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TLS connection to the gateway with nothing sent yet.
pub async fn tls(env: &Env) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(env.ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(env.gateway.addr)
        .await
        .unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(
            rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(),
            tcp,
        )
        .await
        .expect("TLS handshake")
}

/// One HTTP/1.1 request through the gateway with `token`: status code and body.
pub async fn get(env: &Env, token: &str, path: &str) -> (u16, String) {
    let auth = format!("Bearer {token}");
    let r = request(env, "GET", path, &[("Authorization", &auth)], "").await;
    (r.code, r.body)
}

/// A raw HTTP/1.1 answer: status, headers (names lower-cased, in order) and body.
pub struct Answer {
    pub code: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body's JSON (a chunked body carries size lines around it).
    pub fn json(&self) -> serde_json::Value {
        let json = self
            .body
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or(&self.body);
        serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request through the gateway, headers and body as given (`Host` is added).
pub async fn request(
    env: &Env,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut t = tls(env).await;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        env.gateway.addr
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head.push_str(body);
    t.write_all(head.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), t.read_to_end(&mut resp)).await;
    parse_answer(&resp)
}

/// A raw HTTP/1.1 response as read off a socket.
pub fn parse_answer(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let code = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        code,
        headers,
        body: body.to_string(),
    }
}

/// `podgate_auth_failures_total{reason}` as the gateway would export it now.
pub fn auth_failures(env: &Env, reason: &str) -> u64 {
    let text = env.gateway.metrics().render();
    let needle = format!("podgate_auth_failures_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Real kubectl with kubeconfig `kc`, its cache and HOME under `dir` (nothing of the machine's
/// own kubectl set-up applies): exit code, stdout, stderr.
pub async fn kubectl(
    dir: &std::path::Path,
    kc: &std::path::Path,
    args: &[&str],
) -> (i32, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("/usr/bin/kubectl")
            .arg("--kubeconfig")
            .arg(kc)
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .args(args)
            .env("HOME", dir)
            .env_remove("KUBECONFIG")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("kubectl within 60 s")
    .expect("kubectl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
