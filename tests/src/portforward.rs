//! Port-forward as people use it: `kubectl port-forward` running in the background on local
//! ports it picks, plain TCP clients through it (an HTTP GET, an echo round trip), and the
//! official Python client's `portforward` (the channel protocol).

use crate::kubectl::Kubectl;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

/// The kubectl binaries that port-forward over WebSocket by default (1.31 and newer): the
/// dispatcher (1.32 for the devcluster) and the pinned ones installed.
pub fn websocket_kubectls() -> Vec<std::path::PathBuf> {
    let mut out = vec![std::path::PathBuf::from(crate::kubectl::DEFAULT)];
    for minor in ["1.31", "1.33"] {
        let p = std::path::PathBuf::from(format!("/usr/lib/google-cloud-sdk/bin/kubectl.{minor}"));
        if p.exists() {
            out.push(p);
        }
    }
    out
}

/// A kubectl without WebSocket port-forward (SPDY only).
pub const SPDY_KUBECTL: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.29";

/// `kubectl port-forward` running; killed when dropped.
pub struct PortForward {
    pub child: tokio::process::Child,
    /// The local port of each remote port asked for, in order.
    pub local: Vec<u16>,
    /// What kubectl wrote to stderr so far (filled by [`PortForward::stderr`]).
    stderr: Option<tokio::process::ChildStderr>,
}

/// Starts `kubectl -n ns port-forward pod/POD :PORT...` and waits (bounded) until it listens
/// on every port; `Err` with its stderr when it exits first.
pub async fn start(
    kubectl: &Kubectl,
    namespace: &str,
    pod: &str,
    ports: &[u16],
) -> Result<PortForward, String> {
    let target = format!("pod/{pod}");
    let remote: Vec<String> = ports.iter().map(|p| format!(":{p}")).collect();
    let mut args = vec![
        "-n",
        namespace,
        "port-forward",
        "--address",
        "127.0.0.1",
        &target,
    ];
    args.extend(remote.iter().map(String::as_str));
    let mut child = kubectl.command(&args).spawn().expect("kubectl starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut local = vec![0u16; ports.len()];
    let listening = tokio::time::timeout(Duration::from_secs(30), async {
        while local.contains(&0) {
            let Ok(Some(line)) = lines.next_line().await else {
                return false;
            };
            // "Forwarding from 127.0.0.1:41234 -> 80"
            if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:")
                && let Some((l, r)) = rest.split_once(" -> ")
                && let (Ok(l), Ok(r)) = (l.parse::<u16>(), r.trim().parse::<u16>())
                && let Some(i) = ports.iter().position(|p| *p == r)
            {
                local[i] = l;
            }
        }
        true
    })
    .await;
    if listening != Ok(true) {
        let _ = child.start_kill();
        let mut text = String::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(5), stderr.read_to_string(&mut text)).await;
        return Err(text);
    }
    // kubectl prints "Handling connection for N" per connection: drained so it never blocks.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(PortForward {
        child,
        local,
        stderr: Some(stderr),
    })
}

impl PortForward {
    /// Waits (bounded) for kubectl to exit; its exit code and stderr.
    pub async fn exited(&mut self, limit: Duration) -> Option<(i32, String)> {
        let code = tokio::time::timeout(limit, self.child.wait())
            .await
            .ok()?
            .ok()?;
        Some((code.code().unwrap_or(-1), self.stderr().await))
    }

    /// What kubectl wrote on stderr (once it exited: everything).
    pub async fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), e.read_to_string(&mut text)).await;
        }
        text
    }

    /// Opens one connection on the first local port, sends a byte and reads to its end, then
    /// waits (bounded) for kubectl to exit, as it does after a connection's error; its stderr.
    pub async fn fail_one_connection(&mut self) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.local[0]))
            .await
            .expect("kubectl accepts the connection");
        let _ = s.write_all(b"x").await;
        let mut b = Vec::new();
        let _ = s.read_to_end(&mut b).await;
        let (_, stderr) = self
            .exited(Duration::from_secs(30))
            .await
            .expect("kubectl ends after the failed connection");
        stderr
    }

    /// Ends kubectl as Ctrl-C would, and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// `GET path` on 127.0.0.1:`port` (HTTP/1.1, `Connection: close`): status line and body.
