//! GET requests the index makes to a cluster (lists, watches, access checks), as podgate's
//! own identity or impersonating someone, each counted in `podgate_upstream_requests_total`.

use crate::upstream::{Cluster, UpstreamError, empty_body};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body_util::BodyExt as _;
use podgate_auth::Identity;
use podgate_metrics::Metrics;

/// The largest list page or access answer read (a page of 500 pods is a few MiB).
pub const MAX_BODY: usize = 64 << 20;

/// Sends `GET path` to `cluster`, impersonating `who` when the cluster impersonates (else as
/// podgate's own identity, which is then everyone's there).
pub async fn open(
    metrics: &Metrics,
    cluster: &Cluster,
    path: &str,
    who: Option<&Identity>,
) -> Result<Response<hyper::body::Incoming>, String> {
    let mut req = Request::new(empty_body());
    *req.uri_mut() = path
        .parse()
        .map_err(|_| format!("{path} is not a valid request path"))?;
    req.headers_mut()
        .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    if cluster.impersonate
        && let Some(who) = who
    {
        who.write_impersonation(req.headers_mut());
    }
    let sent = std::time::Instant::now();
    match cluster.upstream.send(req).await {
        Ok(resp) => {
            metrics.upstream_request(&cluster.id, Some(resp.status().as_u16()), sent.elapsed());
            Ok(resp)
        }
        Err(e) => {
            metrics.upstream_request(&cluster.id, None, sent.elapsed());
            Err(match e {
                UpstreamError::Connect(d) => format!("cluster is unreachable: {d}"),
                UpstreamError::Other(d) => format!("request failed: {d}"),
            })
        }
    }
}

/// [`open`], and the whole body (at most [`MAX_BODY`]).
pub async fn get(
    metrics: &Metrics,
    cluster: &Cluster,
    path: &str,
    who: Option<&Identity>,
) -> Result<(u16, Bytes), String> {
    let resp = open(metrics, cluster, path, who).await?;
    let code = resp.status().as_u16();
    let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the answer failed: {e}"))?
        .to_bytes();
    Ok((code, body))
}

/// The `message` of a `Status` body, or the code alone.
pub fn message(code: u16, body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .map_or_else(|| format!("HTTP {code}"), |m| format!("HTTP {code}: {m}"))
}
