//! `pods/{pod}/portforward`: the checks kube-apiserver makes before the upgrade (each refusal
//! its `Status`), then one session per request in the protocol the client offered:
//! [`spdy`] (kubectl 1.31+: SPDY/3.1 inside WebSocket) or [`channels`] (the kubelet's
//! WebSocket protocol, which the Python client speaks). Either way each forwarded connection
//! reaches the pod's port through [`crate::runtime::ports`], and a port nothing answers on
//! fails with containerd's words on the connection's error stream.

mod channels;
mod spdy;
mod ws;

use crate::access::{Attributes, UserInfo};
use crate::runtime::ports::Sandbox;
use crate::state::State;
use crate::topology::PodSpec;
use hyper::{Method, Request, Response, header};
use podgate_protocol::Status;
use podgate_protocol::http::{Body, status};
use podgate_protocol::portforward::{self, Tunnel};
use std::sync::Arc;

/// What a session needs of its pod.
#[derive(Clone)]
struct Pod {
    spec: PodSpec,
    name: String,
    sandbox: Arc<Sandbox>,
}

pub fn handle(
    state: Arc<State>,
    mut req: Request<hyper::body::Incoming>,
    user: &UserInfo,
    ns: &str,
    pod_name: &str,
) -> Response<Body> {
    // WebSocket upgrades are GETs (`get`), SPDY ones POSTs (`create`).
    let verb = if req.method() == Method::POST {
        "create"
    } else {
        "get"
    };
    let attrs = Attributes {
        verb,
        group: "",
        resource: "pods/portforward",
        namespace: Some(ns),
        name: Some(pod_name),
    };
    if let Err(s) = state.access.authorize(user, &attrs) {
        return status(&s);
    }
    let Some(entry) = state.store.pod(ns, pod_name) else {
        return status(&Status::not_found("pods", pod_name));
    };
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if upgrade.to_ascii_lowercase().starts_with("spdy") {
        return status(&Status::bad_request(
            "SPDY is not supported: this server forwards ports over WebSocket only \
             (SPDY/3.1+portforward.k8s.io, v4.channel.k8s.io); use kubectl 1.31 or newer",
        ));
    }
    if !fastwebsockets::upgrade::is_upgrade_request(&req) {
        return status(&Status::bad_request("Upgrade request required"));
    }
    let offer = portforward::offer(
        req.headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let Some(tunnel) = offer.tunnels.first().copied() else {
        return status(&Status::bad_request(format!(
            "unable to upgrade: requested protocol(s) are not supported; supports {}, v4.channel.k8s.io, v4.base64.channel.k8s.io and no protocol",
            portforward::SPDY_TUNNEL
        )));
    };
    // The kubelet's WebSocket protocol takes its ports from the query; the tunnel's streams
    // name theirs.
    let ports = match tunnel {
        Tunnel::Spdy => Vec::new(),
        Tunnel::Channels(_) => match portforward::ports(req.uri().query().unwrap_or("")) {
            Ok(p) if p.is_empty() => {
                return status(&Status::bad_request(
                    portforward::PortsError::Missing.to_string(),
                ));
            }
            Ok(p) => p,
            Err(e) => return status(&Status::bad_request(e.to_string())),
        },
    };
    let (mut response, upgraded) = match fastwebsockets::upgrade::upgrade(&mut req) {
        Ok(x) => x,
        Err(e) => return status(&Status::bad_request(format!("unable to upgrade: {e}"))),
    };
    if offer.echo
        && let Ok(v) = header::HeaderValue::from_str(tunnel.name())
    {
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, v);
    }
    let uid = entry.pod.metadata.uid.clone().unwrap_or_default();
    let pod = Pod {
        spec: entry.spec.clone(),
        name: pod_name.to_string(),
        sandbox: Arc::new(Sandbox::of(&uid)),
    };
    let span = tracing::info_span!("portforward", user = %user.name, ns, pod = pod_name,
        protocol = tunnel.name());
    let max_message = state.topology.max_message_bytes;
    let tasks = state.tasks.clone();
    tasks.spawn(tracing::Instrument::instrument(
        async move {
            let _counted = state.session_guard();
            let ended = async {
                let ws = upgraded.await?;
                match tunnel {
                    Tunnel::Spdy => spdy::serve(ws, pod, max_message).await,
                    Tunnel::Channels(p) => channels::serve(ws, p, pod, ports, max_message).await,
                }
            };
            tokio::select! {
                _ = state.shutdown.cancelled() => {}
                r = ended => if let Err(e) = r {
                    tracing::debug!("port-forward session ended with an error: {e}");
                },
            }
        },
        span,
    ));
    response.map(|b| {
        http_body_util::BodyExt::boxed(http_body_util::BodyExt::map_err(b, |never| match never {}))
    })
}
