//! Request paths as the API server will act on them.
//!
//! kube-apiserver percent-decodes the path before routing (Go's `url.URL.Path`), so
//! `/api/v1/namespaces/defaul%74/pods` is namespace `default` to it. A gateway that judges the
//! raw string judges something else than what the cluster acts on; one that normalises `..`
//! itself may still forward a path the next hop reads differently. So [`ApiPath`] decodes each
//! segment exactly as the server will, and refuses what could be read two ways: `.` and `..`
//! segments, empty segments (`//`), percent-encoded `/`, `.` or `%` inside a segment, broken
//! percent-encoding, and bytes that are not UTF-8. What it accepts, the raw path and the decoded
//! segments mean the same thing to every hop, so the raw path is forwarded unchanged.

use std::borrow::Cow;
use std::fmt;

/// Why a path is refused (answered with 400 and this message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the request path must start with '/'")]
    NotAbsolute,
    #[error("the request path has an empty segment ('//'), which servers read differently")]
    EmptySegment,
    #[error("the request path has a '.' or '..' segment; send the path it stands for instead")]
    DotSegment,
    #[error(
        "the request path percent-encodes '/', '.' or '%' inside a segment ({0}), which servers read differently"
    )]
    EncodedSeparator(String),
    #[error("the request path has a malformed percent-encoding")]
    BadEncoding,
    #[error("the request path does not decode to UTF-8")]
    NotUtf8,
}

/// A checked request path: its decoded segments, and the raw text they came from.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiPath<'a> {
    raw: &'a str,
    /// Decoded segments; a trailing slash adds none.
    segments: Vec<Cow<'a, str>>,
    /// Where each raw segment starts in `raw` (its '/'), so a suffix keeps its raw form.
    starts: Vec<usize>,
}

impl fmt::Debug for ApiPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.segments).finish()
    }
}

impl<'a> ApiPath<'a> {
    /// Checks and decodes `raw` (the path alone, without the query).
    pub fn parse(raw: &'a str) -> Result<ApiPath<'a>, PathError> {
        if !raw.starts_with('/') {
            return Err(PathError::NotAbsolute);
        }
        let mut segments = Vec::new();
        let mut starts = Vec::new();
        let body = &raw[1..];
        if !body.is_empty() {
            let body = body.strip_suffix('/').unwrap_or(body);
            let mut at = 0;
            for piece in body.split('/') {
                starts.push(at);
                at += piece.len() + 1;
                segments.push(decode_segment(piece)?);
            }
        }
        Ok(ApiPath {
            raw,
            segments,
            starts,
        })
    }

    /// The decoded segments, e.g. `["api", "v1", "namespaces", "default"]`.
    pub fn segments(&self) -> Vec<&str> {
        self.segments.iter().map(|s| s.as_ref()).collect()
    }

    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    pub fn segment(&self, i: usize) -> Option<&str> {
        self.segments.get(i).map(|s| s.as_ref())
    }

    /// The path as received.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The path from segment `i` on, as received: `/clusters/east/api/v1` from 2 is `/api/v1`
    /// (`/` when nothing is left).
    pub fn raw_from(&self, i: usize) -> &'a str {
        match self.starts.get(i) {
            Some(&at) => &self.raw[at..],
            None => "/",
        }
    }

    /// The path from segment `i` on, as its own [`ApiPath`].
    pub fn from(&self, i: usize) -> ApiPath<'a> {
        let skip = i.min(self.segments.len());
        let base = self.starts.get(skip).copied().unwrap_or(self.raw.len());
        ApiPath {
            raw: self.raw_from(i),
            segments: self.segments[skip..].to_vec(),
            starts: self.starts[skip..].iter().map(|s| s - base).collect(),
        }
    }
}

/// The pod and subresource of an exec or attach path
/// (`/api/v1/namespaces/{ns}/pods/{pod}/exec`), given its decoded segments.
pub fn pod_session<'a>(segments: &[&'a str]) -> Option<(&'a str, &'a str, crate::Subresource)> {
    match segments {
        ["api", "v1", "namespaces", ns, "pods", pod, "exec"] => {
            Some((ns, pod, crate::Subresource::Exec))
        }
        ["api", "v1", "namespaces", ns, "pods", pod, "attach"] => {
            Some((ns, pod, crate::Subresource::Attach))
        }
        _ => None,
    }
}

