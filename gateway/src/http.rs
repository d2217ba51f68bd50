//! Response helpers for the gateway: the shared `Status` rendering, and passing an upstream
//! response through with its body streaming.

pub use podgate_protocol::http::{Body, full, json, status, with_type};

use http::Response;
use http_body_util::BodyExt as _;

/// The cluster's response, streamed to the client unchanged but for hop-by-hop headers and
/// `Set-Cookie`: every cluster is served from the gateway's origin, so a cookie set by one
/// (a service proxied through it, say) could overwrite the person's podgate session.
pub fn passthrough(resp: Response<hyper::body::Incoming>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    for h in crate::headers::HOP_BY_HOP {
        parts.headers.remove(*h);
    }
    parts.headers.remove(http::header::SET_COOKIE);
    Response::from_parts(parts, body.map_err(std::io::Error::other).boxed())
}
