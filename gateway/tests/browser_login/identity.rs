//! Identity reaches the cluster exactly as authenticated, or not at all: the provider's people
//! whose claims cannot travel in `Impersonate-*` headers byte for byte (a control character,
//! padding HTTP would strip, a reserved group) get no session cookie, and their tokens, taken
//! straight from the provider, are refused as bearer tokens with the generic 401, counted, and
//! never reach a pod; legitimate UTF-8 (`zoë`) reaches the cluster as its bytes.

use super::web::{Decision, Web};
use super::{
    Setup, captured_logs, kubectl_with, session_cookie, session_of, setup_from, whoami, whoami_with,
};
use podgate_testkit::gateway::{Builder, Cluster};
use podgate_testkit::http::request;
use podgate_testkit::kubectl;
use podgate_testkit::metrics::auth_failures;
use podgate_testkit::oidc::provider::{EVE, MALLORY, PADDED, Person, TRUDY, ZOE};
use podgate_testkit::oidc::segment;
use serde_json::json;
use std::path::PathBuf;

/// The ID token the provider issues to `person` for a login the gateway started, exchanged by
/// the test itself (with the verifier from the gateway's login cookie) instead of delivered
/// to the gateway's callback: the token as it is, whatever the gateway would make of it.
async fn provider_id_token(s: &Setup, web: &mut Web<'_>, person: &Person) -> String {
    let authorize = web.start("/").await;
    let sealed = web.cookie("podgate_login").expect("a login cookie");
    let login = podgate_auth::login::LoginState::open(&s.key(), Some(&sealed), 0, u64::MAX)
        .expect("the gateway's login cookie");
    let callback = web
        .through_provider(&authorize, person.login(), Decision::Allow)
        .await;
    let query = callback.split_once('?').expect("a query").1;
    let code = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "code")
        .expect("a code")
        .1
        .into_owned();
    let answer = s
        .provider()
        .exchange_code(&code, &login.redirect_uri, &login.verifier)
        .await;
    let token = answer["id_token"].as_str().expect("an ID token").to_owned();
    // The provider says what the test means it to say.
    let claims = segment(&token, 1);
    assert_eq!(claims["sub"], person.sub, "{}", person.username);
    assert_eq!(
        claims["groups"],
        json!(person.groups),
        "{}",
        person.username
    );
    token
}

