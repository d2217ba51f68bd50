//! Raw HTTP/1.1, for what no client library sends as it is (SPDY upgrades, header bytes that
//! are not UTF-8, half a request) and to see answers as they are: over TLS to the gateway or a
//! devcluster, or plain to an admin listener, a provider or Prometheus.

use crate::tls::{self, Endpoint};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// How long a server has to answer in full.
const ANSWER: Duration = Duration::from_secs(10);

/// An HTTP/1.1 answer as read off the socket.
#[derive(Debug)]
pub struct Answer {
    /// The status code; 0 when nothing (or no status line) came back.
    pub code: u16,
    /// Everything before the blank line: the status line and the headers.
    pub head: String,
    /// The headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked when it came chunked.
    pub body: String,
    /// The same body as bytes, for binary answers (a downloaded file).
    pub bytes: Vec<u8>,
}

impl Answer {
    /// The first header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.head, self.body))
    }
}

/// `method path` on `to` over TLS with `headers` and `body` (`Host` and `Connection: close`
/// added; `Content-Length` too when there is a body, or for a POST).
pub async fn request(
    to: &impl Endpoint,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    send(to, &head(to.addr(), method, path, headers, body)).await
}

/// `GET path` on `to` over TLS, with `token` as a bearer (none when empty).
pub async fn get(to: &impl Endpoint, path: &str, token: &str) -> Answer {
    let bearer = format!("Bearer {token}");
    let headers: &[(&str, &str)] = if token.is_empty() {
        &[]
    } else {
        &[("Authorization", &bearer)]
    };
    request(to, "GET", path, headers, "").await
}

/// `raw` written to `to` over TLS byte for byte as given (header values that are not ASCII,
/// or not even UTF-8, go out unmodified), and the answer.
pub async fn send(to: &impl Endpoint, raw: &[u8]) -> Answer {
    let mut stream = tls::connect(to).await;
    exchange(&mut stream, raw)
        .await
        .unwrap_or_else(|e| panic!("{} {e}", to.addr()))
}

/// [`request`] over plain TCP (an admin listener, a provider, Prometheus); `Err` when the
/// server cannot be reached or does not answer in time.
pub async fn plain(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Answer> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    exchange(&mut stream, &head(addr, method, path, headers, body)).await
}

fn head(
    host: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head.push_str(body);
    head.into_bytes()
}

/// Writes `raw` on an open connection and reads the answer: until the server closes, or the
/// body is complete (by `Content-Length` or the last chunk; the server may keep the
/// connection), within 10 s. The write may fail half-way (a server may answer and close
/// early); what was answered counts. `Err` only when the answer did not end in time.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    raw: &[u8],
) -> std::io::Result<Answer> {
    let _ = stream.write_all(raw).await;
    let mut read = Vec::new();
    let ended = tokio::time::timeout(ANSWER, async {
        let mut buf = [0u8; 8192];
        while !complete(&read) {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => read.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    if ended.is_err() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "no complete answer within {ANSWER:?}; so far: {:?}",
                String::from_utf8_lossy(&read)
            ),
        ));
    }
    Ok(parse(&read))
}

/// Where the head ends (the index of the blank line's `\r\n\r\n`).
fn head_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n")
}

fn header_of(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

fn chunked(head: &str) -> bool {
    header_of(head, "transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
}

/// Whether `raw` holds a whole answer with a known end.
fn complete(raw: &[u8]) -> bool {
    let Some(end) = head_end(raw) else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]);
    let body = &raw[end + 4..];
    if chunked(&head) {
        return dechunk(body).1;
    }
    header_of(&head, "content-length")
        .and_then(|l| l.parse::<usize>().ok())
        .is_some_and(|len| body.len() >= len)
}

/// The payload of a chunked body, and whether its last chunk arrived.
fn dechunk(mut body: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(line) = body.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let size = String::from_utf8_lossy(&body[..line]);
        let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16) else {
            return (out, false);
        };
        if n == 0 {
            return (out, true);
        }
        let rest = &body[line + 2..];
        if rest.len() < n {
            out.extend_from_slice(rest);
            return (out, false);
        }
        out.extend_from_slice(&rest[..n]);
        body = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
}

/// An answer as read off a socket (complete or not).
fn parse(raw: &[u8]) -> Answer {
    let (head, body) = match head_end(raw) {
        Some(end) => (
            String::from_utf8_lossy(&raw[..end]).into_owned(),
            &raw[end + 4..],
        ),
        None => (String::from_utf8_lossy(raw).into_owned(), &[][..]),
    };
    let code = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = if chunked(&head) {
        dechunk(body).0
    } else {
        body.to_vec()
    };
    Answer {
        code,
        head,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        bytes: body,
    }
}

/// Checks that `body` is a `metav1.Status` for HTTP `code` (kind, apiVersion, status, and
/// `code` equal to the HTTP code, a message) and returns it.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined_and_their_end_is_seen() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n";
        assert!(complete(raw));
        let a = parse(raw);
        assert_eq!((a.code, a.body.as_str()), (200, "{\"a\":1}"));
        assert_eq!(a.header("TRANSFER-ENCODING"), Some("chunked"));
        assert!(!complete(&raw[..raw.len() - 5]));
    }

    #[test]
    fn content_length_ends_an_answer_and_nothing_is_code_zero() {
        let raw = b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}";
        assert!(complete(raw));
        assert!(!complete(&raw[..raw.len() - 1]));
        assert_eq!(parse(raw).json(), serde_json::json!({}));
        let nothing = parse(b"");
        assert_eq!((nothing.code, nothing.head.as_str()), (0, ""));
    }
}
