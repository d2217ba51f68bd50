//! One tunnel to one gateway address, dialled again whenever it ends: TCP, TLS verifying the
//! gateway's certificate for its name, `GET /podgate/agent/{cluster}` with the token, and on
//! `101` the agent's HTTP/2 server over the same connection.

use super::backoff::{self, Backoff};
use super::forward::Forward;
use crate::tunnel;
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Bounds TCP, TLS and the tunnel request.
const CONNECT: Duration = Duration::from_secs(10);
/// The most of a refusal's body read for the log.
const MAX_REFUSAL: usize = 8 << 10;

/// What every dialler of one agent shares.
pub struct Dialer {
    pub host: String,
    pub port: u16,
    pub cluster: String,
    pub token_file: PathBuf,
    pub tls: tokio_rustls::TlsConnector,
    pub server_name: rustls::pki_types::ServerName<'static>,
    pub forward: Forward,
}

/// Why one attempt ended.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("cannot read the token file {path}: {1}", path = .0.display())]
    Token(PathBuf, std::io::Error),
    #[error("the token file {} is empty", .0.display())]
    EmptyToken(PathBuf),
    #[error("cannot connect to {0}: {1}")]
    Connect(SocketAddr, String),
    #[error("no answer from {0} within {1:?}")]
    Timeout(SocketAddr, Duration),
    #[error("the gateway at {addr} refused the tunnel: HTTP {code}: {message}")]
    Refused {
        addr: SocketAddr,
        code: u16,
        message: String,
    },
    #[error("the tunnel to {0} failed: {1}")]
    Tunnel(SocketAddr, String),
}

impl Dialer {
    /// Dials `addr` until `stop`, again after every ending, waiting as [`Backoff`] says.
    pub async fn keep(self: Arc<Self>, addr: SocketAddr, stop: CancellationToken) {
        let mut backoff = Backoff::default();
        loop {
            let started = Instant::now();
            // `once` itself answers `stop` (a tunnel that is up drains first), so it is not
            // raced against it here.
            let outcome = self.once(addr, &stop).await;
            if stop.is_cancelled() {
                return;
            }
            match outcome {
                Ok(why) => {
                    tracing::warn!(cluster = %self.cluster, gateway = %addr, "tunnel ended: {why}")
                }
                Err(e) => {
                    tracing::warn!(cluster = %self.cluster, gateway = %addr, "{}", e.to_string().escape_debug())
                }
            }
            if started.elapsed() >= backoff::HEALTHY {
                backoff.reset();
            }
            let wait = backoff.next(backoff::unit());
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    fn token(&self) -> Result<HeaderValue, DialError> {
        let text = std::fs::read(&self.token_file)
            .map_err(|e| DialError::Token(self.token_file.clone(), e))?;
        let token = text.trim_ascii();
        if token.is_empty() {
            return Err(DialError::EmptyToken(self.token_file.clone()));
        }
        let mut value = b"Bearer ".to_vec();
        value.extend_from_slice(token);
        HeaderValue::from_bytes(&value).map_err(|_| {
            DialError::Token(
                self.token_file.clone(),
                std::io::Error::other("the token is not a header value"),
            )
        })
    }

    /// One tunnel, from dialling to its end (`Ok`: why it ended once it had been up).
    async fn once(&self, addr: SocketAddr, stop: &CancellationToken) -> Result<String, DialError> {
        let token = self.token()?;
        let upgraded = tokio::select! {
            r = tokio::time::timeout(CONNECT, self.open(addr, token)) => {
                r.map_err(|_| DialError::Timeout(addr, CONNECT))??
            }
            () = stop.cancelled() => return Ok("the agent is stopping".into()),
        };
        tracing::info!(cluster = %self.cluster, gateway = %addr, "tunnel up");
        let forward = self.forward.clone();
        let service = hyper::service::service_fn(move |req| {
            let forward = forward.clone();
            async move { forward.handle(req).await }
        });
        let conn = server_builder().serve_connection(upgraded, service);
        let mut conn = std::pin::pin!(conn);
        tokio::select! {
            r = &mut conn => match r {
                Ok(()) => Ok("the gateway closed it".into()),
                Err(e) => Ok(format!("it broke: {e}")),
            },
            () = stop.cancelled() => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                Ok("the agent is stopping".into())
            }
        }
    }

    async fn open(
        &self,
        addr: SocketAddr,
        token: HeaderValue,
    ) -> Result<hyper::upgrade::Upgraded, DialError> {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| DialError::Connect(addr, e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .tls
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| DialError::Connect(addr, format!("TLS: {e}")))?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| DialError::Connect(addr, e.to_string()))?;
        // Owned by this attempt: it ends with the connection, and the upgrade outlives it.
        self.forward.tasks.spawn(conn.with_upgrades());
        let authority = if self.port == 443 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let req = Request::get(format!("{}{}", tunnel::PATH_PREFIX, self.cluster))
            .header(header::HOST, authority)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, tunnel::UPGRADE)
            .header(header::AUTHORIZATION, token)
            .body(http_body_util::Empty::<Bytes>::new())
            .map_err(|e| DialError::Tunnel(addr, e.to_string()))?;
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| DialError::Tunnel(addr, e.to_string()))?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            let code = resp.status().as_u16();
            let body = http_body_util::Limited::new(resp.into_body(), MAX_REFUSAL)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let message = serde_json::from_slice::<podgate_protocol::Status>(&body)
                .ok()
                .and_then(|s| s.message)
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(DialError::Refused {
                addr,
                code,
                message,
            });
        }
        hyper::upgrade::on(resp)
            .await
            .map_err(|e| DialError::Tunnel(addr, e.to_string()))
    }
}

/// The HTTP/2 server end of a tunnel (see `tunnel::h2` for the windows).
fn server_builder() -> hyper::server::conn::http2::Builder<TokioExecutor> {
    use tunnel::h2;
    let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    b.timer(TokioTimer::new())
        .enable_connect_protocol()
        .adaptive_window(false)
        .initial_stream_window_size(h2::STREAM_WINDOW)
        .initial_connection_window_size(h2::CONNECTION_WINDOW)
        .max_frame_size(h2::MAX_FRAME)
        .max_send_buf_size(h2::MAX_SEND_BUFFER)
        .max_concurrent_streams(h2::MAX_STREAMS)
        .max_header_list_size(h2::MAX_REQUEST_HEADERS)
        .keep_alive_interval(tunnel::KEEPALIVE)
        .keep_alive_timeout(tunnel::KEEPALIVE_TIMEOUT);
    b
}
