//! A browser, as far as the login flow needs one: redirects followed by hand, HTML forms
//! submitted, and cookies kept per host and path (one jar for the gateway over TLS, one for the
//! provider over plain HTTP).

use podgate_testkit::gateway::Env;
use podgate_testkit::http::{self, Answer};

/// A cookie as a browser keeps it.
#[derive(Clone, Debug)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub path: String,
}

/// A browser, as far as redirects, forms and cookies go: one jar for the gateway, one for the
/// provider.
pub struct Web<'a> {
    env: &'a Env,
    issuer: String,
    pub gateway: Vec<Cookie>,
    idp: Vec<Cookie>,
}

pub enum Decision {
    Allow,
    Cancel,
}

impl<'a> Web<'a> {
    /// A browser with no cookies, for `env`'s gateway and the provider at `issuer`.
    pub fn new(env: &'a Env, issuer: String) -> Self {
        Web {
            env,
            issuer,
            gateway: Vec::new(),
            idp: Vec::new(),
        }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.gateway
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.value.clone())
    }

    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.gateway.retain(|c| c.name != name);
        self.gateway.push(Cookie {
            name: name.into(),
            value: value.into(),
            path: "/".into(),
        });
    }

    /// `GET` (or `POST` with a form) of an absolute URL on either host, or a gateway path.
    pub async fn send(&mut self, method: &str, url: &str, form: &[(&str, &str)]) -> Answer {
        let gateway_base = self.env.url();
        let (on_gateway, path) = if let Some(p) = url.strip_prefix(&gateway_base) {
            (true, p.to_string())
        } else if let Some(p) = url.strip_prefix(&self.issuer) {
            (false, p.to_string())
        } else if url.starts_with('/') {
            (true, url.to_string())
        } else {
            panic!("the browser was sent off to {url}");
        };
        let jar = if on_gateway {
            &mut self.gateway
        } else {
            &mut self.idp
        };
        let path_only = path.split('?').next().unwrap_or("/");
        let cookies: Vec<String> = jar
            .iter()
            .filter(|c| path_only.starts_with(&c.path))
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        let cookie = cookies.join("; ");
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if !cookie.is_empty() {
            headers.push(("Cookie", &cookie));
        }
        if method == "POST" {
            headers.push(("Content-Type", "application/x-www-form-urlencoded"));
        }
        let answer = if on_gateway {
            http::request(self.env, method, &path, &headers, &body).await
        } else {
            plain_request(&self.issuer, method, &path, &headers, &body).await
        };
        for (_, value) in answer.headers.iter().filter(|(n, _)| n == "set-cookie") {
            remember(jar, value);
        }
        answer
    }

    pub async fn get(&mut self, url: &str) -> Answer {
        self.send("GET", url, &[]).await
    }

    /// Follows the provider's redirects and forms from `authorize` until it sends the browser
    /// back to the gateway; returns that callback URL.
    pub async fn through_provider(
        &mut self,
        authorize: &str,
        user: (&str, &str, &[&str]),
        decision: Decision,
    ) -> String {
        let gateway_base = self.env.url();
        let mut next = authorize.to_string();
        for _ in 0..12 {
            if next.starts_with(&gateway_base) {
                return next;
            }
            let answer = self.get(&next).await;
            let form = match answer.code {
                302 | 303 => {
                    next = absolute(&self.issuer, location(&answer));
                    continue;
                }
                200 => answer.body,
                code => panic!("the provider answered {code}: {}", answer.body),
            };
            let (action, fields): (&str, Vec<(&str, &str)>) = match decision {
                Decision::Cancel => ("/abort", vec![]),
                Decision::Allow if form.contains("/login\"") => {
                    ("/login", vec![("username", user.0), ("password", user.1)])
                }
                Decision::Allow => ("/confirm", vec![]),
            };
            let target = form_action(&form, action);
            let answer = self
                .send("POST", &absolute(&self.issuer, &target), &fields)
                .await;
            assert_eq!(answer.code, 303, "{target}: {}", answer.body);
            next = absolute(&self.issuer, location(&answer));
        }
        panic!("the provider never sent the browser back");
    }

    /// Starts a login at the gateway (`return_to`), and returns the provider URL it sent the
    /// browser to.
    pub async fn start(&mut self, return_to: &str) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", return_to)
            .finish();
        let answer = self.get(&format!("/auth/login?{query}")).await;
        assert_eq!(answer.code, 303, "{}", answer.body);
        let login = answer
            .headers
            .iter()
            .find(|(n, v)| n == "set-cookie" && v.starts_with("podgate_login="))
            .map(|(_, v)| v.clone())
            .expect("a login cookie");
        assert!(
            login.contains("Path=/auth/callback")
                && login.contains("HttpOnly")
                && login.contains("Secure")
                && login.contains("SameSite=Lax"),
            "{login}"
        );
        let to = location(&answer).to_string();
        assert!(to.starts_with(&format!("{}/auth?", self.issuer)), "{to}");
        for part in [
            "response_type=code",
            "code_challenge_method=S256",
            "client_id=podgate-login",
            "nonce=",
            "state=",
        ] {
            assert!(to.contains(part), "{part} missing in {to}");
        }
        to
    }

    /// The whole login as `user`; the gateway's answer to the callback.
    pub async fn log_in(&mut self, user: (&str, &str, &[&str]), return_to: &str) -> Answer {
        let authorize = self.start(return_to).await;
        let callback = self
            .through_provider(&authorize, user, Decision::Allow)
            .await;
        self.get(&callback).await
    }
}

/// Keeps a `Set-Cookie` in `jar` (replacing one of the same name and path; `Max-Age=0` removes).
pub fn remember(jar: &mut Vec<Cookie>, header: &str) {
    let mut parts = header.split(';').map(str::trim);
    let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
        return;
    };
    let mut path = "/".to_string();
    let mut gone = value.is_empty();
    for attribute in parts {
        let (k, v) = attribute.split_once('=').unwrap_or((attribute, ""));
        if k.eq_ignore_ascii_case("path") {
            path = v.to_string();
        }
        if k.eq_ignore_ascii_case("max-age") && v == "0" {
            gone = true;
        }
        if k.eq_ignore_ascii_case("expires") && v.contains("1970") {
            gone = true;
        }
    }
    jar.retain(|c| !(c.name == name && c.path == path));
    if !gone {
        jar.push(Cookie {
            name: name.to_string(),
            value: value.to_string(),
            path,
        });
    }
}

pub fn location(answer: &Answer) -> &str {
    answer
        .header("location")
        .unwrap_or_else(|| panic!("a redirect without Location: {}", answer.body))
}

fn absolute(base: &str, url: &str) -> String {
    if url.starts_with('/') {
        format!("{base}{url}")
    } else {
        url.to_string()
    }
}

/// The `action` of the form in `html` whose action ends with `suffix`.
fn form_action(html: &str, suffix: &str) -> String {
    html.split("action=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .find(|action| action.ends_with(suffix))
        .unwrap_or_else(|| panic!("no form posting to …{suffix} in {html}"))
        .to_string()
}

/// One plain-HTTP/1.1 request to the provider.
async fn plain_request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let addr = base
        .trim_start_matches("http://")
        .parse()
        .expect("the provider's address");
    http::plain(addr, method, path, headers, body)
        .await
        .expect("the provider answers within 10 s")
}