/// A file a pod's command may create (the devcluster's pods are processes on this machine).
fn witness(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "podgate-identity-{}-{name}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_nanos()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_reach_the_cluster_exactly_or_not_at_all() {
    let logs = captured_logs();
    // The edge admits everyone here: only the cluster's own RBAC decides, so a name that got
    // through changed (`admin `, ` system:masters`) would show as a command that ran.
    let Some(s) = setup_from(Builder::new().cluster(Cluster::new("old")), None, |_| {}).await
    else {
        return;
    };
    let kubectl_here = kubectl::available();
    let cluster = s.env.cluster("old");
    // What any refused credential is answered with: the generic 401.
    let generic = request(&s.env, "GET", "/podgate/whoami", &[], "").await;
    assert_eq!(generic.code, 401, "{}", generic.body);

    let mut tokens = Vec::new();
    for (person, reason) in [
        (MALLORY, "invalid_name"),
        (PADDED, "invalid_name"),
        (EVE, "invalid_name"),
        (TRUDY, "reserved_identity"),
    ] {
        let who = person.username;
        // The browser login: the provider's answer is refused at the callback, where the ID
        // token is mapped as a bearer token would be. No session.
        let mut web = s.web();
        let before = auth_failures(&s.env, "login_id_token");
        let r = web.log_in(person.login(), "/").await;
        assert_eq!(r.code, 502, "{who}: {}", r.body);
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{who}"
        );
        assert!(
            r.body.contains("could not be accepted"),
            "{who}: {}",
            r.body
        );
        assert!(
            r.body.contains("/auth/login"),
            "{who}: a way to start again"
        );
        assert!(session_cookie(&r).is_none(), "{who}: {:?}", r.headers);
        assert!(web.cookie("podgate_session").is_none(), "{who}");
        assert_eq!(auth_failures(&s.env, "login_id_token"), before + 1, "{who}");
        assert_eq!(whoami(&mut web).await.code, 401, "{who}");

        // The same person's token, straight from the provider, as a bearer token.
        let token = provider_id_token(&s, &mut web, &person).await;
        let before = auth_failures(&s.env, reason);
        let r = whoami_with(&s.env, &token).await;
        assert_eq!((r.code, &r.body), (401, &generic.body), "{who}");
        assert_eq!(auth_failures(&s.env, reason), before + 1, "{who}");

        // Real kubectl with it: refused before anything reaches the cluster.
        if kubectl_here {
            let sessions = cluster.total_sessions();
            let file = witness(who);
            let touch = file.to_str().expect("a UTF-8 path");
            let out = kubectl_with(&s, &token)
                .run(
                    &["exec", "-n", "default", "shell-0", "--", "touch", touch],
                    b"",
                )
                .await;
            // kubectl's words for a 401.
            out.assert_fails_saying(&["Unauthorized", "provide credentials"], who);
            assert!(auth_failures(&s.env, reason) > before + 1, "{who}");
            assert!(!file.exists(), "{who}: the command ran in the pod");
            assert_eq!(cluster.active_sessions(), 0, "{who}");
            assert_eq!(
                cluster.total_sessions(),
                sessions,
                "{who}: a session reached the cluster"
            );
        }
        tokens.push((who, token));
    }

    // zoë: legitimate UTF-8, through the browser login and as a bearer token.
    let mut web = s.web();
    let done = web.log_in(ZOE.login(), "/").await;
    assert_eq!(done.code, 303, "{}", done.body);
    let me = whoami(&mut web).await;
    assert_eq!(me.code, 200, "{}", me.body);
    assert_eq!(me.json(), json!({"user": "zoë", "groups": ["dev"]}));
    let token = session_of(&s, &web).token;
    let me = whoami_with(&s.env, &token).await;
    assert_eq!(me.code, 200, "{}", me.body);
    assert_eq!(
        me.json()["user"].as_str().map(str::as_bytes),
        Some("zoë".as_bytes())
    );
    if kubectl_here {
        let zoe = kubectl_with(&s, &token);
        let sessions = cluster.total_sessions();
        let file = witness("zoe");
        let touch = file.to_str().expect("a UTF-8 path");
        let out = zoe
            .run(
                &["exec", "-n", "default", "shell-0", "--", "touch", touch],
                b"",
            )
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(file.exists(), "zoë's command ran in the pod");
        let _ = std::fs::remove_file(&file);
        assert_eq!(cluster.total_sessions(), sessions + 1);
        // The cluster's own refusal names the user it was asked to impersonate, from the
        // header bytes it received: exactly `zoë`.
        let out = zoe
            .run(&["exec", "-n", "shop", "web-0", "--", "true"], b"")
            .await;
        out.assert_fails_saying(
            &["pods \"web-0\" is forbidden: User \"zoë\" cannot"],
            "zoë in shop",
        );
        assert!(
            out.stderr.contains("in the namespace \"shop\""),
            "{}",
            out.stderr
        );
    }

    // The log says which claim was refused and why, never the value or the token.
    let text = String::from_utf8_lossy(&logs.lock().expect("logs")).into_owned();
    for line in [
        "the username claim \"sub\" contains a control character (U+0007)",
        "the username claim \"sub\" starts or ends with whitespace",
        "entry 1 of the groups claim \"groups\" starts or ends with whitespace",
        "a mapped group starts with \"system:\"",
        "reason=\"invalid_name\"",
        "reason=\"reserved_identity\"",
    ] {
        assert!(text.contains(line), "the log lacks {line:?}:\n{text}");
    }
    for (who, token) in &tokens {
        let signature = token.rsplit('.').next().expect("a JWT");
        assert!(
            !text.contains(token.as_str()) && !text.contains(signature),
            "the log shows {who}'s token:\n{text}"
        );
    }
    for value in ["mallory", "admin ", "\"admin", "system:masters"] {
        assert!(
            !text.contains(value),
            "the log shows a refused value ({value:?}):\n{text}"
        );
    }
}
