//! kubectl posts its reviews as Kubernetes protobuf (`application/vnd.kubernetes.protobuf`:
//! the `k8s\0` magic, then a `runtime.Unknown` whose field 2 is the object). Just enough of
//! the wire format to read a review's spec (field numbers from
//! `k8s.io/api/authorization/v1/generated.proto`) into the JSON form the rest reads. Pure.

use serde_json::{Value, json};

const MAGIC: &[u8] = b"k8s\0";

/// Why a protobuf body cannot be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("the body does not start with the Kubernetes protobuf magic")]
    Magic,
    #[error("the protobuf body is truncated or malformed")]
    Malformed,
}

/// The length-delimited fields of one message, in order: (field number, bytes). Varint and
/// fixed fields are skipped (a review's spec has none).
fn fields(mut b: &[u8]) -> Result<Vec<(u64, &[u8])>, ProtoError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b)?;
        match key & 7 {
            0 => {
                varint(&mut b)?;
            }
            1 => b = b.get(8..).ok_or(ProtoError::Malformed)?,
            5 => b = b.get(4..).ok_or(ProtoError::Malformed)?,
            2 => {
                let len = usize::try_from(varint(&mut b)?).map_err(|_| ProtoError::Malformed)?;
                if len > b.len() {
                    return Err(ProtoError::Malformed);
                }
                out.push((key >> 3, &b[..len]));
                b = &b[len..];
            }
            _ => return Err(ProtoError::Malformed),
        }
    }
    Ok(out)
}

fn varint(b: &mut &[u8]) -> Result<u64, ProtoError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first().ok_or(ProtoError::Malformed)?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(ProtoError::Malformed)
}

fn field(b: &[u8], n: u64) -> Result<Option<&[u8]>, ProtoError> {
    Ok(fields(b)?
        .into_iter()
        .rev()
        .find(|(f, _)| *f == n)
        .map(|(_, v)| v))
}

/// A message's string fields as JSON, by name.
fn strings(b: &[u8], names: &[(u64, &str)]) -> Result<Value, ProtoError> {
    let mut o = serde_json::Map::new();
    for (n, name) in names {
        if let Some(v) = field(b, *n)? {
            o.insert((*name).into(), json!(String::from_utf8_lossy(v)));
        }
    }
    Ok(Value::Object(o))
}

/// The review in `body` (a protobuf one) as its JSON form, spec only; `rules` for a
/// SelfSubjectRulesReview (whose spec is a namespace), else an access review.
pub fn review_json(body: &[u8], rules: bool) -> Result<Value, ProtoError> {
    let unknown = body.strip_prefix(MAGIC).ok_or(ProtoError::Magic)?;
    let raw = field(unknown, 2)?.unwrap_or_default();
    let Some(spec) = field(raw, 2)? else {
        return Ok(json!({}));
    };
    let mut out = serde_json::Map::new();
    if let Some(r) = field(spec, 1)? {
        if rules {
            // SelfSubjectRulesReviewSpec: field 1 is the namespace.
            out.insert("namespace".into(), json!(String::from_utf8_lossy(r)));
        } else {
            let names = [
                (1, "namespace"),
                (2, "verb"),
                (3, "group"),
                (4, "version"),
                (5, "resource"),
                (6, "subresource"),
                (7, "name"),
            ];
            out.insert("resourceAttributes".into(), strings(r, &names)?);
        }
    }
    if let Some(n) = field(spec, 2)? {
        out.insert(
            "nonResourceAttributes".into(),
            strings(n, &[(1, "path"), (2, "verb")])?,
        );
    }
    Ok(json!({"spec": out}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(n: u64, bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![(n << 3 | 2) as u8, bytes.len() as u8];
        v.extend_from_slice(bytes);
        v
    }

    #[test]
    fn an_access_review_is_read_from_protobuf() {
        let attrs = [
            ld(1, b"shop"),
            ld(2, b"create"),
            ld(5, b"pods"),
            ld(6, b"exec"),
        ]
        .concat();
        let spec = ld(1, &attrs);
        let raw = [ld(1, b""), ld(2, &spec)].concat();
        let unknown = [ld(1, b"\x0a\x19authorization.k8s.io/v1"), ld(2, &raw)].concat();
        let body = [MAGIC, &unknown].concat();
        let v = review_json(&body, false).expect("readable");
        let r = &v["spec"]["resourceAttributes"];
        assert_eq!(
            (r["namespace"].as_str(), r["verb"].as_str()),
            (Some("shop"), Some("create"))
        );
        assert_eq!(
            (r["resource"].as_str(), r["subresource"].as_str()),
            (Some("pods"), Some("exec"))
        );
        assert_eq!(review_json(b"{}", false), Err(ProtoError::Magic));
        assert_eq!(
            review_json(&[MAGIC, &[0x12, 0x7f][..]].concat(), false),
            Err(ProtoError::Malformed)
        );
    }
}
