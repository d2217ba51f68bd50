//! Shared plumbing for the end-to-end tests: a gateway in front of devclusters (the demo, or
//! the same assembly with custom session settings and limits), kubectl with a private cache
//! and HOME, kube-rs clients, raw WebSocket and raw HTTPS to the gateway, polling helpers and
//! this process's fd and memory counts.
#![allow(dead_code)]

use podgate::app::demo::{CLUSTER_IDS, Demo, DemoOptions};
use podgate::app::{Running, StartOptions};
use podgate::session::SessionSettings;
use podgate::session::limits::SessionLimits;
use podgate_devcluster::{DevCluster, Options};
use rustls::pki_types::pem::PemObject as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const ADMIN: &str = "podgate-demo-admin";
pub const ALICE: &str = "podgate-demo-alice";
pub const BOB: &str = "podgate-demo-bob";

/// The demo's people, for gateways assembled by [`start_with`].
const TOKENS: &str = "\
- token: podgate-demo-admin
  user: admin
  groups: [system:masters]
- token: podgate-demo-alice
  user: alice
  groups: [dev]
- token: podgate-demo-bob
  user: bob
  groups: [viewers]
";

/// A running gateway with devclusters `dev-east` and `dev-west` behind it, and a private
/// directory for kubeconfigs and kubectl's cache and HOME.
pub struct Env {
    pub demo: Demo,
    pub dir: tempfile::TempDir,
}

impl Env {
    /// The gateway's sessions: limits, live registry, and the tracker of every task.
    pub fn gateway(&self) -> &Arc<podgate::session::Sessions> {
        &self.demo.gateway.sessions
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.demo.gateway.addr
    }

    /// The demo's kubeconfig for `token` (contexts `dev-east` and `dev-west`), written once.
    pub fn kubeconfig(&self, token: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{token}.kubeconfig"));
        if !path.exists() {
            self.demo
                .kubeconfig(token)
                .write(&path)
                .expect("kubeconfig written");
        }
        path
    }

    /// Stops one devcluster (the gateway keeps it in its registry, as when a cluster dies).
    pub async fn stop_cluster(&mut self, id: &str) {
        let i = CLUSTER_IDS
            .iter()
            .position(|c| *c == id)
            .expect("a demo cluster id");
        self.demo.clusters.remove(i).shutdown().await;
    }
}

/// `podgate demo` as its command starts it: default settings, two devclusters.
pub async fn start_demo() -> Env {
    podgate_devcluster::install_crypto_provider();
    let demo = podgate::app::demo::start(DemoOptions {
        listen: "127.0.0.1:0".parse().expect("addr"),
        // No admin listener: these tests count the gateway's tasks, and it would be one.
        admin_listen: None,
        kubeconfig_out: None,
    })
    .await
    .expect("demo starts");
    Env {
        demo,
        dir: tempfile::tempdir().expect("temp dir"),
    }
}

/// What tests may change of a gateway's defaults.
pub struct Tuning {
    pub sessions: SessionSettings,
    pub limits: SessionLimits,
    /// Per-session Prometheus series (the config's `metrics.session_series` and
    /// `metrics.max_session_series`).
    pub session_series: podgate_metrics::SessionSeries,
    /// Whether the gateway gets its admin listener (`/metrics`, ...) on `127.0.0.1:0`; its
    /// address is then `env.demo.gateway.admin_addr`. Off by default: other tests count the
    /// gateway's tasks, and it would be one.
    pub admin: bool,
    /// The address the gateway dials for a cluster, given its id and its devcluster's
    /// address (a test may put a proxy in between); the devcluster's own by default.
    pub dial: Dial,
    /// Whether the browser login with the demo's tokens (`POST /auth/dev-login`, loopback
    /// only) is on, as in `podgate demo`; off by default.
    pub dev_login: bool,
}

/// See [`Tuning::dial`]: `(cluster id, devcluster address) -> address to dial`.
pub type Dial = Box<dyn FnMut(&str, SocketAddr) -> SocketAddr + Send>;

