//! `GET /podgate/clusters`: the clusters a person may use, with their health and how the
//! config describes them, paged and searched so that a fleet of thousands is never sent (or
//! shown) whole.
//!
//! - `limit=N`: at most N clusters (1 to [`MAX_LIMIT`]; more is read as [`MAX_LIMIT`]);
//!   without it (or `0`) every matching cluster, as before paging existed;
//! - `continue=TOKEN`: the page after the one whose answer carried `continue: TOKEN`;
//! - `search=WORDS`: clusters where every word (case-insensitive) is part of the id, the
//!   display name, the environment, or a label written `key=value`.
//!
//! Clusters come sorted by id, and a page ends at an id: the next page starts after it, so
//! clusters added or removed meanwhile neither repeat nor shift the pages (one added before
//! the current position is not seen in this walk). A token is bound to its search; a token
//! that is not one podgate issued, or was issued for another search, is refused with a 400
//! `Status` (start again without `continue`).

use crate::http::{Body, json, status};
use crate::upstream::Cluster;
use base64::Engine as _;
use http::{Response, StatusCode};
use podgate_auth::Identity;
use podgate_protocol::Status;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The largest page.
pub const MAX_LIMIT: usize = 500;
/// Longest search text, in bytes.
const MAX_SEARCH: usize = 200;
/// Longest continue token, in bytes (an id is at most 63 bytes; the search at most 200).
const MAX_TOKEN: usize = 1024;

/// What the query string asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// `None`: everything.
    pub limit: Option<usize>,
    /// Start after this id.
    pub after: Option<String>,
    /// Lowercased words, all of which must match.
    pub words: Vec<String>,
    /// As given (trimmed), to bind tokens to it.
    search: String,
}

/// What a continue token carries.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Token {
    /// The last id of the page it follows.
    after: String,
    /// The search it belongs to.
    search: String,
}

fn encode(token: &Token) -> String {
    let json = serde_json::to_vec(token).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn bad(message: impl Into<String>) -> Status {
    Status::bad_request(message.into())
}

impl Query {
    /// Reads `limit`, `continue` and `search` from a raw query string; other parameters are
    /// ignored (as the Kubernetes API ignores unknown ones).
    pub fn parse(raw: Option<&str>) -> Result<Query, Status> {
        let mut limit = None;
        let mut token = None;
        let mut search = String::new();
        for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "limit" => {
                    let n: usize = value.trim().parse().map_err(|_| {
                        bad(format!(
                            "limit must be a whole number from 0 to {MAX_LIMIT}, not {:?}",
                            truncate(&value, 40)
                        ))
                    })?;
                    limit = (n > 0).then_some(n.min(MAX_LIMIT));
                }
                "continue" if !value.is_empty() => token = Some(value.into_owned()),
                "search" => search = value.trim().to_string(),
                _ => {}
            }
        }
        if search.len() > MAX_SEARCH {
            return Err(bad(format!(
                "search is longer than {MAX_SEARCH} bytes; search for less"
            )));
        }
        let after = match token {
            None => None,
            Some(t) => Some(decode(&t, &search)?),
        };
        Ok(Query {
            limit,
            after,
            words: search.split_whitespace().map(str::to_lowercase).collect(),
            search,
        })
    }
}

fn decode(raw: &str, search: &str) -> Result<String, Status> {
    let refused =
        || bad("the continue token is not one podgate issued; list again without continue");
    if raw.len() > MAX_TOKEN {
        return Err(refused());
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| refused())?;
    let token: Token = serde_json::from_slice(&bytes).map_err(|_| refused())?;
    if token.search != search {
        return Err(bad(
            "the continue token belongs to another search; list again without continue",
        ));
    }
    Ok(token.after)
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// One page of `sorted` (sorted by `id`): the items after `query.after` that `keep`, at most
/// `query.limit`; the continue token when more follow, and how many follow.
pub fn page<'a, T>(
    sorted: &'a [T],
    id: impl Fn(&T) -> &str,
    keep: impl Fn(&T) -> bool,
    query: &Query,
) -> (Vec<&'a T>, Option<String>, usize) {
    let start = match &query.after {
        Some(after) => sorted.partition_point(|t| id(t) <= after.as_str()),
        None => 0,
    };
    let limit = query.limit.unwrap_or(usize::MAX);
    let mut items = Vec::new();
    let mut remaining = 0;
    for t in sorted[start..].iter().filter(|t| keep(t)) {
        if items.len() < limit {
            items.push(t);
        } else {
            remaining += 1;
        }
    }
    let next = (remaining > 0).then(|| items.last()).flatten().map(|last| {
        encode(&Token {
            after: id(last).to_string(),
            search: query.search.clone(),
        })
    });
    (items, next, remaining)
}

