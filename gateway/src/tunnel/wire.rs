//! What crosses a tunnel, translated both ways. Pure: every rule is unit-tested here.
//!
//! HTTP/2 has no `Upgrade`: an exec, attach or port-forward request goes through the tunnel
//! as an extended CONNECT (RFC 8441) whose `:protocol` is the `Upgrade` token it had
//! (`websocket`), with its method in `podgate-upgrade-method`; the agent turns it back into
//! the HTTP/1.1 upgrade the apiserver expects, and answers a `101` from it with `200` (an
//! extended CONNECT's success), which the gateway turns back into the `101` the session code
//! waits for. `Sec-WebSocket-*` headers travel unchanged both ways, so the apiserver's
//! `Sec-WebSocket-Accept` answers the gateway's own key.
//!
//! The agent is the last hop before the apiserver, so it judges what it forwards: no
//! credentials from the tunnel (it adds its own), and nothing that does not say whom it acts
//! for (`Impersonate-User`): a request the gateway did not make on a person's behalf never
//! runs with the agent's rights.

use crate::upstream::headers::{HOP_BY_HOP, listed_in_connection};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use podgate_protocol::Status;

/// The original method of an upgrade sent as extended CONNECT.
pub const UPGRADE_METHOD: HeaderName = HeaderName::from_static("podgate-upgrade-method");

/// The authority of every request in a tunnel: the agent sends to its own apiserver whatever
/// this says, so it only fills HTTP/2's required `:authority`.
const AUTHORITY: &str = "podgate-agent";

/// Headers that never cross a tunnel: hop-by-hop ones (HTTP/2 forbids them), those named by
/// `Connection`, and `Host` (`:authority` replaces it).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in listed_in_connection(headers) {
        headers.remove(name.as_str());
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
    headers.remove(header::HOST);
}

/// The gateway's side: `req` (as it would go to an apiserver directly) as it goes down the
/// tunnel, and the `Upgrade` token it asked for, if any.
pub fn to_tunnel<B>(req: Request<B>) -> Result<(Request<B>, Option<HeaderValue>), String> {
    let (mut parts, body) = req.into_parts();
    let upgrade = parts.headers.get(header::UPGRADE).cloned();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    parts.uri = Uri::builder()
        .scheme("http")
        .authority(AUTHORITY)
        .path_and_query(path)
        .build()
        .map_err(|e| format!("the request path cannot go through the tunnel: {e}"))?;
    parts.version = Version::HTTP_2;
    strip_hop_by_hop(&mut parts.headers);
    if let Some(token) = &upgrade {
        let token = token
            .to_str()
            .map_err(|_| "the Upgrade header is not text".to_string())?;
        parts.headers.insert(
            UPGRADE_METHOD,
            HeaderValue::from_str(parts.method.as_str())
                .map_err(|_| "the method is not a header value".to_string())?,
        );
        parts.method = Method::CONNECT;
        parts.extensions.insert(hyper::ext::Protocol::from(token));
    }
    Ok((Request::from_parts(parts, body), upgrade))
}

/// The gateway's side: the agent's answer as the apiserver's would have been (a `200` to an
/// upgrade is the `101` it stands for).
pub fn from_tunnel<B>(mut resp: Response<B>, upgrade: Option<HeaderValue>) -> Response<B> {
    if let Some(token) = upgrade
        && resp.status() == StatusCode::OK
    {
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        resp.headers_mut().insert(header::UPGRADE, token);
    }
    *resp.version_mut() = Version::HTTP_11;
    resp
}

/// What the agent does with a request from the tunnel.
#[derive(Debug)]
pub struct Inbound<B> {
    /// To send to the apiserver (relative URI: the agent's client adds its base and
    /// credentials).
    pub req: Request<B>,
    /// The `Upgrade` token, for an exec/attach/port-forward.
    pub upgrade: Option<String>,
}

/// The gateway's health probe, the one request it makes for nobody: `GET /version`, which
/// every apiserver shows any authenticated caller (`system:public-info-viewer`).
fn is_health_probe(method: &Method, uri: &Uri) -> bool {
    method == Method::GET && uri.path() == "/version" && uri.query().is_none()
}

