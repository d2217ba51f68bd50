//! What a self review asks, read from its body: a `SelfSubjectAccessReview` (`kubectl auth
//! can-i`) or a `SelfSubjectRulesReview` (`kubectl auth can-i --list`), as JSON or as
//! Kubernetes protobuf (`application/vnd.kubernetes.protobuf`, what kubectl sends: the `k8s\0`
//! magic, then a `runtime.Unknown` whose field 2 is the object). Just enough of the protobuf
//! wire format for the spec; field numbers from `k8s.io/api/authorization/v1/generated.proto`.
//! Pure: bytes in, the question out.

use serde_json::Value;

const MAGIC: &[u8] = b"k8s\0";

/// Whether `content_type` is Kubernetes protobuf.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("application/vnd.kubernetes.protobuf")
}

/// Why a review body cannot be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("the body does not start with the Kubernetes protobuf magic")]
    Magic,
    #[error("the protobuf body is truncated or malformed")]
    Malformed,
    #[error("the body is not a JSON review object: {0}")]
    Json(String),
}

/// A `ResourceAttributes` (the fields podgate judges and echoes).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResourceAttributes {
    pub namespace: String,
    pub verb: String,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

/// A `NonResourceAttributes`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NonResourceAttributes {
    pub path: String,
    pub verb: String,
}

/// The spec of a `SelfSubjectAccessReview`: exactly one is set in a valid one (the cluster
/// judges the invalid ones).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AccessSpec {
    pub resource: Option<ResourceAttributes>,
    pub non_resource: Option<NonResourceAttributes>,
}

/// Reads a `SelfSubjectAccessReview` body.
pub fn access_review(content_type: &str, body: &[u8]) -> Result<AccessSpec, ReviewError> {
    if is_protobuf(content_type) {
        let Some(spec) = proto_spec(body)? else {
            return Ok(AccessSpec::default());
        };
        let resource = match field(spec, 1)? {
            Some(r) => Some(ResourceAttributes {
                namespace: string(r, 1)?,
                verb: string(r, 2)?,
                group: string(r, 3)?,
                version: string(r, 4)?,
                resource: string(r, 5)?,
                subresource: string(r, 6)?,
                name: string(r, 7)?,
            }),
            None => None,
        };
        let non_resource = match field(spec, 2)? {
            Some(n) => Some(NonResourceAttributes {
                path: string(n, 1)?,
                verb: string(n, 2)?,
            }),
            None => None,
        };
        return Ok(AccessSpec {
            resource,
            non_resource,
        });
    }
    let spec = json_spec(body)?;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let resource = spec
        .get("resourceAttributes")
        .filter(|v| v.is_object())
        .map(|r| ResourceAttributes {
            namespace: text(r, "namespace"),
            verb: text(r, "verb"),
            group: text(r, "group"),
            version: text(r, "version"),
            resource: text(r, "resource"),
            subresource: text(r, "subresource"),
            name: text(r, "name"),
        });
    let non_resource = spec
        .get("nonResourceAttributes")
        .filter(|v| v.is_object())
        .map(|n| NonResourceAttributes {
            path: text(n, "path"),
            verb: text(n, "verb"),
        });
    Ok(AccessSpec {
        resource,
        non_resource,
    })
}

/// Reads a `SelfSubjectRulesReview` body: the namespace it asks about.
pub fn rules_review(content_type: &str, body: &[u8]) -> Result<String, ReviewError> {
    if is_protobuf(content_type) {
        return match proto_spec(body)? {
            Some(spec) => string(spec, 1),
            None => Ok(String::new()),
        };
    }
    let spec = json_spec(body)?;
    Ok(spec
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string())
}

fn json_spec(body: &[u8]) -> Result<Value, ReviewError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| ReviewError::Json(e.to_string()))?;
    if !v.is_object() {
        return Err(ReviewError::Json("not an object".into()));
    }
    Ok(v.get("spec").cloned().unwrap_or(Value::Null))
}

/// The review's spec (field 2 of the object, itself field 2 of the `runtime.Unknown`).
fn proto_spec(body: &[u8]) -> Result<Option<&[u8]>, ReviewError> {
    let unknown = body.strip_prefix(MAGIC).ok_or(ReviewError::Magic)?;
    let raw = field(unknown, 2)?.unwrap_or_default();
    field(raw, 2)
}

/// The last occurrence of length-delimited field `n` of one message (protobuf's rule for a
/// repeated scalar or message field read as singular). Varint and fixed fields are skipped.
fn field(mut b: &[u8], n: u64) -> Result<Option<&[u8]>, ReviewError> {
    let mut found = None;
    while !b.is_empty() {
        let key = varint(&mut b)?;
        match key & 7 {
            0 => {
                varint(&mut b)?;
            }
            1 => b = b.get(8..).ok_or(ReviewError::Malformed)?,
            5 => b = b.get(4..).ok_or(ReviewError::Malformed)?,
            2 => {
                let len = usize::try_from(varint(&mut b)?).map_err(|_| ReviewError::Malformed)?;
                let (value, rest) = b.split_at_checked(len).ok_or(ReviewError::Malformed)?;
                if key >> 3 == n {
                    found = Some(value);
                }
                b = rest;
            }
            _ => return Err(ReviewError::Malformed),
        }
    }
    Ok(found)
}

