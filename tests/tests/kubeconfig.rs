//! The token login and `/podgate/kubeconfig`, over HTTP and with real kubectl: a static token
//! typed into the login sets the session cookie (Origin checked, the cookie holds the token's
//! digest and never the token), a wrong token is a readable 401 counted in
//! `podgate_auth_failures_total`, the login ends when the token leaves the tokens file, and the
//! kubeconfig the person downloads (no secret, or their own token when they present it again)
//! is what `/usr/bin/kubectl` uses to list pods and exec through the gateway.

use podgate_auth::{BrowserSession, StaticTokens, TokenTable};
use podgate_testkit::gateway::{self, ALICE, BOB, Builder, Env};
use podgate_testkit::http::{self, Answer};
use podgate_testkit::kubectl::{self, Kubectl};
use podgate_testkit::metrics::auth_failures;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn table(yaml: &str) -> TokenTable {
    podgate_auth::parse_tokens(Path::new("<test tokens>"), yaml).expect("the tokens parse")
}

/// A gateway with the demo's people as its own [`StaticTokens`] (so the test can reload them)
/// and the token login on.
async fn gateway_with_token_login() -> (Env, Arc<StaticTokens>) {
    let tokens = Arc::new(StaticTokens::new(table(&gateway::people())));
    let env = Builder::demo()
        .authenticator(tokens.clone())
        .browser(|b| b.token_login = true)
        .start()
        .await;
    (env, tokens)
}

async fn token_login(env: &Env, origin: Option<&str>, token: &str) -> Answer {
    let body = serde_json::json!({ "token": token }).to_string();
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(o) = origin {
        headers.push(("Origin", o));
    }
    http::request(env, "POST", "/auth/token", &headers, &body).await
}

/// The `podgate_session=...` pair a login answer sets.
fn session_cookie(answer: &Answer) -> String {
    answer
        .headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .map(|(_, v)| v.split(';').next().unwrap_or_default().to_string())
        .find(|v| v.starts_with("podgate_session=") && v.len() > "podgate_session=".len())
        .unwrap_or_else(|| panic!("no session cookie set: {}", answer.head))
}

async fn with_cookie(
    env: &Env,
    method: &str,
    path: &str,
    cookie: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut headers = vec![("Cookie", cookie)];
    headers.extend_from_slice(extra);
    http::request(env, method, path, &headers, body).await
}

