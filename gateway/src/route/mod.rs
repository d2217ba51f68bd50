//! Who is asking, which cluster, which handler.
//!
//! Every request is answered here or handed on: health and the web UI's assets (no identity
//! needed), `/auth/` to the browser pages, then, once [`identify`] knows the caller, podgate's
//! own `/podgate/*` pages or a cluster's API under `/clusters/{id}/`. There the edge policy
//! judges the path as the cluster will read it ([`ApiPath`]: decoded, ambiguous forms refused),
//! and the request becomes an exec/attach session or is proxied.

pub mod clusters;
pub mod discovery;
pub mod identify;
pub mod kubeconfig;
pub mod live;
pub mod operators;
pub mod pod_search;
pub mod recordings;
pub mod resume;
pub mod reviews;

use crate::browser::Pages;
use crate::http::{Body, json, status, with_type};
use crate::session::Sessions;
use crate::session::audit::{Audit, RequestRecord, timestamp};
use crate::session::handshake::{Caller, SessionRequest};
use crate::session::registry::Credential;
use crate::upstream::Registry;
use http::{Method, Request, Response, StatusCode, header};
use identify::{Identify, Who};
use podgate_auth::policy::{self, Denied};
use podgate_metrics::{Metrics, Outcome};
use podgate_protocol::{ApiPath, Status};
use std::net::SocketAddr;
use std::sync::Arc;

/// What routing uses.
pub struct Router {
    pub clusters: Registry,
    pub identify: Identify,
    pub pages: Pages,
    pub sessions: Arc<Sessions>,
    pub metrics: Metrics,
    pub audit: Audit,
    /// Who may see, watch, end and replay others' sessions.
    pub operators: Arc<operators::Operators>,
    /// File upload and download (tar over exec).
    pub files: Arc<crate::files::Files>,
    /// The pod search's per-cluster indexes (`/podgate/pods/search`).
    pub pod_index: Arc<crate::podindex::PodIndex>,
    /// Agents' tunnels (`/podgate/agent/{cluster}`), which authenticate with their cluster's
    /// token, not as people.
    pub agents: Arc<crate::tunnel::accept::Accept>,
}

/// The router's future, boxed: naming it `Send` here (rather than inferring through the
/// connection's generic future) sidesteps rustc's higher-ranked `Send` inference limits.
pub type HandleFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>>;

/// The answer for a cluster id the registry does not hold.
fn unknown_cluster(id: &str) -> Response<Body> {
    status(
        &Status::api_error(
            404,
            "NotFound",
            format!("cluster \"{id}\" is not known to podgate"),
        )
        .with_details(id, "clusters"),
    )
}

pub fn handle(
    router: Arc<Router>,
    req: Request<hyper::body::Incoming>,
    peer: Option<SocketAddr>,
) -> HandleFuture {
    Box::pin(async move { router.route(req, peer).await })
}

