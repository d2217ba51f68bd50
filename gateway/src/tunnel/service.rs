//! The upstream path of an agent cluster: each request goes down one of its tunnels,
//! translated there and back (`wire`), so the proxy, sessions, file transfers, the pod index
//! and health probes use it as they use a direct connection.

use super::links::Links;
use super::wire;
use crate::upstream::{BoxError, RequestBody};
use http::{Request, Response};
use hyper::body::Incoming;
use std::sync::Arc;

/// No tunnel to send on: the cluster is unreachable (a `503` naming it, as for a cluster
/// whose apiserver does not answer).
#[derive(Debug, thiserror::Error)]
#[error("no podgate agent is connected for this cluster{}", since_text(since))]
pub struct NoAgent {
    since: Option<std::time::SystemTime>,
}

fn since_text(t: &Option<std::time::SystemTime>) -> String {
    t.map(|t| format!(" (none since {})", crate::session::audit::timestamp(t)))
        .unwrap_or_default()
}

#[derive(Clone)]
pub struct Tunnel {
    links: Arc<Links>,
}

impl Tunnel {
    pub fn new(links: Arc<Links>) -> Tunnel {
        Tunnel { links }
    }
}

impl tower::Service<Request<RequestBody>> for Tunnel {
    type Response = Response<Incoming>;
    type Error = BoxError;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Response<Incoming>, BoxError>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        // Which tunnel is chosen per request, in `call`.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<RequestBody>) -> Self::Future {
        let links = self.links.clone();
        Box::pin(async move {
            let Some(mut send) = links.pick() else {
                return Err(NoAgent {
                    since: links.status().disconnected_since,
                }
                .into());
            };
            let (req, upgrade) = wire::to_tunnel(req)?;
            send.ready().await?;
            let resp = send.send_request(req).await?;
            Ok(wire::from_tunnel(resp, upgrade))
        })
    }
}
