//! Request routing: authenticate, authorise, dispatch. Paths are matched by hand (the API
//! surface is small and fixed), and every refusal is the `Status` kube-apiserver would send.

use crate::access::{self, Attributes, UserInfo};
use crate::api::{self, Shape};
use crate::selector::POD_FIELDS;
use crate::state::State;
use hyper::{Method, Request, Response, StatusCode, header};
use podgate_protocol::http::{Body, json, status};
use podgate_protocol::{Status, subprotocol};
use std::sync::Arc;

pub async fn handle(state: Arc<State>, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    // Routed on the decoded path, as kube-apiserver routes (`defaul%74` is `default`).
    let parsed = match podgate_protocol::ApiPath::parse(&path) {
        Ok(p) => p,
        Err(e) => return status(&Status::bad_request(e.to_string())),
    };
    let segments: Vec<&str> = parsed.segments();
    // Public endpoints, as kube-apiserver serves them to anyone.
    match segments.as_slice() {
        ["version"] => return api::version(&state.topology.version),
        ["healthz"] | ["readyz"] | ["livez"] => {
            return podgate_protocol::http::with_type(
                StatusCode::OK,
                "text/plain",
                podgate_protocol::http::full("ok"),
            );
        }
        _ => {}
    }
    let user = match identify(&state, &req) {
        Ok(u) => u,
        Err(s) => return status(&s),
    };
    let query = req.uri().query().unwrap_or("").to_string();
    let shape = Shape::from_accept(
        req.headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    let watching = query_flag(&query, "watch");
    let read_verb = |named: bool| {
        if watching {
            "watch"
        } else if named {
            "get"
        } else {
            "list"
        }
    };

    let allowed = |verb: &str, resource: &str, namespace: Option<&str>, name: Option<&str>| {
        state.access.authorize(
            &user,
            &Attributes {
                verb,
                group: "",
                resource,
                namespace,
                name,
            },
        )
    };

    if let Some((ns, pod, sub)) = podgate_protocol::path::pod_session(&segments)
        && (req.method() == Method::GET || req.method() == Method::POST)
    {
        let (ns, pod) = (ns.to_string(), pod.to_string());
        return crate::exec::handle(state.clone(), req, &user, sub, &ns, &pod);
    }
    if let Some((ns, pod)) = podgate_protocol::portforward::pod(&segments)
        && (req.method() == Method::GET || req.method() == Method::POST)
    {
        let (ns, pod) = (ns.to_string(), pod.to_string());
        return crate::portforward::handle(state.clone(), req, &user, &ns, &pod);
    }
    match (req.method(), segments.as_slice()) {
        (&Method::GET, ["api"]) => api::api_versions(),
        (&Method::GET, ["openapi", "v3"]) => api::openapi_index(),
        // kubectl's validator asks whether a kind is a CRD; this cluster has none.
        (
            &Method::GET,
            [
                "apis",
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
            ],
        ) => json(
            StatusCode::OK,
            &serde_json::json!({"kind": "CustomResourceDefinitionList", "apiVersion": "apiextensions.k8s.io/v1",
                                "metadata": {"resourceVersion": "1"}, "items": []}),
        ),
        (&Method::GET, ["openapi", "v3", "api", "v1"]) => api::openapi_core_v1(),
        (&Method::GET, ["apis"]) => json(StatusCode::OK, &crate::reviews::groups()),
        (&Method::GET, ["apis", group, "v1"]) if crate::reviews::resources(group).is_some() => {
            json(
                StatusCode::OK,
                &crate::reviews::resources(group).unwrap_or_default(),
            )
        }
        (&Method::POST, ["apis", group, "v1", resource])
            if crate::reviews::is_review(group, resource) =>
        {
            let (group, resource) = (group.to_string(), resource.to_string());
            let content_type = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            match read_body(req).await {
                Err(s) => status(&s),
                Ok(body) => {
                    let answer = crate::reviews::answer(
                        &state.access,
                        &user,
                        &group,
                        &resource,
                        &content_type,
                        &body,
                    );
                    match answer {
                        Ok((code, v)) => json(code, &v),
                        Err(s) => status(&s),
                    }
                }
            }
        }
        (&Method::GET, ["api", "v1"]) => api::core_resources(),
        (&Method::GET, ["api", "v1", "namespaces"]) => {
            if let Err(s) = allowed(read_verb(false), "namespaces", None, None) {
                return status(&s);
            }
            let q = match list_query(&query, state.store.revision(), api::NAMESPACE_FIELDS) {
                Ok(q) => q,
                Err(s) => return status(&s),
            };
            if watching {
                return watch(
                    &state,
                    &query,
                    api::watch_items_namespaces(&state.store, shape, &q),
                );
            }
            json(
                StatusCode::OK,
                &api::list_namespaces(&state.store, shape, &q),
            )
        }
        (&Method::GET, ["api", "v1", "namespaces", ns]) => {
            match allowed("get", "namespaces", None, Some(ns)) {
                Err(s) => status(&s),
                Ok(()) => api::get_namespace(&state.store, ns, shape),
            }
        }
        (&Method::GET, ["api", "v1", "pods"]) => {
            if let Err(s) = allowed(read_verb(false), "pods", None, None) {
                return status(&s);
            }
            let q = match list_query(&query, state.store.revision(), POD_FIELDS) {
                Ok(q) => q,
                Err(s) => return status(&s),
            };
            if watching {
                return crate::watch::pods(state.clone(), None, shape, q, &query);
            }
            json(
                StatusCode::OK,
                &api::list_pods(&state.store, None, shape, &q),
            )
        }
        (&Method::GET, ["api", "v1", "namespaces", ns, "pods"]) => {
            if let Err(s) = allowed(read_verb(false), "pods", Some(ns), None) {
                return status(&s);
            }
            let q = match list_query(&query, state.store.revision(), POD_FIELDS) {
                Ok(q) => q,
                Err(s) => return status(&s),
            };
            if watching {
                let ns = Some(ns.to_string());
                return crate::watch::pods(state.clone(), ns, shape, q, &query);
            }
            // An unknown namespace lists as empty, as kube-apiserver lists it.
            json(
                StatusCode::OK,
                &api::list_pods(&state.store, Some(ns), shape, &q),
            )
        }
        (&Method::GET, ["api", "v1", "namespaces", ns, "pods", pod]) => {
            match allowed(read_verb(true), "pods", Some(ns), Some(pod)) {
                Err(s) => status(&s),
                Ok(()) => api::get_pod(&state.store, ns, pod, shape),
            }
        }
        (&Method::GET, ["api", "v1", "namespaces", ns, "pods", pod, "log"]) => {
            if let Err(s) = allowed("get", "pods/log", Some(ns), Some(pod)) {
                return status(&s);
            }
            let Some(entry) = state.store.pod(ns, pod) else {
                return status(&Status::not_found("pods", pod));
            };
            let wanted = form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "container")
                .map(|(_, v)| v.into_owned());
            match crate::exec::resolve_container(&entry, pod, wanted.as_deref()) {
                Ok(c) => crate::logs::serve(&entry.pod, &c.name, &query, state.shutdown.clone()),
                Err(s) => status(&s),
            }
        }
        (&Method::GET, ["api", "v1", "configmaps"]) => {
            match allowed("list", "configmaps", None, None) {
                Err(s) => status(&s),
                Ok(()) => match list_query(&query, state.configmaps.revision(), CONFIGMAP_FIELDS) {
                    Ok(q) => json(StatusCode::OK, &state.configmaps.list(None, shape, &q)),
                    Err(s) => status(&s),
                },
            }
        }
        (m, ["api", "v1", "namespaces", ns, "configmaps", rest @ ..]) if rest.len() <= 1 => {
            let (ns, name) = (ns.to_string(), rest.first().map(|n| n.to_string()));
            let m = m.clone();
            configmap(
                &state,
                req,
                &user,
                &m,
                (&ns, name.as_deref()),
                (shape, &query),
            )
            .await
        }
        (
            m,
            [
                "api",
                "v1",
                "namespaces",
                ns,
                "pods",
                pod,
                "ephemeralcontainers",
            ],
        ) if m == Method::GET || m == Method::PATCH => {
            let (ns, pod, m) = (ns.to_string(), pod.to_string(), m.clone());
            ephemeral_containers(&state, req, &user, &m, &ns, &pod).await
        }
        (_, ["api", "v1", ..]) => status(&Status::api_error(
            405,
            "MethodNotAllowed",
            format!(
                "the server does not allow this method on the requested resource ({} {path})",
                req.method()
            ),
        )),
        _ => status(&Status::api_error(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )),
    }
}

