//! The task that keeps one cluster's index: list every pod in pages (`limit`/`continue`), then
//! watch from the list's `resourceVersion`, applying `ADDED`/`MODIFIED`/`DELETED`. A watch
//! that ends is resumed from the last resourceVersion seen; `410 Gone` (an `ERROR` event or
//! the response itself) or an expired continue token means a new list; a broken or failed
//! watch is retried from the last resourceVersion (with backoff), as kube's reflector does. The
//! first list fills the live index page by page (searchable while it syncs); later lists are
//! built aside and swapped in whole. Failures are retried with backoff, the index keeping
//! what it had and saying `error`.

use super::ClusterIndex;
use super::store::{PodStore, SyncState};
use super::summary::{PodSummary, WirePod};
use super::wire;
use crate::upstream::{Cluster, Registry};
use http_body_util::BodyExt as _;
use podgate_auth::Identity;
use podgate_metrics::{Metrics, PodIndexMetrics};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Pods per list page.
pub const PAGE: usize = 500;
/// How long one list page may take.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one watch request may stay open before it is resumed.
const WATCH_SECONDS: u64 = 300;
/// How long past `timeoutSeconds` a watch may stay open before it is taken as dead.
const WATCH_GRACE: Duration = Duration::from_secs(30);
/// Longest watch event line.
const MAX_LINE: usize = 8 << 20;

pub struct Feeder {
    pub registry: Registry,
    pub index: Arc<ClusterIndex>,
    pub metrics: Metrics,
    pub index_metrics: PodIndexMetrics,
    /// Whom to impersonate (`pod_index.feed_as`); `None`: podgate's own identity.
    pub feed_as: Option<Identity>,
    pub max_pods: usize,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListPage {
    metadata: ListMeta,
    items: Vec<WirePod>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ListMeta {
    resource_version: String,
    #[serde(rename = "continue")]
    continue_token: Option<String>,
}

#[derive(Deserialize)]
struct WatchEvent {
    #[serde(rename = "type")]
    kind: String,
    object: serde_json::Value,
}

/// How a watch ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The server closed it (its timeout): resume from the last resourceVersion.
    Closed,
    /// 410: list again.
    Gone,
    Failed(String),
}

/// A list failed: `Gone` for an expired continue token (list again at once).
enum ListError {
    Gone,
    Failed(String),
}

impl Feeder {
    fn cluster(&self) -> Result<Arc<Cluster>, String> {
        self.registry
            .get(&self.index.id)
            .ok_or_else(|| format!("cluster {:?} is no longer configured", self.index.id))
    }

    /// Runs until dropped (the index's owner cancels it when idle or at shutdown).
    pub async fn run(self) {
        let mut lists = 0u64;
        let mut backoff = Duration::from_millis(500);
        loop {
            if lists > 0 {
                self.index_metrics.relisted();
            }
            lists += 1;
            let mut rv = match self.list(lists == 1).await {
                Ok(rv) => {
                    backoff = Duration::from_millis(500);
                    rv
                }
                Err(ListError::Gone) => continue,
                Err(ListError::Failed(e)) => {
                    self.fail(e, &mut backoff).await;
                    continue;
                }
            };
            // A watch that ends or breaks is resumed from the last resourceVersion seen (as
            // kube's reflector does): only 410 lists everything again.
            loop {
                match self.watch(&mut rv).await {
                    End::Closed => backoff = Duration::from_millis(500),
                    End::Gone => break,
                    End::Failed(e) => self.fail(e, &mut backoff).await,
                }
            }
        }
    }

    async fn fail(&self, e: String, backoff: &mut Duration) {
        tracing::warn!(cluster = %self.index.id, "pod index: {e}");
        self.index.set_state(SyncState::Error(e));
        // A retry delay, not synchronisation: the next list is what recovers.
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(Duration::from_secs(30));
    }

