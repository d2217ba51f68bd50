//! A writable resource, so `kubectl apply`, `get`, `edit` and `delete` through a proxy have
//! something real to change: ConfigMaps kept in memory, with create, replace, merge patch,
//! delete, list and get, and kube-apiserver's conflict and not-found answers.

use crate::api::{Shape, human_duration};
use crate::store::{now, unix_seconds};
use podgate_protocol::Status;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct ConfigMaps {
    objects: Mutex<BTreeMap<(String, String), Value>>,
    version: AtomicU64,
}

impl ConfigMaps {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Value>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stamp(&self, obj: &mut Value, ns: &str, name: &str, created: Option<Value>) {
        let rv = self.version.fetch_add(1, Ordering::Relaxed) + 2;
        obj["apiVersion"] = json!("v1");
        obj["kind"] = json!("ConfigMap");
        let meta = &mut obj["metadata"];
        meta["namespace"] = json!(ns);
        meta["name"] = json!(name);
        meta["resourceVersion"] = json!(rv.to_string());
        meta["uid"] = json!(format!("cm-{ns}-{name}"));
        meta["creationTimestamp"] = created.unwrap_or_else(|| json!(now().0.to_string()));
    }

    /// The resourceVersion lists (and continue tokens) carry.
    pub fn revision(&self) -> u64 {
        self.version.load(Ordering::Relaxed) + 1
    }

    pub fn list(&self, ns: Option<&str>, shape: Shape, q: &crate::list::ListQuery) -> Value {
        let rv_n = self.revision();
        let all: Vec<((String, String), Value)> = self
            .lock()
            .iter()
            .filter(|((n, _), _)| ns.is_none_or(|want| want == n))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let page = crate::list::page(all, q, rv_n, |o| {
            let labels: Option<BTreeMap<String, String>> =
                serde_json::from_value(o["metadata"]["labels"].clone()).ok();
            q.labels.matches(labels.as_ref())
                && q.fields.matches(|f| match f {
                    "metadata.name" => o["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    "metadata.namespace" => o["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    _ => String::new(),
                })
        });
        let items = page.items;
        let rv = rv_n.to_string();
        let mut meta = json!({"resourceVersion": rv});
        if let Some(c) = &page.continue_token {
            meta["continue"] = json!(c);
        }
        if let Some(n) = page.remaining {
            meta["remainingItemCount"] = json!(n);
        }
        match shape {
            Shape::Object => {
                json!({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": meta, "items": items})
            }
            Shape::Table => json!({
                "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                "columnDefinitions": [
                    {"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0},
                    {"name": "Data", "type": "integer", "format": "", "description": "Data", "priority": 0},
                    {"name": "Age", "type": "string", "format": "", "description": "Age", "priority": 0},
                ],
                "rows": items.iter().map(|o| json!({
                    "cells": [o["metadata"]["name"], o["data"].as_object().map_or(0, |d| d.len()), age(o)],
                    "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]},
                })).collect::<Vec<_>>(),
            }),
        }
    }

    pub fn get(&self, ns: &str, name: &str) -> Result<Value, Status> {
        self.lock()
            .get(&(ns.into(), name.into()))
            .cloned()
            .ok_or_else(|| Status::not_found("configmaps", name))
    }

    pub fn create(&self, ns: &str, body: &[u8]) -> Result<Value, Status> {
        let mut obj = parse(body)?;
        let name = obj["metadata"]["name"]
            .as_str()
            .map(str::to_string)
            .filter(|n| !n.is_empty());
        let Some(name) = name else {
            return Err(Status::api_error(
                422,
                "Invalid",
                "ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required",
            ));
        };
        let mut map = self.lock();
        if map.contains_key(&(ns.into(), name.clone())) {
            return Err(Status::api_error(
                409,
                "AlreadyExists",
                format!("configmaps \"{name}\" already exists"),
            )
            .with_details(&name, "configmaps"));
        }
        self.stamp(&mut obj, ns, &name, None);
        map.insert((ns.into(), name), obj.clone());
        Ok(obj)
    }

    pub fn replace(&self, ns: &str, name: &str, body: &[u8]) -> Result<Value, Status> {
        let mut obj = parse(body)?;
        let mut map = self.lock();
        let created = map
            .get(&(ns.into(), name.into()))
            .ok_or_else(|| Status::not_found("configmaps", name))?["metadata"]["creationTimestamp"]
            .clone();
        self.stamp(&mut obj, ns, name, Some(created));
        map.insert((ns.into(), name.into()), obj.clone());
        Ok(obj)
    }

    /// JSON merge patch (RFC 7386). For a ConfigMap's string maps, a strategic merge patch
    /// means the same thing, so both content types are served by it.
    pub fn patch(&self, ns: &str, name: &str, body: &[u8]) -> Result<Value, Status> {
        let patch = parse(body)?;
        let mut map = self.lock();
        let current = map
            .get_mut(&(ns.into(), name.into()))
            .ok_or_else(|| Status::not_found("configmaps", name))?;
        let created = current["metadata"]["creationTimestamp"].clone();
        merge(current, &patch);
        let mut obj = current.clone();
        self.stamp(&mut obj, ns, name, Some(created));
        *current = obj.clone();
        Ok(obj)
    }

    pub fn delete(&self, ns: &str, name: &str) -> Result<Value, Status> {
        self.lock()
            .remove(&(ns.into(), name.into()))
            .ok_or_else(|| Status::not_found("configmaps", name))?;
        Ok(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                  "details": {"name": name, "kind": "configmaps"}}),
        )
    }
}

fn age(o: &Value) -> String {
    let created = o["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|s| s.parse::<k8s_openapi::jiff::Timestamp>().ok());
    human_duration(created.map_or(0, |t| (unix_seconds() - t.as_second()).max(0)))
}

fn parse(body: &[u8]) -> Result<Value, Status> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        Status::bad_request(format!(
            "the body of the request was in an unknown format: {e}"
        ))
    })?;
    if !v.is_object() {
        return Err(Status::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    Ok(v)
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_conflict_patch_delete() {
        let c = ConfigMaps::default();
        let body = br#"{"metadata":{"name":"x"},"data":{"k":"v","gone":"1"}}"#;
        let o = c.create("default", body).unwrap();
        assert_eq!(o["metadata"]["namespace"], "default");
        assert_eq!(c.create("default", body).unwrap_err().code, Some(409));
        let o = c
            .patch("default", "x", br#"{"data":{"k":"w","gone":null}}"#)
            .unwrap();
        assert_eq!(o["data"], json!({"k": "w"}));
        assert_eq!(
            c.list(Some("default"), Shape::Object, &Default::default())["items"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            c.list(Some("shop"), Shape::Object, &Default::default())["items"]
                .as_array()
                .unwrap()
                .len(),
            0
        );
        c.delete("default", "x").unwrap();
        assert_eq!(c.get("default", "x").unwrap_err().code, Some(404));
        assert_eq!(c.create("default", b"[]").unwrap_err().code, Some(400));
    }
}