fn string(b: &[u8], n: u64) -> Result<String, ReviewError> {
    match field(b, n)? {
        Some(v) => String::from_utf8(v.to_vec()).map_err(|_| ReviewError::Malformed),
        None => Ok(String::new()),
    }
}

fn varint(b: &mut &[u8]) -> Result<u64, ReviewError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first().ok_or(ReviewError::Malformed)?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(ReviewError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PB: &str = "application/vnd.kubernetes.protobuf";

    /// A length-delimited field (short values only).
    fn ld(n: u64, bytes: &[u8]) -> Vec<u8> {
        let len = u8::try_from(bytes.len()).expect("short");
        let mut v = vec![u8::try_from(n << 3 | 2).expect("small field"), len];
        v.extend_from_slice(bytes);
        v
    }

    /// A protobuf review whose object's spec is `spec`, as kubectl frames it.
    fn framed(spec: &[u8]) -> Vec<u8> {
        let raw = [ld(1, b""), ld(2, spec)].concat();
        let type_meta = ld(1, b"authorization.k8s.io/v1");
        let unknown = [
            ld(1, &type_meta),
            ld(2, &raw),
            ld(4, b"application/vnd.kubernetes.protobuf"),
        ]
        .concat();
        [MAGIC, &unknown].concat()
    }

    #[test]
    fn an_access_review_is_read_from_protobuf() {
        let attrs = [
            ld(1, b"shop"),
            ld(2, b"get"),
            ld(5, b"pods"),
            ld(6, b"exec"),
            ld(7, b"web-0"),
            // A varint field (none today) is skipped, not misread.
            vec![8 << 3, 1],
        ]
        .concat();
        let spec = framed(&ld(1, &attrs));
        let got = access_review(PB, &spec).expect("readable");
        assert_eq!(
            got.resource,
            Some(ResourceAttributes {
                namespace: "shop".into(),
                verb: "get".into(),
                resource: "pods".into(),
                subresource: "exec".into(),
                name: "web-0".into(),
                ..Default::default()
            })
        );
        assert_eq!(got.non_resource, None);
        let nr = framed(&ld(2, &[ld(1, b"/logs"), ld(2, b"get")].concat()));
        let got = access_review("application/vnd.kubernetes.protobuf; charset=x", &nr).expect("ok");
        assert_eq!(got.resource, None);
        assert_eq!(
            got.non_resource,
            Some(NonResourceAttributes {
                path: "/logs".into(),
                verb: "get".into()
            })
        );
    }

    #[test]
    fn a_rules_review_is_read_from_protobuf_and_json() {
        assert_eq!(
            rules_review(PB, &framed(&ld(1, b"shop"))),
            Ok("shop".into())
        );
        assert_eq!(rules_review(PB, &framed(b"")), Ok(String::new()));
        let json = br#"{"kind":"SelfSubjectRulesReview","spec":{"namespace":"default"}}"#;
        assert_eq!(rules_review("application/json", json), Ok("default".into()));
        assert_eq!(rules_review("application/json", b"{}"), Ok(String::new()));
    }

    #[test]
    fn an_access_review_is_read_from_json() {
        let body = br#"{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview",
            "spec":{"resourceAttributes":{"namespace":"default","verb":"create","resource":"pods"}}}"#;
        let got = access_review("application/json", body).expect("ok");
        let r = got.resource.expect("resource attributes");
        assert_eq!(
            (r.namespace.as_str(), r.verb.as_str()),
            ("default", "create")
        );
        assert_eq!(access_review("", b"{}"), Ok(AccessSpec::default()));
    }

    #[test]
    fn bad_bodies_are_errors_not_panics() {
        assert_eq!(access_review(PB, b"{}"), Err(ReviewError::Magic));
        let truncated = [MAGIC, &[0x12, 0x7f][..]].concat();
        assert_eq!(access_review(PB, &truncated), Err(ReviewError::Malformed));
        let endless_varint = [MAGIC, &[0x80; 12][..]].concat();
        assert_eq!(
            access_review(PB, &endless_varint),
            Err(ReviewError::Malformed)
        );
        let bad_wire_type = [MAGIC, &[0x0b][..]].concat();
        assert_eq!(
            access_review(PB, &bad_wire_type),
            Err(ReviewError::Malformed)
        );
        let not_utf8 = framed(&ld(1, &ld(1, &[0xff, 0xfe])));
        assert_eq!(access_review(PB, &not_utf8), Err(ReviewError::Malformed));
        assert!(matches!(
            access_review("application/json", b"[1]"),
            Err(ReviewError::Json(_))
        ));
        assert!(matches!(
            rules_review("application/json", b"nope"),
            Err(ReviewError::Json(_))
        ));
    }
}
