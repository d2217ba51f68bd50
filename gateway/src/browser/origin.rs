//! Which pages may use the session cookie.
//!
//! Browsers attach cookies to WebSocket upgrades from any site, and the handshake is not
//! subject to CORS: without this check any page a logged-in person visits could open a shell as
//! them (cross-site WebSocket hijacking). Bearer tokens in a header or subprotocol are set by
//! script and never ambient, so only cookie-authenticated requests are checked.

use http::header::{HOST, ORIGIN};
use http::{HeaderMap, Method, Uri};

/// Why a cookie-authenticated request was refused; the text is safe to show and log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OriginRefused {
    #[error(
        "refused: this request is authenticated by the podgate session cookie but carries no \
         Origin header; browsers always send one, so this is not a podgate page"
    )]
    Missing,
    #[error(
        "refused: a page at {0} may not use your podgate session; only the gateway's own pages \
         (and auth.session.allowed_origins) may open shells or change things"
    )]
    NotAllowed(String),
}

/// Whether a request needs the check: WebSocket upgrades and anything not a plain read.
pub fn needs_check(method: &Method, headers: &HeaderMap) -> bool {
    headers.contains_key(http::header::UPGRADE)
        || !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Checks `Origin` against `allowed`, or (when that is empty) against the gateway's own origin:
/// `https://` and the Host the browser addressed.
pub fn check(headers: &HeaderMap, uri: &Uri, allowed: &[String]) -> Result<(), OriginRefused> {
    let origin = headers
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .ok_or(OriginRefused::Missing)?;
    let ok = if allowed.is_empty() {
        let host = uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| headers.get(HOST).and_then(|h| h.to_str().ok()));
        host.is_some_and(|h| same(origin, &format!("https://{h}")))
    } else {
        allowed.iter().any(|a| same(origin, a))
    };
    if ok {
        Ok(())
    } else {
        // Bounded for the log: an Origin is attacker-chosen text.
        let shown: String = origin.chars().take(100).collect();
        Err(OriginRefused::NotAllowed(shown))
    }
}

/// Origins compare case-insensitively (scheme and host), with the default port implied.
fn same(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let s = s.trim_end_matches('/').to_ascii_lowercase();
        s.strip_suffix(":443")
            .filter(|_| s.starts_with("https://"))
            .map(str::to_string)
            .unwrap_or(s)
    };
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static(host));
        if let Some(o) = origin {
            h.insert(ORIGIN, HeaderValue::from_static(o));
        }
        h
    }

    #[test]
    fn own_origin_by_default() {
        let uri = Uri::from_static("/clusters/a/api");
        let own = headers(Some("https://127.0.0.1:8443"), "127.0.0.1:8443");
        assert_eq!(check(&own, &uri, &[]), Ok(()));
        let upper = headers(
            Some("HTTPS://Podgate.Example.com"),
            "podgate.example.com:443",
        );
        assert_eq!(check(&upper, &uri, &[]), Ok(()));
        let evil = headers(Some("https://evil.example"), "127.0.0.1:8443");
        assert_eq!(
            check(&evil, &uri, &[]),
            Err(OriginRefused::NotAllowed("https://evil.example".into()))
        );
        // Same host, plain http: another origin.
        let http = headers(Some("http://127.0.0.1:8443"), "127.0.0.1:8443");
        assert!(check(&http, &uri, &[]).is_err());
        assert_eq!(
            check(&headers(None, "127.0.0.1:8443"), &uri, &[]),
            Err(OriginRefused::Missing)
        );
        assert!(check(&headers(Some("null"), "x"), &uri, &[]).is_err());
    }

    #[test]
    fn configured_list_replaces_the_default() {
        let uri = Uri::from_static("/");
        let allowed = vec!["https://shell.example.com".to_string()];
        let ok = headers(Some("https://shell.example.com"), "internal:8443");
        assert_eq!(check(&ok, &uri, &allowed), Ok(()));
        let own = headers(Some("https://internal:8443"), "internal:8443");
        assert!(check(&own, &uri, &allowed).is_err());
    }

    #[test]
    fn which_requests_are_checked() {
        let mut upgrade = HeaderMap::new();
        upgrade.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(needs_check(&Method::GET, &upgrade));
        assert!(needs_check(&Method::POST, &HeaderMap::new()));
        assert!(needs_check(&Method::DELETE, &HeaderMap::new()));
        assert!(!needs_check(&Method::GET, &HeaderMap::new()));
    }
}
