//! Browser sessions: the demo's dev login sets a sealed cookie that authenticates like a bearer
//! token; an altered cookie is refused; and a page on another site cannot use the cookie to
//! open a shell (cross-site WebSocket hijacking) or change anything.

use podgate_protocol::Protocol;
use podgate_testkit::gateway::{ADMIN, ALICE, Builder, Cluster, Env};
use podgate_testkit::http::request;
use podgate_testkit::metrics::auth_failures;
use podgate_testkit::ws::{self, Ws, read_to_close, stream};

const EXEC: &str = "/clusters/old/api/v1/namespaces/default/pods/shell-0/exec?command=sh&command=-c&command=echo%20via-cookie%3B%20exit%204&stdout=true&stderr=true";

async fn with_dev_login() -> Env {
    Builder::new()
        .cluster(Cluster::new("old"))
        .browser(|b| b.dev_login = true)
        .start()
        .await
}

/// Logs in with `token`; the `podgate_session=...` pair to send back as a Cookie.
async fn login(env: &Env, token: &str) -> String {
    let origin = env.origin();
    let r = request(
        env,
        "POST",
        "/auth/dev-login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", &origin),
        ],
        &format!("token={token}"),
    )
    .await;
    assert_eq!(r.code, 204, "{}", r.body);
    let cookie = r.header("set-cookie").expect("a session cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing in {cookie}");
    }
    cookie.split(';').next().expect("pair").to_string()
}

