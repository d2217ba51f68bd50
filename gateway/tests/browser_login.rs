//! Browser login against a real OpenID provider (panva's oidc-provider, run by the auth
//! crate's test support): the whole Authorization Code flow driven over HTTP as a browser
//! would (redirects followed by hand, the provider's login and consent forms submitted),
//! ending in a session cookie the gateway accepts; everything that must not work, refused and
//! counted; refresh, logout and key rotation; and real kubectl with a provider-issued token,
//! including a user the cluster's access policy keeps out.
//!
//! Skipped with a note when node or the installed provider is missing (`scripts/setup.sh`
//! installs it); under `CI=true` that is a failure instead.

mod common;
#[path = "../../auth/tests/support/keys.rs"]
mod keys;
#[allow(dead_code)]
#[path = "../../auth/tests/support/provider.rs"]
mod provider;
#[path = "browser_login/web.rs"]
mod web;

use common::*;
use podgate::browser::Browser;
use podgate::browser::oidc::OidcLogin;
use podgate_auth::login::LoginConfig;
use podgate_auth::oidc::{IssuerConfig, OidcAuthenticator, OidcConfig};
use podgate_auth::{BrowserSession, SessionKey};
use podgate_config::AccessPolicy;
use podgate_protocol::Protocol;
use provider::{ALICE, BOB, LOGIN_CLIENT_ID, LOGIN_CLIENT_SECRET, Provider};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use web::{Cookie, Decision, Web, location, remember};

/// The session key, known to the test so it can look inside the cookies the gateway sets.
const SESSION_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

const EXEC: &str = "/clusters/old/api/v1/namespaces/default/pods/shell-0/exec?command=sh&command=-c&command=echo%20via-oidc%3B%20exit%203&stdout=true&stderr=true";

/// A gateway whose only authenticator is OIDC at a provider on `port`, with the browser login
/// on, in front of a devcluster whose edge policy admits group `dev` only.
struct Setup {
    env: Env,
    provider: Option<Provider>,
    port: u16,
    keys: Vec<keys::TestKey>,
    options: provider::Options,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn provider(&self) -> &Provider {
        self.provider.as_ref().expect("the provider runs")
    }

    /// Restarts the provider (same port, same issuer) publishing `kids` of the test's keys,
    /// the first signing.
    async fn restart_provider(&mut self, kids: &[&str]) {
        if let Some(p) = self.provider.take() {
            p.stop().await;
        }
        let keys: Vec<&keys::TestKey> = kids
            .iter()
            .map(|kid| {
                self.keys
                    .iter()
                    .find(|k| k.kid == *kid)
                    .expect("a test key")
            })
            .collect();
        self.provider = Some(Provider::start_with(self.port, &keys, &self.options).await);
    }

    fn web(&self) -> Web<'_> {
        Web::new(&self.env, self.issuer())
    }

    fn key(&self) -> SessionKey {
        SessionKey::from_base64(SESSION_KEY).expect("key")
    }
}

