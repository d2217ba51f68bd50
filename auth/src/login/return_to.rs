//! Where the browser goes after logging in. Only a path on this gateway: anything else would
//! make `/auth/login?return_to=https://evil.example` an open redirect that lends the gateway's
//! name to a phishing page.

use super::error::LoginError;

/// Longest `return_to` kept; longer ones are refused rather than cut (a cut path is a wrong one).
pub const MAX_RETURN_TO: usize = 2048;

/// Checks that `path` is a local absolute path: it starts with one `/` (not `//` or `/\`, which
/// browsers read as another host), has no scheme, backslash, or control character.
pub fn check_return_to(path: &str) -> Result<&str, LoginError> {
    let refuse = |why: &str| Err(LoginError::BadReturnTo(why.to_owned()));
    if path.len() > MAX_RETURN_TO {
        return refuse("it is too long");
    }
    if !path.starts_with('/') {
        return refuse("it is not a path on this gateway (it must start with /)");
    }
    if path.starts_with("//") {
        return refuse("it names another host (//)");
    }
    // Browsers treat `\` as `/` in URLs, so `/\evil.example` is `//evil.example`.
    if path.contains('\\') {
        return refuse("it contains a backslash");
    }
    if path.chars().any(char::is_control) {
        return refuse("it contains a control character");
    }
    Ok(path)
}

/// The `return_to` of a `/auth/login` query: `/` when absent or empty.
pub fn return_to_from_query(query: Option<&str>) -> Result<String, LoginError> {
    let found = query
        .into_iter()
        .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
        .find(|(k, _)| k == "return_to")
        .map(|(_, v)| v.into_owned());
    match found.as_deref() {
        None | Some("") => Ok("/".to_owned()),
        Some(path) => check_return_to(path).map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_pass() {
        for ok in [
            "/",
            "/clusters/dev/ui?pod=a&ns=b",
            "/a/b#frag",
            "/%2F%2Fencoded",
        ] {
            assert_eq!(check_return_to(ok).ok(), Some(ok), "{ok}");
        }
    }

    #[test]
    fn everything_else_is_refused() {
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
            "evil.example",
            "/a\r\nSet-Cookie: x=1",
            "/a\tb",
            "",
        ] {
            assert!(
                matches!(check_return_to(bad), Err(LoginError::BadReturnTo(_))),
                "{bad:?}"
            );
        }
        assert!(check_return_to(&format!("/{}", "a".repeat(MAX_RETURN_TO))).is_err());
    }

    #[test]
    fn from_the_query() {
        assert_eq!(return_to_from_query(None).ok().as_deref(), Some("/"));
        assert_eq!(
            return_to_from_query(Some("return_to=")).ok().as_deref(),
            Some("/")
        );
        assert_eq!(
            return_to_from_query(Some("x=1&return_to=%2Fclusters%2Fa%3Fb%3D1"))
                .ok()
                .as_deref(),
            Some("/clusters/a?b=1")
        );
        // Encoded, the host trick is the same trick.
        assert!(return_to_from_query(Some("return_to=%2F%2Fevil.example")).is_err());
        assert!(return_to_from_query(Some("return_to=https%3A%2F%2Fevil.example")).is_err());
    }
}
