//! The HTTP connection to one cluster's API server, built from its `kube::Config`.
//!
//! kube-rs's own `Client` only accepts whole-buffer request bodies, and a proxy must stream
//! them (`kubectl apply` of a large file, `kubectl cp`), so the gateway assembles the same
//! layers kube-rs uses (TLS from the kubeconfig, base URI, credentials with refresh,
//! impersonation headers) over a hyper client whose request body is any stream.

use bytes::Bytes;
use http::HeaderValue;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::ConfigExt as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tower::{ServiceBuilder, ServiceExt as _};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// What the gateway sends upstream: the client's body, streamed.
pub type RequestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

type Svc = tower::util::BoxCloneSyncService<Request<RequestBody>, Response<Incoming>, BoxError>;

/// How one cluster's connections are made and kept.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamOptions {
    /// Bounds TCP and the TLS handshake.
    pub connect_timeout: Duration,
    /// An idle pooled connection is closed after this; and a health probe of a cluster that
    /// nobody used for this long does not keep its connection.
    pub idle_timeout: Duration,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions::from(&podgate_config::UpstreamConfig::default())
    }
}

impl From<&podgate_config::UpstreamConfig> for UpstreamOptions {
    fn from(c: &podgate_config::UpstreamConfig) -> Self {
        UpstreamOptions {
            connect_timeout: c.connect_timeout.get(),
            idle_timeout: c.idle_timeout.get(),
        }
    }
}

#[derive(Clone)]
pub struct Upstream {
    svc: Svc,
    /// When a person last sent a request (milliseconds since [`epoch`], 0 for never).
    /// Health probes do not set it: what keeps a connection open is people's use.
    last_used: Arc<AtomicU64>,
    idle_timeout: Duration,
    /// How this cluster's TLS connections were made (full or resumed handshakes).
    handshakes: Arc<Handshakes>,
    /// Keeps the TLS parts this cluster shares with others alive (see `tls.rs`).
    _tls: Option<Arc<super::tls::SharedTls>>,
    /// Keeps its apiserver's resumption store alive (shared with the ids naming it); none for
    /// a cluster reached through agent tunnels.
    _store: Option<super::tls::Store>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No TCP or TLS connection could be made: the cluster is unreachable.
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("{0}")]
    Other(String),
}

/// The process's time origin for `last_used` (monotonic, so a clock step changes nothing).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    // At least 1: 0 means "never used".
    (epoch().elapsed().as_millis() as u64).max(1)
}

