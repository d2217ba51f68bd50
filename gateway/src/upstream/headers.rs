//! Which client headers go upstream. Pure, so every rule is unit-tested.

use http::header::{self, HeaderMap};
use podgate_auth::Identity;

/// Hop-by-hop headers (RFC 9110 §7.6.1), plus the ones only meaningful to the gateway:
/// credentials, cookies, and anything that would let a client choose its own identity.
const DROP: &[&str] = &["host", "authorization", "cookie"];

/// Hop-by-hop headers (RFC 9110 §7.6.1): never copied across the gateway, either way.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// The header names a `Connection` header lists (RFC 9110 §7.6.1: hop-by-hop too),
/// lowercased.
pub fn listed_in_connection(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect()
}

/// The headers to send upstream for a client request made by `identity`. For an impersonating
/// cluster the identity is written whole (see [`Identity::write_impersonation`]): there is no
/// path on which part of it could be left out.
pub fn forward(incoming: &HeaderMap, identity: &Identity, impersonate: bool) -> HeaderMap {
    let listed_in_connection = listed_in_connection(incoming);
    let mut out = HeaderMap::with_capacity(incoming.len() + 2);
    for (name, value) in incoming {
        let n = name.as_str();
        if DROP.contains(&n)
            || HOP_BY_HOP.contains(&n)
            || n.starts_with("impersonate-")
            || n.starts_with("sec-websocket-")
            || listed_in_connection.iter().any(|l| l == n)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    if impersonate {
        identity.write_impersonation(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use http::HeaderValue;

    fn id() -> Identity {
        Identity::new("alice", ["dev", "ops"]).expect("valid identity")
    }

    #[test]
    fn credentials_and_client_impersonation_never_go_upstream() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_static("Bearer client-secret"),
        );
        h.insert("impersonate-user", HeaderValue::from_static("admin"));
        h.insert(
            "impersonate-group",
            HeaderValue::from_static("system:masters"),
        );
        h.insert("Impersonate-Extra-scopes", HeaderValue::from_static("x"));
        h.insert("cookie", HeaderValue::from_static("podgate_session=abc"));
        h.insert("accept", HeaderValue::from_static("application/json"));
        let out = forward(&h, &id(), true);
        assert!(out.get("authorization").is_none());
        assert!(out.get("cookie").is_none());
        assert!(out.get("impersonate-extra-scopes").is_none());
        assert_eq!(out.get("impersonate-user").unwrap(), "alice");
        let groups: Vec<_> = out.get_all("impersonate-group").iter().collect();
        assert_eq!(groups, ["dev", "ops"]);
        assert_eq!(out.get("accept").unwrap(), "application/json");
        let out = forward(&h, &id(), false);
        assert!(out.keys().all(|k| !k.as_str().starts_with("impersonate-")));
    }

    #[test]
    fn hop_by_hop_and_connection_listed_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("v5.channel.k8s.io"),
        );
        h.insert("content-type", HeaderValue::from_static("application/yaml"));
        let out = forward(&h, &id(), false);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out.get("content-type").is_some());
    }
}
