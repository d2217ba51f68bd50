//! `GET /podgate/pods/search?q=WORDS&cluster=A&cluster=B&limit=N`: pods matching `q` (see
//! [`crate::podindex::matcher`]) in the clusters named, among the namespaces the person may
//! list there (the cluster decides, see [`crate::podindex::access`]).
//!
//! Only the clusters named are searched (the page sends the chosen one and a few recent ones);
//! more than `pod_index.max_clusters_per_search` is a 400 `Status`, as is naming none. A
//! cluster's index opens at its first search: the answer waits up to [`FIRST_WAIT`] for its
//! first list, then answers with what it has, saying `syncing`. The answer:
//!
//! ```json
//! {"results": [{"cluster", "namespace", "pod", "phase", "ready": "1/1", "restarts",
//!               "created", "age_seconds", "node", "owner": {"kind", "name"}, "labels"}],
//!  "matched": 12,
//!  "clusters": [{"cluster", "state": "syncing|ready|error", "message", "truncated",
//!                "matched", "unchecked_namespaces"}]}
//! ```
//!
//! `truncated`: the cluster has more pods than `pod_index.max_pods`, so some are not searched.
//! `unchecked_namespaces`: namespaces whose access check failed (no results from them; the
//! `message` says why).

use crate::http::{Body, json, status};
use crate::podindex::PodIndex;
use crate::podindex::access::Verdict;
use crate::podindex::matcher::{self, Query};
use crate::podindex::store::SyncState;
use crate::podindex::summary::PodSummary;
use http::{Response, StatusCode};
use podgate_auth::Identity;
use podgate_metrics::SearchResult;
use podgate_protocol::Status;
use serde_json::{Value, json};
use std::time::Duration;

/// Longest search text, in bytes.
pub const MAX_QUERY: usize = 200;
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;
/// How long a search waits for a newly opened cluster's first list.
pub const FIRST_WAIT: Duration = Duration::from_secs(2);

/// What the query string asks.
#[derive(Debug, PartialEq, Eq)]
pub struct Search {
    pub text: String,
    /// In the order given, without repeats.
    pub clusters: Vec<String>,
    pub limit: usize,
}

impl Search {
    pub fn parse(raw: Option<&str>, max_clusters: usize) -> Result<Search, Status> {
        let mut s = Search {
            text: String::new(),
            clusters: Vec::new(),
            limit: DEFAULT_LIMIT,
        };
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "q" => s.text = v.trim().to_string(),
                "cluster" if !v.is_empty() && !s.clusters.iter().any(|c| *c == v) => {
                    s.clusters.push(v.into_owned());
                }
                "limit" => {
                    let n: usize = v.trim().parse().map_err(|_| {
                        Status::bad_request(format!(
                            "limit must be a whole number from 1 to {MAX_LIMIT}"
                        ))
                    })?;
                    s.limit = n.clamp(1, MAX_LIMIT);
                }
                _ => {}
            }
        }
        if s.text.len() > MAX_QUERY {
            return Err(Status::bad_request(format!(
                "q is longer than {MAX_QUERY} bytes; search for less"
            )));
        }
        if s.clusters.is_empty() {
            return Err(Status::bad_request(
                "name the clusters to search: cluster=ID (repeatable)",
            ));
        }
        if s.clusters.len() > max_clusters {
            return Err(Status::bad_request(format!(
                "a search may name at most {max_clusters} clusters (pod_index.max_clusters_per_search); this one names {}",
                s.clusters.len()
            )));
        }
        Ok(s)
    }
}

/// Seconds since an RFC 3339 time, if it is one.
fn age_seconds(created: Option<&str>, now: i64) -> Option<i64> {
    let t: k8s_openapi::jiff::Timestamp = created?.parse().ok()?;
    Some((now - t.as_second()).max(0))
}

