//! The browser terminal at `/` and `/assets/*`: files built by `make web` into gateway/web/dist
//! and embedded by build.rs. Served before authentication (they hold no data; the page logs
//! in through the gateway's API), with a strict Content-Security-Policy.
//!
//! `index.html` is rendered per response: it carries a fresh nonce that the CSP allows for
//! `<style>` elements, because xterm.js creates some at run time. Everything else under
//! `/assets/` has a content hash in its name and is cached for a year.

use crate::http::{Body, full, with_type};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

const NONCE_PLACEHOLDER: &str = "__PODGATE_NONCE__";
const NOT_BUILT: &str = "podgate: web UI not built: run `make web` (it needs node and npm), then rebuild podgate.\n\
The gateway's API under /clusters/ works without it (kubectl, kube-rs, ...).\n";

/// Whether `path` is one of the web UI's (answered by [`serve`], before authentication).
pub fn is_web_path(path: &str) -> bool {
    path == "/" || path == "/index.html" || path.starts_with("/assets/")
}

/// The page or asset for `req`, or `None` when the path is not the web UI's.
pub fn serve<B>(req: &Request<B>) -> Option<Response<Body>> {
    let path = req.uri().path();
    if !is_web_path(path) {
        return None;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = with_type(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            full("podgate's web UI answers GET and HEAD only\n"),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Some(r);
    }
    let host = host_of(req);
    let mut resp = if path == "/" || path == "/index.html" {
        index(find("/index.html"), host.as_deref())
    } else {
        asset(path, accepts_gzip(req))
    };
    if req.method() == Method::HEAD {
        *resp.body_mut() = full(bytes::Bytes::new());
    }
    Some(resp)
}

fn find(path: &str) -> Option<&'static [u8]> {
    ASSETS.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}