    /// Lists every pod; the resourceVersion to watch from.
    async fn list(&self, first: bool) -> Result<String, ListError> {
        let cluster = self.cluster().map_err(ListError::Failed)?;
        let mut aside = (!first).then(|| PodStore::new(self.max_pods));
        if first {
            self.index
                .replace(PodStore::new(self.max_pods), SyncState::Syncing);
        }
        let mut token: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/pods?limit={PAGE}");
            if let Some(t) = &token {
                path.push_str("&continue=");
                path.extend(form_urlencoded::byte_serialize(t.as_bytes()));
            }
            let page = wire::get(&self.metrics, &cluster, &path, self.feed_as.as_ref());
            let (code, body) = tokio::time::timeout(PAGE_TIMEOUT, page)
                .await
                .map_err(|_| ListError::Failed("a pod list page took more than 60s".into()))?
                .map_err(ListError::Failed)?;
            if code == 410 {
                return Err(ListError::Gone);
            }
            if code != 200 {
                let why = wire::message(code, &body);
                let hint = if code == 403 {
                    " (podgate's pod index needs list and watch on pods cluster-wide: grant them to its identity, or set pod_index.feed_as)"
                } else {
                    ""
                };
                return Err(ListError::Failed(format!("listing pods: {why}{hint}")));
            }
            let page: ListPage = serde_json::from_slice(&body)
                .map_err(|e| ListError::Failed(format!("the pod list is not JSON: {e}")))?;
            let pods = page.items.into_iter().filter_map(PodSummary::from_wire);
            match aside.as_mut() {
                Some(store) => pods.for_each(|p| store.upsert(p)),
                None => self
                    .index
                    .update(|store| pods.for_each(|p| store.upsert(p))),
            }
            token = page.metadata.continue_token.filter(|t| !t.is_empty());
            if token.is_none() {
                match aside {
                    Some(store) => self.index.replace(store, SyncState::Ready),
                    None => self.index.set_state(SyncState::Ready),
                }
                self.index_metrics
                    .set_pods(&self.index.id, self.index.len());
                return Ok(page.metadata.resource_version);
            }
            if first {
                self.index_metrics
                    .set_pods(&self.index.id, self.index.len());
            }
        }
    }

    /// Watches from `rv`, moving it forward with every event.
    async fn watch(&self, rv: &mut String) -> End {
        let cluster = match self.cluster() {
            Ok(c) => c,
            Err(e) => return End::Failed(e),
        };
        let path = format!(
            "/api/v1/pods?watch=true&allowWatchBookmarks=true&timeoutSeconds={WATCH_SECONDS}&resourceVersion={}",
            form_urlencoded::byte_serialize(rv.as_bytes()).collect::<String>()
        );
        let resp = match wire::open(&self.metrics, &cluster, &path, self.feed_as.as_ref()).await {
            Ok(r) => r,
            Err(e) => return End::Failed(e),
        };
        match resp.status().as_u16() {
            200 => {
                if self
                    .index
                    .read(|_, state| matches!(state, SyncState::Error(_)))
                {
                    self.index.set_state(SyncState::Ready);
                }
            }
            410 => return End::Gone,
            code => {
                let body = resp.into_body().collect().await.map(|b| b.to_bytes());
                let body = body.unwrap_or_default();
                return End::Failed(format!("watching pods: {}", wire::message(code, &body)));
            }
        }
        let mut body = resp.into_body();
        let mut buf: Vec<u8> = Vec::new();
        let opened = std::time::Instant::now();
        let mut lines = 0u64;
        // The server ends a watch after `timeoutSeconds`; a connection that went dead without
        // a close (a cut link, a vanished apiserver) would otherwise hold the index stale.
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(WATCH_SECONDS) + WATCH_GRACE;
        loop {
            let Ok(frame) = tokio::time::timeout_at(deadline, body.frame()).await else {
                return End::Failed(format!(
                    "the pod watch stayed open {} s past its {WATCH_SECONDS} s timeout; the \
                     connection is taken as dead",
                    WATCH_GRACE.as_secs()
                ));
            };
            let frame = match frame {
                // A watch that ends at once with nothing in it would be asked again at once,
                // forever: that is a failure, retried with backoff.
                None if lines == 0 && opened.elapsed() < Duration::from_secs(1) => {
                    return End::Failed("the pod watch ended as soon as it opened".into());
                }
                None => return End::Closed,
                Some(Err(e)) => return End::Failed(format!("the pod watch broke: {e}")),
                Some(Ok(f)) => f,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buf.extend_from_slice(&data);
            let mut applied = false;
            while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                lines += 1;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match self.event(&line, rv) {
                    Ok(a) => applied |= a,
                    Err(end) => return end,
                }
            }
            if buf.len() > MAX_LINE {
                return End::Failed("a pod watch event is larger than 8 MiB".into());
            }
            if applied {
                self.index_metrics
                    .set_pods(&self.index.id, self.index.len());
            }
        }
    }

