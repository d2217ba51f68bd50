//! Cookie headers, written and read by hand: the gateway sets two cookies and reads one, which
//! does not justify a cookie-jar crate, and keeping it pure keeps the attributes tested.

use http::HeaderMap;
use http::header::{COOKIE, HeaderValue};

/// The browser session (sealed [`podgate_auth::BrowserSession`]).
pub const SESSION_COOKIE: &str = "podgate_session";

/// A `Set-Cookie` value. HttpOnly: scripts never see the token (an XSS cannot steal it).
/// Secure: the gateway only speaks TLS. SameSite=Lax: cross-site subrequests and POSTs carry no
/// cookie, while following a link to the gateway (and the OIDC redirect back) still does.
/// `value` must be cookie-safe (the sealed values are base64url).
pub fn set_cookie(name: &str, value: &str, path: &str, max_age_secs: u64) -> HeaderValue {
    let text = format!(
        "{name}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite=Lax"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| clear_cookie(name, path))
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie(name: &str, path: &str) -> HeaderValue {
    let text = format!("{name}=; Path={path}; Max-Age=0; HttpOnly; Secure; SameSite=Lax");
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static(
        "podgate_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax",
    ))
}

/// The value of cookie `name` in the request's `Cookie` headers. When a browser sends the same
/// name twice (cookies set for different paths), the first (the most specific path) wins, as
/// RFC 6265 orders them.
pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes() {
        let v = set_cookie(SESSION_COOKIE, "abc_-", "/", 60);
        assert_eq!(
            v.to_str().ok(),
            Some("podgate_session=abc_-; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Lax")
        );
        let c = clear_cookie(SESSION_COOKIE, "/");
        assert!(c.to_str().is_ok_and(|s| s.contains("Max-Age=0")));
        // A value that cannot be a header deletes instead of panicking.
        let bad = set_cookie(SESSION_COOKIE, "a\nb", "/", 60);
        assert!(bad.to_str().is_ok_and(|s| s.contains("Max-Age=0")));
    }

    #[test]
    fn reading() {
        let mut h = HeaderMap::new();
        assert_eq!(read_cookie(&h, SESSION_COOKIE), None);
        h.append(
            COOKIE,
            HeaderValue::from_static("theme=dark; podgate_session=s1"),
        );
        h.append(COOKIE, HeaderValue::from_static("podgate_session=s2"));
        assert_eq!(read_cookie(&h, SESSION_COOKIE).as_deref(), Some("s1"));
        assert_eq!(read_cookie(&h, "theme").as_deref(), Some("dark"));
        assert_eq!(read_cookie(&h, "podgate"), None);
        let mut empty = HeaderMap::new();
        empty.append(COOKIE, HeaderValue::from_static("podgate_session="));
        assert_eq!(read_cookie(&empty, SESSION_COOKIE), None);
    }
}
