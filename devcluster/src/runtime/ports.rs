//! What answers on a pod's ports: in-process servers, reached only through port-forward (the
//! devcluster has no pod network). A port-forward connection is a [`tokio::io::duplex`] pipe
//! whose far end the port's server runs on; the server is a future the caller drives with the
//! connection, so nothing outlives it.
//!
//! A port nothing listens on fails as containerd fails it, so kubectl prints what a real
//! cluster makes it print (see [`refused`]).

use crate::topology::{PodSpec, PortRuntime};
use std::future::Future;
use std::pin::Pin;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};

/// Bytes in flight per direction of a forwarded connection.
const PIPE: usize = 64 << 10;
/// The longest HTTP request head `builtin:http` reads.
const MAX_HEAD: usize = 16 << 10;
/// What `GET /bytes/N` may ask for (a few GiB: benchmarks, byte-exact transfers).
const MAX_BYTES: u64 = 16 << 30;

/// The server side of one forwarded connection.
pub type Server = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Connects to `port` of the pod: the client end of the connection and the future serving it,
/// or the runtime's error text when nothing listens there.
pub fn dial(
    spec: &PodSpec,
    pod_name: &str,
    sandbox: &Sandbox,
    port: u16,
) -> Result<(DuplexStream, Server), String> {
    let runtime = spec
        .all_containers()
        .flat_map(|c| &c.ports)
        .find(|p| p.container_port == port)
        .map(|p| p.runtime)
        .ok_or_else(|| refused(sandbox, port))?;
    let (client, server) = tokio::io::duplex(PIPE);
    let serve: Server = match runtime {
        PortRuntime::Http => Box::pin(http(server, pod_name.to_string())),
        PortRuntime::Echo => Box::pin(echo(server)),
    };
    Ok((client, serve))
}

/// A pod's sandbox as the runtime names it in errors.
pub struct Sandbox {
    /// The pod sandbox id (64 hex digits).
    pub id: String,
    /// Its network namespace's path.
    pub netns: String,
}

impl Sandbox {
    /// The sandbox of the pod whose uid is `uid` (stable per pod).
    pub fn of(uid: &str) -> Sandbox {
        let hex: String = uid.chars().filter(char::is_ascii_hexdigit).collect();
        Sandbox {
            id: format!("{hex}{hex}").chars().take(64).collect(),
            netns: format!("/var/run/netns/cni-{uid}"),
        }
    }
}

/// Nothing listens on `port`: containerd's wording (1.7/2.0 `sandbox_portforward_linux.go`),
/// inside the kubelet's (`portforward.go`: `error forwarding port %d to pod %s, uid %v: %v`,
/// with the sandbox id as the pod and an empty uid, as CRI runtimes report it).
pub fn refused(sandbox: &Sandbox, port: u16) -> String {
    let id = &sandbox.id;
    format!(
        "error forwarding port {port} to pod {id}, uid : failed to execute portforward in network namespace {netns:?}: \
         failed to connect to localhost:{port} inside namespace {id:?}, IPv4: dial tcp4 127.0.0.1:{port}: connect: connection refused \
         IPv6 dial tcp6 [::1]:{port}: connect: connection refused ",
        netns = sandbox.netns
    )
}