/// The demo's assembly (two devclusters, reached as the impersonating user `podgate`; the
/// demo's tokens; a self-signed certificate) with session settings, limits, per-session
/// series, the admin listener and the clusters' addresses changed by `tune` from the config
/// file's defaults.
///
/// This repeats `podgate::app::demo::start` because it offers no way to pass settings; a
/// `DemoOptions` field for them would make this helper a one-liner.
pub async fn start_with(tune: impl FnOnce(&mut Tuning)) -> Env {
    podgate_devcluster::install_crypto_provider();
    let (limits, sessions, connections) =
        StartOptions::settings_from(&Default::default(), &Default::default());
    let mut tuning = Tuning {
        sessions,
        limits,
        session_series: Default::default(),
        admin: false,
        dial: Box::new(|_, addr| addr),
        dev_login: false,
    };
    tune(&mut tuning);
    let mut clusters = Vec::new();
    let mut specs = Vec::new();
    for id in CLUSTER_IDS {
        let dc = DevCluster::start(Options {
            name: id.into(),
            ..Options::default()
        })
        .await
        .expect("devcluster starts");
        let mut config = podgate::app::demo::kube_config_for(&dc)
            .await
            .expect("kube config");
        let dial = (tuning.dial)(id, dc.addr());
        if dial != dc.addr() {
            config.cluster_url = format!("https://{dial}").parse().expect("cluster url");
        }
        // As `podgate serve` builds clusters from its config (`upstream.connect_timeout`).
        config.connect_timeout = Some(
            podgate_config::UpstreamConfig::default()
                .connect_timeout
                .get(),
        );
        let cluster =
            podgate::upstream::Cluster::from_kube_config(id, config, true).expect("cluster");
        specs.push(podgate::upstream::ClusterSpec::Prebuilt(Arc::new(cluster)));
        clusters.push(dc);
    }
    let registry = podgate::upstream::Registry::new();
    let summary = registry.apply(specs, &Default::default()).await;
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    let (tls, ca_pem) = podgate::app::demo::self_signed_tls(&[]).expect("certificate");
    let tokens = podgate_auth::parse_tokens(Path::new("<e2e tokens>"), TOKENS).expect("tokens");
    let gateway: Running = podgate::app::start(StartOptions {
        listen: "127.0.0.1:0".parse().expect("addr"),
        tls,
        clusters: registry,
        authenticator: Arc::new(podgate_auth::StaticTokens::new(tokens)),
        browser: tuning.dev_login.then(|| podgate::browser::Browser {
            dev_login: true,
            ..podgate::browser::Browser::ephemeral().expect("browser session key")
        }),
        session_limits: tuning.limits,
        sessions: tuning.sessions,
        connections,
        session_series: tuning.session_series,
        audit: podgate::session::audit::Audit::off(),
        admin_listen: tuning.admin.then(|| "127.0.0.1:0".parse().expect("addr")),
    })
    .await
    .expect("gateway starts");
    Env {
        demo: Demo {
            gateway,
            clusters,
            ca_pem,
        },
        dir: tempfile::tempdir().expect("temp dir"),
    }
}

/// The pinned 1.30 binary, `/usr/bin/kubectl` (which picks 1.32 by the server's version), and
/// the pinned 1.33 binary, those the machine has.
pub fn kubectls() -> Vec<PathBuf> {
    let dispatcher = PathBuf::from("/usr/bin/kubectl");
    assert!(
        dispatcher.exists(),
        "kubectl is not installed at /usr/bin/kubectl"
    );
    let pinned = |minor: &str| {
        Some(PathBuf::from(format!(
            "/usr/lib/google-cloud-sdk/bin/kubectl.{minor}"
        )))
        .filter(|p| p.exists())
    };
    pinned("1.30")
        .into_iter()
        .chain([dispatcher])
        .chain(pinned("1.33"))
        .collect()
}