/// The page from the embedded `html` (none: the UI was not built), with a fresh nonce.
fn index(html: Option<&[u8]>, host: Option<&str>) -> Response<Body> {
    let Some(html) = html else {
        let mut r = with_type(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            full(NOT_BUILT),
        );
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return r;
    };
    let Some(nonce) = nonce() else {
        tracing::error!("no secure random source for the web UI's CSP nonce");
        return with_type(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            full("podgate could not render its web UI (no random source)\n"),
        );
    };
    let page = String::from_utf8_lossy(html).replace(NONCE_PLACEHOLDER, &nonce);
    let mut r = with_type(StatusCode::OK, "text/html; charset=utf-8", full(page));
    secure(&mut r, &csp(host, Some(&nonce)));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// An asset, from its gzipped twin (made by build.mjs) when the browser takes gzip.
fn asset(path: &str, gzip: bool) -> Response<Body> {
    let gzipped = if gzip {
        find(&format!("{path}.gz"))
    } else {
        None
    };
    let Some(bytes) = gzipped.or_else(|| find(path)) else {
        return with_type(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            full(format!("{path}: no such file in podgate's web UI\n")),
        );
    };
    let mut r = with_type(StatusCode::OK, content_type(path), full(bytes));
    secure(&mut r, &csp(None, None));
    if gzipped.is_some() {
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    r
}

pub fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The policy: scripts, styles, images and fonts from the gateway only; `<style>` elements
/// only with this page's nonce (style attributes are allowed: xterm.js colours cells with
/// them, and they cannot run code); connections to the gateway itself, `wss://` included.
pub fn csp(host: Option<&str>, nonce: Option<&str>) -> String {
    let mut connect = "'self'".to_string();
    if let Some(h) = host {
        connect.push_str(&format!(" wss://{h}"));
    }
    let style_elem = match nonce {
        Some(n) => format!("'self' 'nonce-{n}'"),
        None => "'self'".to_string(),
    };
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; style-src-elem {style_elem}; \
         style-src-attr 'unsafe-inline'; img-src 'self' data:; font-src 'self'; \
         connect-src {connect}; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

fn secure(r: &mut Response<Body>, csp: &str) {
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: under it, browsers send `Origin: null` with same-origin form posts
    // (log out), which the gateway's Origin check rightly refuses.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

/// The request's host (`Host`, or the HTTP/2 authority) when it is a plain `name[:port]`, for
/// the `wss://` source of the CSP; anything else is left out rather than echoed.
fn host_of<B>(req: &Request<B>) -> Option<String> {
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))?;
    let ok = !raw.is_empty()
        && raw.len() <= 255
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    ok.then(|| raw.to_ascii_lowercase())
}

/// Whether `Accept-Encoding` lists gzip (without `q=0`).
fn accepts_gzip<B>(req: &Request<B>) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            coding.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// 16 random bytes from the TLS crypto provider, hex.
fn nonce() -> Option<String> {
    let provider = rustls::crypto::CryptoProvider::get_default()?;
    let mut buf = [0u8; 16];
    provider.secure_random.fill(&mut buf).ok()?;
    Some(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, host: &str) -> Request<()> {
        Request::builder()
            .uri(path)
            .header(header::HOST, host)
            .body(())
            .expect("request")
    }

    #[test]
    fn only_ui_paths_are_served() {
        assert!(serve(&get("/clusters/x/api", "h")).is_none());
        assert!(serve(&get("/podgate/whoami", "h")).is_none());
        assert!(serve(&get("/auth/methods", "h")).is_none());
        assert!(serve(&get("/", "h")).is_some());
        assert!(serve(&get("/assets/nope.js", "h")).is_some());
    }

    #[test]
    fn unknown_assets_are_404_and_posts_405() {
        let r = serve(&get("/assets/nope.js", "h")).expect("served");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let post = Request::builder()
            .method(Method::POST)
            .uri("/")
            .body(())
            .expect("request");
        assert_eq!(
            serve(&post).expect("served").status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn csp_is_strict_and_names_the_host_for_websockets() {
        let p = csp(Some("127.0.0.1:8443"), Some("abc"));
        assert!(p.contains("default-src 'self'"), "{p}");
        assert!(p.contains("script-src 'self';"), "{p}");
        assert!(
            p.contains("connect-src 'self' wss://127.0.0.1:8443;"),
            "{p}"
        );
        assert!(p.contains("style-src-elem 'self' 'nonce-abc';"), "{p}");
        assert!(!p.contains("unsafe-eval"), "{p}");
    }

    #[test]
    fn odd_hosts_are_not_echoed() {
        assert_eq!(
            host_of(&get("/", "evil.example; script-src *")),
            None,
            "a Host with CSP syntax must not reach the header"
        );
        assert_eq!(
            host_of(&get("/", "Gate.example:443")).as_deref(),
            Some("gate.example:443")
        );
    }

    async fn body(r: Response<Body>) -> String {
        use http_body_util::BodyExt as _;
        let bytes = r.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn without_a_build_the_page_says_how_to_make_one() {
        let r = index(None, Some("h"));
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(body(r).await.contains("web UI not built: run `make web`"));
    }

    #[tokio::test]
    async fn each_page_gets_its_own_nonce_in_the_csp() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let html = br#"<meta name="podgate-style-nonce" content="__PODGATE_NONCE__">"#;
        let mut seen = Vec::new();
        for _ in 0..2 {
            let r = index(Some(html), Some("127.0.0.1:8443"));
            assert_eq!(r.status(), StatusCode::OK);
            let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .expect("ascii")
                .to_string();
            let page = body(r).await;
            let nonce = page
                .split("content=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .expect("a nonce")
                .to_string();
            assert_eq!(nonce.len(), 32, "{page}");
            assert!(csp.contains(&format!("'nonce-{nonce}'")), "{csp}");
            seen.push(nonce);
        }
        assert_ne!(seen[0], seen[1]);
    }

    #[test]
    fn gzip_is_taken_unless_refused() {
        let with = |v: &str| {
            Request::builder()
                .uri("/assets/a.js")
                .header(header::ACCEPT_ENCODING, v)
                .body(())
                .expect("request")
        };
        assert!(accepts_gzip(&with("gzip, deflate, br, zstd")));
        assert!(accepts_gzip(&with("br;q=1.0, GZIP;q=0.5")));
        assert!(!accepts_gzip(&with("br, zstd")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&get("/", "h")));
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type("/assets/app-X.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type("/assets/style-X.css"),
            "text/css; charset=utf-8"
        );
        assert_eq!(content_type("/index.html"), "text/html; charset=utf-8");
    }
}
