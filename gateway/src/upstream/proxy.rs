//! Every non-upgrade request under `/clusters/{id}/`: forwarded with the body streamed both
//! ways (watches and `logs -f` stay open as long as the cluster keeps them).

use super::{BoxError, Cluster, UpstreamError};
use crate::http::{Body, status};
use http::{Request, Response};
use http_body_util::BodyExt as _;
use podgate_auth::Identity;
use podgate_metrics::Metrics;
use podgate_protocol::Status;

/// Sends `req` to `cluster` as `identity`, at `upstream_path` (the path and query the cluster
/// sees, already judged by the caller).
pub async fn forward(
    metrics: &Metrics,
    cluster: &Cluster,
    req: Request<hyper::body::Incoming>,
    identity: &Identity,
    upstream_path: &str,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = body.map_err(BoxError::from).boxed_unsync();
    send(metrics, cluster, &parts, body, identity, upstream_path).await
}

/// As [`forward`], for a request whose body the gateway has already read (`parts` are the
/// request's head, `body` all of its body): a self review it judged before asking the cluster.
pub async fn forward_read(
    metrics: &Metrics,
    cluster: &Cluster,
    parts: &http::request::Parts,
    body: bytes::Bytes,
    identity: &Identity,
    upstream_path: &str,
) -> Response<Body> {
    let body = http_body_util::Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync();
    send(metrics, cluster, parts, body, identity, upstream_path).await
}

async fn send(
    metrics: &Metrics,
    cluster: &Cluster,
    parts: &http::request::Parts,
    body: super::RequestBody,
    identity: &Identity,
    upstream_path: &str,
) -> Response<Body> {
    let mut up = Request::new(body);
    *up.method_mut() = parts.method.clone();
    *up.uri_mut() = match upstream_path.parse() {
        Ok(u) => u,
        Err(_) => return status(&Status::bad_request("the request path is not a valid URI")),
    };
    *up.headers_mut() = super::headers::forward(&parts.headers, identity, cluster.impersonate);
    let sent = std::time::Instant::now();
    match cluster.upstream.send(up).await {
        Ok(resp) => {
            metrics.upstream_request(&cluster.id, Some(resp.status().as_u16()), sent.elapsed());
            passthrough(resp)
        }
        Err(e) => {
            metrics.upstream_request(&cluster.id, None, sent.elapsed());
            unreachable(&cluster.id, &e)
        }
    }
}

/// The cluster's response, streamed to the client unchanged but for hop-by-hop headers and
/// `Set-Cookie`: every cluster is served from the gateway's origin, so a cookie set by one
/// (a service proxied through it, say) could overwrite the person's podgate session.
pub fn passthrough(resp: Response<hyper::body::Incoming>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    for h in super::headers::HOP_BY_HOP {
        parts.headers.remove(*h);
    }
    parts.headers.remove(http::header::SET_COOKIE);
    Response::from_parts(parts, body.map_err(std::io::Error::other).boxed())
}

/// 503 naming the cluster when it cannot be reached, 502 for other upstream failures.
pub fn unreachable(cluster: &str, e: &UpstreamError) -> Response<Body> {
    tracing::warn!(cluster, "upstream request failed: {e}");
    status(&unreachable_status(cluster, e))
}

/// The `Status` of [`unreachable`].
pub fn unreachable_status(cluster: &str, e: &UpstreamError) -> Status {
    match e {
        UpstreamError::Connect(detail) => Status::api_error(
            503,
            "ServiceUnavailable",
            format!("cluster \"{cluster}\" is unreachable from podgate: {detail}"),
        ),
        UpstreamError::Other(detail) => Status::api_error(
            502,
            "InternalError",
            format!("request to cluster \"{cluster}\" failed: {detail}"),
        ),
    }
}