/// `None` (skip) when node, the provider or RSA key generation is missing here.
async fn setup(id_token_ttl: Option<u64>, tune: impl FnOnce(&mut IssuerConfig)) -> Option<Setup> {
    if !provider::prerequisites() {
        return None;
    }
    let keys: Option<Vec<keys::TestKey>> = ["k1", "k2"]
        .iter()
        .map(|kid| keys::TestKey::rs256(kid))
        .collect();
    if !keys::available(keys.is_some(), "openssl or node, to generate RSA keys") {
        return None;
    }
    let keys = keys.expect("checked");
    let port = provider::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let mut config = provider::issuer_config(&issuer);
    config.min_refetch_interval = podgate_config::Duration::from_millis(200);
    tune(&mut config);
    let mut oidc = OidcConfig::new(vec![config]);
    let mut login = LoginConfig::new(issuer, LOGIN_CLIENT_ID);
    // From a file, as deployments do.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("secret"),
        format!("{LOGIN_CLIENT_SECRET}\n"),
    )
    .expect("write");
    login.client_secret_file = Some(dir.path().join("secret"));
    oidc.login = Some(login);
    let authn = Arc::new(OidcAuthenticator::new(&oidc).expect("valid OIDC config"));
    let oidc_login = OidcLogin::from_config(&oidc, &authn)
        .expect("valid login config")
        .expect("a login");
    let policy = AccessPolicy {
        groups: vec!["dev".into()],
        ..Default::default()
    };
    let env = start_full(&[], policy, |o| {
        o.authenticator = authn;
        o.browser = Some(Browser {
            key: SessionKey::from_base64(SESSION_KEY).expect("key"),
            oidc: Some(oidc_login),
            ..Browser::ephemeral().expect("browser")
        });
    })
    .await;
    // The gateway listens first, so its callback URL can be registered at the provider.
    let options = provider::Options {
        redirects: vec![format!("{}/auth/callback", env.gateway.url())],
        id_token_ttl,
    };
    let mut s = Setup {
        env,
        provider: None,
        port,
        keys,
        options,
        _dir: dir,
    };
    s.restart_provider(&["k1"]).await;
    Some(s)
}

