//! Shared test plumbing: start a devcluster, write its kubeconfig, find kubectl binaries, wait
//! on conditions, and speak raw WebSocket to it.
#![allow(dead_code)]

use podgate_devcluster::{DevCluster, Options};
use rustls::pki_types::pem::PemObject as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Env {
    pub cluster: DevCluster,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

pub async fn start() -> Env {
    start_with(podgate_devcluster::Topology::builtin()).await
}

/// [`start`] with another topology (the built-in one changed, say).
pub async fn start_with(topology: podgate_devcluster::Topology) -> Env {
    podgate_devcluster::install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = DevCluster::start(Options {
        topology,
        state_dir: Some(dir.path().join("state")),
        ..Options::default()
    })
    .await
    .expect("devcluster starts");
    let kubeconfig = dir.path().join("kubeconfig");
    cluster
        .kubeconfig()
        .write(&kubeconfig)
        .expect("kubeconfig written");
    Env {
        cluster,
        dir,
        kubeconfig,
    }
}

/// `/usr/bin/kubectl` (which picks a version by the server's), and the pinned 1.30 and 1.33
/// binaries when the machine has them.
pub fn kubectls() -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from("/usr/bin/kubectl")];
    for minor in ["1.30", "1.33"] {
        let p = PathBuf::from(format!("/usr/lib/google-cloud-sdk/bin/kubectl.{minor}"));
        if p.exists() {
            v.push(p);
        }
    }
    assert!(
        v[0].exists(),
        "kubectl is not installed at /usr/bin/kubectl"
    );
    v
}

pub struct Output {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Runs kubectl against the env's kubeconfig with a private cache and HOME, feeding `stdin`.
pub async fn kubectl(env: &Env, bin: &Path, args: &[&str], stdin: &[u8]) -> Output {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new(bin)
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .arg("--cache-dir")
        .arg(env.dir.path().join("cache"))
        .args(args)
        .env("HOME", env.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl starts");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let feed = tokio::spawn(async move {
        let _ = input.write_all(&data).await;
        drop(input);
    });
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("kubectl finishes within 60 s")
        .expect("kubectl output");
    let _ = feed.await;
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs kubectl with stdin fed "y\n" after "y\n" for as long as it reads it (as `yes | kubectl
/// ...` does), until kubectl exits.
pub async fn kubectl_fed(env: &Env, bin: &Path, args: &[&str]) -> Output {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new(bin)
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .arg("--cache-dir")
        .arg(env.dir.path().join("cache"))
        .args(args)
        .env("HOME", env.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl starts");
    let mut input = child.stdin.take().expect("stdin");
    let feed = tokio::spawn(async move {
        let ys = b"y\n".repeat(2048);
        // Ends when kubectl exits (EPIPE) or stops reading for good.
        while input.write_all(&ys).await.is_ok() {}
    });
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("kubectl finishes within 60 s")
        .expect("kubectl output");
    feed.abort();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
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

pub async fn kube_client(env: &Env, context: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(&env.kubeconfig).expect("kubeconfig parses");
    let opts = kube::config::KubeConfigOptions {
        context: Some(context.into()),
        ..Default::default()
    };
    let cfg = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .expect("kube config");
    kube::Client::try_from(cfg).expect("kube client")
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Opens a raw WebSocket to `path` offering `protocols`; returns the socket and the protocol
/// the server chose, or the HTTP status and body of a refusal.
pub async fn raw_ws(
    env: &Env,
    token: &str,
    path: &str,
    protocols: &[&str],
) -> Result<(Ws, Option<String>), (u16, String)> {
    use tokio_tungstenite::tungstenite::{Error, client::IntoClientRequest as _};
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(env.cluster.ca_pem().as_bytes()) {
        roots.add(c.expect("ca pem")).expect("ca added");
    }
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(env.cluster.addr())
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("server name");
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(name, tcp)
        .await
        .expect("tls");
    let url = format!("wss://{}{}", env.cluster.addr(), path);
    let mut req = url.into_client_request().expect("request");
    if !token.is_empty() {
        req.headers_mut().insert(
            "Authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    if !protocols.is_empty() {
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            protocols.join(", ").parse().expect("header"),
        );
    }
    match tokio_tungstenite::client_async(req, tls).await {
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

/// Every message until the server closes: (is_text, payload).
pub async fn read_all(ws: &mut Ws) -> Vec<(bool, Vec<u8>)> {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let mut out = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("server answers within 30 s");
        match next {
            Some(Ok(Message::Binary(b))) => out.push((false, b.to_vec())),
            Some(Ok(Message::Text(t))) => out.push((true, t.as_bytes().to_vec())),
            Some(Ok(Message::Close(_))) | None => return out,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("websocket error: {e}"),
        }
    }
}

/// Every message until the server's close frame: (is_text, payload), and the close frame's
/// (code, reason), `None` if the connection ended without one.
pub async fn read_until_close(ws: &mut Ws) -> (Vec<(bool, Vec<u8>)>, Option<(u16, String)>) {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let mut out = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("server answers within 30 s");
        match next {
            Some(Ok(Message::Binary(b))) => out.push((false, b.to_vec())),
            Some(Ok(Message::Text(t))) => out.push((true, t.as_bytes().to_vec())),
            Some(Ok(Message::Close(c))) => {
                return (out, c.map(|c| (u16::from(c.code), c.reason.to_string())));
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return (out, None),
        }
    }
}

/// One plain HTTP/1.1 request over TLS (for what no client library sends, like SPDY
/// upgrades): returns the status code and body.
pub async fn raw_http(env: &Env, request_head: &str) -> (u16, String) {
    raw_http_bytes(env, request_head.as_bytes()).await
}

/// [`raw_http`] with the request written byte for byte as given (header values that are not
/// ASCII, or not even UTF-8, go out unmodified).
pub async fn raw_http_bytes(env: &Env, request_head: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(env.cluster.ca_pem().as_bytes()) {
        roots.add(c.expect("ca pem")).expect("ca added");
    }
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(env.cluster.addr())
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("server name");
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(name, tcp)
        .await
        .expect("tls");
    tls.write_all(request_head).await.expect("write");
    // Read the head, then exactly Content-Length bytes: the server may keep the connection.
    let mut resp = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let mut buf = [0u8; 4096];
            let n = tls.read(&mut buf).await.unwrap_or(0);
            resp.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&resp).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head.lines().find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                });
                if n == 0 || len.is_some_and(|len| body.len() >= len) {
                    return;
                }
            } else if n == 0 {
                return;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no complete response within 10 s");
    let text = String::from_utf8_lossy(&resp).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}