/// Bearer token from `Authorization` or, for WebSocket clients, the subprotocol entry; then
/// impersonation. Header values are read as raw bytes and decoded as UTF-8, as Go's net/http
/// passes them to kube-apiserver; one that cannot be read refuses the request (400). Nothing that
/// fails to parse is ever taken as "not there": that would run the request as the caller.
fn identify(state: &State, req: &Request<hyper::body::Incoming>) -> Result<UserInfo, Status> {
    let headers = req.headers();
    let bearer_header = match headers.get(header::AUTHORIZATION) {
        Some(v) => {
            let v = access::header_text("authorization", v.as_bytes())?;
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .map(|t| t.trim().to_string())
        }
        None => None,
    };
    let bearer_protocol = subprotocol::negotiate(
        headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        &[],
    )
    .bearer;
    let user = state
        .access
        .authenticate(bearer_header.or(bearer_protocol).as_deref())?;
    let wanted = access::Impersonation::from_headers(
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
    )?;
    state.access.impersonate(user, &wanted)
}

async fn configmap(
    state: &State,
    req: Request<hyper::body::Incoming>,
    user: &UserInfo,
    m: &Method,
    (ns, name): (&str, Option<&str>),
    (shape, query): (Shape, &str),
) -> Response<Body> {
    let verb = match (m, name) {
        (&Method::GET, None) => "list",
        (&Method::GET, Some(_)) => "get",
        (&Method::POST, None) => "create",
        (&Method::PUT, Some(_)) => "update",
        (&Method::PATCH, Some(_)) => "patch",
        (&Method::DELETE, Some(_)) => "delete",
        _ => {
            return status(&Status::api_error(
                405,
                "MethodNotAllowed",
                format!("the server does not allow {m} on configmaps here"),
            ));
        }
    };
    if let Err(s) = state.access.authorize(
        user,
        &Attributes {
            verb,
            group: "",
            resource: "configmaps",
            namespace: Some(ns),
            name,
        },
    ) {
        return status(&s);
    }
    if verb == "patch" {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !(ct.starts_with("application/merge-patch+json")
            || ct.starts_with("application/strategic-merge-patch+json"))
        {
            return status(&Status::api_error(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json (got {ct:?})"
                ),
            ));
        }
    }
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(s) => return status(&s),
    };
    let cms = &state.configmaps;
    let result = match (verb, name) {
        ("get", Some(n)) => cms.get(ns, n).map(|v| (StatusCode::OK, v)),
        ("create", _) => cms.create(ns, &body).map(|v| (StatusCode::CREATED, v)),
        ("update", Some(n)) => cms.replace(ns, n, &body).map(|v| (StatusCode::OK, v)),
        ("patch", Some(n)) => cms.patch(ns, n, &body).map(|v| (StatusCode::OK, v)),
        ("delete", Some(n)) => cms.delete(ns, n).map(|v| (StatusCode::OK, v)),
        _ => list_query(query, cms.revision(), CONFIGMAP_FIELDS)
            .map(|q| (StatusCode::OK, cms.list(Some(ns), shape, &q))),
    };
    match result {
        Ok((code, v)) => json(code, &v),
        Err(s) => status(&s),
    }
}