/// Whether every word is part of the id, display name, environment or a `key=value` label.
pub fn matches(words: &[String], cluster: &Cluster) -> bool {
    words.iter().all(|w| {
        let has = |s: &str| s.to_lowercase().contains(w.as_str());
        has(&cluster.id)
            || cluster.meta.display_name.as_deref().is_some_and(has)
            || cluster.meta.environment.as_deref().is_some_and(has)
            || cluster
                .meta
                .labels
                .iter()
                .any(|(k, v)| has(&format!("{k}={v}")))
    })
}

/// The answer to `GET /podgate/clusters?{query}` for `identity`.
pub fn answer(
    clusters: &[Arc<Cluster>],
    identity: &Identity,
    query: Option<&str>,
) -> Response<Body> {
    let query = match Query::parse(query) {
        Ok(q) => q,
        Err(s) => return status(&s),
    };
    let (items, next, remaining) = page(
        clusters,
        |c| c.id.as_str(),
        |c| podgate_auth::policy::may_use(&c.access, identity) && matches(&query.words, c),
        &query,
    );
    let list: Vec<_> = items.iter().map(|c| describe(c)).collect();
    let mut body = serde_json::json!({ "clusters": list });
    if let Some(token) = next {
        body["continue"] = token.into();
        body["remaining"] = remaining.into();
    }
    json(StatusCode::OK, &body)
}