    /// Applies one event line; whether it changed the index, or how the watch ends.
    fn event(&self, line: &[u8], rv: &mut String) -> Result<bool, End> {
        match parse_line(line, rv)? {
            Line::Upsert(pod) => self.index.update(|s| s.upsert(*pod)),
            Line::Delete(ns, name) => self.index.update(|s| s.remove(&ns, &name)),
            Line::Skip => return Ok(false),
        }
        Ok(true)
    }
}

/// What one watch event line asks of the index.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Upsert(Box<PodSummary>),
    Delete(String, String),
    /// A bookmark, an unknown type, or an object that is not a pod.
    Skip,
}

/// Reads one watch event line, moving `rv` to its object's resourceVersion; `Err` is how the
/// watch ends (`ERROR` events: 410 is [`End::Gone`]).
fn parse_line(line: &[u8], rv: &mut String) -> Result<Line, End> {
    let ev: WatchEvent = serde_json::from_slice(line)
        .map_err(|e| End::Failed(format!("a pod watch event is not JSON: {e}")))?;
    if ev.kind == "ERROR" {
        let code = ev.object["code"].as_u64().unwrap_or(0);
        if code == 410 {
            return Err(End::Gone);
        }
        let message = ev.object["message"].as_str().unwrap_or("no message");
        return Err(End::Failed(format!(
            "the pod watch failed: {code} {message}"
        )));
    }
    if let Some(v) = ev.object["metadata"]["resourceVersion"].as_str() {
        *rv = v.to_string();
    }
    if ev.kind == "BOOKMARK" {
        return Ok(Line::Skip);
    }
    let Some(pod) = PodSummary::from_json(ev.object) else {
        return Ok(Line::Skip);
    };
    Ok(match ev.kind.as_str() {
        "ADDED" | "MODIFIED" => Line::Upsert(Box::new(pod)),
        "DELETED" => Line::Delete(pod.namespace, pod.name),
        _ => Line::Skip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(kind: &str, rv: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"type": kind, "object": {
            "metadata": {"name": "p", "namespace": "n", "resourceVersion": rv}}}))
        .unwrap()
    }

    #[test]
    fn watch_lines_move_the_resource_version_and_say_what_to_do() {
        let mut rv = "1".to_string();
        assert!(
            matches!(parse_line(&pod("ADDED", "5"), &mut rv), Ok(Line::Upsert(p)) if p.name == "p")
        );
        assert_eq!(rv, "5");
        assert!(matches!(
            parse_line(&pod("MODIFIED", "6"), &mut rv),
            Ok(Line::Upsert(_))
        ));
        assert_eq!(
            parse_line(&pod("DELETED", "7"), &mut rv),
            Ok(Line::Delete("n".into(), "p".into()))
        );
        let bookmark =
            br#"{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"9"}}}"#;
        assert_eq!(parse_line(bookmark, &mut rv), Ok(Line::Skip));
        assert_eq!(rv, "9");
        let gone = br#"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 1 (9)"}}"#;
        assert_eq!(parse_line(gone, &mut rv), Err(End::Gone));
        let other = br#"{"type":"ERROR","object":{"kind":"Status","code":500,"message":"boom"}}"#;
        assert_eq!(
            parse_line(other, &mut rv),
            Err(End::Failed("the pod watch failed: 500 boom".into()))
        );
        assert!(matches!(
            parse_line(b"{not json", &mut rv),
            Err(End::Failed(_))
        ));
        assert_eq!(
            parse_line(br#"{"type":"ADDED","object":{"metadata":{}}}"#, &mut rv),
            Ok(Line::Skip)
        );
        assert_eq!(rv, "9");
    }
}