impl Upstream {
    pub fn new(config: &kube::Config, options: &UpstreamOptions) -> Result<Upstream, kube::Error> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let tls = super::tls::for_cluster(config)?;
        let mut builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.config)
            .https_or_http();
        if let Some(name) = config.tls_server_name.as_ref() {
            let name = rustls::pki_types::ServerName::try_from(name.clone()).map_err(|e| {
                kube::Error::RustlsTls(kube::client::RustlsTlsError::InvalidServerName(e))
            })?;
            builder =
                builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name));
        }
        let handshakes = Arc::new(Handshakes::default());
        let https = Counted {
            inner: builder.enable_http1().wrap_connector(http),
            handshakes: handshakes.clone(),
            connect_timeout: options.connect_timeout,
        };
        // The timer makes the pool close idle connections on time, not only when the next
        // request finds them stale: an unused cluster holds no file descriptor.
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(options.idle_timeout)
            .pool_timer(TokioTimer::new())
            .build::<_, RequestBody>(https);
        let svc = ServiceBuilder::new()
            .layer(config.base_uri_layer())
            .option_layer(config.auth_layer()?)
            .layer(config.extra_headers_layer()?)
            .service(client.map_err(BoxError::from))
            .map_err(BoxError::from);
        Ok(Upstream {
            svc: Svc::new(svc),
            last_used: Arc::new(AtomicU64::new(0)),
            idle_timeout: options.idle_timeout,
            handshakes,
            _tls: tls.keep,
            _store: Some(tls.store),
        })
    }

    /// The upstream path of a cluster reached through its agents' tunnels: the same
    /// interface, so nothing above it notices (see `crate::tunnel`).
    pub fn tunnel(links: Arc<crate::tunnel::links::Links>, options: &UpstreamOptions) -> Upstream {
        Upstream {
            svc: Svc::new(crate::tunnel::service::Tunnel::new(links)),
            last_used: Arc::new(AtomicU64::new(0)),
            idle_timeout: options.idle_timeout,
            handshakes: Arc::new(Handshakes::default()),
            _tls: None,
            _store: None,
        }
    }

    /// Sends one request for a person; the response body streams.
    pub async fn send(
        &self,
        req: Request<RequestBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        self.last_used.store(now_ms(), Ordering::Relaxed);
        self.call(req).await.map_err(classify)
    }

    /// Sends a health probe. It does not count as use, and when nobody used the cluster
    /// within the idle timeout it asks for its connection to be closed after the answer
    /// (`Connection: close`): probes alone never keep a connection open.
    pub async fn probe(
        &self,
        mut req: Request<RequestBody>,
    ) -> Result<Response<Incoming>, BoxError> {
        if !self.used_within(self.idle_timeout) {
            req.headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        self.call(req).await
    }

    /// Whether a person sent a request within `window`.
    pub fn used_within(&self, window: Duration) -> bool {
        match self.last_used.load(Ordering::Relaxed) {
            0 => false,
            at => now_ms().saturating_sub(at) < window.as_millis() as u64,
        }
    }

    /// TLS connections made to this cluster so far: `(full, resumed)` handshakes. A probe of
    /// a cluster nobody uses is a new connection each time, and what it costs depends on
    /// whether it resumes (no certificate sent or verified): the tests check it does.
    pub fn tls_handshakes(&self) -> (u64, u64) {
        (
            self.handshakes.full.load(Ordering::Relaxed),
            self.handshakes.resumed.load(Ordering::Relaxed),
        )
    }

    /// Whether this and `other` share one TLS configuration (same CA and identity): what the
    /// fleet tests and benchmark check.
    pub fn shares_tls_with(&self, other: &Upstream) -> bool {
        match (&self._tls, &other._tls) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    async fn call(&self, req: Request<RequestBody>) -> Result<Response<Incoming>, BoxError> {
        // `call` on the boxed service returns a boxed `Send` future; going through it (rather
        // than `oneshot`) keeps rustc's `Send` inference out of the service's generics.
        let mut svc = self.svc.clone();
        std::future::poll_fn(|cx| tower::Service::poll_ready(&mut svc, cx)).await?;
        tower::Service::call(&mut svc, req).await
    }
}

/// Counts of one cluster's TLS handshakes by kind.
#[derive(Default)]
struct Handshakes {
    full: AtomicU64,
    resumed: AtomicU64,
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;
type HttpsStream = hyper_rustls::MaybeHttpsStream<hyper_util::rt::TokioIo<tokio::net::TcpStream>>;

/// The TLS connector, bounding and counting each connection's handshake.
///
/// The bound covers TCP and the TLS handshake, so a cluster that accepts and then stalls is
/// "unreachable" in bounded time. No read or write timeouts: relayed sessions and watches are
/// long and quiet, and their liveness is the relay's job. (hyper-timeout's connector did the
/// same, but wrapped every connection for its life in two timers it never armed: two
/// `tokio::time::Sleep`s of 112 bytes with their state, about 270 bytes
/// per session.)
#[derive(Clone)]
struct Counted {
    inner: Https,
    handshakes: Arc<Handshakes>,
    connect_timeout: Duration,
}

impl tower::Service<http::Uri> for Counted {
    type Response = HttpsStream;
    type Error = BoxError;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<HttpsStream, BoxError>> + Send + 'static>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connect = self.inner.call(uri);
        let handshakes = self.handshakes.clone();
        let bound = self.connect_timeout;
        Box::pin(async move {
            let stream = tokio::time::timeout(bound, connect).await.map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no TCP connection and TLS handshake within {bound:?}"),
                )
            })??;
            if let hyper_rustls::MaybeHttpsStream::Https(tls) = &stream {
                let counter = match tls.inner().get_ref().1.handshake_kind() {
                    Some(rustls::HandshakeKind::Resumed) => &handshakes.resumed,
                    _ => &handshakes.full,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Ok(stream)
        })
    }
}

fn classify(e: BoxError) -> UpstreamError {
    let connect = e
        .downcast_ref::<hyper_util::client::legacy::Error>()
        .is_some_and(|e| e.is_connect())
        || e.is::<crate::tunnel::service::NoAgent>();
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if connect {
        UpstreamError::Connect(text)
    } else {
        UpstreamError::Other(text)
    }
}

pub fn empty_body() -> RequestBody {
    use http_body_util::BodyExt as _;
    http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