/// Polls `/podgate/whoami` with `token` as a bearer until it answers `code`, within `limit`.
async fn whoami_until(env: &Env, token: &str, code: u16, limit: Duration, what: &str) {
    let bearer = format!("Bearer {token}");
    let deadline = std::time::Instant::now() + limit;
    loop {
        let r = request(
            env,
            "GET",
            "/podgate/whoami",
            &[("Authorization", &bearer)],
            "",
        )
        .await;
        if r.code == code {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: last answer {} {}",
            r.code,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /podgate/whoami` with the browser's cookies.
async fn whoami(web: &mut Web<'_>) -> Answer {
    web.get("/podgate/whoami").await
}

fn session_cookie(answer: &Answer) -> Option<&str> {
    answer
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.starts_with("podgate_session="))
        .map(|(_, v)| v.as_str())
}

/// The session the gateway sealed into the browser's cookie.
fn session_of(s: &Setup, web: &Web<'_>) -> BrowserSession {
    let sealed = web.cookie("podgate_session").expect("a session cookie");
    BrowserSession::open(&s.key(), &sealed).expect("sealed with the gateway's key")
}

/// A WebSocket exec authenticated only by the `podgate_session` cookie, from `origin`.
async fn exec_with_cookie(env: &Env, cookie: &str, origin: &str) -> Result<Ws, u16> {
    let mut req = format!("wss://{}{EXEC}", env.gateway.addr)
        .into_client_request()
        .expect("request");
    let h = req.headers_mut();
    h.insert(
        "Cookie",
        format!("podgate_session={cookie}").parse().expect("cookie"),
    );
    h.insert(
        "Sec-WebSocket-Protocol",
        "v5.channel.k8s.io".parse().expect("protocol"),
    );
    h.insert("Origin", origin.parse().expect("origin"));
    match tokio_tungstenite::client_async(req, tls(env).await).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("unexpected handshake failure: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_flow_ends_in_a_session_cookie() {
    let Some(s) = setup(None, |_| {}).await else {
        return;
    };
    let mut web = s.web();
    let methods = web.get("/auth/methods").await;
    assert_eq!(methods.json()["oidc"], true);

    let done = web.log_in(ALICE, "/podgate/whoami?from=login").await;
    assert_eq!(done.code, 303, "{}", done.body);
    assert_eq!(location(&done), "/podgate/whoami?from=login");
    let cookie = session_cookie(&done).expect("a session cookie");
    for attribute in ["Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age="] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    // The login cookie was used up.
    assert!(web.cookie("podgate_login").is_none());

    let me = whoami(&mut web).await;
    assert_eq!(me.code, 200, "{}", me.body);
    assert_eq!(
        me.json(),
        serde_json::json!({"user": "alice", "groups": ["dev"]})
    );
    // The cookie holds the provider's ID token (for this client), a refresh token, and its expiry.
    let session = session_of(&s, &web);
    assert!(session.refresh_token.is_some());
    let claims = claims_of(&session.token);
    assert_eq!(claims["aud"], LOGIN_CLIENT_ID);
    assert_eq!(claims["iss"], s.issuer().as_str());
    assert_eq!(session.expires_at, claims["exp"].as_u64().expect("exp"));

    // The provider's session lets a second login through without the form; the gateway makes
    // a new, different session.
    let again = web.log_in(ALICE, "/").await;
    assert_eq!(again.code, 303, "{}", again.body);
    assert_ne!(session_of(&s, &web).token, session.token);

    // Replaying the callback (the code is single-use, and so is the login cookie): refused.
    let before = auth_failures(&s.env, "login_no_cookie");
    let authorize = web.start("/").await;
    let callback = web
        .through_provider(&authorize, ALICE, Decision::Allow)
        .await;
    assert_eq!(web.get(&callback).await.code, 303);
    let replay = web.get(&callback).await;
    assert_eq!(replay.code, 400, "{}", replay.body);
    assert!(
        replay.body.contains("no login in progress"),
        "{}",
        replay.body
    );
    assert_eq!(auth_failures(&s.env, "login_no_cookie"), before + 1);

    // Logout clears the cookie, and then nothing is authenticated.
    let own = format!("https://{}", s.env.gateway.addr);
    let out = request(&s.env, "POST", "/auth/logout", &[("Origin", &own)], "").await;
    assert_eq!(out.code, 303);
    let cleared = session_cookie(&out).expect("a clearing cookie");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    remember(&mut web.gateway, cleared);
    assert_eq!(whoami(&mut web).await.code, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_failed_logins_are_refused_and_counted() {
    let Some(s) = setup(None, |_| {}).await else {
        return;
    };
    let env = &s.env;

    // Open redirect: only local paths may be returned to, and nothing is started otherwise.
    for evil in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let mut web = s.web();
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", evil)
            .finish();
        let r = web.get(&format!("/auth/login?{query}")).await;
        assert_eq!(r.code, 400, "{evil}: {}", r.body);
        assert!(r.header("location").is_none(), "{evil}");
        assert!(web.cookie("podgate_login").is_none(), "{evil}");
    }
    assert_eq!(auth_failures(env, "login_bad_return_to"), 4);

    // State mismatch: a callback for one login, delivered with another login's cookie (the
    // login CSRF shape: an attacker's code and state, the victim's browser).
    let mut attacker = s.web();
    let authorize = attacker.start("/").await;
    let forged_callback = attacker
        .through_provider(&authorize, BOB, Decision::Allow)
        .await;
    let mut victim = s.web();
    victim.start("/").await;
    let r = victim.get(&forged_callback).await;
    assert_eq!(r.code, 400, "{}", r.body);
    assert!(
        r.body.contains("does not belong to the login"),
        "{}",
        r.body
    );
    assert!(session_cookie(&r).is_none());
    assert_eq!(auth_failures(env, "login_state_mismatch"), 1);
    // Without any login cookie, or with an altered one: refused as well.
    let mut stranger = s.web();
    assert_eq!(stranger.get(&forged_callback).await.code, 400);
    stranger.start("/").await;
    let mut altered = stranger.cookie("podgate_login").expect("login cookie");
    let last = altered.pop().expect("non-empty");
    altered.push(if last == 'A' { 'B' } else { 'A' });
    stranger.gateway.clear();
    stranger.gateway.push(Cookie {
        name: "podgate_login".into(),
        value: altered,
        path: "/auth/callback".into(),
    });
    assert_eq!(stranger.get(&forged_callback).await.code, 400);
    assert_eq!(auth_failures(env, "login_bad_cookie"), 1);
    // A session cookie is not a login cookie, nor the reverse (purpose-bound sealing).
    let mut mixup = s.web();
    mixup.start("/").await;
    let login = mixup.cookie("podgate_login").expect("login cookie");
    mixup.set_cookie("podgate_session", &login);
    assert_eq!(whoami(&mut mixup).await.code, 401);

    // A login that took longer than login_timeout (its cookie says it started an hour ago).
    let mut late = s.web();
    let authorize = late.start("/").await;
    let sealed = late.cookie("podgate_login").expect("login cookie");
    let mut started =
        podgate_auth::login::LoginState::open(&s.key(), Some(&sealed), 0, u64::MAX).expect("ours");
    started.issued_at -= 3600;
    late.gateway.clear();
    late.gateway.push(Cookie {
        name: "podgate_login".into(),
        value: started.seal(&s.key()).expect("sealed"),
        path: "/auth/callback".into(),
    });
    let callback = late
        .through_provider(&authorize, ALICE, Decision::Allow)
        .await;
    let r = late.get(&callback).await;
    assert_eq!(r.code, 400, "{}", r.body);
    assert!(r.body.contains("took too long"), "{}", r.body);
    assert!(session_cookie(&r).is_none());
    assert_eq!(auth_failures(env, "login_expired"), 1);

    // The person cancels at the provider: access_denied, a readable page, counted.
    let mut web = s.web();
    let authorize = web.start("/").await;
    let callback = web
        .through_provider(&authorize, ALICE, Decision::Cancel)
        .await;
    assert!(callback.contains("error=access_denied"), "{callback}");
    let r = web.get(&callback).await;
    assert_eq!(r.code, 403, "{}", r.body);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    assert!(r.body.contains("denied the login"), "{}", r.body);
    assert!(r.body.contains("/auth/login"), "a way to start again");
    assert_eq!(auth_failures(env, "login_denied"), 1);

    // A callback opened directly.
    assert_eq!(web.get("/auth/callback").await.code, 400);
    assert_eq!(auth_failures(env, "login_bad_callback"), 1);
    // No page echoes what it was given, and none sets a session.
    assert!(!r.body.contains("End-User aborted"));
}

/// `url` with its query parameter `name` set to `value`.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').expect("a query");
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| if k == name { (k, value.into()) } else { (k, v) }),
        )
        .finish();
    format!("{base}?{query}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nonce_and_the_pkce_verifier_bind_the_tokens_to_the_login() {
    let Some(s) = setup(None, |_| {}).await else {
        return;
    };
    // The authorization request altered on its way to the provider (state kept): the provider
    // issues an ID token with another nonce, which the gateway refuses after the exchange.
    let mut web = s.web();
    let authorize = web.start("/").await;
    let injected = with_param(&authorize, "nonce", "attacker-chosen-nonce");
    let callback = web
        .through_provider(&injected, ALICE, Decision::Allow)
        .await;
    let r = web.get(&callback).await;
    assert_eq!(r.code, 502, "{}", r.body);
    assert!(session_cookie(&r).is_none());
    assert_eq!(auth_failures(&s.env, "login_id_token"), 1);

    // Another code challenge: the provider refuses this login's verifier at the token endpoint,
    // so a code stolen from the redirect is useless without the browser's login cookie.
    let mut web = s.web();
    let authorize = web.start("/").await;
    let other = podgate_auth::login::challenge("a-verifier-the-gateway-never-had");
    let stolen = with_param(&authorize, "code_challenge", &other);
    let callback = web.through_provider(&stolen, ALICE, Decision::Allow).await;
    let r = web.get(&callback).await;
    assert_eq!(r.code, 502, "{}", r.body);
    assert!(session_cookie(&r).is_none());
    assert_eq!(auth_failures(&s.env, "login_token_request"), 1);
    assert_eq!(whoami(&mut web).await.code, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_id_token_is_refreshed_with_the_refresh_token() {
    // ID tokens live 2 s, and the gateway allows no clock leeway, so they really expire.
    let Some(mut s) = setup(Some(2), |issuer| {
        issuer.leeway = podgate_config::Duration::ZERO;
    })
    .await
    else {
        return;
    };
    let mut web = s.web();
    assert_eq!(web.log_in(ALICE, "/").await.code, 303);
    let original = session_of(&s, &web);
    assert!(original.refresh_token.is_some());

    // Wait until the provider's ID token in the cookie is refused on its own.
    whoami_until(
        &s.env,
        &original.token,
        401,
        Duration::from_secs(20),
        "the ID token to expire",
    )
    .await;
    assert!(auth_failures(&s.env, "expired") >= 1);

    // The cookie still works: the gateway refreshed it and sets the new one.
    let me = whoami(&mut web).await;
    assert_eq!(me.code, 200, "{}", me.body);
    assert_eq!(me.json()["user"], "alice");
    assert!(session_cookie(&me).is_some(), "a refreshed cookie is set");
    let fresh = session_of(&s, &web);
    assert_ne!(fresh.token, original.token);
    assert!(fresh.expires_at >= original.expires_at);
    assert!(fresh.refresh_token.is_some());
    assert_eq!(whoami(&mut web).await.code, 200);

    // With the provider gone, the session lasts as long as its token, then ends: 401, and
    // the cookie is cleared.
    let newest = web.cookie("podgate_session").expect("cookie");
    s.provider.take().expect("running").stop().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let ended = loop {
        let mut browser = s.web();
        browser.set_cookie("podgate_session", &newest);
        let r = whoami(&mut browser).await;
        if r.code == 401 {
            break r;
        }
        assert_eq!(r.code, 200, "{}", r.body);
        assert!(
            std::time::Instant::now() < deadline,
            "the session never ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        session_cookie(&ended).is_some_and(|c| c.contains("Max-Age=0")),
        "{:?}",
        ended.headers
    );
    assert!(auth_failures(&s.env, "session_expired") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_page_cannot_open_a_shell_with_an_oidc_session() {
    let Some(s) = setup(None, |_| {}).await else {
        return;
    };
    let mut web = s.web();
    assert_eq!(web.log_in(ALICE, "/").await.code, 303);
    let cookie = web.cookie("podgate_session").expect("cookie");
    let before = auth_failures(&s.env, "cross_origin");
    assert_eq!(
        exec_with_cookie(&s.env, &cookie, "https://evil.example")
            .await
            .err(),
        Some(403)
    );
    assert_eq!(auth_failures(&s.env, "cross_origin"), before + 1);
    assert_eq!(s.env.gateway.sessions.live.len(), 0);

    let own = format!("https://{}", s.env.gateway.addr);
    let mut ws = exec_with_cookie(&s.env, &cookie, &own)
        .await
        .expect("the gateway's own page opens a shell");
    let got = frames(&mut ws, Protocol::V5).await;
    let stdout: Vec<u8> = got
        .iter()
        .filter(|(stream, _)| *stream == 1)
        .flat_map(|(_, d)| d.clone())
        .collect();
    assert_eq!(String::from_utf8_lossy(&stdout), "via-oidc\n");
}

/// A kubeconfig for the gateway's cluster `old` with `token`.
fn kubeconfig(s: &Setup, dir: &Path, name: &str, token: &str) -> PathBuf {
    use podgate_devcluster::kubeconfig::{KubeCluster, KubeContext, KubeUser, Kubeconfig};
    let kc = Kubeconfig {
        clusters: vec![KubeCluster {
            name: "old".into(),
            server: format!("{}/clusters/old", s.env.gateway.url()),
            ca_pem: s.env.ca_pem.clone(),
        }],
        users: vec![KubeUser {
            name: name.into(),
            token: token.into(),
        }],
        contexts: vec![KubeContext {
            name: "old".into(),
            cluster: "old".into(),
            user: name.into(),
            namespace: Some("default".into()),
        }],
        current_context: "old".into(),
    };
    let path = dir.join(format!("{name}.kubeconfig"));
    kc.write(&path).expect("kubeconfig written");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_execs_with_a_provider_token_and_outsiders_are_refused_at_the_edge() {
    let Some(s) = setup(None, |_| {}).await else {
        return;
    };
    if !Path::new("/usr/bin/kubectl").exists() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "kubectl is missing"
        );
        eprintln!("note: kubectl is missing; skipping");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // Each person logs in through the browser flow; their ID token goes into a kubeconfig, as
    // `kubectl oidc-login` or a UI's "copy kubeconfig" would do.
    let mut alice = s.web();
    assert_eq!(alice.log_in(ALICE, "/").await.code, 303);
    let alice_token = session_of(&s, &alice).token;
    let mut bob = s.web();
    assert_eq!(bob.log_in(BOB, "/").await.code, 303);
    let bob_token = session_of(&s, &bob).token;
    assert_eq!(
        whoami(&mut bob).await.json(),
        serde_json::json!({"user": "bob", "groups": ["contractors"]})
    );

    let kc = kubeconfig(&s, dir.path(), "alice", &alice_token);
    let (code, out, err) = kubectl(
        dir.path(),
        &kc,
        &[
            "exec",
            "shell-0",
            "--",
            "sh",
            "-c",
            "echo hello-oidc; exit 5",
        ],
    )
    .await;
    assert_eq!((code, out.as_str()), (5, "hello-oidc\n"), "{err}");

    let kc = kubeconfig(&s, dir.path(), "bob", &bob_token);
    let (code, _, err) = kubectl(dir.path(), &kc, &["exec", "shell-0", "--", "true"]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("user \"bob\" may not use cluster \"old\""),
        "{err}"
    );
    let (code, _, err) = kubectl(dir.path(), &kc, &["get", "pods"]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("Forbidden") || err.contains("forbidden"),
        "{err}"
    );
    // The edge refused it: nothing reached the cluster as bob.
    let r = bob
        .get("/clusters/old/api/v1/namespaces/default/pods")
        .await;
    assert_eq!(r.code, 403);
    assert_eq!(r.json()["details"]["name"], "old");

    // A machine client's token (client_credentials with a resource indicator) works too,
    // for what its groups allow: it is not in `dev`, so the edge refuses it the same way.
    let machine = s.provider().access_token().await;
    let kc = kubeconfig(&s, dir.path(), "machine", &machine);
    let (code, _, err) = kubectl(dir.path(), &kc, &["get", "pods"]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("user \"podgate-test\" may not use cluster \"old\""),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_provider_keys_are_accepted_without_a_gateway_restart() {
    let Some(mut s) = setup(None, |_| {}).await else {
        return;
    };
    let before = s.provider().access_token().await;
    let bearer = format!("Bearer {before}");
    let r = request(
        &s.env,
        "GET",
        "/podgate/whoami",
        &[("Authorization", &bearer)],
        "",
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.json()["user"], "podgate-test");

    // The provider now signs with k2 (k1 still published), as in a planned rotation.
    s.restart_provider(&["k2", "k1"]).await;
    let after = s.provider().access_token().await;
    assert_ne!(kid(&after), kid(&before));
    // The gateway refetches the keys on the unknown kid (at most every 200 ms here).
    whoami_until(
        &s.env,
        &after,
        200,
        Duration::from_secs(10),
        "k2 to be accepted",
    )
    .await;
    // A browser login now gets a k2-signed ID token, and the session works.
    let mut web = s.web();
    assert_eq!(web.log_in(ALICE, "/").await.code, 303);
    assert_eq!(kid(&session_of(&s, &web).token), "k2");
    assert_eq!(whoami(&mut web).await.code, 200);
}

fn kid(token: &str) -> String {
    segment(token, 0)["kid"].as_str().expect("a kid").to_owned()
}

fn claims_of(token: &str) -> serde_json::Value {
    segment(token, 1)
}

fn segment(token: &str, index: usize) -> serde_json::Value {
    let part = token.split('.').nth(index).expect("a JWT");
    serde_json::from_slice(&base64_url_decode(part).expect("base64url")).expect("JSON")
}

fn base64_url_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

/// Everything podgate and its auth crate log in this test process (debug and up), captured so
/// a test can check what the log would give away.
fn captured_logs() -> Arc<std::sync::Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,podgate=debug,podgate_auth=debug",
            ))
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        buffer
    })
    .clone()
}

struct LogSink(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_refreshes_and_failures_log_no_secrets() {
    let logs = captured_logs();
    // ID tokens of 3 s: the first request after the login refreshes (within a minute of expiry).
    let Some(s) = setup(Some(3), |_| {}).await else {
        return;
    };
    let mut secrets: Vec<(&str, String)> = vec![("client secret", LOGIN_CLIENT_SECRET.into())];

    let mut web = s.web();
    let authorize = web.start("/").await;
    let sealed_login = web.cookie("podgate_login").expect("login cookie");
    let login = podgate_auth::login::LoginState::open(
        &s.key(),
        Some(&sealed_login),
        u64::MAX / 2,
        u64::MAX,
    )
    .expect("the gateway's login cookie");
    let callback = web
        .through_provider(&authorize, ALICE, Decision::Allow)
        .await;
    let code = callback
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("code="))
        .expect("a code")
        .to_string();
    assert_eq!(web.get(&callback).await.code, 303);
    let session = session_of(&s, &web);
    let sealed_session = web.cookie("podgate_session").expect("session cookie");
    let me = whoami(&mut web).await;
    assert_eq!(me.code, 200, "{}", me.body);
    assert!(session_cookie(&me).is_some(), "refreshed");
    let refreshed = session_of(&s, &web);
    secrets.extend([
        ("login cookie", sealed_login),
        ("state", login.state.clone()),
        ("nonce", login.nonce.clone()),
        ("PKCE verifier", login.verifier.clone()),
        ("code", code),
        ("ID token", session.token.clone()),
        (
            "refresh token",
            session.refresh_token.clone().expect("granted"),
        ),
        ("session cookie", sealed_session),
        ("refreshed ID token", refreshed.token.clone()),
    ]);

    // Failures: a refused code exchange, a state mismatch.
    let mut other = s.web();
    let authorize = other.start("/").await;
    let stolen = with_param(
        &authorize,
        "code_challenge",
        &podgate_auth::login::challenge("x"),
    );
    let callback = other
        .through_provider(&stolen, ALICE, Decision::Allow)
        .await;
    assert_eq!(other.get(&callback).await.code, 502);
    let mut victim = s.web();
    victim.start("/").await;
    let authorize = other.start("/").await;
    let callback = other
        .through_provider(&authorize, ALICE, Decision::Allow)
        .await;
    assert_eq!(victim.get(&callback).await.code, 400);
    secrets.push((
        "code of the forged callback",
        callback
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("code="))
            .expect("a code")
            .to_string(),
    ));

    let text = String::from_utf8_lossy(&logs.lock().expect("logs")).into_owned();
    for line in [
        "browser login",
        "login_state_mismatch",
        "login_token_request",
    ] {
        assert!(text.contains(line), "the log lacks {line:?}:\n{text}");
    }
    for (what, secret) in &secrets {
        assert!(secret.len() >= 8, "{what} is too short to search for");
        assert!(
            !text.contains(secret.as_str()),
            "the log shows the {what}:\n{text}"
        );
    }
}
