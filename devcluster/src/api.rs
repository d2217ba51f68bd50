//! The read side of the API: version, discovery, namespaces and pods (JSON or `Table`), watch.

use crate::list::{self, ListQuery};
use crate::selector::pod_field;
use crate::store::{PodEntry, Store};
use bytes::Bytes;
use hyper::{Response, StatusCode};
use k8s_openapi::api::core::v1 as core;
use podgate_protocol::Status;
use podgate_protocol::http::{Body, json, status};
use serde_json::{Value, json};

pub fn version(git_version: &str) -> Response<Body> {
    let trimmed = git_version.trim_start_matches('v');
    let mut parts = trimmed.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("0");
    json(
        StatusCode::OK,
        &json!({
            "major": major, "minor": minor, "gitVersion": git_version,
            "gitCommit": "devcluster", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0",
            "compiler": "gc", "platform": "linux/amd64",
        }),
    )
}

pub fn api_versions() -> Response<Body> {
    json(
        StatusCode::OK,
        &json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}),
    )
}

pub fn core_resources() -> Response<Body> {
    let sub = |name: &str, kind: &str, verbs: &[&str]| json!({"name": name, "singularName": "", "namespaced": true, "kind": kind, "verbs": verbs});
    json(
        StatusCode::OK,
        &json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace",
             "verbs": ["get", "list", "watch"], "shortNames": ["ns"]},
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
             "verbs": ["get", "list", "watch"], "shortNames": ["po"], "categories": ["all"]},
            {"name": "configmaps", "singularName": "configmap", "namespaced": true, "kind": "ConfigMap",
             "verbs": ["create", "delete", "get", "list", "patch", "update"], "shortNames": ["cm"]},
            sub("pods/attach", "PodAttachOptions", &["create", "get"]),
            sub("pods/ephemeralcontainers", "Pod", &["get", "patch", "update"]),
            sub("pods/portforward", "PodPortForwardOptions", &["create", "get"]),
            sub("pods/exec", "PodExecOptions", &["create", "get"]),
            sub("pods/log", "Pod", &["get"]),
        ]}),
    )
}

/// `/openapi/v3`: the index of group-version documents.
pub fn openapi_index() -> Response<Body> {
    json(
        StatusCode::OK,
        &json!({"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=devcluster"}}}),
    )
}

/// `/openapi/v3/api/v1`: just enough for kubectl to see that writes accept the
/// `fieldValidation` parameter, so `kubectl apply` validates server-side instead of
/// downloading full schemas.
pub fn openapi_core_v1() -> Response<Body> {
    let op = |action: &str| {
        json!({
            "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "x-kubernetes-action": action,
            "parameters": [
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            ],
            "responses": {"200": {"description": "OK"}},
        })
    };
    json(
        StatusCode::OK,
        &json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": {
                "/api/v1/namespaces/{namespace}/configmaps": {"post": op("post")},
                "/api/v1/namespaces/{namespace}/configmaps/{name}": {"put": op("put"), "patch": op("patch")},
            },
            "components": {"schemas": {}},
        }),
    )
}

/// How the client wants a list: kubectl asks for server-side `Table`s.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Object,
    Table,
}

impl Shape {
    pub fn from_accept(accept: Option<&str>) -> Shape {
        match accept {
            Some(a) if a.contains("as=Table") => Shape::Table,
            _ => Shape::Object,
        }
    }
}

fn age(created: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> String {
    let secs = created
        .map(|t| (crate::store::unix_seconds() - t.0.as_second()).max(0))
        .unwrap_or(0);
    human_duration(secs)
}

/// kubectl's `HumanDuration`, so ages look as they do against a real cluster.
pub fn human_duration(secs: i64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    match () {
        _ if secs < 120 => format!("{secs}s"),
        _ if m < 10 && secs % 60 != 0 => format!("{m}m{}s", secs % 60),
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 && m % 60 != 0 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if h < 24 * 8 && h % 24 != 0 => format!("{d}d{}h", h % 24),
        _ => format!("{d}d"),
    }
}

fn column(name: &str, ty: &str, priority: u8) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": ty, "format": format, "description": name, "priority": priority})
}

fn row_object(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta})
}

fn table(columns: Vec<Value>, rows: Vec<Value>, rv: &str) -> Value {
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
           "columnDefinitions": columns, "rows": rows})
}

/// A list's `metadata`: its resourceVersion, and `continue` / `remainingItemCount` for a page.
fn list_meta<T>(rv: u64, page: &list::Page<T>) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = &page.continue_token {
        meta["continue"] = json!(c);
    }
    if let Some(n) = page.remaining {
        meta["remainingItemCount"] = json!(n);
    }
    meta
}

/// The fields kube-apiserver selects namespaces on.
pub const NAMESPACE_FIELDS: &[&str] = &["metadata.name", "status.phase"];

pub fn pod_matches(e: &PodEntry, q: &ListQuery) -> bool {
    q.labels.matches(e.pod.metadata.labels.as_ref()) && q.fields.matches(|f| pod_field(&e.pod, f))
}

