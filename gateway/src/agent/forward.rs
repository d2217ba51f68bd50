//! The agent's HTTP/2 server: each request from the tunnel is judged (`tunnel::wire`), sent
//! to the apiserver with the agent's own credentials, and its answer streamed back; an
//! upgrade's two byte streams are joined until either ends.

use crate::tunnel::wire;
use crate::upstream::{BoxError, Upstream};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use podgate_protocol::Status;
use tokio_util::task::TaskTracker;

pub type ReplyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// The `Status` answer podgate writes everywhere, in the agent's body type.
fn reply(s: &Status) -> Response<ReplyBody> {
    crate::http::status(s).map(|b| b.map_err(BoxError::from).boxed_unsync())
}

/// What forwarding uses: the apiserver client (credentials refreshed by kube as the
/// projected token rotates) and the tasks that join upgraded streams.
#[derive(Clone)]
pub struct Forward {
    pub upstream: Upstream,
    pub tasks: TaskTracker,
    pub cluster: std::sync::Arc<str>,
}

impl Forward {
    pub async fn handle(
        &self,
        mut req: Request<Incoming>,
    ) -> Result<Response<ReplyBody>, std::convert::Infallible> {
        // The tunnel side of an upgrade: hyper hands it over once the 200 is sent.
        let tunnel_side = hyper::upgrade::on(&mut req);
        let wire::Inbound { req, upgrade } = match wire::inbound(req) {
            Ok(i) => i,
            Err(status) => {
                tracing::warn!(
                    cluster = %self.cluster,
                    "refused a request from the tunnel: {}",
                    status.message.as_deref().unwrap_or("").escape_debug()
                );
                return Ok(reply(&status));
            }
        };
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let req = req.map(|b| b.map_err(BoxError::from).boxed_unsync());
        let mut resp = match self.upstream.send(req).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(cluster = %self.cluster, %method, path = %path.escape_debug(), "apiserver unreachable: {e}");
                return Ok(reply(&Status::api_error(
                    503,
                    "ServiceUnavailable",
                    format!(
                        "podgate agent of cluster \"{}\" cannot reach its apiserver: {e}",
                        self.cluster
                    ),
                )));
            }
        };
        let Some(_) = upgrade else {
            return Ok(match wire::outbound(resp, false) {
                Ok(r) => r.map(|b| b.map_err(BoxError::from).boxed_unsync()),
                Err(status) => reply(&status),
            });
        };
        let switched = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
        let api_side = switched.then(|| hyper::upgrade::on(&mut resp));
        let resp = match wire::outbound(resp, true) {
            Ok(r) => r,
            Err(status) => return Ok(reply(&status)),
        };
        if let Some(api_side) = api_side {
            let cluster = self.cluster.clone();
            self.tasks.spawn(async move {
                let (tunnel, api) = match tokio::try_join!(tunnel_side, api_side) {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(%cluster, "an upgrade through the tunnel failed: {e}");
                        return;
                    }
                };
                let (mut tunnel, mut api) = (TokioIo::new(tunnel), TokioIo::new(api));
                // Either side's end (or error) ends both: the session's ending travels in
                // its own protocol, and a cut shows as a cut on the other side.
                let _ = tokio::io::copy_bidirectional(&mut tunnel, &mut api).await;
            });
            // A successful CONNECT answer has no body.
            let (parts, _) = resp.into_parts();
            return Ok(Response::from_parts(
                parts,
                http_body_util::Empty::new()
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            ));
        }
        Ok(resp.map(|b| b.map_err(BoxError::from).boxed_unsync()))
    }
}