fn decode_segment(piece: &str) -> Result<Cow<'_, str>, PathError> {
    if piece.is_empty() {
        return Err(PathError::EmptySegment);
    }
    if piece == "." || piece == ".." {
        return Err(PathError::DotSegment);
    }
    if !piece.contains('%') {
        return Ok(Cow::Borrowed(piece));
    }
    let bytes = piece.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = bytes.get(i + 1..i + 3).ok_or(PathError::BadEncoding)?;
        let value = std::str::from_utf8(hex)
            .ok()
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or(PathError::BadEncoding)?;
        if matches!(value, b'/' | b'.' | b'%') {
            return Err(PathError::EncodedSeparator(format!(
                "%{}",
                &piece[i + 1..i + 3]
            )));
        }
        out.push(value);
        i += 3;
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| PathError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(raw: &str) -> Result<Vec<String>, PathError> {
        ApiPath::parse(raw).map(|p| p.segments().iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn ordinary_paths_decode_to_their_segments() {
        let cases: &[(&str, &[&str])] = &[
            ("/", &[]),
            ("/version", &["version"]),
            (
                "/api/v1/namespaces/default/pods",
                &["api", "v1", "namespaces", "default", "pods"],
            ),
            (
                "/api/v1/namespaces/default/pods/",
                &["api", "v1", "namespaces", "default", "pods"],
            ),
            (
                "/api/v1/namespaces/defaul%74/pods",
                &["api", "v1", "namespaces", "default", "pods"],
            ),
            ("/ap%69/v1", &["api", "v1"]),
            (
                "/api/v1/namespaces/a%20b",
                &["api", "v1", "namespaces", "a b"],
            ),
            (
                "/api/v1/namespaces/caf%C3%A9",
                &["api", "v1", "namespaces", "café"],
            ),
            (
                "/openapi/v3/apis/apps/v1",
                &["openapi", "v3", "apis", "apps", "v1"],
            ),
            ("/a.b/..c/c..", &["a.b", "..c", "c.."]),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                segs(raw).as_deref(),
                Ok(expected
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .as_slice()),
                "{raw}"
            );
        }
    }

    #[test]
    fn paths_read_two_ways_are_refused() {
        let cases: &[(&str, PathError)] = &[
            ("api/v1", PathError::NotAbsolute),
            ("", PathError::NotAbsolute),
            (
                "/api/v1/namespaces/default/../shop/pods",
                PathError::DotSegment,
            ),
            (
                "/openapi/../api/v1/namespaces/shop/pods",
                PathError::DotSegment,
            ),
            ("/api/./v1", PathError::DotSegment),
            ("/..", PathError::DotSegment),
            ("/api//v1", PathError::EmptySegment),
            ("//api/v1", PathError::EmptySegment),
            ("/api/v1//", PathError::EmptySegment),
            (
                "/api/v1/namespaces/default%2F..%2Fshop/pods",
                PathError::EncodedSeparator("%2F".into()),
            ),
            (
                "/api/v1/namespaces/default%2f/pods",
                PathError::EncodedSeparator("%2f".into()),
            ),
            (
                "/api/v1/namespaces/%2e%2e/pods",
                PathError::EncodedSeparator("%2e".into()),
            ),
            (
                "/api/v1/namespaces/%2E/pods",
                PathError::EncodedSeparator("%2E".into()),
            ),
            (
                "/api/v1/namespaces/%252e%252e/pods",
                PathError::EncodedSeparator("%25".into()),
            ),
            ("/api/v1/namespaces/%/pods", PathError::BadEncoding),
            ("/api/v1/namespaces/%4/pods", PathError::BadEncoding),
            ("/api/v1/namespaces/%zz/pods", PathError::BadEncoding),
            ("/api/v1/namespaces/%C3/pods", PathError::NotUtf8),
            ("/api/v1/namespaces/%FF/pods", PathError::NotUtf8),
        ];
        for (raw, expected) in cases {
            assert_eq!(segs(raw), Err(expected.clone()), "{raw}");
        }
    }

    #[test]
    fn exec_and_attach_paths_name_their_pod() {
        let p = ApiPath::parse("/api/v1/namespaces/default/pods/shell-0/ex%65c").expect("valid");
        assert_eq!(
            pod_session(&p.segments()),
            Some(("default", "shell-0", crate::Subresource::Exec))
        );
        let p = ApiPath::parse("/api/v1/namespaces/default/pods/shell-0/attach").expect("valid");
        assert_eq!(
            pod_session(&p.segments()).map(|t| t.2),
            Some(crate::Subresource::Attach)
        );
        for other in [
            "/api/v1/namespaces/default/pods/shell-0",
            "/api/v1/namespaces/default/pods/shell-0/log",
            "/apis/x/v1/namespaces/default/pods/shell-0/exec",
        ] {
            assert_eq!(
                pod_session(&ApiPath::parse(other).expect("valid").segments()),
                None,
                "{other}"
            );
        }
    }

    #[test]
    fn suffixes_keep_their_raw_form() {
        let p = ApiPath::parse("/clusters/east/api/v1/namespaces/defaul%74/pods/").expect("valid");
        assert_eq!(p.segment(1), Some("east"));
        assert_eq!(p.raw_from(2), "/api/v1/namespaces/defaul%74/pods/");
        let rest = p.from(2);
        assert_eq!(
            rest.segments(),
            ["api", "v1", "namespaces", "default", "pods"]
        );
        assert_eq!(rest.raw(), "/api/v1/namespaces/defaul%74/pods/");
        assert_eq!(rest.raw_from(4), "/pods/");
        assert_eq!(p.raw_from(9), "/");
        let root = ApiPath::parse("/clusters/east").expect("valid").from(2);
        assert!(root.is_empty());
        assert_eq!(root.raw(), "/");
    }
}