/// Every byte back until the client half-closes, then a half-close.
async fn echo(mut conn: DuplexStream) {
    let mut buf = vec![0u8; 32 << 10];
    loop {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if conn.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = conn.shutdown().await;
}

/// The byte at `offset` of every `GET /bytes/N` body: a pattern a client can check.
pub fn pattern(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// HTTP/1.1 with keep-alive: `GET /` answers `{pod}\n`, `GET /bytes/N` N pattern bytes, anything
/// else 404. Request bodies are read and dropped.
async fn http(mut conn: DuplexStream, pod: String) {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > MAX_HEAD {
                let _ = respond(&mut conn, "431 Request Header Fields Too Large", b"", true).await;
                return;
            }
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let request = lines.next().unwrap_or("");
        let mut parts = request.split(' ');
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let mut body_left = 0u64;
        let mut close = request.ends_with("HTTP/1.0");
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                body_left = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        // Drop the request body.
        let pending = (buf.len() as u64).min(body_left);
        buf.drain(..pending as usize);
        body_left -= pending;
        while body_left > 0 {
            let mut chunk = vec![0u8; 32 << 10];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => body_left = body_left.saturating_sub(n as u64),
            }
        }
        let served = match (method, path.strip_prefix("/bytes/")) {
            ("GET" | "HEAD", None) if path == "/" => {
                respond(&mut conn, "200 OK", format!("{pod}\n").as_bytes(), close).await
            }
            ("GET", Some(n)) => match n.parse::<u64>() {
                Ok(n) if n <= MAX_BYTES => bytes(&mut conn, n, close).await,
                _ => respond(&mut conn, "400 Bad Request", b"bad byte count\n", close).await,
            },
            _ => respond(&mut conn, "404 Not Found", b"404 page not found\n", close).await,
        };
        if served.is_err() || close {
            let _ = conn.shutdown().await;
            return;
        }
    }
}

async fn respond(
    conn: &mut DuplexStream,
    status: &str,
    body: &[u8],
    close: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body).await
}

async fn bytes(conn: &mut DuplexStream, n: u64, close: bool) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {n}\r\n{}\r\n",
        if close { "Connection: close\r\n" } else { "" }
    );
    conn.write_all(head.as_bytes()).await?;
    // 251 is prime to the chunk size, so one precomputed period serves every offset.
    let period: Vec<u8> = (0..251 * 128).map(pattern).collect();
    let mut sent = 0u64;
    while sent < n {
        let start = (sent % 251) as usize;
        let take = ((n - sent) as usize).min(period.len() - start);
        conn.write_all(&period[start..start + take]).await?;
        sent += take as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;

    fn web() -> PodSpec {
        Topology::builtin()
            .namespaces
            .into_iter()
            .flat_map(|n| n.pods)
            .find(|p| p.name == "web-0")
            .expect("web-0 in the built-in topology")
    }

    async fn exchange(port: u16, request: &[u8]) -> Vec<u8> {
        let (mut conn, serve) = dial(&web(), "web-0", &Sandbox::of("u"), port).expect("listening");
        let client = async {
            conn.write_all(request).await.unwrap();
            conn.shutdown().await.unwrap();
            let mut out = Vec::new();
            conn.read_to_end(&mut out).await.unwrap();
            out
        };
        let (out, ()) = tokio::join!(client, serve);
        out
    }

    #[tokio::test]
    async fn http_answers_the_pods_name_and_counted_bytes() {
        let out = exchange(80, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nweb-0\n"), "{text}");
        let out = exchange(
            80,
            b"GET /bytes/100000 HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n",
        )
        .await;
        let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let body = &out[split..split + 100_000];
        assert!(
            body.iter()
                .enumerate()
                .all(|(i, b)| *b == pattern(i as u64))
        );
        assert!(String::from_utf8_lossy(&out[split + 100_000..]).starts_with("HTTP/1.1 404"));
    }

    #[tokio::test]
    async fn echo_echoes_until_half_closed() {
        assert_eq!(exchange(7, b"ping\n").await, b"ping\n");
    }

    #[test]
    fn nothing_listening_reads_as_containerd_says_it() {
        let e = match dial(&web(), "web-0", &Sandbox::of("0123-abcd"), 8080) {
            Err(e) => e,
            Ok(_) => panic!("nothing listens on 8080"),
        };
        assert!(
            e.starts_with("error forwarding port 8080 to pod 0123abcd0123abcd, uid : "),
            "{e}"
        );
        assert!(
            e.contains("dial tcp4 127.0.0.1:8080: connect: connection refused"),
            "{e}"
        );
    }
}