/// A WebSocket exec authenticated only by `cookie`, from a page at `origin` (none: no header).
async fn exec_with_cookie(
    env: &Env,
    cookie: &str,
    origin: Option<&str>,
) -> Result<Ws, (u16, String)> {
    let mut headers = vec![("Cookie", cookie)];
    headers.extend(origin.map(|o| ("Origin", o)));
    ws::open(env, "", EXEC, &[ws::V5], &headers)
        .await
        .map(|(ws, _)| ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_login_cookie_authenticates_and_logout_ends_it() {
    let env = with_dev_login().await;
    let methods = request(&env, "GET", "/auth/methods", &[], "").await;
    assert_eq!(
        methods.json(),
        serde_json::json!({"dev": true, "oidc": false})
    );
    // Without a session: 401 Status.
    let anon = request(&env, "GET", "/podgate/whoami", &[], "").await;
    assert_eq!(anon.code, 401);
    assert_eq!(anon.json()["reason"], "Unauthorized");

    let origin = env.origin();
    let bad = request(
        &env,
        "POST",
        "/auth/dev-login",
        &[("Content-Type", "application/json"), ("Origin", &origin)],
        r#"{"token":"not-a-token"}"#,
    )
    .await;
    assert_eq!(bad.code, 401);
    assert!(bad.header("set-cookie").is_none());

    let cookie = login(&env, ALICE).await;
    let me = request(&env, "GET", "/podgate/whoami", &[("Cookie", &cookie)], "").await;
    assert_eq!(me.code, 200, "{}", me.body);
    assert_eq!(me.json()["user"], "alice");
    // The cookie is the lowest-precedence source: a bearer header wins.
    let bearer = format!("Bearer {ADMIN}");
    let both = request(
        &env,
        "GET",
        "/podgate/whoami",
        &[("Cookie", &cookie), ("Authorization", &bearer)],
        "",
    )
    .await;
    assert_eq!(both.json()["user"], "admin");
    // The cookie never reaches the cluster; the proxied API works as alice.
    let pods = request(
        &env,
        "GET",
        "/clusters/old/api/v1/namespaces/default/pods",
        &[("Cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(pods.code, 200, "{}", pods.body);

    let out = request(&env, "POST", "/auth/logout", &[("Origin", &origin)], "").await;
    assert_eq!(out.code, 303);
    assert_eq!(out.header("location"), Some("/"));
    assert!(
        out.header("set-cookie")
            .is_some_and(|c| c.starts_with("podgate_session=;") && c.contains("Max-Age=0"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altered_or_foreign_cookies_are_refused_and_cleared() {
    let env = with_dev_login().await;
    let other = with_dev_login().await;
    let foreign = login(&other, ALICE).await;
    let before = auth_failures(&env, "bad_cookie");
    let r = request(&env, "GET", "/podgate/whoami", &[("Cookie", &foreign)], "").await;
    assert_eq!(r.code, 401);
    assert!(
        r.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    let mut altered = login(&env, ALICE).await;
    let last = altered.pop().expect("non-empty");
    altered.push(if last == 'A' { 'B' } else { 'A' });
    let r = request(&env, "GET", "/podgate/whoami", &[("Cookie", &altered)], "").await;
    assert_eq!(r.code, 401);
    assert_eq!(auth_failures(&env, "bad_cookie"), before + 2);
    // Sealed by this gateway, but the token inside is no longer accepted: refused and cleared.
    let stale = podgate_auth::BrowserSession::new("revoked-token".into(), None, 0)
        .expect("session")
        .seal(&env.session_key())
        .expect("sealed");
    let r = request(
        &env,
        "GET",
        "/podgate/whoami",
        &[("Cookie", &format!("podgate_session={stale}"))],
        "",
    )
    .await;
    assert_eq!(r.code, 401);
    assert!(
        r.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_page_cannot_open_a_shell_with_the_cookie() {
    let env = with_dev_login().await;
    let cookie = login(&env, ADMIN).await;
    let before = auth_failures(&env, "cross_origin");

    let (code, body) = exec_with_cookie(&env, &cookie, Some("https://evil.example"))
        .await
        .expect_err("refused");
    assert_eq!(code, 403);
    assert!(
        body.contains("https://evil.example may not use your podgate session"),
        "{body}"
    );
    let (code, _) = exec_with_cookie(&env, &cookie, None)
        .await
        .expect_err("refused without Origin");
    assert_eq!(code, 403);
    assert_eq!(auth_failures(&env, "cross_origin"), before + 2);
    assert_eq!(env.sessions().live.len(), 0);

    // The gateway's own page may.
    let mut ws = exec_with_cookie(&env, &cookie, Some(&env.origin()))
        .await
        .expect("same-origin shell");
    let got = read_to_close(&mut ws).await.frames(Protocol::V5);
    let stdout = stream(&got, 1);
    assert_eq!(String::from_utf8_lossy(&stdout), "via-cookie\n");
    let status = got.iter().find(|(s, _)| *s == 3).expect("exit status");
    assert!(String::from_utf8_lossy(&status.1).contains("\"ExitCode\""));

    // Changes need the right Origin too; reads do not (SameSite already keeps them same-site).
    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"xsite"}}"#;
    let path = "/clusters/old/api/v1/namespaces/default/configmaps";
    let json = ("Content-Type", "application/json");
    let evil = request(
        &env,
        "POST",
        path,
        &[
            ("Cookie", &cookie),
            json,
            ("Origin", "https://evil.example"),
        ],
        cm,
    )
    .await;
    assert_eq!(evil.code, 403, "{}", evil.body);
    let own = env.origin();
    let ok = request(
        &env,
        "POST",
        path,
        &[("Cookie", &cookie), json, ("Origin", &own)],
        cm,
    )
    .await;
    assert_eq!(ok.code, 201, "{}", ok.body);

    // A bearer token is not ambient: any Origin may use it (kubectl, scripts, other tools).
    let bearer = format!("Bearer {ADMIN}");
    let r = request(
        &env,
        "GET",
        "/podgate/whoami",
        &[
            ("Authorization", &bearer),
            ("Origin", "https://evil.example"),
        ],
        "",
    )
    .await;
    assert_eq!(r.code, 200);
    // Logging someone in from another site (login CSRF) is refused too.
    let r = request(
        &env,
        "POST",
        "/auth/dev-login",
        &[("Origin", "https://evil.example")],
        &format!("token={ADMIN}"),
    )
    .await;
    assert_eq!(r.code, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_login_is_off_unless_the_demo_turns_it_on() {
    let env = Builder::new().cluster(Cluster::new("old")).start().await;
    let methods = request(&env, "GET", "/auth/methods", &[], "").await;
    assert_eq!(
        methods.json(),
        serde_json::json!({"dev": false, "oidc": false})
    );
    let own = env.origin();
    let r = request(
        &env,
        "POST",
        "/auth/dev-login",
        &[("Origin", &own)],
        &format!("token={ADMIN}"),
    )
    .await;
    assert_eq!(r.code, 404);
    assert!(r.header("set-cookie").is_none());
    let r = request(&env, "GET", "/auth/login", &[], "").await;
    assert_eq!(r.code, 404);
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("not configured"))
    );
}