fn describe(c: &Cluster) -> serde_json::Value {
    let h = c.health();
    let mut out = serde_json::json!({
        "id": c.id,
        "display_name": c.meta.display_name.as_deref().unwrap_or(&c.id),
        "environment": c.meta.environment,
        "labels": c.meta.labels,
        "up": h.up,
        // Not probed yet: neither up nor down (the page says "checking", not "unreachable").
        "checked_at": h.checked_at.map(crate::session::audit::timestamp),
        "version": h.version,
        "error": h.error,
    });
    // A cluster behind agents: how many are connected, or since when none is.
    if let Some(agent) = &c.agent {
        let status = agent.links.status();
        out["agent"] = serde_json::json!({
            "connected": status.connected,
            "disconnected_since": status.disconnected_since.map(crate::session::audit::timestamp),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(raw: &str) -> Query {
        Query::parse(Some(raw)).unwrap_or_else(|s| panic!("{raw}: {s:?}"))
    }

    fn refused(raw: &str) -> Status {
        Query::parse(Some(raw)).expect_err(raw)
    }

    const IDS: [&str; 7] = ["a", "b", "c", "d", "e", "f", "g"];

    fn ids(query: &Query, keep: impl Fn(&&str) -> bool) -> (Vec<String>, Option<String>, usize) {
        let (items, next, remaining) = page(&IDS, |s| s, keep, query);
        (
            items.iter().map(|s| s.to_string()).collect(),
            next,
            remaining,
        )
    }

    #[test]
    fn without_limit_everything() {
        let (items, next, remaining) = ids(&q(""), |_| true);
        assert_eq!(items, IDS);
        assert_eq!((next, remaining), (None, 0));
        assert_eq!(q("limit=0").limit, None);
        assert_eq!(Query::parse(None).expect("empty"), Query::default());
    }

    #[test]
    fn pages_follow_each_other_without_gaps_or_repeats() {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let raw = match &token {
                Some(t) => format!("limit=3&continue={t}"),
                None => "limit=3".into(),
            };
            let (items, next, remaining) = ids(&q(&raw), |s| *s != "c");
            pages += 1;
            assert!(items.len() <= 3);
            seen.extend(items);
            match next {
                Some(t) => {
                    assert!(remaining > 0);
                    token = Some(t);
                }
                None => {
                    assert_eq!(remaining, 0);
                    break;
                }
            }
        }
        assert_eq!(seen, ["a", "b", "d", "e", "f", "g"]);
        assert_eq!(pages, 2);
        // A page that ends exactly at the last match says nothing follows.
        let (items, next, _) = ids(&q("limit=6"), |s| *s != "c");
        assert_eq!((items.len(), next), (6, None));
    }

    #[test]
    fn a_token_is_bound_to_its_search_and_survives_removals() {
        let query = q("limit=2&search=Prod%20eu");
        assert_eq!(query.words, ["prod", "eu"]);
        let (_, next, remaining) = ids(&query, |_| true);
        let token = next.expect("more");
        assert_eq!(remaining, 5);
        // The same search, spelt with other spaces, continues.
        let next = q(&format!("limit=2&search=+Prod%20eu+&continue={token}"));
        assert_eq!(next.after.as_deref(), Some("b"));
        // Another search refuses it.
        let s = refused(&format!("search=staging&continue={token}"));
        assert_eq!(s.code, Some(400));
        assert!(
            s.message
                .as_deref()
                .unwrap_or("")
                .contains("another search"),
            "{s:?}"
        );
        // The id it ended at is gone: the next page starts after where it was.
        let after_b: Vec<&str> = vec!["a", "c", "d"];
        let (items, _, _) = page(&after_b, |s| s, |_| true, &next);
        assert_eq!(items, [&"c", &"d"]);
    }

    #[test]
    fn bad_input_is_a_400_status() {
        for raw in [
            "continue=garbage!",
            "continue=bm90IGpzb24",     // base64 of "not json"
            "continue=eyJhZnRlciI6MX0", // {"after":1}
            &format!("continue={}", "A".repeat(2000)),
        ] {
            let s = refused(raw);
            assert_eq!(s.code, Some(400), "{raw}");
            assert_eq!(s.reason.as_deref(), Some("BadRequest"), "{raw}");
            assert!(
                s.message
                    .as_deref()
                    .unwrap_or("")
                    .contains("not one podgate issued"),
                "{raw}: {s:?}"
            );
        }
        for raw in ["limit=-1", "limit=ten", "limit=1e3"] {
            let s = refused(raw);
            assert_eq!(s.code, Some(400), "{raw}");
            assert!(
                s.message
                    .as_deref()
                    .unwrap_or("")
                    .starts_with("limit must be"),
                "{s:?}"
            );
        }
        let s = refused(&format!("search={}", "x".repeat(201)));
        assert!(
            s.message
                .as_deref()
                .unwrap_or("")
                .contains("longer than 200")
        );
        // Too large a page is read as the largest; unknown parameters are ignored.
        assert_eq!(q("limit=100000&watch=1").limit, Some(MAX_LIMIT));
        // An empty continue is no continue.
        assert_eq!(q("continue=").after, None);
    }

    #[test]
    fn search_words_all_match_some_field() {
        podgate_devcluster::install_crypto_provider();
        let url = "https://127.0.0.1:1".parse().expect("url");
        let mut c =
            Cluster::from_kube_config("prod-eu-1", kube::Config::new(url), true).expect("cluster");
        c.meta.display_name = Some("Frankfurt Payments".into());
        c.meta.environment = Some("production".into());
        c.meta.labels.insert("region".into(), "eu-central-1".into());
        let hit = |search: &str| matches(&q(&format!("search={search}")).words, &c);
        for yes in [
            "",
            "prod",
            "EU-1",
            "frankfurt",
            "payments+prod",
            "production",
            "region=eu",
            "central",
            "region",
            "=eu-central-1",
        ] {
            assert!(hit(yes), "{yes}");
        }
        for no in ["staging", "prod+staging", "region=us", "zone"] {
            assert!(!hit(no), "{no}");
        }
    }
}