fn write(env: &Env, name: &str, text: &str) -> PathBuf {
    let path = env.dir.path().join(name);
    std::fs::write(&path, text).expect("write the kubeconfig");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_login_sets_a_digest_cookie_and_ends_with_the_token() {
    let (env, tokens) = gateway_with_token_login().await;
    let origin = env.origin();

    let methods = http::get(&env, "/auth/methods", "").await;
    assert_eq!(methods.json()["token"], true, "{}", methods.body);

    // Cross-site, or without an Origin at all: refused before the token is looked at.
    let evil = token_login(&env, Some("https://evil.example"), ALICE).await;
    assert_eq!(evil.code, 403, "{}", evil.body);
    assert_eq!(token_login(&env, None, ALICE).await.code, 403);

    // A wrong token: a readable 401, counted, and no cookie.
    let before = auth_failures(&env, "unknown_token");
    let wrong = token_login(&env, Some(&origin), "not-a-token-at-all").await;
    assert_eq!(wrong.code, 401, "{}", wrong.body);
    assert!(
        wrong.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("not valid")),
        "{}",
        wrong.body
    );
    assert!(wrong.header("set-cookie").is_none(), "{}", wrong.head);
    assert_eq!(auth_failures(&env, "unknown_token"), before + 1);

    let ok = token_login(&env, Some(&origin), ALICE).await;
    assert_eq!(ok.code, 204, "{}", ok.body);
    let set = ok.header("set-cookie").expect("a cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    let cookie = session_cookie(&ok);
    // The cookie holds the token's digest, not the token (not even sealed).
    let sealed = cookie.trim_start_matches("podgate_session=");
    let session = BrowserSession::open(&env.session_key(), sealed).expect("our cookie");
    assert!(session.token.is_empty());
    assert_eq!(
        session.static_digest(),
        Some(podgate_auth::TokenDigest::of(ALICE))
    );
    let plain = env
        .session_key()
        .open(podgate_auth::session::SESSION_PURPOSE, sealed)
        .expect("opens");
    assert!(!String::from_utf8_lossy(&plain).contains(ALICE));

    let me = with_cookie(&env, "GET", "/podgate/whoami", &cookie, &[], "").await;
    assert_eq!(me.code, 200, "{}", me.body);
    assert_eq!(me.json()["user"], "alice");
    // The Origin rule of cookie sessions holds: a cross-site write is refused.
    let cross = with_cookie(
        &env,
        "POST",
        "/podgate/kubeconfig",
        &cookie,
        &[("Origin", "https://evil.example")],
        "token=x",
    )
    .await;
    assert_eq!(cross.code, 403, "{}", cross.body);

    // Logout clears the cookie.
    let out = with_cookie(
        &env,
        "POST",
        "/auth/logout",
        &cookie,
        &[("Origin", &origin)],
        "",
    )
    .await;
    assert_eq!(out.code, 303);
    assert!(
        out.header("set-cookie")
            .is_some_and(|c| c.starts_with("podgate_session=;") && c.contains("Max-Age=0")),
        "{}",
        out.head
    );

    // The token leaves the tokens file: its login ends at the next request.
    let again = session_cookie(&token_login(&env, Some(&origin), ALICE).await);
    assert_eq!(
        with_cookie(&env, "GET", "/podgate/whoami", &again, &[], "")
            .await
            .code,
        200
    );
    tokens.reload(table(&format!("- token: {BOB}\n  user: bob\n")));
    let gone = with_cookie(&env, "GET", "/podgate/whoami", &again, &[], "").await;
    assert_eq!(gone.code, 401, "{}", gone.body);
    assert!(
        gone.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0")),
        "{}",
        gone.head
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubeconfig_download_works_with_real_kubectl() {
    if !kubectl::available() {
        return;
    }
    let (env, _tokens) = gateway_with_token_login().await;
    let origin = env.origin();
    let cookie = session_cookie(&token_login(&env, Some(&origin), ALICE).await);

    // No secret unless asked for.
    let plain = with_cookie(&env, "GET", "/podgate/kubeconfig", &cookie, &[], "").await;
    assert_eq!(plain.code, 200, "{}", plain.body);
    assert!(
        plain
            .header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment;")),
        "{}",
        plain.head
    );
    assert!(!plain.body.contains(ALICE), "{}", plain.body);
    let doc: serde_json::Value = serde_norway::from_str(&plain.body).expect("YAML");
    let contexts: Vec<&str> = doc["contexts"]
        .as_array()
        .expect("contexts")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(contexts, ["dev-east", "dev-west"]);
    assert_eq!(
        doc["clusters"][0]["cluster"]["server"],
        format!("{}/clusters/dev-east", env.url())
    );
    // The gateway's self-signed certificate is not publicly trusted: it is embedded.
    assert!(
        doc["clusters"][0]["cluster"]["certificate-authority-data"].is_string(),
        "{}",
        plain.body
    );

    // kubectl with it, once the person adds their token as the file's comment says.
    let path = write(&env, "plain.kubeconfig", &plain.body);
    let k = Kubectl::new("/usr/bin/kubectl", &path, env.dir.path()).context("dev-east");
    let unauth = k.run(&["get", "pods"], b"").await;
    assert_ne!(unauth.code, 0, "no credentials yet: {}", unauth.text());
    let set = k
        .run(
            &[
                "config",
                "set-credentials",
                "podgate",
                &format!("--token={ALICE}"),
            ],
            b"",
        )
        .await;
    assert_eq!(set.code, 0, "{}", set.stderr);
    let pods = k.run(&["get", "pods", "-o", "name"], b"").await;
    assert_eq!(pods.code, 0, "{}", pods.stderr);
    assert!(pods.text().contains("pod/shell-0"), "{}", pods.text());

    // Embedding: only the login's own token, presented again (POST, Origin checked).
    let other = with_cookie(
        &env,
        "POST",
        "/podgate/kubeconfig",
        &cookie,
        &[
            ("Origin", &origin),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!("token={BOB}"),
    )
    .await;
    assert_eq!(other.code, 403, "{}", other.body);
    assert!(!other.body.contains(BOB));
    let embedded = with_cookie(
        &env,
        "POST",
        "/podgate/kubeconfig",
        &cookie,
        &[
            ("Origin", &origin),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!("token={ALICE}"),
    )
    .await;
    assert_eq!(embedded.code, 200, "{}", embedded.body);
    let path = write(&env, "embedded.kubeconfig", &embedded.body);
    for context in ["dev-east", "dev-west"] {
        let k = Kubectl::new("/usr/bin/kubectl", &path, env.dir.path()).context(context);
        let pods = k.run(&["get", "pods", "-o", "name"], b"").await;
        assert_eq!(pods.code, 0, "{context}: {}", pods.stderr);
        let exec = k.sh("echo through-$((40+2))").await;
        assert_eq!(exec.code, 0, "{context}: {}", exec.stderr);
        assert_eq!(exec.text().trim(), "through-42");
    }

    // Without a login: 401.
    assert_eq!(http::get(&env, "/podgate/kubeconfig", "").await.code, 401);
    env.shutdown().await;
}

/// kubelogin stands in: kubectl runs `kubectl oidc-login get-token ...` from the kubeconfig,
/// which runs this plugin (`kubectl-oidc_login` on PATH). It checks the arguments kubectl
/// passes against what the test expects, asks the issuer named there for its discovery
/// document (so the URL in the kubeconfig is the provider's), and answers the
/// `client.authentication.k8s.io/v1` ExecCredential protocol with the ID token the test's
/// provider signed.
const PLUGIN: &str = r#"#!/usr/bin/env node
const args = process.argv.slice(2);
const flag = (name) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const fail = (why) => { process.stderr.write(`test oidc-login: ${why}\n`); process.exit(1); };
if (args[0] !== 'get-token') fail(`expected get-token, got ${JSON.stringify(args)}`);
const issuer = flag('oidc-issuer-url');
if (issuer !== process.env.EXPECT_ISSUER) fail(`issuer ${issuer}, expected ${process.env.EXPECT_ISSUER}`);
if (flag('oidc-client-id') !== process.env.EXPECT_CLIENT_ID) fail(`client id ${flag('oidc-client-id')}`);
if (args.some((a) => a.startsWith('--oidc-client-secret'))) fail('a client secret in the kubeconfig');
const info = JSON.parse(process.env.KUBERNETES_EXEC_INFO || '{}');
if (info.apiVersion !== 'client.authentication.k8s.io/v1') fail(`exec info ${process.env.KUBERNETES_EXEC_INFO}`);
const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
if (discovery.issuer !== issuer) fail(`the provider says it is ${discovery.issuer}`);
const token = (await import('node:fs')).readFileSync(process.env.ID_TOKEN_FILE, 'utf8').trim();
process.stdout.write(JSON.stringify({
  apiVersion: 'client.authentication.k8s.io/v1',
  kind: 'ExecCredential',
  status: { token },
}));
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oidc_kubeconfig_runs_kubelogin_and_kubectl_uses_it() {
    use podgate_auth::login::LoginConfig;
    use podgate_auth::oidc::{IssuerConfig, OidcConfig};
    use podgate_testkit::oidc::fake_idp::FakeIdp;
    use podgate_testkit::oidc::keys::TestKey;
    use std::os::unix::fs::PermissionsExt as _;
    if !kubectl::available() || !driver_node() {
        return;
    }
    let key = TestKey::es256("k1");
    let idp = FakeIdp::start(serde_json::json!({"keys": [key.public_jwk()]})).await;
    let mut issuer = IssuerConfig::new(
        idp.issuer.clone(),
        vec!["podgate-web".into(), "podgate-kubectl".into()],
    );
    issuer.insecure_http_for_loopback = true;
    issuer.groups_claim = Some("groups".into());
    issuer.username_prefix = Some("-".into());
    let mut oidc = OidcConfig::new(vec![issuer]);
    let mut login = LoginConfig::new(idp.issuer.clone(), "podgate-web");
    login.client_secret = Some("the-browser-login-secret".into());
    login.kubectl_client_id = Some("podgate-kubectl".into());
    oidc.login = Some(login);
    let env = Builder::demo().oidc(&oidc).start().await;

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let claims = |aud: &str| {
        serde_json::json!({
            "iss": idp.issuer, "aud": aud, "sub": "carol", "groups": ["dev"],
            "iat": now, "exp": now + 600,
        })
    };
    // A browser session as an OIDC login leaves it: the ID token for the web client, sealed.
    let web_token = key.token(&claims("podgate-web"));
    let session = BrowserSession::new(web_token, None, now + 600).expect("a session");
    let cookie = format!(
        "podgate_session={}",
        session.seal(&env.session_key()).expect("sealed")
    );
    let answer = with_cookie(&env, "GET", "/podgate/kubeconfig", &cookie, &[], "").await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    assert!(
        !answer.body.contains("the-browser-login-secret"),
        "{}",
        answer.body
    );
    let doc: serde_json::Value = serde_norway::from_str(&answer.body).expect("YAML");
    let exec = &doc["users"][0]["user"]["exec"];
    assert_eq!(exec["command"], "kubectl", "{}", answer.body);
    // Embedding is for static tokens only.
    let refused = with_cookie(
        &env,
        "POST",
        "/podgate/kubeconfig",
        &cookie,
        &[("Origin", &env.origin())],
        "token=whatever-token",
    )
    .await;
    assert_eq!(refused.code, 400, "{}", refused.body);

    // kubectl, with the plugin standing in for kubelogin, and the token "kubelogin" got.
    let bin = env.dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("a bin dir");
    let plugin = bin.join("kubectl-oidc_login");
    std::fs::write(&plugin, PLUGIN).expect("the plugin");
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let id_token = env.dir.path().join("id-token");
    std::fs::write(&id_token, key.token(&claims("podgate-kubectl"))).expect("the token");
    let path = write(&env, "oidc.kubeconfig", &answer.body);
    let search = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |args: &'static [&'static str]| {
        let k = Kubectl::new("/usr/bin/kubectl", &path, env.dir.path()).context("dev-east");
        let mut cmd = k.command(args);
        cmd.env("PATH", &search)
            .env("EXPECT_ISSUER", &idp.issuer)
            .env("EXPECT_CLIENT_ID", "podgate-kubectl")
            .env("ID_TOKEN_FILE", &id_token)
            .stdin(std::process::Stdio::null());
        async move {
            let out = tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
                .await
                .expect("kubectl finishes")
                .expect("kubectl runs");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let (code, stdout, stderr) = run(&["get", "pods", "-o", "name"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("pod/shell-0"), "{stdout}");
    let (code, stdout, stderr) =
        run(&["exec", "shell-0", "--", "sh", "-c", "echo oidc-$((6*7))"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "oidc-42");
    // The token kubectl sent was the plugin's: podgate saw carol.
    let (code, stdout, stderr) = run(&["auth", "whoami", "-o", "json"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("\"carol\""), "{stdout}");
    env.shutdown().await;
}

/// node runs the exec plugin.
fn driver_node() -> bool {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    podgate_testkit::available(node, "node (the test's exec credential plugin)")
}
