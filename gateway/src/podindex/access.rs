//! Which namespaces' pods a person may list on a cluster: the cluster's own answer for that
//! person, asked as the gateway asks everything for them (impersonated) and cached briefly.
//!
//! Per (person, cluster): first `GET /api/v1/pods?limit=1` as them. `200` means every
//! namespace; otherwise, for each namespace the index holds pods in, `GET
//! /api/v1/namespaces/{ns}/pods?limit=1` as them (at most [`CONCURRENCY`] at once). Only a
//! `200` allows: a `403` denies, and anything else (unreachable, `5xx`, ...) fails closed,
//! named in the answer so the page can say that namespace could not be checked. Answers are
//! reused for `pod_index.access_ttl`. The gateway's own access policy (`clusters[].access`,
//! its `namespaces`) applies first, as it does to every request.
//!
//! For a cluster that does not impersonate, everyone acts there as the gateway's identity,
//! which is what fed the index: only the gateway's policy applies.

use super::wire;
use crate::upstream::Cluster;
use futures_util::StreamExt as _;
use podgate_auth::Identity;
use podgate_metrics::Metrics;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Access checks in flight at once for one search of one cluster.
pub const CONCURRENCY: usize = 16;
/// How long one access check may take; past it the answer is a failure (fail closed), so a
/// stalled cluster slows a search by at most this.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Most cached (person, cluster) entries; past it, expired ones go, then all.
const MAX_ENTRIES: usize = 10_000;

/// The cluster's answer for one namespace (or for all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Denied,
    /// Could not be asked, or an answer that is neither yes nor no: no results (fail closed).
    Failed(String),
}

impl Verdict {
    /// A `limit=1` list's answer.
    pub fn of(answer: Result<(u16, bytes::Bytes), String>) -> Verdict {
        match answer {
            Ok((200, _)) => Verdict::Allowed,
            Ok((401 | 403, _)) => Verdict::Denied,
            Ok((code, body)) => Verdict::Failed(wire::message(code, &body)),
            Err(e) => Verdict::Failed(e),
        }
    }
}

/// What a person may list on one cluster, for the namespaces asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// Every namespace.
    pub all: bool,
    pub namespaces: HashMap<String, Verdict>,
}

impl Allowed {
    pub fn may_list(&self, namespace: &str) -> bool {
        self.all || self.namespaces.get(namespace) == Some(&Verdict::Allowed)
    }
}

#[derive(Default)]
struct Entry {
    all: Option<(Instant, Verdict)>,
    namespaces: HashMap<String, (Instant, Verdict)>,
}

/// The cache of answers.
pub struct AccessCache {
    ttl: Duration,
    entries: Mutex<HashMap<(Identity, String), Entry>>,
}

/// Whether the gateway's own policy for the cluster lets `who` into `namespace`: the rule
/// every session there is held to.
pub fn edge_allows(cluster: &Cluster, who: &Identity, namespace: &str) -> bool {
    podgate_auth::policy::check_session(&cluster.access, &cluster.id, who, namespace).is_ok()
}

/// One `limit=1` list as `who`, bounded by [`CHECK_TIMEOUT`].
async fn check(metrics: &Metrics, cluster: &Cluster, who: &Identity, path: &str) -> Verdict {
    match tokio::time::timeout(CHECK_TIMEOUT, wire::get(metrics, cluster, path, Some(who))).await {
        Ok(answer) => Verdict::of(answer),
        Err(_) => Verdict::Failed(format!(
            "the cluster did not answer within {}s",
            CHECK_TIMEOUT.as_secs()
        )),
    }
}

/// A DNS-1123 label, as every namespace name is: what may go into a request path as it is.
pub fn is_namespace_name(ns: &str) -> bool {
    !ns.is_empty()
        && ns.len() <= 63
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !ns.starts_with('-')
        && !ns.ends_with('-')
}

impl AccessCache {
    pub fn new(ttl: Duration) -> AccessCache {
        AccessCache {
            ttl,
            entries: Mutex::default(),
        }
    }

    fn fresh(&self, at: Instant) -> bool {
        at.elapsed() < self.ttl
    }

