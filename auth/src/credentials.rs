//! Finding the bearer token in a request, before anyone checks whether it is valid.
//!
//! Pure: headers and URI in, a [`Credential`] or a [`CredentialError`] out. Keeping this apart
//! from the authenticators means every way a client can present (or mispresent) a token is
//! tested here without sockets, and the gateway gets one place that decides which token counts.
//!
//! Tokens are secrets. Nothing in this module prints one: [`Credential`]'s `Debug` is written by
//! hand, and errors carry only static text.

use std::fmt;

use http::header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};
use http::{HeaderMap, Uri};
use podgate_protocol::subprotocol::{BEARER_PREFIX, negotiate};

/// Query parameters that clients (and some OAuth libraries) use to pass a token in the URL.
/// We refuse them rather than ignore them, so the user learns why they are not logged in and
/// stops leaking the token.
const QUERY_TOKEN_PARAMS: [&str; 2] = ["access_token", "token"];

/// Where a request's token came from. The gateway needs this beyond authentication: only an
/// ambient credential (a cookie) makes cross-site WebSocket hijacking possible, so only that
/// source requires an Origin check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CredentialSource {
    /// `Authorization: Bearer <token>`: kubectl, client libraries, scripts.
    Header,
    /// A `base64url.bearer.authorization.k8s.io.<token>` entry in `Sec-WebSocket-Protocol`:
    /// browsers, which cannot set headers on a WebSocket. Script-set, so not ambient.
    WebSocketProtocol,
    /// Extension point for the browser login session cookie (a later issue). [`extract`] never
    /// returns it yet. When it does, it must rank below both explicit sources, and the gateway
    /// must require an allowed `Origin` for requests authenticated this way, because browsers
    /// attach cookies to cross-site requests.
    Cookie,
}

impl CredentialSource {
    /// A bounded label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialSource::Header => "header",
            CredentialSource::WebSocketProtocol => "websocket_protocol",
            CredentialSource::Cookie => "cookie",
        }
    }
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bearer token as presented by the client, not yet verified.
///
/// Deliberately not `PartialEq`: comparing secrets with `==` leaks timing; authenticators use
/// [`crate::ct_eq`] or a signature check instead.
#[derive(Clone)]
pub struct Credential {
    pub token: String,
    pub source: CredentialSource,
}

impl fmt::Debug for Credential {
    /// Shows where the token came from and how long it is, which is what debugging a login needs,
    /// but never the token itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field(
                "token",
                &format_args!("<redacted, {} bytes>", self.token.len()),
            )
            .field("source", &self.source)
            .finish()
    }
}

/// Why a request's credentials could not be read. Each is the client's mistake (answer 401 or
/// 400), and none carries any part of a token, so they are safe to log and to send back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// A credential is present but unreadable; the text says what is wrong with it.
    #[error("malformed credentials: {0}")]
    Malformed(&'static str),
    /// `Authorization` uses a scheme other than Bearer. The scheme is not echoed: a client that
    /// forgot the `Bearer ` prefix sends the token itself where the scheme should be.
    #[error(
        "unsupported Authorization scheme: send `Authorization: Bearer <token>`; \
         Basic and other schemes are not accepted"
    )]
    UnsupportedScheme,
    /// The `Authorization` header and the `Sec-WebSocket-Protocol` bearer entry carry different
    /// tokens. Picking one would authenticate as someone the client may not have meant.
    #[error(
        "conflicting credentials: the Authorization header and the Sec-WebSocket-Protocol \
         bearer entry carry different tokens; send only one"
    )]
    Conflicting,
    /// A token was put in the query string.
    #[error(
        "token in the URL: tokens in the URL end up in logs and browser history; send it in the \
         Authorization header (browsers: as a `{BEARER_PREFIX}<base64url token>` \
         Sec-WebSocket-Protocol entry), and consider the token leaked"
    )]
    TokenInQuery,
}

impl CredentialError {
    /// A bounded label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            CredentialError::Malformed(_) => "malformed",
            CredentialError::UnsupportedScheme => "unsupported_scheme",
            CredentialError::Conflicting => "conflicting",
            CredentialError::TokenInQuery => "token_in_query",
        }
    }
}

