//! Request routing: who is asking, which cluster, then relay (exec/attach upgrades) or proxy.

use crate::browser::session::FromCookie;
use crate::gateway::Gateway;
use crate::http::{Body, json, status, with_type};
use http::{Method, Request, Response, StatusCode, header};
use podgate_auth::{AuthError, Credential, CredentialSource};
use podgate_config::Identity;
use podgate_protocol::Status;
use std::sync::Arc;

/// The router's future, boxed: naming it `Send` here (rather than inferring through the
/// connection's generic future) sidesteps rustc's higher-ranked `Send` inference limits.
pub type HandleFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>>;

pub fn handle(gw: Arc<Gateway>, req: Request<hyper::body::Incoming>) -> HandleFuture {
    Box::pin(route(gw, req))
}

async fn route(gw: Arc<Gateway>, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let source = req.extensions().get::<crate::server::Peer>().map(|p| p.0);
    if path == "/healthz" || path == "/readyz" {
        return with_type(StatusCode::OK, "text/plain", crate::http::full("ok"));
    }
    if let Some(page) = crate::web::serve(&req) {
        return page;
    }
    if path.starts_with("/auth/") {
        return crate::browser::handle(&gw, req, source).await;
    }
    let (identity, set_cookie) = match authenticate(&gw, &req).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let mut response = route_as(gw, req, &path, source, identity).await;
    // A refreshed browser session travels back on whatever answers the request (a 101 too).
    if let Some(cookie) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

async fn route_as(
    gw: Arc<Gateway>,
    req: Request<hyper::body::Incoming>,
    path: &str,
    source: Option<std::net::SocketAddr>,
    identity: Identity,
) -> Response<Body> {
    if path == "/podgate/whoami" {
        return json(
            StatusCode::OK,
            &serde_json::json!({"user": identity.user, "groups": identity.groups}),
        );
    }
    if path == "/podgate/clusters" {
        // Only the clusters this person may use.
        let list: Vec<_> = gw
            .clusters
            .list()
            .iter()
            .filter(|c| podgate_auth::policy::may_use(&c.access, &identity))
            .map(|c| {
                let h = c.health();
                serde_json::json!({"id": c.id, "up": h.up, "version": h.version, "error": h.error})
            })
            .collect();
        return json(StatusCode::OK, &serde_json::json!({"clusters": list}));
    }
    let Some(rest) = path.strip_prefix("/clusters/") else {
        return status(&Status::api_error(
            404,
            "NotFound",
            format!(
                "podgate serves clusters under /clusters/{{id}}/; {path} is not one of its paths"
            ),
        ));
    };
    let (id, api_path) = rest.split_once('/').unwrap_or((rest, ""));
    let Some(cluster) = gw.clusters.get(id) else {
        return status(
            &Status::api_error(
                404,
                "NotFound",
                format!("cluster \"{id}\" is not known to podgate"),
            )
            .with_details(id, "clusters"),
        );
    };
    if let Err(denied) = podgate_auth::policy::check(
        &cluster.access,
        &cluster.id,
        &identity,
        &format!("/{api_path}"),
    ) {
        tracing::info!(user = %identity.user, cluster = %cluster.id, reason = denied.reason(), "refused by the access policy");
        if api_path.ends_with("/exec") || api_path.ends_with("/attach") {
            gw.metrics
                .session_rejected(&cluster.id, podgate_metrics::Outcome::Denied);
        }
        return status(
            &Status::api_error(403, "Forbidden", denied.to_string())
                .with_details(&cluster.id, "clusters"),
        );
    }
    let segments: Vec<&str> = api_path.trim_end_matches('/').split('/').collect();
    if let [
        "api",
        "v1",
        "namespaces",
        ns,
        "pods",
        pod,
        sub @ ("exec" | "attach"),
    ] = segments.as_slice()
        && (req.method() == Method::GET || req.method() == Method::POST)
        && req.headers().contains_key(header::UPGRADE)
    {
        let (ns, pod, sub) = (ns.to_string(), pod.to_string(), sub.to_string());
        let target = crate::relay::Target {
            source,
            cluster,
            namespace: &ns,
            pod: &pod,
            subresource: &sub,
        };
        return crate::relay::handle(gw.clone(), req, identity, target).await;
    }
    let upstream_path = strip_cluster_prefix(
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
    )
    .to_string();
    let method = req.method().clone();
    let response = crate::proxy::forward(&gw, &cluster, req, &identity, &upstream_path).await;
    // Mutating requests are audited; reads are not (they would drown the log).
    if !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
        gw.audit.request(&crate::audit::RequestRecord {
            user: &identity.user,
            groups: &identity.groups,
            source: &source.map(|a| a.to_string()).unwrap_or_default(),
            cluster: &cluster.id,
            method: method.as_str(),
            path: &upstream_path,
            code: response.status().as_u16(),
            time: crate::audit::timestamp(std::time::SystemTime::now()),
        });
    }
    response
}