impl Router {
    async fn route(
        &self,
        req: Request<hyper::body::Incoming>,
        peer: Option<SocketAddr>,
    ) -> Response<Body> {
        let path = req.uri().path();
        if path == "/healthz" {
            return with_type(StatusCode::OK, "text/plain", crate::http::full("ok"));
        }
        if path == "/readyz" {
            return if self.sessions.shutdown.is_cancelled() {
                with_type(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    crate::http::full("shutting down"),
                )
            } else {
                with_type(StatusCode::OK, "text/plain", crate::http::full("ok"))
            };
        }
        if let Some(page) = crate::browser::assets::serve(&req) {
            return page;
        }
        if path.starts_with("/auth/") {
            return crate::browser::handle(&self.pages, req, peer).await;
        }
        if path.starts_with(crate::tunnel::PATH_PREFIX) {
            return crate::tunnel::accept::handle(&self.agents, req, peer).await;
        }
        let who = match self.identify.who(&req).await {
            Ok(who) => who,
            Err(refused) => return refused,
        };
        let set_cookie = who.set_cookie.clone();
        let mut response = self.route_as(req, peer, who).await;
        // A refreshed browser session travels back on whatever answers the request (a 101 too).
        if let Some(cookie) = set_cookie {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    }

    async fn route_as(
        &self,
        req: Request<hyper::body::Incoming>,
        peer: Option<SocketAddr>,
        who: Who,
    ) -> Response<Body> {
        let raw = req.uri().path().to_string();
        let path = match ApiPath::parse(&raw) {
            Ok(p) => p,
            Err(e) => return status(&Status::bad_request(e.to_string())),
        };
        let identity = &who.authenticated.identity;
        match path.segments().as_slice() {
            ["podgate", "whoami"] => json(StatusCode::OK, identity),
            ["podgate", "pods", "search"] => {
                pod_search::answer(&self.pod_index, identity, req.uri().query()).await
            }
            ["podgate", "kubeconfig"] => {
                kubeconfig::answer(&self.pages, &self.clusters, req, &who.authenticated).await
            }
            ["podgate", "clusters"] => clusters::answer(
                self.clusters.snapshot().sorted(),
                identity,
                req.uri().query(),
            ),
            ["podgate", "files"] => crate::files::limits(&self.files),
            [
                "podgate",
                "clusters",
                id,
                "namespaces",
                ns,
                "pods",
                pod,
                "file",
            ] => {
                let Some(cluster) = self.clusters.get(id) else {
                    return unknown_cluster(id);
                };
                let (ns, pod) = (ns.to_string(), pod.to_string());
                let target = crate::files::Target {
                    cluster,
                    namespace: &ns,
                    pod: &pod,
                    identity,
                    source: peer,
                };
                crate::files::handle(&self.files, req, target).await
            }
            ["podgate", "sessions", rest @ ..] => {
                let rest = rest.to_vec();
                let live = live::Live {
                    sessions: &self.sessions,
                    operators: &self.operators,
                    replica: self.sessions.recording.replica(),
                };
                live.handle(req, peer, identity, &rest).await
            }
            ["podgate", "recordings", rest @ ..] => {
                let rest = rest.to_vec();
                let recordings = recordings::Recordings {
                    recording: &self.sessions.recording,
                    operators: &self.operators,
                    audit: &self.audit,
                };
                recordings
                    .handle(req.method(), req.uri().query(), peer, identity, &rest)
                    .await
            }
            ["clusters", id, ..] => {
                let id = id.to_string();
                self.cluster_request(req, peer, who, &id, path.from(2))
                    .await
            }
            _ => status(&Status::api_error(
                404,
                "NotFound",
                format!(
                    "podgate serves clusters under /clusters/{{id}}/; {raw} is not one of its paths"
                ),
            )),
        }
    }

    /// A request to cluster `id`'s API at `api` (the path the cluster will see).
    async fn cluster_request(
        &self,
        req: Request<hyper::body::Incoming>,
        peer: Option<SocketAddr>,
        who: Who,
        id: &str,
        api: ApiPath<'_>,
    ) -> Response<Body> {
        let Some(cluster) = self.clusters.get(id) else {
            return unknown_cluster(id);
        };
        let identity = &who.authenticated.identity;
        let segments = api.segments();
        let upgrade = (req.method() == Method::GET || req.method() == Method::POST)
            && req.headers().contains_key(header::UPGRADE);
        let session = podgate_protocol::path::pod_session(&segments)
            .filter(|_| upgrade)
            .map(|(ns, pod, sub)| (ns.to_string(), pod.to_string(), sub));
        let upstream_path = match req.uri().query() {
            Some(q) => format!("{}?{q}", api.raw()),
            None => api.raw().to_string(),
        };
        let denied = policy::check(&cluster.access, &cluster.id, identity, &api).err();
        if let Some(Denied::Cluster { .. }) = &denied
            && let Some(doc) = discovery::answer(&segments)
        {
            // They may not use the cluster, and kubectl must reach its real request to say so.
            return doc;
        }
        if upgrade && let Some((ns, pod)) = podgate_protocol::portforward::pod(&segments) {
            let (namespace, pod) = (ns.to_string(), pod.to_string());
            let target = PortForwardTarget {
                namespace,
                pod,
                upstream_path,
                denied,
            };
            return self.port_forward(req, peer, &who, &cluster, target).await;
        }
        if let Some((namespace, pod, subresource)) = session {
            let client = if crate::session::refusal::from_browser(&req) {
                "browser"
            } else {
                "kubectl"
            };
            let request = SessionRequest {
                req,
                caller: Caller {
                    credential: Credential {
                        identity: identity.clone(),
                        static_token: who.authenticated.static_token,
                        browser_session: who.login.clone(),
                    },
                    expires_at: who.authenticated.expires_at,
                    source: peer,
                    client,
                },
                cluster: cluster.clone(),
                namespace,
                pod,
                subresource,
                upstream_path,
            };
            return match denied {
                Some(denied) => crate::session::handshake::refuse(
                    &self.sessions,
                    request,
                    edge_refusal(&cluster.id, &denied),
                    Outcome::Denied,
                ),
                None => crate::session::handshake::open(&self.sessions, request).await,
            };
        }
        if let Some(denied) = denied {
            tracing::info!(user = %identity.user(), cluster = %cluster.id, reason = denied.reason(), "refused by the access policy");
            return status(&edge_refusal(&cluster.id, &denied));
        }
        if req.method() == Method::POST
            && !cluster.access.namespaces.is_empty()
            && let Some(review) = reviews::review_of(&segments)
        {
            // Judged by what it asks: podgate's answer agrees with its edge.
            return reviews::handle(
                &self.metrics,
                &cluster,
                req,
                identity,
                &upstream_path,
                review,
            )
            .await;
        }
        let method = req.method().clone();
        let response =
            crate::upstream::proxy::forward(&self.metrics, &cluster, req, identity, &upstream_path)
                .await;
        if is_mutation(&method, &segments) {
            self.audit.request(&RequestRecord {
                identity,
                source: &peer.map(|a| a.to_string()).unwrap_or_default(),
                cluster: &cluster.id,
                method: method.as_str(),
                path: &upstream_path,
                code: response.status().as_u16(),
                time: timestamp(std::time::SystemTime::now()),
            });
        }
        response
    }
}

/// What a port-forward request asks for, and the edge policy's verdict on it.
struct PortForwardTarget {
    namespace: String,
    pod: String,
    upstream_path: String,
    denied: Option<Denied>,
}

impl Router {
    /// A port-forward: a session like exec's, its own handshake and relay.
    async fn port_forward(
        &self,
        req: Request<hyper::body::Incoming>,
        peer: Option<SocketAddr>,
        who: &Who,
        cluster: &Arc<crate::upstream::Cluster>,
        target: PortForwardTarget,
    ) -> Response<Body> {
        use crate::session::portforward::{self, PortForwardRequest};
        let PortForwardTarget {
            namespace,
            pod,
            upstream_path,
            denied,
        } = target;
        let client = if crate::session::refusal::from_browser(&req) {
            "browser"
        } else {
            "kubectl"
        };
        let request = PortForwardRequest {
            req,
            caller: Caller {
                credential: Credential {
                    identity: who.authenticated.identity.clone(),
                    static_token: who.authenticated.static_token,
                    browser_session: who.login.clone(),
                },
                expires_at: who.authenticated.expires_at,
                source: peer,
                client,
            },
            cluster: cluster.clone(),
            namespace,
            pod,
            upstream_path,
        };
        match denied {
            Some(denied) => portforward::refuse(
                &self.sessions,
                request,
                edge_refusal(&cluster.id, &denied),
                Outcome::Denied,
            ),
            None => portforward::open(&self.sessions, request).await,
        }
    }
}

fn edge_refusal(cluster: &str, denied: &Denied) -> Status {
    crate::session::told(
        Status::api_error(403, "Forbidden", denied.to_string()).with_details(cluster, "clusters"),
        Outcome::Denied,
    )
}

/// Whether a proxied request changes something, and so is audited. Reads are not (they would
/// drown the log), nor are the review APIs, which are POSTs that only ask a question
/// (`kubectl auth can-i`, `auth whoami`, TokenReview).
fn is_mutation(method: &Method, segments: &[&str]) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let review = matches!(
        segments,
        ["apis", "authorization.k8s.io" | "authentication.k8s.io", _, .., resource]
            if resource.ends_with("reviews")
    );
    !(review && *method == Method::POST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_are_questions_not_mutations() {
        let seg = |p: &str| {
            p.trim_matches('/')
                .split('/')
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let check = |m: Method, p: &str| {
            let s = seg(p);
            let s: Vec<&str> = s.iter().map(String::as_str).collect();
            is_mutation(&m, &s)
        };
        for p in [
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            "/apis/authorization.k8s.io/v1/namespaces/shop/localsubjectaccessreviews",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            "/apis/authentication.k8s.io/v1/tokenreviews",
        ] {
            assert!(!check(Method::POST, p), "{p}");
        }
        assert!(check(Method::POST, "/api/v1/namespaces/default/configmaps"));
        assert!(check(
            Method::DELETE,
            "/api/v1/namespaces/default/pods/web-0"
        ));
        assert!(check(
            Method::PATCH,
            "/apis/apps/v1/namespaces/default/deployments/web"
        ));
        // Only those groups' reviews: a CRD named *reviews elsewhere is a write like any other.
        assert!(check(
            Method::POST,
            "/apis/example.com/v1/namespaces/x/codereviews"
        ));
        assert!(!check(Method::GET, "/api/v1/pods"));
    }
}