pub struct Output {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// kubectl's leading flags: the env's kubeconfig for `token`, `context`, a private cache.
pub fn kubectl_args(env: &Env, token: &str, context: &str) -> Vec<std::ffi::OsString> {
    vec![
        "--kubeconfig".into(),
        env.kubeconfig(token).into(),
        "--cache-dir".into(),
        env.dir.path().join("cache").into(),
        "--context".into(),
        context.into(),
    ]
}

/// A kubectl command line against the env's kubeconfig for `token`, in `context`, with a
/// private cache and HOME (so nothing of the machine's own configuration leaks in).
pub fn kubectl_command(
    env: &Env,
    bin: &Path,
    token: &str,
    context: &str,
    args: &[&str],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(kubectl_args(env, token, context))
        .args(args)
        .env("HOME", env.dir.path())
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs kubectl to completion feeding `stdin`; it must finish within `limit`.
pub async fn kubectl_within(
    limit: Duration,
    env: &Env,
    bin: &Path,
    token: &str,
    context: &str,
    args: &[&str],
    stdin: &[u8],
) -> Output {
    use tokio::io::AsyncWriteExt as _;
    let mut child = kubectl_command(env, bin, token, context, args)
        .spawn()
        .expect("kubectl starts");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let feed = tokio::spawn(async move {
        let _ = input.write_all(&data).await;
        drop(input);
    });
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{} {args:?} did not finish within {limit:?}", bin.display()))
        .expect("kubectl output");
    let _ = feed.await;
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub async fn kubectl(
    env: &Env,
    bin: &Path,
    token: &str,
    context: &str,
    args: &[&str],
    stdin: &[u8],
) -> Output {
    kubectl_within(
        Duration::from_secs(60),
        env,
        bin,
        token,
        context,
        args,
        stdin,
    )
    .await
}

/// Reads `r` into `seen` until `done(seen)` holds; panics with what was seen after `limit`
/// or at end of stream.
pub async fn read_until(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
    seen: &mut Vec<u8>,
    limit: Duration,
    what: &str,
    done: impl Fn(&str) -> bool,
) {
    use tokio::io::AsyncReadExt as _;
    let found = tokio::time::timeout(limit, async {
        while !done(&String::from_utf8_lossy(seen)) {
            let mut buf = [0u8; 8192];
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await;
    assert_eq!(
        found,
        Ok(true),
        "never saw {what} in {:?}",
        String::from_utf8_lossy(seen)
    );
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub async fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A kube-rs client for the env's kubeconfig of `token`, in `context`.
pub async fn kube_client(env: &Env, token: &str, context: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(env.kubeconfig(token)).expect("kubeconfig");
    let opts = kube::config::KubeConfigOptions {
        context: Some(context.into()),
        ..Default::default()
    };
    let cfg = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .expect("kube config");
    kube::Client::try_from(cfg).expect("kube client")
}

async fn tls_to_gateway(env: &Env) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(env.demo.ca_pem.as_bytes()) {
        roots.add(c.expect("ca pem")).expect("ca added");
    }
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(env.addr())
        .await
        .expect("connect to the gateway");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("server name");
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .expect("TLS to the gateway")
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Opens a raw WebSocket to the gateway's `path` with `token` (none when empty), offering
/// `protocols` and sending `extra` headers; returns the socket and the protocol the gateway
/// chose, or the HTTP status and body of a refusal.
pub async fn raw_ws(
    env: &Env,
    token: &str,
    path: &str,
    protocols: &[&str],
    extra: &[(&str, &str)],
) -> Result<(Ws, Option<String>), (u16, String)> {
    use tokio_tungstenite::tungstenite::{Error, client::IntoClientRequest as _};
    let tls = tls_to_gateway(env).await;
    let mut req = format!("wss://{}{}", env.addr(), path)
        .into_client_request()
        .expect("request");
    let headers = req.headers_mut();
    if !token.is_empty() {
        headers.insert(
            "Authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    if !protocols.is_empty() {
        headers.insert(
            "Sec-WebSocket-Protocol",
            protocols.join(", ").parse().expect("header"),
        );
    }
    for (k, v) in extra {
        headers.append(
            http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            v.parse().expect("header value"),
        );
    }
    let handshake = tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::client_async(req, tls),
    )
    .await
    .expect("the gateway answers the upgrade within 20 s");
    match handshake {
        Ok((ws, resp)) => {
            let p = resp
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            Ok((ws, p))
        }
        Err(Error::Http(resp)) => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err((resp.status().as_u16(), body))
        }
        Err(e) => panic!("websocket handshake failed: {e}"),
    }
}

/// An exec WebSocket (v5) as admin on `dev-east`, or panics with the refusal.
pub async fn exec_ws(env: &Env, namespace: &str, pod: &str, query: &str) -> Ws {
    let path = format!("/clusters/dev-east/api/v1/namespaces/{namespace}/pods/{pod}/exec?{query}");
    match raw_ws(env, ADMIN, &path, &["v5.channel.k8s.io"], &[]).await {
        Ok((ws, proto)) => {
            assert_eq!(proto.as_deref(), Some("v5.channel.k8s.io"));
            ws
        }
        Err((code, body)) => panic!("exec on {namespace}/{pod} refused: {code} {body}"),
    }
}

/// A channel frame from the gateway: stream id and payload, or the close.
#[derive(Debug, PartialEq)]
pub enum Got {
    Data(u8, Vec<u8>),
    Close(Option<String>),
}

/// The next channel frame with a payload (frames of length ≤ 1 are skipped, as clients do;
/// pings are answered by tungstenite while we read), within `limit`.
pub async fn next_frame(ws: &mut Ws, limit: Duration) -> Got {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no frame from the gateway within {limit:?}"));
        match next {
            Some(Ok(Message::Binary(b))) if b.len() > 1 => return Got::Data(b[0], b[1..].to_vec()),
            Some(Ok(Message::Close(f))) => return Got::Close(f.map(|f| f.reason.to_string())),
            None => return Got::Close(None),
            Some(Err(e)) => panic!("websocket error: {e}"),
            Some(Ok(_)) => {}
        }
    }
}

/// Sends stdin bytes (stream 0).
pub async fn send_stdin(ws: &mut Ws, data: &[u8]) {
    use futures_util::SinkExt as _;
    let mut frame = vec![0u8];
    frame.extend_from_slice(data);
    ws.send(tokio_tungstenite::tungstenite::Message::binary(frame))
        .await
        .expect("stdin sent");
}

/// Sends stdin and waits for the same bytes back on stdout (for `builtin:echo`).
pub async fn echo_round_trip(ws: &mut Ws, data: &[u8]) {
    send_stdin(ws, data).await;
    let mut got = Vec::new();
    while got.len() < data.len() {
        match next_frame(ws, Duration::from_secs(10)).await {
            Got::Data(1, d) => got.extend_from_slice(&d),
            other => panic!("expected the echo of {data:?}, got {other:?}"),
        }
    }
    assert_eq!(got, data);
}

/// A response read by [`raw_http`].
#[derive(Debug)]
pub struct RawResponse {
    pub code: u16,
    pub head: String,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// One HTTP/1.1 request to the gateway over TLS, `Connection: close`, read to the end
/// (within 10 s); `head` is everything up to the blank line, without it.
pub async fn raw_http(env: &Env, head: &str) -> RawResponse {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tls = tls_to_gateway(env).await;
    let mut req = head.trim_end().to_string();
    req.push_str(&format!(
        "\r\nHost: {}\r\nConnection: close\r\n\r\n",
        env.addr()
    ));
    tls.write_all(req.as_bytes()).await.expect("write");
    let mut resp = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut resp)).await;
    assert!(
        read.is_ok(),
        "no complete response within 10 s; so far: {:?}",
        String::from_utf8_lossy(&resp)
    );
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut r = RawResponse {
        code,
        head: head.to_string(),
        body: body.to_string(),
    };
    if r.header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        r.body = dechunk(&r.body);
    }
    r
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// `GET path` with an optional bearer token and extra header lines.
pub async fn get(env: &Env, path: &str, token: &str, extra: &[&str]) -> RawResponse {
    let mut head = format!("GET {path} HTTP/1.1");
    if !token.is_empty() {
        head.push_str(&format!("\r\nAuthorization: Bearer {token}"));
    }
    for h in extra {
        head.push_str("\r\n");
        head.push_str(h);
    }
    raw_http(env, &head).await
}

/// Checks that `body` is a `metav1.Status` for HTTP `code` (kind, apiVersion, status, and
/// `code` equal to the HTTP code) and returns it.
pub fn assert_status(code: u16, body: &str, expected: u16) -> serde_json::Value {
    assert_eq!(code, expected, "HTTP status; body: {body}");
    let v: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("the {code} body is not JSON ({e}): {body:?}"));
    assert_eq!(v["kind"], "Status", "{body}");
    assert_eq!(v["apiVersion"], "v1", "{body}");
    assert_eq!(v["status"], "Failure", "{body}");
    assert_eq!(v["code"], u64::from(expected), "{body}");
    assert!(v["message"].is_string(), "{body}");
    v
}

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Resident memory of this process, in bytes.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS in /proc/self/status")
        * 1024
}

pub const MIB: u64 = 1 << 20;
