//! Response helpers for the gateway: the shared `Status` rendering, and passing an upstream
//! response through with its body streaming.

pub use podgate_protocol::http::{Body, full, json, status, with_type};

use http::Response;
use http_body_util::BodyExt as _;

/// Hop-by-hop response headers that must not be copied to the client.
const HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "trailer",
    "te",
];

/// The cluster's response, streamed to the client unchanged but for hop-by-hop headers.
pub fn passthrough(resp: Response<hyper::body::Incoming>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    for h in HOP {
        parts.headers.remove(*h);
    }
    Response::from_parts(parts, body.map_err(std::io::Error::other).boxed())
}
