//! A [`Link`]'s controls over plain HTTP on loopback, for a driver in another process (the
//! node driver `gateway/web/tests/resume.mjs`): `POST /reset` ([`Link::cut_reset`]),
//! `POST /break` ([`Link::break_new`]), `POST /silent` ([`Link::go_silent`]), `POST /restore`
//! ([`Link::restore`]), `GET /stats` ([`Link::stats`] as JSON: `accepted`, `refused`, `live`,
//! `silent`, `broken`); any other `GET` path is answered by what the test serves there (the
//! gateway's metrics, say).

use crate::link::Link;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// What the control endpoint answers for the `GET` paths it does not know itself: the body,
/// or `None` for a 404.
pub type Extra = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Serves `link`'s controls on `127.0.0.1:0`, the other `GET` paths answered by `extra` (200
/// with its text, or 404 for `None`): the address, and the task that serves (it ends when
/// aborted).
pub async fn serve(link: &Arc<Link>, extra: Extra) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("the control address");
    let link = link.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (link, extra) = (link.clone(), extra.clone());
            tokio::spawn(async move {
                let _ = control(stream, &link, extra.as_ref()).await;
            });
        }
    });
    (addr, task)
}

/// One control request: the request head read, the answer written, the connection closed.
async fn control(
    mut stream: TcpStream,
    link: &Link,
    extra: &(dyn Fn(&str) -> Option<String> + Send + Sync),
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 16 << 10 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (code, body) = match (method, path) {
        ("POST", "/reset") => {
            link.cut_reset().await;
            (200, "reset\n".to_string())
        }
        ("POST", "/break") => {
            link.break_new();
            (200, "broken\n".to_string())
        }
        ("POST", "/silent") => {
            link.go_silent().await;
            (200, "silent\n".to_string())
        }
        ("POST", "/restore") => {
            link.restore();
            (200, "restored\n".to_string())
        }
        ("GET", "/stats") => {
            let s = link.stats();
            let json = serde_json::json!({
                "accepted": s.accepted,
                "refused": s.refused,
                "live": s.live,
                "silent": s.silent,
                "broken": s.broken,
            });
            (200, json.to_string())
        }
        ("GET", p) => match extra(p) {
            Some(text) => (200, text),
            None => (404, format!("no {p}\n")),
        },
        _ => (405, "method not allowed\n".to_string()),
    };
    let answer = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        if code == 200 { "OK" } else { "Error" },
        body.len()
    );
    stream.write_all(answer.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_control_endpoint_steers_it() {
        let target = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let link = Arc::new(Link::to(target.local_addr().expect("addr")).await);
        let (control, _task) = serve(
            &link,
            Arc::new(|p: &str| (p == "/hello").then(|| "hi".to_string())),
        )
        .await;
        let post = |path: &'static str| crate::http::plain(control, "POST", path, &[], "");
        let a = post("/break").await.expect("an answer");
        assert_eq!(a.code, 200, "{a:?}");
        assert!(link.stats().broken);
        let a = post("/restore").await.expect("an answer");
        assert_eq!(a.code, 200, "{a:?}");
        assert!(!link.stats().broken);
        // A connection through, then the stats and a reset over HTTP.
        let mut client = TcpStream::connect(link.addr()).await.expect("connect");
        let (mut server, _) = target.accept().await.expect("accept");
        client.write_all(b"x").await.expect("write");
        let mut byte = [0u8; 1];
        server.read_exact(&mut byte).await.expect("relayed");
        let stats = crate::http::plain(control, "GET", "/stats", &[], "")
            .await
            .expect("an answer");
        let json = stats.json();
        assert_eq!(
            (
                &json["accepted"],
                &json["refused"],
                &json["live"],
                &json["silent"],
                &json["broken"]
            ),
            (&1.into(), &0.into(), &1.into(), &0.into(), &false.into()),
            "{stats:?}"
        );
        let a = post("/reset").await.expect("an answer");
        assert_eq!(a.code, 200, "{a:?}");
        assert_eq!(link.live(), 0);
        let a = post("/silent").await.expect("an answer");
        assert_eq!(a.code, 200, "{a:?}");
        assert!(link.stats().broken);
        let hello = crate::http::plain(control, "GET", "/hello", &[], "")
            .await
            .expect("an answer");
        assert_eq!((hello.code, hello.body.as_str()), (200, "hi"));
        let missing = crate::http::plain(control, "GET", "/nope", &[], "")
            .await
            .expect("an answer");
        assert_eq!(missing.code, 404);
    }
}