/// Finds the bearer token in a request.
///
/// `Ok(None)` means the request carries no credential at all (anonymous; the caller decides
/// whether that is allowed). Sources, in order of precedence:
/// 1. a token in the query string is refused outright ([`CredentialError::TokenInQuery`]), even
///    if a header also carries one: the token has already leaked and the user should know;
/// 2. `Authorization: Bearer <token>` (scheme case-insensitive);
/// 3. a bearer entry in `Sec-WebSocket-Protocol`.
///
/// If both 2 and 3 are present they must carry the same token.
pub fn extract(headers: &HeaderMap, uri: &Uri) -> Result<Option<Credential>, CredentialError> {
    if uri.query().is_some_and(has_token_param) {
        return Err(CredentialError::TokenInQuery);
    }
    let from_header = authorization_token(headers)?;
    let from_protocol = websocket_protocol_token(headers)?;
    match (from_header, from_protocol) {
        (Some(header), Some(protocol)) => {
            if crate::ct_eq(header.as_bytes(), protocol.as_bytes()) {
                Ok(Some(Credential {
                    token: header,
                    source: CredentialSource::Header,
                }))
            } else {
                Err(CredentialError::Conflicting)
            }
        }
        (Some(token), None) => Ok(Some(Credential {
            token,
            source: CredentialSource::Header,
        })),
        (None, Some(token)) => Ok(Some(Credential {
            token,
            source: CredentialSource::WebSocketProtocol,
        })),
        // Extension point: the session cookie goes here, as the lowest-precedence source.
        (None, None) => Ok(None),
    }
}

/// Whether the query has an `access_token` or `token` parameter, whatever its value: even an
/// empty one shows a client trying to authenticate that way. Keys are percent-decoded (as every
/// server-side query parser does) and compared case-insensitively, so spelling variants that a
/// server could still read are caught too.
fn has_token_param(query: &str) -> bool {
    form_urlencoded::parse(query.as_bytes()).any(|(key, _)| {
        QUERY_TOKEN_PARAMS
            .iter()
            .any(|name| key.eq_ignore_ascii_case(name))
    })
}

/// The token of `Authorization: Bearer <token>`, if there is an Authorization header.
fn authorization_token(headers: &HeaderMap) -> Result<Option<String>, CredentialError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        // Proxies and servers disagree on which of several to use; refuse rather than guess.
        return Err(CredentialError::Malformed(
            "more than one Authorization header; send exactly one",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| {
            CredentialError::Malformed("the Authorization header contains non-ASCII characters")
        })?
        .trim();
    if value.is_empty() {
        return Err(CredentialError::Malformed(
            "the Authorization header is empty",
        ));
    }
    let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(CredentialError::UnsupportedScheme);
    }
    let token = rest.trim();
    if token.is_empty() {
        return Err(CredentialError::Malformed(
            "the Authorization header has no token after `Bearer`",
        ));
    }
    if token.contains([' ', '\t']) {
        return Err(CredentialError::Malformed(
            "the Authorization bearer token contains whitespace; send `Bearer <token>` with \
             the token alone",
        ));
    }
    Ok(Some(token.to_owned()))
}