/// `/clusters/{id}/api/v1/pods?x` → `/api/v1/pods?x`.
pub fn strip_cluster_prefix(path_and_query: &str) -> &str {
    let Some(rest) = path_and_query.strip_prefix("/clusters/") else {
        return path_and_query;
    };
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
        _ => "/",
    }
}

/// Who is asking, and a `Set-Cookie` to send back when their browser session was refreshed.
async fn authenticate(
    gw: &Gateway,
    req: &Request<hyper::body::Incoming>,
) -> Result<(Identity, Option<header::HeaderValue>), Response<Body>> {
    let unauthorized = || status(&Status::unauthorized());
    let mut set_cookie = None;
    let credential = match podgate_auth::extract(req.headers(), req.uri()) {
        Ok(Some(c)) => c,
        // No bearer token: the browser session cookie, the lowest-precedence source.
        Ok(None) => match crate::browser::session::read(&gw.browser, req.headers()).await {
            FromCookie::Token {
                token,
                set_cookie: c,
            } => {
                set_cookie = c;
                Credential {
                    token,
                    source: CredentialSource::Cookie,
                }
            }
            FromCookie::Absent => {
                tracing::info!(reason = "missing", "authentication failed");
                gw.metrics.auth_failure("missing");
                return Err(unauthorized());
            }
            FromCookie::Refused { reason } => {
                tracing::info!(reason, "authentication failed: unusable session cookie");
                gw.metrics.auth_failure(reason);
                let mut resp = unauthorized();
                resp.headers_mut()
                    .insert(header::SET_COOKIE, clear_session());
                return Err(resp);
            }
        },
        Err(e) => {
            tracing::info!(reason = e.reason(), "authentication failed: {e}");
            gw.metrics.auth_failure(e.reason());
            return Err(status(&Status::api_error(
                401,
                "Unauthorized",
                format!("Unauthorized: {e}"),
            )));
        }
    };
    // Browsers attach the cookie to requests from any site: only our own pages may use it to
    // open shells or change things.
    if credential.source == CredentialSource::Cookie
        && crate::browser::origin::needs_check(req.method(), req.headers())
        && let Err(refused) =
            crate::browser::origin::check(req.headers(), req.uri(), &gw.browser.allowed_origins)
    {
        tracing::info!(reason = "cross_origin", "request refused: {refused}");
        gw.metrics.auth_failure("cross_origin");
        return Err(status(&Status::api_error(
            403,
            "Forbidden",
            refused.to_string(),
        )));
    }
    match gw.authenticator.authenticate(&credential.token).await {
        Ok(id) => Ok((id, set_cookie)),
        Err(AuthError::Unavailable(e)) => {
            tracing::warn!(
                reason = "unavailable",
                "authentication backend unavailable: {e}"
            );
            gw.metrics.auth_failure("unavailable");
            Err(status(&Status::api_error(
                503,
                "ServiceUnavailable",
                "authentication is unavailable; try again shortly",
            )))
        }
        Err(e) => {
            tracing::info!(reason = e.reason(), source = %credential.source, "authentication failed: {e}");
            gw.metrics.auth_failure(e.reason());
            let mut resp = unauthorized();
            // A session whose token is no longer accepted is over: the browser drops it and
            // the UI offers a new login.
            if credential.source == CredentialSource::Cookie {
                resp.headers_mut()
                    .insert(header::SET_COOKIE, clear_session());
            }
            Err(resp)
        }
    }
}

fn clear_session() -> header::HeaderValue {
    crate::browser::cookies::clear_cookie(crate::browser::cookies::SESSION_COOKIE, "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_stripped() {
        assert_eq!(
            strip_cluster_prefix("/clusters/east/api/v1/pods?watch=1"),
            "/api/v1/pods?watch=1"
        );
        assert_eq!(strip_cluster_prefix("/clusters/east/version"), "/version");
        assert_eq!(strip_cluster_prefix("/clusters/east"), "/");
        assert_eq!(strip_cluster_prefix("/clusters/east?x=1"), "/");
    }
}
