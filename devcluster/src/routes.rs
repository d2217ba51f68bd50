//! Request routing: authenticate, authorise, dispatch. Paths are matched by hand (the API
//! surface is small and fixed), and every refusal is the `Status` kube-apiserver would send.

use crate::access::{Attributes, UserInfo};
use crate::api::{self, Shape};
use crate::state::State;
use hyper::{Method, Request, Response, StatusCode, header};
use podgate_protocol::http::{Body, json, status};
use podgate_protocol::{Status, Subresource, subprotocol};
use std::sync::Arc;

pub async fn handle(state: Arc<State>, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
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
                resource,
                namespace,
                name,
            },
        )
    };

    match (req.method(), segments.as_slice()) {
        (&Method::GET, ["api"]) => api::api_versions(),
        (&Method::GET, ["apis"]) => api::api_groups(),
        (&Method::GET, ["api", "v1"]) => api::core_resources(),
        (&Method::GET, ["api", "v1", "namespaces"]) => {
            if let Err(s) = allowed(read_verb(false), "namespaces", None, None) {
                return status(&s);
            }
            if watching {
                return watch(
                    &state,
                    &query,
                    api::watch_items_namespaces(&state.store, shape),
                );
            }
            json(StatusCode::OK, &api::list_namespaces(&state.store, shape))
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
            if watching {
                return watch(
                    &state,
                    &query,
                    api::watch_items_pods(&state.store, None, shape),
                );
            }
            json(StatusCode::OK, &api::list_pods(&state.store, None, shape))
        }
        (&Method::GET, ["api", "v1", "namespaces", ns, "pods"]) => {
            if let Err(s) = allowed(read_verb(false), "pods", Some(ns), None) {
                return status(&s);
            }
            if state.store.namespace(ns).is_none() && !watching {
                // kube-apiserver lists an unknown namespace as empty.
                return json(
                    StatusCode::OK,
                    &api::list_pods(&state.store, Some(ns), shape),
                );
            }
            if watching {
                return watch(
                    &state,
                    &query,
                    api::watch_items_pods(&state.store, Some(ns), shape),
                );
            }
            json(
                StatusCode::OK,
                &api::list_pods(&state.store, Some(ns), shape),
            )
        }
        (&Method::GET, ["api", "v1", "namespaces", ns, "pods", pod]) => {
            match allowed(read_verb(true), "pods", Some(ns), Some(pod)) {
                Err(s) => status(&s),
                Ok(()) => api::get_pod(&state.store, ns, pod, shape),
            }
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
                sub @ ("exec" | "attach"),
            ],
        ) if m == Method::GET || m == Method::POST => {
            let sub = if *sub == "exec" {
                Subresource::Exec
            } else {
                Subresource::Attach
            };
            let (ns, pod) = (ns.to_string(), pod.to_string());
            crate::exec::handle(state.clone(), req, &user, sub, &ns, &pod)
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
/// impersonation.
fn identify(state: &State, req: &Request<hyper::body::Incoming>) -> Result<UserInfo, Status> {
    let headers = req.headers();
    let bearer_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string());
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
    let as_user = headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok());
    let as_groups: Vec<&str> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    state.access.impersonate(user, as_user, &as_groups)
}

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