fn namespace_matches(n: &core::Namespace, q: &ListQuery) -> bool {
    q.labels.matches(n.metadata.labels.as_ref())
        && q.fields.matches(|f| match f {
            "metadata.name" => n.metadata.name.clone().unwrap_or_default(),
            "status.phase" => n
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default(),
            _ => String::new(),
        })
}

/// kubectl's STATUS column: the phase, or what a container waits on or ended with.
fn pod_status_text(st: &core::PodStatus) -> String {
    let phase = st.phase.clone().unwrap_or_default();
    let mut reason = st.reason.clone().unwrap_or(phase.clone());
    for c in st.container_statuses.iter().flatten() {
        let Some(state) = &c.state else { continue };
        if let Some(w) = state.waiting.as_ref().and_then(|w| w.reason.clone()) {
            reason = w;
        } else if phase != "Running"
            && let Some(t) = state.terminated.as_ref().and_then(|t| t.reason.clone())
        {
            reason = t;
        }
    }
    reason
}

/// kubectl's RESTARTS column: the count, and how long ago the last one was.
fn restarts_text(statuses: &[core::ContainerStatus]) -> String {
    let count: i64 = statuses.iter().map(|c| i64::from(c.restart_count)).sum();
    let last = statuses
        .iter()
        .filter_map(|c| {
            c.last_state
                .as_ref()?
                .terminated
                .as_ref()?
                .finished_at
                .as_ref()
        })
        .map(|t| t.0.as_second())
        .max();
    match last {
        Some(t) if count > 0 => format!(
            "{count} ({} ago)",
            human_duration((crate::store::unix_seconds() - t).max(0))
        ),
        _ => count.to_string(),
    }
}

fn pod_row(e: &PodEntry) -> Value {
    let p = &e.pod;
    let st = p.status.clone().unwrap_or_default();
    let status_text = pod_status_text(&st);
    let statuses = st.container_statuses.unwrap_or_default();
    let ready = statuses.iter().filter(|c| c.ready).count();
    json!({
        "cells": [
            p.metadata.name, format!("{ready}/{}", statuses.len()), status_text, restarts_text(&statuses),
            age(p.metadata.creation_timestamp.as_ref()), st.pod_ip,
            p.spec.as_ref().and_then(|s| s.node_name.clone()), "<none>", "<none>",
        ],
        "object": row_object(&p.metadata),
    })
}

fn pod_columns() -> Vec<Value> {
    vec![
        column("Name", "string", 0),
        column("Ready", "string", 0),
        column("Status", "string", 0),
        column("Restarts", "string", 0),
        column("Age", "string", 0),
        column("IP", "string", 1),
        column("Node", "string", 1),
        column("Nominated Node", "string", 1),
        column("Readiness Gates", "string", 1),
    ]
}

fn namespace_row(n: &core::Namespace) -> Value {
    json!({
        "cells": [n.metadata.name, n.status.as_ref().and_then(|s| s.phase.clone()),
                  age(n.metadata.creation_timestamp.as_ref())],
        "object": row_object(&n.metadata),
    })
}

fn namespace_columns() -> Vec<Value> {
    vec![
        column("Name", "string", 0),
        column("Status", "string", 0),
        column("Age", "string", 0),
    ]
}

/// A list as it is written: a `Table`, or a `PodList` whose items are serialized straight
/// from the store (no copy of thousands of pods as JSON values first).
#[derive(serde::Serialize)]
#[serde(untagged)]
pub enum PodListBody {
    Table(Value),
    Pods {
        kind: &'static str,
        #[serde(rename = "apiVersion")]
        api_version: &'static str,
        metadata: Value,
        items: Vec<PodItem>,
    },
}

/// One pod of a list, shared with the store.
pub struct PodItem(std::sync::Arc<PodEntry>);

impl serde::Serialize for PodItem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.pod.serialize(s)
    }
}

pub fn list_pods(
    store: &Store,
    namespace: Option<&str>,
    shape: Shape,
    q: &ListQuery,
) -> PodListBody {
    let rv = store.revision();
    let page = list::page(store.keyed_pods(namespace), q, rv, |e| pod_matches(e, q));
    let meta = list_meta(rv, &page);
    match shape {
        Shape::Table => {
            let mut t = table(
                pod_columns(),
                page.items.iter().map(|e| pod_row(e)).collect(),
                "",
            );
            t["metadata"] = meta;
            PodListBody::Table(t)
        }
        Shape::Object => PodListBody::Pods {
            kind: "PodList",
            api_version: "v1",
            metadata: meta,
            items: page.items.into_iter().map(PodItem).collect(),
        },
    }
}

