//! HTTP responses for API paths: one boxed body type, JSON bodies, and `Status` errors with
//! the HTTP code the `Status` names, as kube-apiserver sends them.

use crate::Status;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, combinators::BoxBody};
use hyper::{Response, StatusCode, header};

pub type Body = BoxBody<Bytes, std::io::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn json(code: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|e| {
        format!(r#"{{"kind":"Status","apiVersion":"v1","status":"Failure","message":"encoding response: {e}","code":500}}"#).into_bytes()
    });
    with_type(code, "application/json", full(body))
}

pub fn with_type(code: StatusCode, content_type: &str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = code;
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// An API error as kube-apiserver sends it: the HTTP code is the Status's `code`.
pub fn status(s: &Status) -> Response<Body> {
    let code = s
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    with_type(code, "application/json", full(s.to_json()))
}
