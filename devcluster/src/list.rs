//! List options as kube-apiserver reads them: `labelSelector`, `fieldSelector`, `limit` and
//! `continue`. Continue tokens are kube's own shape (base64url of
//! `{"v":"meta.k8s.io/v1","rv":N,"start":"KEY\u0000"}`), opaque to clients; one minted before
//! the store last changed is `410 Expired`, as after an etcd compaction (the devcluster keeps no
//! history, so it cannot serve the old snapshot).

use crate::selector::{FieldSelector, LabelSelector};
use base64::Engine as _;
use podgate_protocol::Status;

/// An object's place in list order: (namespace, name) for namespaced objects, (name, "")
/// for cluster-scoped ones.
pub type Key = (String, String);

#[derive(Debug, Default)]
pub struct ListQuery {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// `limit` when more than 0.
    pub limit: Option<usize>,
    /// Start after this key (from `continue`).
    pub after: Option<Key>,
}

impl ListQuery {
    /// Whether a selector is given: then the remaining count is unknown, as in kube-apiserver.
    pub fn selects(&self) -> bool {
        !self.labels.is_empty() || !self.fields.is_empty()
    }
}

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

const EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

fn start_key(key: &Key) -> String {
    if key.1.is_empty() {
        format!("{}\u{0}", key.0)
    } else {
        format!("{}/{}\u{0}", key.0, key.1)
    }
}

pub fn encode_continue(rv: u64, after: &Key) -> String {
    let json = serde_json::json!({"v": TOKEN_VERSION, "rv": rv, "start": start_key(after)});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
}