fn row(cluster: &str, p: &PodSummary, now: i64) -> Value {
    json!({
        "cluster": cluster,
        "namespace": p.namespace,
        "pod": p.name,
        "phase": p.phase,
        "ready": format!("{}/{}", p.ready, p.containers),
        "restarts": p.restarts,
        "created": p.created,
        "age_seconds": age_seconds(p.created.as_deref(), now),
        "node": p.node,
        "owner": p.owner.as_ref().map(|(kind, name)| json!({"kind": kind, "name": name})),
        "labels": p.labels,
    })
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One cluster's part of the answer: its ranked rows and its state.
struct Part {
    rows: Vec<(u32, String, String, Value)>,
    state: Value,
    matched: usize,
}

fn failed(id: &str, message: String) -> Part {
    Part {
        rows: Vec::new(),
        matched: 0,
        state: json!({"cluster": id, "state": "error", "message": message,
                      "truncated": false, "matched": 0, "unchecked_namespaces": 0}),
    }
}

async fn search_one(
    index: &PodIndex,
    who: &Identity,
    id: &str,
    query: &Query,
    limit: usize,
) -> Part {
    let Some(cluster) = index.registry().get(id) else {
        return failed(id, format!("cluster {id:?} is not known to podgate"));
    };
    if !podgate_auth::policy::may_use(&cluster.access, who) {
        return failed(id, format!("you may not use cluster {id:?}"));
    }
    let ci = index.use_cluster(id);
    ci.settled(FIRST_WAIT).await;
    let namespaces = ci.read(|s, _| s.namespaces());
    let allowed = index
        .access
        .allowed(index.metrics(), &cluster, who, &namespaces)
        .await;
    let unchecked: Vec<&String> = allowed
        .namespaces
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Failed(_)))
        .map(|(ns, _)| ns)
        .collect();
    let check_message = allowed.namespaces.values().find_map(|v| match v {
        Verdict::Failed(m) => Some(format!(
            "could not check access to {} namespaces: {m}",
            unchecked.len()
        )),
        _ => None,
    });
    let now = unix_now();
    ci.read(|store, state| {
        let visible = store.iter().filter(|p| allowed.may_list(&p.namespace));
        let (hits, matched) = matcher::rank(query, visible, limit);
        let rows = hits
            .into_iter()
            .map(|(score, p)| (score, p.namespace.clone(), p.name.clone(), row(id, p, now)))
            .collect();
        let message = match state {
            SyncState::Error(e) => Some(e.clone()),
            _ => check_message,
        };
        Part {
            rows,
            matched,
            state: json!({
                "cluster": id,
                "state": state.as_str(),
                "message": message,
                "truncated": store.truncated(),
                "matched": matched,
                "unchecked_namespaces": unchecked.len(),
            }),
        }
    })
}

/// The answer to `GET /podgate/pods/search?{query}` for `who`.
pub async fn answer(index: &PodIndex, who: &Identity, query: Option<&str>) -> Response<Body> {
    let search = match Search::parse(query, index.settings.max_clusters_per_search) {
        Ok(s) => s,
        Err(s) => {
            index.index_metrics.searched(SearchResult::Refused);
            return status(&s);
        }
    };
    let q = Query::parse(&search.text);
    let parts = futures_util::future::join_all(
        search
            .clusters
            .iter()
            .map(|id| search_one(index, who, id, &q, search.limit)),
    )
    .await;
    let matched: usize = parts.iter().map(|p| p.matched).sum();
    let mut rows: Vec<(u32, usize, String, String, Value)> = Vec::new();
    let mut states = Vec::new();
    for (i, part) in parts.into_iter().enumerate() {
        states.push(part.state);
        rows.extend(part.rows.into_iter().map(|(s, ns, n, v)| (s, i, ns, n, v)));
    }
    rows.sort_by(|a, b| (a.0, a.1, &a.2, &a.3).cmp(&(b.0, b.1, &b.2, &b.3)));
    rows.truncate(search.limit);
    index.index_metrics.searched(SearchResult::Ok);
    json(
        StatusCode::OK,
        &json!({
            "results": rows.into_iter().map(|r| r.4).collect::<Vec<_>>(),
            "matched": matched,
            "clusters": states,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_bounded_and_name_clusters() {
        let s = Search::parse(Some("q=+web+&cluster=a&cluster=b&cluster=a&limit=9999"), 3).unwrap();
        assert_eq!(s.text, "web");
        assert_eq!(s.clusters, ["a", "b"]);
        assert_eq!(s.limit, MAX_LIMIT);
        assert_eq!(Search::parse(Some("q=x"), 3).unwrap_err().code, Some(400));
        let many = Search::parse(Some("cluster=a&cluster=b&cluster=c&cluster=d"), 3).unwrap_err();
        assert_eq!(many.code, Some(400));
        assert!(many.message.as_deref().unwrap_or("").contains("at most 3"));
        let long = format!("cluster=a&q={}", "x".repeat(MAX_QUERY + 1));
        assert_eq!(Search::parse(Some(&long), 3).unwrap_err().code, Some(400));
        assert_eq!(
            Search::parse(Some("cluster=a&limit=x"), 3)
                .unwrap_err()
                .code,
            Some(400)
        );
        assert_eq!(
            Search::parse(Some("cluster=a&limit=0"), 3).unwrap().limit,
            1
        );
    }

    #[test]
    fn ages_come_from_creation_times() {
        assert_eq!(age_seconds(Some("1970-01-01T00:01:00Z"), 90), Some(30));
        assert_eq!(age_seconds(Some("garbage"), 90), None);
        assert_eq!(age_seconds(None, 90), None);
    }
}
