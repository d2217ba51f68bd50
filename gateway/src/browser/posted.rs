//! A token a page posts (`POST /auth/dev-login`, `POST /auth/token`, `POST
//! /podgate/kubeconfig`): a `token=...` form or a `{"token": "..."}` body, read within a bound.

use crate::http::{Body, status};
use http::header::CONTENT_TYPE;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Limited};
use podgate_protocol::Status;

/// A token form is a few hundred bytes; anything bigger is not one.
pub const MAX_BODY: usize = 8 * 1024;

/// The token `req` posts, or the 400 to answer.
pub async fn token(req: Request<hyper::body::Incoming>) -> Result<String, Response<Body>> {
    let json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Err(status(&Status::bad_request(format!(
                "the form must be under {MAX_BODY} bytes"
            ))));
        }
    };
    token_of(&body, json).ok_or_else(|| {
        status(&Status::bad_request(
            "send the token as a form field `token=` or as JSON {\"token\": \"...\"}",
        ))
    })
}

/// The token of a `token=...` form or a `{"token": "..."}` body.
fn token_of(body: &[u8], json: bool) -> Option<String> {
    let token = if json {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()?
            .get("token")?
            .as_str()?
            .to_string()
    } else {
        form_urlencoded::parse(body)
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())?
    };
    let token = token.trim().to_string();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::token_of;

    #[test]
    fn forms_and_json() {
        assert_eq!(token_of(b"token=abc%2B1", false).as_deref(), Some("abc+1"));
        assert_eq!(
            token_of(br#"{"token":" abc "}"#, true).as_deref(),
            Some("abc")
        );
        assert_eq!(token_of(b"token=", false), None);
        assert_eq!(token_of(b"user=x", false), None);
        assert_eq!(token_of(b"{not json", true), None);
        assert_eq!(token_of(br#"{"token": 5}"#, true), None);
    }
}
