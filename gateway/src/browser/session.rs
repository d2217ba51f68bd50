//! Reading the session cookie on each request: open the seal, refresh an expiring OIDC token,
//! and hand the bearer token to the authenticators.

use super::{Browser, cookies, unix_now};
use http::HeaderMap;
use http::header::HeaderValue;
use podgate_auth::BrowserSession;

/// Refresh this long before the token expires, so a request never races the expiry.
const REFRESH_MARGIN_SECS: u64 = 60;

/// What the cookie of a request amounts to.
pub enum FromCookie {
    /// No session cookie.
    Absent,
    /// A token to authenticate, the login it belongs to, and a new cookie to set when the
    /// session was refreshed.
    Token {
        token: String,
        login: Option<String>,
        set_cookie: Option<HeaderValue>,
    },
    /// A token login's session: the digest of the static token to look up (the cookie never
    /// holds the token itself), and the login it belongs to.
    StaticToken {
        digest: podgate_auth::TokenDigest,
        login: Option<String>,
    },
    /// The cookie cannot be used; the browser should drop it. `reason` is a bounded label.
    Refused { reason: &'static str },
}

pub async fn read(browser: &Browser, headers: &HeaderMap) -> FromCookie {
    let Some(sealed) = cookies::read_cookie(headers, cookies::SESSION_COOKIE) else {
        return FromCookie::Absent;
    };
    let session = match BrowserSession::open(&browser.key, &sealed) {
        Ok(s) => s,
        // Altered, or sealed with a key this gateway no longer has (restart without a key file).
        Err(_) => {
            return FromCookie::Refused {
                reason: "bad_cookie",
            };
        }
    };
    let now = unix_now();
    let login = session.login_id().map(str::to_string);
    if session.static_token.is_some() {
        return match session.static_digest() {
            // Sealed with `max_lifetime` as its end: no refresh, it ends then.
            Some(_) if session.expires_within(now, 0) => FromCookie::Refused {
                reason: "session_expired",
            },
            Some(digest) => FromCookie::StaticToken { digest, login },
            None => FromCookie::Refused {
                reason: "bad_cookie",
            },
        };
    }
    if !session.expires_within(now, REFRESH_MARGIN_SECS) {
        return FromCookie::Token {
            token: session.token,
            login,
            set_cookie: None,
        };
    }
    let still_valid = !session.expires_within(now, 0);
    if let (Some(_), Some(oidc)) = (&session.refresh_token, &browser.oidc) {
        match oidc.refresh(&session).await {
            Ok(fresh) => match browser.session_cookie(&fresh) {
                Ok(cookie) => {
                    return FromCookie::Token {
                        token: fresh.token,
                        login,
                        set_cookie: Some(cookie),
                    };
                }
                Err(e) => tracing::warn!("cannot seal the refreshed browser session: {e}"),
            },
            Err(e) => tracing::info!("browser session refresh failed: {e}"),
        }
    }
    if still_valid {
        FromCookie::Token {
            token: session.token,
            login,
            set_cookie: None,
        }
    } else {
        FromCookie::Refused {
            reason: "session_expired",
        }
    }
}