/// The agent's side: a request from the tunnel as it goes to the apiserver, or the refusal
/// to answer instead.
pub fn inbound<B>(req: Request<B>) -> Result<Inbound<B>, Status> {
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    // The agent's own credentials are the only ones that reach its apiserver.
    parts.headers.remove(header::AUTHORIZATION);
    parts.headers.remove(header::PROXY_AUTHORIZATION);
    parts.headers.remove(header::COOKIE);
    let user = parts
        .headers
        .get("impersonate-user")
        .is_some_and(|v| !v.as_bytes().is_empty());
    if !user && !is_health_probe(&parts.method, &parts.uri) {
        return Err(Status::api_error(
            403,
            "Forbidden",
            "podgate agent forwards only requests made for a person (Impersonate-User); \
             this one says for nobody",
        ));
    }
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    parts.uri = path
        .parse()
        .map_err(|_| Status::bad_request("the request path is not a valid URI"))?;
    parts.version = Version::HTTP_11;
    let protocol = parts.extensions.remove::<hyper::ext::Protocol>();
    let upgrade = match (&parts.method, protocol) {
        (&Method::CONNECT, Some(protocol)) => {
            let token = protocol.as_str().to_string();
            // Said by the gateway on every upgrade: without it (or unreadable) the agent
            // would have to guess what the apiserver is to act on.
            let method = parts
                .headers
                .remove(UPGRADE_METHOD)
                .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
                .ok_or_else(|| {
                    Status::bad_request(format!(
                        "an upgrade through the tunnel names its method in {UPGRADE_METHOD}"
                    ))
                })?;
            if method != Method::GET && method != Method::POST {
                return Err(Status::bad_request(format!(
                    "an upgrade through the tunnel is a GET or a POST, not {method}"
                )));
            }
            parts.method = method;
            let value = HeaderValue::from_str(&token)
                .map_err(|_| Status::bad_request("the upgrade protocol is not a header value"))?;
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            parts.headers.insert(header::UPGRADE, value);
            Some(token)
        }
        (&Method::CONNECT, None) => {
            return Err(Status::bad_request(
                "podgate agent relays upgrades (extended CONNECT), not plain CONNECT",
            ));
        }
        _ => {
            parts.headers.remove(UPGRADE_METHOD);
            None
        }
    };
    Ok(Inbound {
        req: Request::from_parts(parts, body),
        upgrade,
    })
}

