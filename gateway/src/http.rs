//! Response helpers every layer answers with: the `Status` rendering shared with the
//! devcluster, and the body type of every response.

pub use podgate_protocol::http::{Body, full, json, status, with_type};

/// A response whose body never yields (an upgrade's 101) as the gateway's body type.
pub fn boxed_empty(
    resp: http::Response<http_body_util::Empty<bytes::Bytes>>,
) -> http::Response<Body> {
    use http_body_util::BodyExt as _;
    resp.map(|b| b.map_err(|never| match never {}).boxed())
}