/// The decoded token of a `base64url.bearer.authorization.k8s.io.` entry in
/// `Sec-WebSocket-Protocol`, if there is one. Decoding is [`negotiate`]'s; this adds only the
/// checks it leaves to callers.
fn websocket_protocol_token(headers: &HeaderMap) -> Result<Option<String>, CredentialError> {
    let mut texts = Vec::new();
    for value in headers.get_all(SEC_WEBSOCKET_PROTOCOL) {
        match value.to_str() {
            Ok(text) => texts.push(text),
            // A non-ASCII value is for the handshake to refuse, unless it holds our entry, which
            // must not be silently ignored (the user would get a puzzling "no credentials").
            Err(_) if contains(value.as_bytes(), BEARER_PREFIX.as_bytes()) => {
                return Err(CredentialError::Malformed(
                    "the Sec-WebSocket-Protocol bearer entry contains non-ASCII characters",
                ));
            }
            Err(_) => {}
        }
    }
    let entries = texts
        .iter()
        .flat_map(|text| text.split(','))
        .filter(|entry| entry.trim().starts_with(BEARER_PREFIX))
        .count();
    if entries == 0 {
        return Ok(None);
    }
    if entries > 1 {
        // negotiate() keeps the last one; which token counts must not depend on entry order.
        return Err(CredentialError::Malformed(
            "more than one Sec-WebSocket-Protocol bearer entry; send exactly one",
        ));
    }
    let negotiation = negotiate(texts.iter().copied(), &[]);
    match negotiation.bearer {
        Some(token) if !negotiation.bearer_malformed => Ok(Some(token)),
        _ => Err(CredentialError::Malformed(
            "the Sec-WebSocket-Protocol bearer entry is not a non-empty base64url (no padding) \
             encoding of a UTF-8 token",
        )),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use podgate_protocol::subprotocol::bearer_entry;

    use super::*;

    /// Distinctive enough that finding it in any output means a leak.
    const TOKEN: &str = "zq9-SECRET-tok3n-7xv";
    const OTHER: &str = "zq9-OTHER-tok3n-8yw";

    fn uri(s: &str) -> Uri {
        s.parse().expect("test URI parses")
    }

    fn exec_uri() -> Uri {
        uri("/clusters/dev/api/v1/namespaces/ns/pods/p/exec?command=sh&stdin=true&tty=true")
    }

    fn headers(pairs: &[(http::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                name.clone(),
                HeaderValue::from_str(value).expect("test header value"),
            );
        }
        map
    }

    fn ok(map: &HeaderMap, uri: &Uri) -> Option<Credential> {
        match extract(map, uri) {
            Ok(credential) => credential,
            Err(e) => panic!("expected a credential, got {e:?}"),
        }
    }

    fn err(map: &HeaderMap, uri: &Uri) -> CredentialError {
        match extract(map, uri) {
            Ok(credential) => panic!("expected an error, got {credential:?}"),
            Err(e) => e,
        }
    }

    fn assert_token(credential: Option<Credential>, token: &str, source: CredentialSource) {
        let credential = credential.expect("a credential");
        assert_eq!(credential.token, token);
        assert_eq!(credential.source, source);
    }

    /// Neither form of the error shows the token, in any encoding the client may have used.
    fn assert_no_leak(shown: &str) {
        for secret in [TOKEN, OTHER, &bearer_entry(TOKEN), &bearer_entry(OTHER)] {
            let encoded = secret.strip_prefix(BEARER_PREFIX).unwrap_or(secret);
            assert!(!shown.contains(encoded), "leaks a token: {shown}");
        }
    }

    fn assert_error_hides_token(e: &CredentialError) {
        assert_no_leak(&e.to_string());
        assert_no_leak(&format!("{e:?}"));
    }

    #[test]
    fn no_credentials_is_anonymous() {
        assert!(ok(&HeaderMap::new(), &exec_uri()).is_none());
        assert!(ok(&HeaderMap::new(), &uri("/")).is_none());
        // Ordinary subprotocols are not credentials.
        let map = headers(&[(
            SEC_WEBSOCKET_PROTOCOL,
            "v5.channel.k8s.io, v4.channel.k8s.io",
        )]);
        assert!(ok(&map, &exec_uri()).is_none());
    }

    #[test]
    fn bearer_header() {
        for value in [
            format!("Bearer {TOKEN}"),
            format!("bearer {TOKEN}"),
            format!("BEARER {TOKEN}"),
            format!("Bearer   {TOKEN}  "),
            format!("Bearer\t{TOKEN}"),
        ] {
            let map = headers(&[(AUTHORIZATION, &value)]);
            assert_token(ok(&map, &exec_uri()), TOKEN, CredentialSource::Header);
        }
    }

    #[test]
    fn malformed_header() {
        for value in ["", "Bearer", "Bearer   ", "Bearer a b"] {
            let map = headers(&[(AUTHORIZATION, value)]);
            let e = err(&map, &exec_uri());
            assert!(
                matches!(e, CredentialError::Malformed(_)),
                "{value:?}: {e:?}"
            );
            assert_eq!(e.reason(), "malformed");
        }
        let mut map = HeaderMap::new();
        map.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(format!("Bearer {TOKEN}\u{e9}").as_bytes())
                .expect("obs-text is a valid header value"),
        );
        let e = err(&map, &exec_uri());
        assert!(matches!(e, CredentialError::Malformed(_)), "{e:?}");
        assert_error_hides_token(&e);
    }

    #[test]
    fn two_authorization_headers_are_refused_even_if_equal() {
        let value = format!("Bearer {TOKEN}");
        let map = headers(&[(AUTHORIZATION, &value), (AUTHORIZATION, &value)]);
        let e = err(&map, &exec_uri());
        assert!(matches!(e, CredentialError::Malformed(_)), "{e:?}");
        assert_error_hides_token(&e);
    }

    #[test]
    fn other_schemes_are_unsupported() {
        for value in [
            "Basic YWxpY2U6cGFzc3dvcmQ=".to_owned(),
            "Negotiate abc".to_owned(),
            format!("Token {TOKEN}"),
            // The `Bearer ` prefix forgotten: the token sits where the scheme goes.
            TOKEN.to_owned(),
            format!("Bearer{TOKEN}"),
        ] {
            let map = headers(&[(AUTHORIZATION, &value)]);
            let e = err(&map, &exec_uri());
            assert_eq!(e, CredentialError::UnsupportedScheme, "{value:?}");
            assert_eq!(e.reason(), "unsupported_scheme");
            assert_error_hides_token(&e);
        }
    }

    #[test]
    fn websocket_protocol_entry() {
        let value = format!("{}, v5.channel.k8s.io", bearer_entry(TOKEN));
        let map = headers(&[(SEC_WEBSOCKET_PROTOCOL, &value)]);
        assert_token(
            ok(&map, &exec_uri()),
            TOKEN,
            CredentialSource::WebSocketProtocol,
        );
        // Split across header lines, entry last.
        let entry = bearer_entry(TOKEN);
        let map = headers(&[
            (SEC_WEBSOCKET_PROTOCOL, "v5.channel.k8s.io"),
            (SEC_WEBSOCKET_PROTOCOL, &entry),
        ]);
        assert_token(
            ok(&map, &exec_uri()),
            TOKEN,
            CredentialSource::WebSocketProtocol,
        );
    }

    #[test]
    fn malformed_websocket_protocol_entry() {
        let empty = BEARER_PREFIX.to_owned();
        let not_base64 = format!("{BEARER_PREFIX}!!!{TOKEN}");
        let twice = format!("{}, {}", bearer_entry(TOKEN), bearer_entry(TOKEN));
        let twice_different = format!("{}, {}", bearer_entry(TOKEN), bearer_entry(OTHER));
        for value in [&empty, &not_base64, &twice, &twice_different] {
            let value = format!("{value}, v5.channel.k8s.io");
            let map = headers(&[(SEC_WEBSOCKET_PROTOCOL, &value)]);
            let e = err(&map, &exec_uri());
            assert!(matches!(e, CredentialError::Malformed(_)), "{value}: {e:?}");
            assert_error_hides_token(&e);
        }
        let mut map = HeaderMap::new();
        map.insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_bytes(format!("{}\u{e9}", bearer_entry(TOKEN)).as_bytes())
                .expect("obs-text is a valid header value"),
        );
        let e = err(&map, &exec_uri());
        assert!(matches!(e, CredentialError::Malformed(_)), "{e:?}");
        // A non-ASCII value without our entry is left to the handshake.
        let mut map = HeaderMap::new();
        map.insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_bytes("v5.channel.k8s.io\u{e9}".as_bytes())
                .expect("obs-text is a valid header value"),
        );
        assert!(ok(&map, &exec_uri()).is_none());
    }

    #[test]
    fn header_and_entry_agreeing_is_the_header() {
        let auth = format!("Bearer {TOKEN}");
        let entry = format!("{}, v5.channel.k8s.io", bearer_entry(TOKEN));
        let map = headers(&[(AUTHORIZATION, &auth), (SEC_WEBSOCKET_PROTOCOL, &entry)]);
        assert_token(ok(&map, &exec_uri()), TOKEN, CredentialSource::Header);
    }

    #[test]
    fn header_and_entry_disagreeing_conflict() {
        let auth = format!("Bearer {TOKEN}");
        let entry = format!("{}, v5.channel.k8s.io", bearer_entry(OTHER));
        let map = headers(&[(AUTHORIZATION, &auth), (SEC_WEBSOCKET_PROTOCOL, &entry)]);
        let e = err(&map, &exec_uri());
        assert_eq!(e, CredentialError::Conflicting);
        assert_eq!(e.reason(), "conflicting");
        assert_error_hides_token(&e);
    }

    #[test]
    fn header_errors_win_over_a_good_entry() {
        let entry = format!("{}, v5.channel.k8s.io", bearer_entry(TOKEN));
        let map = headers(&[
            (AUTHORIZATION, "Basic abc"),
            (SEC_WEBSOCKET_PROTOCOL, &entry),
        ]);
        assert_eq!(err(&map, &exec_uri()), CredentialError::UnsupportedScheme);
        let auth = format!("Bearer {TOKEN}");
        let map = headers(&[
            (AUTHORIZATION, &auth),
            (SEC_WEBSOCKET_PROTOCOL, BEARER_PREFIX),
        ]);
        assert!(matches!(
            err(&map, &exec_uri()),
            CredentialError::Malformed(_)
        ));
    }

    #[test]
    fn tokens_in_the_query_are_refused() {
        let auth = format!("Bearer {TOKEN}");
        for query in [
            format!("access_token={TOKEN}"),
            format!("command=sh&token={TOKEN}&tty=true"),
            format!("Access_Token={TOKEN}"),
            format!("access%5Ftoken={TOKEN}"),
            "token=".to_owned(),
            "token".to_owned(),
        ] {
            let target = uri(&format!(
                "/clusters/dev/api/v1/namespaces/ns/pods/p/exec?{query}"
            ));
            // Refused with or without a proper header: the token has leaked either way.
            for map in [HeaderMap::new(), headers(&[(AUTHORIZATION, &auth)])] {
                let e = err(&map, &target);
                assert_eq!(e, CredentialError::TokenInQuery, "{query}");
                assert_eq!(e.reason(), "token_in_query");
                assert_error_hides_token(&e);
            }
        }
        // Parameters that merely resemble ours are not refused.
        let target = uri("/x?tokens=1&my_token=2&token_type=3&command=token");
        assert!(ok(&HeaderMap::new(), &target).is_none());
    }

    #[test]
    fn messages_are_actionable() {
        assert!(
            CredentialError::TokenInQuery
                .to_string()
                .contains("send it in the Authorization header")
        );
        assert!(
            CredentialError::UnsupportedScheme
                .to_string()
                .contains("Authorization: Bearer <token>")
        );
        assert!(
            CredentialError::Conflicting
                .to_string()
                .contains("send only one")
        );
    }

    #[test]
    fn credential_debug_hides_the_token() {
        let credential = Credential {
            token: TOKEN.to_owned(),
            source: CredentialSource::WebSocketProtocol,
        };
        let shown = format!("{credential:?}");
        assert_no_leak(&shown);
        assert_eq!(
            shown,
            format!(
                "Credential {{ token: <redacted, {} bytes>, source: WebSocketProtocol }}",
                TOKEN.len()
            )
        );
        assert_no_leak(&format!("{credential:#?}"));
    }

    #[test]
    fn source_labels() {
        assert_eq!(CredentialSource::Header.as_str(), "header");
        assert_eq!(
            CredentialSource::WebSocketProtocol.to_string(),
            "websocket_protocol"
        );
        assert_eq!(CredentialSource::Cookie.as_str(), "cookie");
    }
}