/// The agent's side: the apiserver's answer as it goes back up the tunnel. To an upgrade,
/// `101` becomes `200` (the extended CONNECT's success) and any other success is an error:
/// a `200` would read as "switched" at the gateway, and it did not switch.
pub fn outbound<B>(mut resp: Response<B>, upgrade: bool) -> Result<Response<B>, Status> {
    if upgrade {
        match resp.status() {
            StatusCode::SWITCHING_PROTOCOLS => *resp.status_mut() = StatusCode::OK,
            s if s.is_success() => {
                return Err(Status::api_error(
                    502,
                    "InternalError",
                    format!(
                        "the cluster answered the upgrade with {} and did not switch protocols",
                        s.as_u16()
                    ),
                ));
            }
            _ => {}
        }
    }
    strip_hop_by_hop(resp.headers_mut());
    *resp.version_mut() = Version::HTTP_2;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec_request() -> Request<()> {
        Request::builder()
            .method(Method::GET)
            .uri("/api/v1/namespaces/default/pods/p/exec?command=sh&stdin=true")
            .header(header::HOST, "10.0.0.1")
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
            .header(header::SEC_WEBSOCKET_PROTOCOL, "v5.channel.k8s.io")
            .header("impersonate-user", "alice")
            .body(())
            .expect("a request")
    }

    #[test]
    fn an_upgrade_crosses_as_extended_connect_and_comes_back_as_it_was() {
        let (down, upgrade) = to_tunnel(exec_request()).expect("translates");
        assert_eq!(
            upgrade.as_ref().map(|v| v.as_bytes()),
            Some(&b"websocket"[..])
        );
        assert_eq!(down.method(), Method::CONNECT);
        assert_eq!(
            down.extensions()
                .get::<hyper::ext::Protocol>()
                .map(|p| p.as_str()),
            Some("websocket")
        );
        assert_eq!(
            down.uri().to_string(),
            "http://podgate-agent/api/v1/namespaces/default/pods/p/exec?command=sh&stdin=true"
        );
        for h in ["connection", "upgrade", "host"] {
            assert!(down.headers().get(h).is_none(), "{h} crossed");
        }
        assert_eq!(
            down.headers()[header::SEC_WEBSOCKET_KEY],
            "dGhlIHNhbXBsZSBub25jZQ=="
        );

        let up = inbound(down).expect("accepted").req;
        assert_eq!(up.method(), Method::GET);
        assert_eq!(
            up.uri().to_string(),
            "/api/v1/namespaces/default/pods/p/exec?command=sh&stdin=true"
        );
        assert_eq!(up.headers()[header::UPGRADE], "websocket");
        assert_eq!(up.headers()[header::CONNECTION], "Upgrade");
        assert!(up.headers().get(UPGRADE_METHOD).is_none());
        assert_eq!(
            up.headers()[header::SEC_WEBSOCKET_PROTOCOL],
            "v5.channel.k8s.io"
        );
        assert_eq!(up.version(), Version::HTTP_11);
    }

    #[test]
    fn a_post_upgrade_keeps_its_method() {
        let mut req = exec_request();
        *req.method_mut() = Method::POST;
        let (down, _) = to_tunnel(req).expect("translates");
        assert_eq!(down.headers()[UPGRADE_METHOD], "POST");
        assert_eq!(inbound(down).expect("accepted").req.method(), Method::POST);
    }

    #[test]
    fn the_agent_drops_tunnel_credentials_and_refuses_requests_for_nobody() {
        let mut req = Request::get("http://podgate-agent/api/v1/pods")
            .header(header::AUTHORIZATION, "Bearer stolen")
            .header(header::PROXY_AUTHORIZATION, "Basic eA==")
            .header(header::COOKIE, "a=b")
            .header("impersonate-user", "alice")
            .header("impersonate-group", "dev")
            .body(())
            .expect("a request");
        let up = inbound(req).expect("accepted").req;
        for h in ["authorization", "proxy-authorization", "cookie"] {
            assert!(up.headers().get(h).is_none(), "{h} reached the apiserver");
        }
        assert_eq!(up.headers()["impersonate-group"], "dev");

        req = Request::get("/api/v1/pods").body(()).expect("a request");
        assert_eq!(inbound(req).expect_err("refused").code, Some(403));
        req = Request::get("/api/v1/pods")
            .header("impersonate-user", "")
            .body(())
            .expect("a request");
        assert_eq!(inbound(req).expect_err("refused").code, Some(403));
        // The health probe is the one request for nobody, exactly as the gateway sends it.
        req = Request::get("http://podgate-agent/version")
            .body(())
            .expect("a request");
        assert!(inbound(req).is_ok());
        for other in ["/version?x=1", "/version/", "/versions", "/api"] {
            req = Request::get(other).body(()).expect("a request");
            assert_eq!(inbound(req).expect_err(other).code, Some(403), "{other}");
        }
        req = Request::post("/version").body(()).expect("a request");
        assert_eq!(inbound(req).expect_err("a POST").code, Some(403));
    }

    #[test]
    fn the_agent_refuses_plain_connect_and_odd_upgrade_methods() {
        let req = Request::connect("http://podgate-agent/")
            .header("impersonate-user", "alice")
            .body(())
            .expect("a request");
        assert_eq!(inbound(req).expect_err("refused").code, Some(400));
        let mut req = exec_request();
        *req.method_mut() = Method::DELETE;
        let (down, _) = to_tunnel(req).expect("translates");
        assert_eq!(inbound(down).expect_err("refused").code, Some(400));
        // An upgrade that does not say its method is refused, not taken for a GET.
        let (mut down, _) = to_tunnel(exec_request()).expect("translates");
        down.headers_mut().remove(UPGRADE_METHOD);
        assert_eq!(inbound(down).expect_err("no method").code, Some(400));
        let (mut down, _) = to_tunnel(exec_request()).expect("translates");
        down.headers_mut()
            .insert(UPGRADE_METHOD, HeaderValue::from_static("G E T"));
        assert_eq!(inbound(down).expect_err("unreadable").code, Some(400));
    }

    #[test]
    fn answers_to_upgrades_say_whether_it_switched() {
        let switched = Response::builder()
            .status(101)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_PROTOCOL, "v5.channel.k8s.io")
            .body(())
            .expect("a response");
        let up = outbound(switched, true).expect("passes");
        assert_eq!(up.status(), 200);
        assert!(up.headers().get(header::UPGRADE).is_none());
        let back = from_tunnel(up, Some(HeaderValue::from_static("websocket")));
        assert_eq!(back.status(), 101);
        assert_eq!(back.headers()[header::UPGRADE], "websocket");
        assert_eq!(
            back.headers()[header::SEC_WEBSOCKET_PROTOCOL],
            "v5.channel.k8s.io"
        );

        let ok = Response::builder()
            .status(200)
            .body(())
            .expect("a response");
        assert_eq!(
            outbound(ok, true).expect_err("not switched").code,
            Some(502)
        );
        let denied = Response::builder()
            .status(403)
            .body(())
            .expect("a response");
        let back = from_tunnel(
            outbound(denied, true).expect("passes"),
            Some(HeaderValue::from_static("websocket")),
        );
        assert_eq!(back.status(), 403);
        // A plain request's 200 stays a 200.
        let ok = Response::builder()
            .status(200)
            .body(())
            .expect("a response");
        assert_eq!(
            from_tunnel(outbound(ok, false).expect("passes"), None).status(),
            200
        );
    }
}
