//! `watch=true` on pods, as kube-apiserver serves it: a chunked stream of JSON lines
//! `{"type": "ADDED"|"MODIFIED"|"DELETED", "object": Pod}`.
//!
//! - without `resourceVersion` (or with `0`): an `ADDED` event for every pod that matches,
//!   then every change after the state they came from;
//! - with `resourceVersion=N`: the changes after N. When N is older than what the store
//!   remembers ([`crate::store::HISTORY`] changes), a single `ERROR` event carrying a `410`
//!   `Expired` Status (`too old resource version: N (M)`), and the stream ends: the client
//!   lists again, as kube's reflector does;
//! - label and field selectors filter events as they filter lists;
//! - the stream ends after `timeoutSeconds` (default 30 min), at shutdown, or when the client
//!   goes away (then its task ends too).

use crate::api::{self, Shape};
use crate::list::ListQuery;
use crate::state::State;
use crate::store::Event;
use bytes::Bytes;
use hyper::{Response, StatusCode};
use podgate_protocol::Status;
use podgate_protocol::http::Body;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// What a pod watch asks for, besides its selectors.
#[derive(Debug, PartialEq, Eq)]
pub struct WatchOptions {
    /// `None`: start with the current state.
    pub after: Option<u64>,
    pub timeout: Duration,
}

/// Reads `resourceVersion` and `timeoutSeconds`; a resourceVersion that is not a number is a
/// 400, as kube-apiserver answers it.
pub fn options(query: &str) -> Result<WatchOptions, Status> {
    let mut o = WatchOptions {
        after: None,
        timeout: Duration::from_secs(30 * 60),
    };
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "timeoutSeconds" => {
                if let Ok(s) = v.parse() {
                    o.timeout = Duration::from_secs(s);
                }
            }
            "resourceVersion" if !v.is_empty() && v != "0" => {
                let rv: u64 = v
                    .parse()
                    .map_err(|_| Status::bad_request(format!("invalid resource version: {v:?}")))?;
                o.after = Some(rv);
            }
            _ => {}
        }
    }
    Ok(o)
}

fn line(kind: &str, object: serde_json::Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn in_scope(e: &Event, namespace: Option<&str>, q: &ListQuery) -> bool {
    namespace.is_none_or(|ns| e.entry.pod.metadata.namespace.as_deref() == Some(ns))
        && api::pod_matches(&e.entry, q)
}

/// The watch response for pods of `namespace` (all when `None`).
pub fn pods(
    state: Arc<State>,
    namespace: Option<String>,
    shape: Shape,
    q: ListQuery,
    query: &str,
) -> Response<Body> {
    let o = match options(query) {
        Ok(o) => o,
        Err(s) => return podgate_protocol::http::status(&s),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let mut changes = state.store.subscribe();
    let shutdown = state.shutdown.clone();
    let task_state = state.clone();
    state.tasks.spawn(async move {
        let state = task_state;
        let ns = namespace.as_deref();
        let mut last = match o.after {
            Some(rv) => rv,
            None => {
                let (items, rv) = state.store.snapshot(ns);
                for e in items.iter().filter(|e| api::pod_matches(e, &q)) {
                    if tx
                        .send(line("ADDED", api::pod_watch_object(e, shape, rv)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                rv
            }
        };
        let deadline = tokio::time::Instant::now() + o.timeout;
        loop {
            match state.store.changes_after(last) {
                Err(too_old) => {
                    let status = Status::api_error(
                        410,
                        "Expired",
                        format!(
                            "too old resource version: {} ({})",
                            too_old.requested, too_old.oldest
                        ),
                    );
                    let object = serde_json::to_value(&status).unwrap_or_default();
                    let _ = tx.send(line("ERROR", object)).await;
                    return;
                }
                Ok(events) => {
                    for e in &events {
                        last = last.max(e.rv);
                        if !in_scope(e, ns, &q) {
                            continue;
                        }
                        let kind = e.change.as_str();
                        let object = api::pod_watch_object(&e.entry, shape, e.rv);
                        if tx.send(line(kind, object)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep_until(deadline) => return,
                _ = shutdown.cancelled() => return,
                changed = changes.changed() => if changed.is_err() { return },
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|b| b.map(|b| Ok::<_, std::io::Error>(hyper::body::Frame::data(b))))
    });
    let body = http_body_util::StreamBody::new(stream);
    podgate_protocol::http::with_type(
        StatusCode::OK,
        "application/json",
        http_body_util::BodyExt::boxed(body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Change;

    #[test]
    fn options_read_resource_version_and_timeout() {
        let o = options("watch=true&resourceVersion=12&timeoutSeconds=5").unwrap();
        assert_eq!(o.after, Some(12));
        assert_eq!(o.timeout, Duration::from_secs(5));
        assert_eq!(options("watch=1&resourceVersion=0").unwrap().after, None);
        assert_eq!(options("watch=1").unwrap().after, None);
        assert_eq!(options("resourceVersion=abc").unwrap_err().code, Some(400));
    }

    #[test]
    fn history_is_bounded_and_too_old_is_reported() {
        let store = crate::store::Store::new(&crate::topology::Topology::builtin());
        let start = store.revision();
        let spec = |i: usize| {
            crate::topology::Generate {
                count: 1,
                name: "w-{i}".into(),
                labels: Default::default(),
                annotations: Default::default(),
                owner: None,
                nodes: Vec::new(),
                containers: Vec::new(),
                statuses: Vec::new(),
            }
            .pod(i)
        };
        store.create_pod("default", spec(0)).unwrap();
        let seen = store.changes_after(start).unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].change, Change::Added);
        assert!(store.delete_pod("default", "w-0"));
        assert!(!store.delete_pod("default", "w-0"));
        assert_eq!(store.changes_after(start).unwrap().len(), 2);
        for i in 1..=crate::store::HISTORY {
            store.create_pod("default", spec(i)).unwrap();
        }
        let err = store.changes_after(start).map(|_| ()).unwrap_err();
        assert_eq!(err.requested, start);
        assert!(err.oldest > start);
        assert_eq!(
            store.changes_after(store.revision()).map(|v| v.len()),
            Ok(0)
        );
    }
}