/// The resourceVersion and key a token continues from, or why it is not valid (kube's
/// `storage.DecodeContinue` wording).
pub fn decode_continue(token: &str) -> Result<(u64, Key), String> {
    let bad = |why: String| format!("continue key is not valid: {why}");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| bad(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_slice(&raw).map_err(|e| bad(e.to_string()))?;
    let version = v["v"].as_str().unwrap_or_default();
    if version != TOKEN_VERSION {
        return Err(bad(format!(
            "server does not recognize this encoded version {version:?}"
        )));
    }
    let rv = v["rv"].as_u64().unwrap_or(0);
    if rv == 0 {
        return Err(bad(format!(
            "incorrect encoded start resourceVersion (version {TOKEN_VERSION})"
        )));
    }
    let start = v["start"].as_str().unwrap_or_default();
    let start = start.strip_suffix('\u{0}').unwrap_or(start);
    if start.is_empty() {
        return Err(bad(format!(
            "encoded start key empty (version {TOKEN_VERSION})"
        )));
    }
    if start.split('/').any(|p| p == "." || p == "..") || start.starts_with('/') {
        return Err(bad("continue key may not contain path segments".into()));
    }
    let key = match start.split_once('/') {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => (start.to_string(), String::new()),
    };
    Ok((rv, key))
}

/// Reads the list options of `query` for a store at `rv` whose objects select on `fields`.
pub fn parse(query: &str, rv: u64, fields: &[&str]) -> Result<ListQuery, Status> {
    let mut q = ListQuery::default();
    let mut token = None;
    let mut resource_version = String::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "labelSelector" => {
                q.labels = LabelSelector::parse(&v).map_err(Status::bad_request)?;
            }
            "fieldSelector" => {
                let f = FieldSelector::parse(&v).map_err(Status::bad_request)?;
                f.check(fields).map_err(Status::bad_request)?;
                q.fields = f;
            }
            "limit" => {
                let n: i64 = v.parse().map_err(|_| {
                    Status::bad_request(format!("limit: Invalid value: {v:?}: must be an integer"))
                })?;
                q.limit = (n > 0).then(|| usize::try_from(n).unwrap_or(usize::MAX));
            }
            "continue" if !v.is_empty() => token = Some(v.into_owned()),
            "resourceVersion" => resource_version = v.into_owned(),
            _ => {}
        }
    }
    if let Some(token) = token {
        if !resource_version.is_empty() && resource_version != "0" {
            return Err(Status::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let (token_rv, key) = decode_continue(&token)
            .map_err(|e| Status::bad_request(format!("invalid continue token: {e}")))?;
        if token_rv < rv {
            return Err(Status::api_error(410, "Expired", EXPIRED));
        }
        if token_rv > rv {
            return Err(Status::bad_request(format!(
                "invalid continue token: continue key is not valid: resourceVersion {token_rv} is newer than the server's {rv}"
            )));
        }
        q.after = Some(key);
    }
    Ok(q)
}

/// One page of a list.
pub struct Page<T> {
    pub items: Vec<T>,
    pub continue_token: Option<String>,
    /// How many matching objects follow, when known (no selector).
    pub remaining: Option<u64>,
}

/// The page `q` asks for of `all` (in key order), keeping what `keep` accepts.
pub fn page<T>(
    all: impl IntoIterator<Item = (Key, T)>,
    q: &ListQuery,
    rv: u64,
    keep: impl Fn(&T) -> bool,
) -> Page<T> {
    let mut items = Vec::new();
    let mut last: Option<Key> = None;
    let mut remaining = 0u64;
    let mut full = false;
    for (key, item) in all {
        if q.after.as_ref().is_some_and(|a| &key <= a) || !keep(&item) {
            continue;
        }
        if full {
            remaining += 1;
            if q.selects() {
                // Unknown with selectors; one more is enough to know a next page exists.
                break;
            }
            continue;
        }
        items.push(item);
        if q.limit.is_some_and(|l| items.len() >= l) {
            full = true;
            last = Some(key);
        }
    }
    let more = remaining > 0;
    Page {
        items,
        continue_token: last.filter(|_| more).map(|k| encode_continue(rv, &k)),
        remaining: (more && !q.selects()).then_some(remaining),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(a: &str, b: &str) -> Key {
        (a.into(), b.into())
    }

    #[test]
    fn continue_tokens_round_trip_and_refuse_garbage() {
        let t = encode_continue(7, &key("shop", "web-0"));
        assert_eq!(decode_continue(&t), Ok((7, key("shop", "web-0"))));
        let raw = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&t)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            raw,
            r#"{"rv":7,"start":"shop/web-0\u0000","v":"meta.k8s.io/v1"}"#
        );
        assert_eq!(
            decode_continue(&encode_continue(3, &key("ns", ""))),
            Ok((3, key("ns", "")))
        );
        assert!(
            decode_continue("!!!")
                .unwrap_err()
                .starts_with("continue key is not valid: ")
        );
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        assert_eq!(
            decode_continue(&enc(r#"{"v":"x","rv":1,"start":"a"}"#)).unwrap_err(),
            "continue key is not valid: server does not recognize this encoded version \"x\""
        );
        assert_eq!(
            decode_continue(&enc(r#"{"v":"meta.k8s.io/v1","rv":0,"start":"a"}"#)).unwrap_err(),
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        );
        assert_eq!(
            decode_continue(&enc(r#"{"v":"meta.k8s.io/v1","rv":1,"start":""}"#)).unwrap_err(),
            "continue key is not valid: encoded start key empty (version meta.k8s.io/v1)"
        );
    }

    #[test]
    fn query_options_are_read_as_kube_apiserver_reads_them() {
        let q = parse(
            "limit=2&labelSelector=app%3Dweb&fieldSelector=status.phase%3DRunning",
            1,
            &["status.phase"],
        )
        .unwrap();
        assert_eq!(q.limit, Some(2));
        assert!(q.selects());
        assert_eq!(parse("limit=0", 1, &[]).unwrap().limit, None);
        assert_eq!(parse("limit=x", 1, &[]).unwrap_err().code, Some(400));
        let e = parse("fieldSelector=spec.foo%3Dx", 1, &["status.phase"]).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_deref()),
            (Some(400), Some("field label not supported: spec.foo"))
        );
        let e = parse("labelSelector=app%20in", 1, &[]).unwrap_err();
        assert_eq!(e.reason.as_deref(), Some("BadRequest"));
        let token = encode_continue(1, &key("a", "b"));
        assert_eq!(
            parse(&format!("continue={token}"), 1, &[]).unwrap().after,
            Some(key("a", "b"))
        );
        let e = parse(&format!("continue={token}"), 2, &[]).unwrap_err();
        assert_eq!((e.code, e.reason.as_deref()), (Some(410), Some("Expired")));
        let e = parse(&format!("continue={token}&resourceVersion=5"), 1, &[]).unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("specifying resource version is not allowed when using continue")
        );
        assert!(
            parse("continue=zz", 1, &[])
                .unwrap_err()
                .message
                .unwrap_or_default()
                .starts_with("invalid continue token: ")
        );
    }

    #[test]
    fn pages_cover_everything_once_in_order() {
        let all: Vec<(Key, u32)> = (0..7u32)
            .map(|i| (key(&format!("ns{}", i / 3), &format!("p{i}")), i))
            .collect();
        let mut q = ListQuery {
            limit: Some(3),
            ..Default::default()
        };
        let mut seen = Vec::new();
        let mut remaining = Vec::new();
        loop {
            let p = page(all.clone(), &q, 9, |_| true);
            seen.extend(p.items);
            remaining.push(p.remaining);
            match p.continue_token {
                Some(t) => q.after = Some(decode_continue(&t).unwrap().1),
                None => break,
            }
        }
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
        assert_eq!(remaining, [Some(4), Some(1), None]);
        // With a selector: only matches, no count, and no token when nothing more matches.
        let q = ListQuery {
            limit: Some(2),
            labels: LabelSelector::parse("x").unwrap(),
            ..Default::default()
        };
        let p = page(all.clone(), &q, 9, |i| i % 2 == 0);
        assert_eq!(p.items, [0, 2]);
        assert!(p.continue_token.is_some());
        assert_eq!(p.remaining, None);
        let q = ListQuery {
            limit: Some(4),
            ..q
        };
        let p = page(all, &q, 9, |i| i % 2 == 0);
        assert_eq!(p.items, [0, 2, 4, 6]);
        assert!(p.continue_token.is_none());
    }
}
