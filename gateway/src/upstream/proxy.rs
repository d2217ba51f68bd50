//! Every non-upgrade request under `/clusters/{id}/`: forwarded with the body streamed both
//! ways (watches and `logs -f` stay open as long as the cluster keeps them).

use crate::clusters::Cluster;
use crate::http::{Body, passthrough, status};
use crate::upstream::{BoxError, UpstreamError};
use http::{Request, Response};
use http_body_util::BodyExt as _;
use podgate_config::Identity;
use podgate_protocol::Status;

pub async fn forward(
    gw: &crate::gateway::Gateway,
    cluster: &Cluster,
    req: Request<hyper::body::Incoming>,
    identity: &Identity,
    upstream_path: &str,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let mut up = Request::new(body.map_err(BoxError::from).boxed_unsync());
    *up.method_mut() = parts.method.clone();
    *up.uri_mut() = match upstream_path.parse() {
        Ok(u) => u,
        Err(_) => return status(&Status::bad_request("the request path is not a valid URI")),
    };
    *up.headers_mut() = crate::headers::forward(&parts.headers, identity, cluster.impersonate);
    let sent = std::time::Instant::now();
    match cluster.upstream.send(up).await {
        Ok(resp) => {
            gw.metrics
                .upstream_request(&cluster.id, Some(resp.status().as_u16()), sent.elapsed());
            passthrough(resp)
        }
        Err(e) => {
            gw.metrics
                .upstream_request(&cluster.id, None, sent.elapsed());
            unreachable(&cluster.id, &e)
        }
    }
}

/// 503 naming the cluster when it cannot be reached, 502 for other upstream failures.
pub fn unreachable(cluster: &str, e: &UpstreamError) -> Response<Body> {
    tracing::warn!(cluster, "upstream request failed: {e}");
    match e {
        UpstreamError::Connect(detail) => status(&Status::api_error(
            503,
            "ServiceUnavailable",
            format!("cluster \"{cluster}\" is unreachable from podgate: {detail}"),
        )),
        UpstreamError::Other(detail) => status(&Status::api_error(
            502,
            "InternalError",
            format!("request to cluster \"{cluster}\" failed: {detail}"),
        )),
    }
}