pub async fn http_get(port: u16, path: &str) -> std::io::Result<(String, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut all = Vec::new();
    s.read_to_end(&mut all).await?;
    let Some(end) = all.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(std::io::Error::other(format!(
            "no HTTP answer: {:?}",
            String::from_utf8_lossy(&all[..all.len().min(200)])
        )));
    };
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let status = head.lines().next().unwrap_or("").to_string();
    Ok((status, all[end + 4..].to_vec()))
}

/// `GET /bytes/N` streamed and checked against the devcluster's pattern without holding it:
/// how many body bytes came and whether every one was right.
pub async fn fetch_pattern(port: u16, n: u64) -> std::io::Result<(u64, bool)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(
        format!("GET /bytes/{n} HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut r = BufReader::with_capacity(256 << 10, s);
    // The head, line by line.
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::other("the answer ended in its head"));
        }
        if line == "\r\n" {
            break;
        }
    }
    let (mut got, mut exact) = (0u64, true);
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let k = r.read(&mut buf).await?;
        if k == 0 {
            break;
        }
        exact &= buf[..k]
            .iter()
            .enumerate()
            .all(|(i, b)| *b == podgate_devcluster::runtime::ports::pattern(got + i as u64));
        got += k as u64;
    }
    Ok((got, exact))
}

/// `data` through the echo port and back, the write side closed after it.
pub async fn echo(port: u16, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let s = TcpStream::connect(("127.0.0.1", port)).await?;
    let (mut r, mut w) = s.into_split();
    let data = data.to_vec();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await?;
        w.shutdown().await
    });
    let mut back = Vec::new();
    r.read_to_end(&mut back).await?;
    writer.await.map_err(std::io::Error::other)??;
    Ok(back)
}

/// What [`python`] prints.
#[derive(serde::Deserialize, Debug)]
pub struct PythonRun {
    /// `GET /` on port 80.
    pub http: String,
    /// The echo of a 64 KiB pattern on port 7, byte-exact.
    pub echoed: bool,
    /// The error the client raised for port 9 (nothing listens), if any.
    pub refused: Option<String>,
}

/// `kubernetes.stream.portforward(connect_get_namespaced_pod_portforward, ...)` on
/// `shop/web-0` ports 80, 7 and 9 (the v4 channel protocol, the way the client's own example
/// uses its sockets).
const SCRIPT: &str = r#"
import json, sys
from kubernetes import client, config
from kubernetes.stream import portforward

config.load_kube_config(config_file=sys.argv[1], context=(sys.argv[2] or None))
api = client.CoreV1Api()
pf = portforward(api.connect_get_namespaced_pod_portforward, "web-0", "shop", ports="80,7")

# A port's connection ends only when every port's does (the channel protocol has no
# per-connection close): read what is expected, not to the end.
def exchange(sock, data, done):
    sock.setblocking(True)
    sock.settimeout(30)
    sock.sendall(data)
    got = b""
    while not done(got):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got

http = pf.socket(80)
body = exchange(http, b"GET / HTTP/1.1\r\nHost: pod\r\n\r\n", lambda b: b.endswith(b"\n\r\nweb-0\n"))
http.close()
data = bytes((i * 7919) % 256 for i in range(65536))
echo = pf.socket(7)
echoed = exchange(echo, data, lambda b: len(b) >= len(data)) == data
echo.close()
err80 = pf.error(80)
pf.close()

refused = None
pf9 = portforward(api.connect_get_namespaced_pod_portforward, "web-0", "shop", ports="9")
s9 = pf9.socket(9)
s9.setblocking(True)
s9.settimeout(30)
try:
    s9.sendall(b"x")
    s9.recv(1)
except Exception:
    pass
refused = pf9.error(9)
pf9.close()
print(json.dumps({"http": body.split(b"\r\n\r\n", 1)[-1].decode(), "echoed": echoed,
                  "refused": refused}), flush=True)
"#;

/// Runs [`SCRIPT`] with `python` against `kubeconfig` (in `context`).
pub async fn python(python: &Path, kubeconfig: &Path, context: Option<&str>) -> PythonRun {
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new(python)
            .arg("-c")
            .arg(SCRIPT)
            .arg(kubeconfig)
            .arg(context.unwrap_or(""))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python port-forward finishes within 90 s")
    .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "the Python port-forward printed no result ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