pub fn list_namespaces(store: &Store, shape: Shape, q: &ListQuery) -> Value {
    let rv = store.revision();
    let all = store.namespaces().map(|n| {
        (
            (n.metadata.name.clone().unwrap_or_default(), String::new()),
            n,
        )
    });
    let page = list::page(all, q, rv, |n| namespace_matches(n, q));
    let meta = list_meta(rv, &page);
    match shape {
        Shape::Table => {
            let mut t = table(
                namespace_columns(),
                page.items.iter().map(|n| namespace_row(n)).collect(),
                "",
            );
            t["metadata"] = meta;
            t
        }
        Shape::Object => json!({
            "kind": "NamespaceList", "apiVersion": "v1",
            "metadata": meta,
            "items": page.items,
        }),
    }
}

pub fn get_pod(store: &Store, namespace: &str, name: &str, shape: Shape) -> Response<Body> {
    if store.namespace(namespace).is_none() {
        return status(&Status::not_found("namespaces", namespace));
    }
    match (store.pod(namespace, name), shape) {
        (None, _) => status(&Status::not_found("pods", name)),
        (Some(e), Shape::Table) => json(
            StatusCode::OK,
            &table(
                pod_columns(),
                vec![pod_row(&e)],
                &store.revision().to_string(),
            ),
        ),
        (Some(e), Shape::Object) => json(StatusCode::OK, &e.pod),
    }
}

pub fn get_namespace(store: &Store, name: &str, shape: Shape) -> Response<Body> {
    match (store.namespace(name), shape) {
        (None, _) => status(&Status::not_found("namespaces", name)),
        (Some(n), Shape::Table) => json(
            StatusCode::OK,
            &table(
                namespace_columns(),
                vec![namespace_row(n)],
                &store.revision().to_string(),
            ),
        ),
        (Some(n), Shape::Object) => json(StatusCode::OK, n),
    }
}

/// A watch: ADDED events for what exists (unless the client resumes from a resourceVersion),
/// then an open stream until `timeoutSeconds` or the client leaves. The topology is static,
/// so nothing changes after that.
pub fn watch(
    initial: Vec<Value>,
    timeout: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) -> Response<Body> {
    use futures_util::StreamExt as _;
    let events = initial.into_iter().map(|object| {
        let mut line =
            serde_json::to_vec(&json!({"type": "ADDED", "object": object})).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::io::Error>(hyper::body::Frame::data(Bytes::from(line)))
    });
    let hold = futures_util::stream::once(async move {
        tokio::select! {
            _ = tokio::time::sleep(timeout) => {}
            _ = shutdown.cancelled() => {}
        }
        Ok(hyper::body::Frame::data(Bytes::new()))
    });
    let stream = futures_util::stream::iter(events).chain(hold);
    let body = http_body_util::StreamBody::new(stream);
    podgate_protocol::http::with_type(
        StatusCode::OK,
        "application/json",
        http_body_util::BodyExt::boxed(body),
    )
}

/// Watch events carry each object; in Table form, a one-row table each.
pub fn watch_items_pods(
    store: &Store,
    namespace: Option<&str>,
    shape: Shape,
    q: &ListQuery,
) -> Vec<Value> {
    store
        .pods(namespace)
        .iter()
        .filter(|e| pod_matches(e, q))
        .map(|e| match shape {
            Shape::Table => table(
                pod_columns(),
                vec![pod_row(e)],
                &store.revision().to_string(),
            ),
            Shape::Object => serde_json::to_value(&e.pod).unwrap_or(Value::Null),
        })
        .collect()
}

/// One pod as a watch event carries it: the object, or in Table form a one-row table.
pub fn pod_watch_object(e: &PodEntry, shape: Shape, rv: u64) -> Value {
    match shape {
        Shape::Table => table(pod_columns(), vec![pod_row(e)], &rv.to_string()),
        Shape::Object => serde_json::to_value(&e.pod).unwrap_or(Value::Null),
    }
}

pub fn watch_items_namespaces(store: &Store, shape: Shape, q: &ListQuery) -> Vec<Value> {
    store
        .namespaces()
        .filter(|n| namespace_matches(n, q))
        .map(|n| match shape {
            Shape::Table => table(
                namespace_columns(),
                vec![namespace_row(n)],
                &store.revision().to_string(),
            ),
            Shape::Object => serde_json::to_value(n).unwrap_or(Value::Null),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(10 * 86400), "10d");
    }

    #[test]
    fn tables_have_a_row_per_pod_with_metadata() {
        let store = Store::new(&crate::topology::Topology::builtin());
        let q = ListQuery::default();
        let t = serde_json::to_value(list_pods(&store, Some("default"), Shape::Table, &q)).unwrap();
        let rows = t["rows"].as_array().unwrap();
        assert_eq!(rows.len(), store.pods(Some("default")).len());
        assert_eq!(rows[0]["object"]["metadata"]["namespace"], "default");
        assert_eq!(t["columnDefinitions"][0]["name"], "Name");
        let l = serde_json::to_value(list_pods(&store, None, Shape::Object, &q)).unwrap();
        assert_eq!(l["kind"], "PodList");
        assert_eq!(l["items"].as_array().unwrap().len(), store.pods(None).len());
    }
}