    fn cached_all(&self, key: &(Identity, String)) -> Option<Verdict> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, v) = entries.get(key)?.all.as_ref()?;
        self.fresh(*at).then(|| v.clone())
    }

    fn store(&self, key: &(Identity, String), change: impl FnOnce(&mut Entry)) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(key) {
            let ttl = self.ttl;
            entries.retain(|_, e| e.all.as_ref().is_some_and(|(at, _)| at.elapsed() < ttl));
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        change(entries.entry(key.clone()).or_default());
    }

    /// What `who` may list among `namespaces` of `cluster` (the gateway's policy, then the
    /// cluster's answers).
    pub async fn allowed(
        &self,
        metrics: &Metrics,
        cluster: &Cluster,
        who: &Identity,
        namespaces: &[String],
    ) -> Allowed {
        let edge: Vec<&String> = namespaces
            .iter()
            .filter(|ns| edge_allows(cluster, who, ns))
            .collect();
        let mut out = Allowed {
            all: false,
            namespaces: namespaces
                .iter()
                .filter(|ns| !edge_allows(cluster, who, ns))
                .map(|ns| (ns.clone(), Verdict::Denied))
                .collect(),
        };
        if !cluster.impersonate {
            out.namespaces
                .extend(edge.into_iter().map(|ns| (ns.clone(), Verdict::Allowed)));
            return out;
        }
        let key = (who.clone(), cluster.id.clone());
        let all = match self.cached_all(&key) {
            Some(v) => v,
            None => {
                let v = Verdict::of(
                    wire::get(metrics, cluster, "/api/v1/pods?limit=1", Some(who)).await,
                );
                self.store(&key, |e| e.all = Some((Instant::now(), v.clone())));
                v
            }
        };
        if all == Verdict::Allowed && cluster.access.namespaces.is_empty() {
            out.all = true;
            return out;
        }
        if all == Verdict::Allowed {
            out.namespaces
                .extend(edge.into_iter().map(|ns| (ns.clone(), Verdict::Allowed)));
            return out;
        }
        let mut missing = Vec::new();
        {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            let cached = entries.get(&key);
            for ns in edge {
                match cached.and_then(|e| e.namespaces.get(ns)) {
                    Some((at, v)) if self.fresh(*at) => {
                        out.namespaces.insert(ns.clone(), v.clone());
                    }
                    _ => missing.push(ns.clone()),
                }
            }
        }
        let asked: Vec<(String, Verdict)> = futures_util::stream::iter(missing)
            .map(|ns| async move {
                if !is_namespace_name(&ns) {
                    return (ns, Verdict::Failed("not a valid namespace name".into()));
                }
                let path = format!("/api/v1/namespaces/{ns}/pods?limit=1");
                let v = check(metrics, cluster, who, &path).await;
                (ns, v)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let now = Instant::now();
        self.store(&key, |e| {
            e.namespaces.retain(|_, (at, _)| at.elapsed() < self.ttl);
            for (ns, v) in &asked {
                e.namespaces.insert(ns.clone(), (now, v.clone()));
            }
        });
        out.namespaces.extend(asked);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_200_allows() {
        assert_eq!(
            Verdict::of(Ok((200, bytes::Bytes::new()))),
            Verdict::Allowed
        );
        assert_eq!(Verdict::of(Ok((403, bytes::Bytes::new()))), Verdict::Denied);
        let body = bytes::Bytes::from_static(br#"{"message":"etcd is down"}"#);
        assert_eq!(
            Verdict::of(Ok((500, body))),
            Verdict::Failed("HTTP 500: etcd is down".into())
        );
        assert!(matches!(
            Verdict::of(Err("unreachable".into())),
            Verdict::Failed(_)
        ));
        let a = Allowed {
            all: false,
            namespaces: HashMap::from([
                ("a".to_string(), Verdict::Allowed),
                ("b".to_string(), Verdict::Failed("x".into())),
            ]),
        };
        assert!(a.may_list("a") && !a.may_list("b") && !a.may_list("c"));
        assert!(is_namespace_name("team-a") && is_namespace_name("a1"));
        for bad in ["", "-a", "a-", "A", "a/../b", "a?b", &"x".repeat(64)] {
            assert!(!is_namespace_name(bad), "{bad}");
        }
    }
}
