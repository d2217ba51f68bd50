//! The HTTP connection to one cluster's API server, built from its `kube::Config`.
//!
//! kube-rs's own `Client` only accepts whole-buffer request bodies, and a proxy must stream
//! them (`kubectl apply` of a large file, `kubectl cp`), so the gateway assembles the same
//! layers kube-rs uses (TLS from the kubeconfig, base URI, credentials with refresh,
//! impersonation headers) over a hyper client whose request body is any stream.

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt as _;
use std::time::Duration;
use tower::{ServiceBuilder, ServiceExt as _};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// What the gateway sends upstream: the client's body, streamed.
pub type RequestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

type Svc = tower::util::BoxCloneSyncService<Request<RequestBody>, Response<Incoming>, BoxError>;

#[derive(Clone)]
pub struct Upstream {
    svc: Svc,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No TCP or TLS connection could be made: the cluster is unreachable.
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("{0}")]
    Other(String),
}

impl Upstream {
    pub fn new(config: &kube::Config, connect_timeout: Duration) -> Result<Upstream, kube::Error> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let https = config.rustls_https_connector_with_connector(http)?;
        // The bound covers TCP and the TLS handshake, so a cluster that accepts and then
        // stalls is "unreachable" in bounded time. No read or write timeouts: relayed
        // sessions and watches are long and quiet, and their liveness is the relay's job.
        let mut https = hyper_timeout::TimeoutConnector::new(https);
        https.set_connect_timeout(Some(connect_timeout));
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build::<_, RequestBody>(https);
        let svc = ServiceBuilder::new()
            .layer(config.base_uri_layer())
            .option_layer(config.auth_layer()?)
            .layer(config.extra_headers_layer()?)
            .service(client.map_err(BoxError::from))
            .map_err(BoxError::from);
        Ok(Upstream { svc: Svc::new(svc) })
    }

    /// Sends one request; the response body streams.
    pub async fn send(
        &self,
        req: Request<RequestBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        // `call` on the boxed service returns a boxed `Send` future; going through it (rather
        // than `oneshot`) keeps rustc's `Send` inference out of the service's generics.
        let mut svc = self.svc.clone();
        std::future::poll_fn(|cx| tower::Service::poll_ready(&mut svc, cx))
            .await
            .map_err(classify)?;
        tower::Service::call(&mut svc, req).await.map_err(classify)
    }
}

fn classify(e: BoxError) -> UpstreamError {
    let connect = e
        .downcast_ref::<hyper_util::client::legacy::Error>()
        .is_some_and(|e| e.is_connect());
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
