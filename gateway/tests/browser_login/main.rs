//! Browser login against a real OpenID provider (panva's oidc-provider, run by the auth
//! crate's test support): the whole Authorization Code flow driven over HTTP as a browser
//! would (redirects followed by hand, the provider's login and consent forms submitted),
//! ending in a session cookie the gateway accepts; everything that must not work, refused and
//! counted; refresh, logout and key rotation; and real kubectl with a provider-issued token,
//! including a user the cluster's access policy keeps out. [`identity`]: people whose claims
//! cannot reach a cluster byte for byte are refused, and UTF-8 names arrive as their bytes.
//! [`expiry`]: a session ends when the token it was opened with expires, unless its browser
//! login refreshes it.
//!
//! Skipped with a note when node or the installed provider is missing (`scripts/setup.sh`
//! installs it); under `CI=true` that is a failure instead.

mod expiry;
mod identity;
mod web;

use podgate_auth::oidc::IssuerConfig;
use podgate_auth::{BrowserSession, SessionKey};
use podgate_protocol::Protocol;
use podgate_testkit::gateway::Env;
use podgate_testkit::http::{Answer, request};
use podgate_testkit::kubectl::{self, Kubectl};
use podgate_testkit::metrics::auth_failures;
use podgate_testkit::oidc::provider::{
    self, ALICE, BOB, LOGIN_CLIENT_ID, LOGIN_CLIENT_SECRET, Provider,
};
use podgate_testkit::oidc::{keys, kid, segment};
use podgate_testkit::wait::wait_until;
use podgate_testkit::ws::{self, Ws, read_to_close, stream};
use std::sync::Arc;
use std::time::Duration;
use web::{Cookie, Decision, Web, location, remember};

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

    /// The key the gateway seals cookies with, so the test can look inside them.
    fn key(&self) -> SessionKey {
        self.env.session_key()
    }
}

/// `None` (skip) when node, the provider or RSA key generation is missing here.
async fn setup(id_token_ttl: Option<u64>, tune: impl FnOnce(&mut IssuerConfig)) -> Option<Setup> {
    setup_from(provider::dev_only(), id_token_ttl, tune).await
}

/// [`setup`] with the gateway of `builder` (its clusters and settings) instead of
/// [`provider::dev_only`]'s.
async fn setup_from(
    builder: podgate_testkit::gateway::Builder,
    id_token_ttl: Option<u64>,
    tune: impl FnOnce(&mut IssuerConfig),
) -> Option<Setup> {
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
    let port = podgate_testkit::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let mut oidc = provider::oidc_config(&issuer, |config| {
        config.min_refetch_interval = podgate_config::Duration::from_millis(200);
        tune(config);
    });
    // The client secret from a file, as deployments do.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("secret"),
        format!("{LOGIN_CLIENT_SECRET}\n"),
    )
    .expect("write");
    let login = oidc.login.as_mut().expect("the login client");
    login.client_secret = None;
    login.client_secret_file = Some(dir.path().join("secret"));
    let (env, options) = provider::gateway_from(builder, &oidc, id_token_ttl).await;
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

/// `/podgate/whoami` with `token` as a bearer.
async fn whoami_with(env: &Env, token: &str) -> Answer {
    let bearer = format!("Bearer {token}");
    request(
        env,
        "GET",
        "/podgate/whoami",
        &[("Authorization", &bearer)],
        "",
    )
    .await
}

/// Polls `/podgate/whoami` with `token` as a bearer until it answers `code`, within `limit`.
async fn whoami_until(env: &Env, token: &str, code: u16, limit: Duration, what: &str) {
    let mut last = None;
    let answered = wait_until(limit, Duration::from_millis(100), async || {
        let r = whoami_with(env, token).await;
        let done = r.code == code;
        last = Some(r);
        done
    })
    .await;
    assert!(
        answered,
        "timed out waiting for {what}: last answer {last:?}"
    );
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
    let cookie = format!("podgate_session={cookie}");
    ws::open(
        env,
        "",
        EXEC,
        &[ws::V5],
        &[("Cookie", &cookie), ("Origin", origin)],
    )
    .await
    .map(|(ws, _)| ws)
    .map_err(|(code, _)| code)
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
    let own = s.env.origin();
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
    let mut last = None;
    let over = wait_until(
        Duration::from_secs(20),
        Duration::from_millis(200),
        async || {
            let mut browser = s.web();
            browser.set_cookie("podgate_session", &newest);
            let r = whoami(&mut browser).await;
            assert!(r.code == 401 || r.code == 200, "{}", r.body);
            let over = r.code == 401;
            last = Some(r);
            over
        },
    )
    .await;
    assert!(over, "the session never ended");
    let ended = last.expect("an answer");
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
    assert_eq!(s.env.sessions().live.len(), 0);

    let own = s.env.origin();
    let mut ws = exec_with_cookie(&s.env, &cookie, &own)
        .await
        .expect("the gateway's own page opens a shell");
    let got = read_to_close(&mut ws).await.frames(Protocol::V5);
    let stdout = stream(&got, 1);
    assert_eq!(String::from_utf8_lossy(&stdout), "via-oidc\n");
}

/// kubectl as the holder of `token`, on the gateway's cluster `old`.
fn kubectl_with(s: &Setup, token: &str) -> Kubectl {
    Kubectl::new(kubectl::DEFAULT, s.env.kubeconfig(token), s.env.dir.path())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_execs_with_a_provider_token_and_outsiders_are_refused_at_the_edge() {
    let Some(s) = setup(None, |_| {}).await else {
        return;
    };
    if !kubectl::available() {
        return;
    }
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

    let out = kubectl_with(&s, &alice_token)
        .sh("echo hello-oidc; exit 5")
        .await;
    assert_eq!(
        (out.code, out.text().as_str()),
        (5, "hello-oidc\n"),
        "{}",
        out.stderr
    );

    let bob_kubectl = kubectl_with(&s, &bob_token);
    let out = bob_kubectl
        .run(&["exec", "shell-0", "--", "true"], b"")
        .await;
    out.assert_fails_saying(&["user \"bob\" may not use cluster \"old\""], "");
    let out = bob_kubectl.run(&["get", "pods"], b"").await;
    out.assert_fails_saying(&["Forbidden", "forbidden"], "");
    // The edge refused it: nothing reached the cluster as bob.
    let r = bob
        .get("/clusters/old/api/v1/namespaces/default/pods")
        .await;
    assert_eq!(r.code, 403);
    assert_eq!(r.json()["details"]["name"], "old");

    // A machine client's token (client_credentials with a resource indicator) works too,
    // for what its groups allow: it is not in `dev`, so the edge refuses it the same way.
    let machine = s.provider().access_token().await;
    let out = kubectl_with(&s, &machine).run(&["get", "pods"], b"").await;
    out.assert_fails_saying(&["user \"podgate-test\" may not use cluster \"old\""], "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_provider_keys_are_accepted_without_a_gateway_restart() {
    let Some(mut s) = setup(None, |_| {}).await else {
        return;
    };
    let before = s.provider().access_token().await;
    let r = whoami_with(&s.env, &before).await;
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

fn claims_of(token: &str) -> serde_json::Value {
    segment(token, 1)
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