/// `kubectl debug`'s PATCH (and a GET) of `pods/{pod}/ephemeralcontainers`.
async fn ephemeral_containers(
    state: &State,
    req: Request<hyper::body::Incoming>,
    user: &UserInfo,
    m: &Method,
    ns: &str,
    pod: &str,
) -> Response<Body> {
    let verb = if m == Method::PATCH { "patch" } else { "get" };
    let attrs = Attributes {
        verb,
        group: "",
        resource: "pods/ephemeralcontainers",
        namespace: Some(ns),
        name: Some(pod),
    };
    if let Err(s) = state.access.authorize(user, &attrs) {
        return status(&s);
    }
    if verb == "get" {
        return match state.store.pod(ns, pod) {
            Some(e) => json(StatusCode::OK, &e.pod),
            None => status(&Status::not_found("pods", pod)),
        };
    }
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !crate::ephemeral::patch_type_ok(&ct) {
        return status(&Status::api_error(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/strategic-merge-patch+json, application/merge-patch+json (got {ct:?})"
            ),
        ));
    }
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(s) => return status(&s),
    };
    let updated = state.store.update(ns, pod, |e| {
        crate::ephemeral::apply(e, pod, &body)
            .map(|n| (n, None))
            .map_err(Some)
    });
    match updated {
        None => status(&Status::not_found("pods", pod)),
        Some(Ok((entry, _))) => json(StatusCode::OK, &entry.pod),
        Some(Err(Some(s))) => status(&s),
        Some(Err(None)) => status(&Status::api_error(500, "InternalError", "no change")),
    }
}

/// The request body, bounded as kube-apiserver bounds it (3 MiB).
async fn read_body(req: Request<hyper::body::Incoming>) -> Result<bytes::Bytes, Status> {
    use http_body_util::BodyExt as _;
    const LIMIT: usize = 3 << 20;
    match http_body_util::Limited::new(req.into_body(), LIMIT)
        .collect()
        .await
    {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => Err(Status::api_error(
            413,
            "RequestEntityTooLarge",
            format!("request body rejected: {e}"),
        )),
    }
}

/// A list's options (selectors, limit, continue); for a watch, the selectors filter events.
fn list_query(query: &str, rv: u64, fields: &[&str]) -> Result<crate::list::ListQuery, Status> {
    crate::list::parse(query, rv, fields)
}

/// What every resource selects on; configmaps have nothing more.
const CONFIGMAP_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

fn query_flag(query: &str, name: &str) -> bool {
    form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == name && (v == "true" || v == "1"))
}

fn watch(state: &State, query: &str, items: Vec<serde_json::Value>) -> Response<Body> {
    let mut timeout = std::time::Duration::from_secs(30 * 60);
    let mut resume = false;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "timeoutSeconds" => {
                if let Ok(s) = v.parse() {
                    timeout = std::time::Duration::from_secs(s);
                }
            }
            "resourceVersion" => resume = !v.is_empty() && v != "0",
            _ => {}
        }
    }
    api::watch(
        if resume { Vec::new() } else { items },
        timeout,
        state.shutdown.clone(),
    )
}
