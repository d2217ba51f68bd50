//! What the gateway refuses and how: unknown and stopped clusters, missing credentials, a
//! client trying to choose its own identity, session limits. Every refusal is a
//! `metav1.Status` with the HTTP code in `code`, so kubectl prints its message.

use podgate_testkit::gateway::{self, ADMIN, ALICE, BOB, Builder, Env};
use podgate_testkit::http::{self, assert_status};
use podgate_testkit::kubectl;
use podgate_testkit::wait::wait_for;
use podgate_testkit::ws::{self, Got, echo_round_trip, next_frame, send_stdin};
use std::time::Duration;

const ECHO_EXEC: &str = "/clusters/dev-east/api/v1/namespaces/load/pods/echo-0/exec?command=echo&stdin=true&stdout=true";
const V5: &[&str] = &[ws::V5];

/// An echo session as admin on dev-east: it answers.
async fn east_echoes(env: &Env, data: &[u8]) {
    let mut ws = env
        .admin_exec("load", "echo-0", "command=echo&stdin=true&stdout=true")
        .await;
    echo_round_trip(&mut ws, data).await;
}

/// Raw request `head` (a request line and header lines) to the gateway, as it is.
async fn raw_http(env: &Env, head: &str) -> http::Answer {
    let host = env.addr();
    http::send(
        env,
        format!("{head}\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
}

/// A GET on dev-west (`state`: stopped, frozen) is answered within `limit` with a 503
/// Status naming it; returns the Status.
async fn west_get_is_a_503(env: &Env, limit: Duration, state: &str) -> serde_json::Value {
    let pods = "/clusters/dev-west/api/v1/namespaces/default/pods";
    let r = tokio::time::timeout(limit, http::get(env, pods, ADMIN))
        .await
        .unwrap_or_else(|_| panic!("the gateway answers for a {state} cluster within {limit:?}"));
    let s = assert_status(r.code, &r.body, 503);
    assert!(
        s["message"].as_str().unwrap_or("").contains("dev-west"),
        "{}",
        r.body
    );
    s
}

/// An exec upgrade on dev-west (`state`: stopped, frozen) is refused within `limit` with a
/// 503 Status naming it.
async fn west_exec_is_a_503(env: &Env, limit: Duration, state: &str) {
    let exec = "/clusters/dev-west/api/v1/namespaces/load/pods/echo-0/exec?command=echo&stdin=true";
    let refused = tokio::time::timeout(limit, ws::open(env, ADMIN, exec, V5, &[]))
        .await
        .unwrap_or_else(|_| panic!("exec on a {state} cluster is refused within {limit:?}"));
    let (code, body) = refused.expect_err("no session on a cluster that is down");
    let s = assert_status(code, &body, 503);
    assert!(
        s["message"].as_str().unwrap_or("").contains("dev-west"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_cluster_is_a_404_status_naming_it() {
    podgate_devcluster::install_crypto_provider();
    let env = gateway::demo().await;
    let r = http::get(&env, "/clusters/nope/api/v1/pods", ADMIN).await;
    let s = assert_status(r.code, &r.body, 404);
    assert_eq!(s["reason"], "NotFound", "{}", r.body);
    assert!(
        s["message"].as_str().unwrap_or("").contains("\"nope\""),
        "{}",
        r.body
    );
    // The same for an exec upgrade.
    let refused = ws::open(
        &env,
        ADMIN,
        "/clusters/nope/api/v1/namespaces/default/pods/shell-0/exec?command=true",
        V5,
        &[],
    )
    .await;
    let (code, body) = refused.expect_err("no session on an unknown cluster");
    let s = assert_status(code, &body, 404);
    assert!(
        s["message"].as_str().unwrap_or("").contains("nope"),
        "{body}"
    );

    for k in kubectl::binaries() {
        let url = format!("{}/clusters/nope", env.url());
        let out = env
            .kubectl(&k, ADMIN, "dev-east")
            .run(&["--server", &url, "get", "pods"], b"")
            .await;
        out.assert_fails_saying(&["NotFound", "not found"], &k.display().to_string());
    }
}

/// A cluster that stops answering gets a prompt 503 naming it; the other cluster is
/// unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_cluster_is_a_prompt_503_naming_it_and_others_still_work() {
    podgate_devcluster::install_crypto_provider();
    let mut env = gateway::demo().await;
    // Both work first, so the gateway holds pooled connections to dev-west when it stops,
    // and kubectl has dev-west's discovery cached (as for someone who was using it).
    for id in ["dev-east", "dev-west"] {
        let r = http::get(
            &env,
            &format!("/clusters/{id}/api/v1/namespaces/default/pods"),
            ADMIN,
        )
        .await;
        assert_eq!(r.code, 200, "{id}: {}", r.body);
    }
    for k in kubectl::binaries() {
        let out = env
            .kubectl(&k, ADMIN, "dev-west")
            .run(&["get", "pods"], b"")
            .await;
        assert_eq!(out.code, 0, "{}: {}", k.display(), out.stderr);
    }
    env.stop_cluster("dev-west").await;

    // Bounded: well under the gateway's connect timeout order, whatever the failure.
    let limit = Duration::from_secs(15);
    let s = west_get_is_a_503(&env, limit, "stopped").await;
    assert_eq!(s["reason"], "ServiceUnavailable", "{s}");
    // An exec upgrade to it too.
    west_exec_is_a_503(&env, limit, "stopped").await;

    let cold_cache = env.dir.path().join("cold-cache");
    let cold_cache = cold_cache.to_str().expect("utf-8 path");
    for k in kubectl::binaries() {
        // With discovery cached, kubectl's GET gets the 503 and prints its message.
        let out = env
            .kubectl(&k, ADMIN, "dev-west")
            .within(limit)
            .run(&["get", "pods"], b"")
            .await;
        out.assert_fails_saying(
            &[r#"Error from server (ServiceUnavailable): cluster "dev-west""#],
            &k.display().to_string(),
        );
        // Without, discovery fails first; client-go's discovery prints only the 503's
        // generic text, but still promptly.
        let out = env
            .kubectl(&k, ADMIN, "dev-west")
            .within(limit)
            .run(&["--cache-dir", cold_cache, "get", "pods"], b"")
            .await;
        out.assert_fails_saying(&["(ServiceUnavailable)"], &k.display().to_string());
        let out = env
            .kubectl(&k, ADMIN, "dev-east")
            .within(limit)
            .run(&["get", "pods"], b"")
            .await;
        assert_eq!(out.code, 0, "{}: {}", k.display(), out.stderr);
        assert!(out.text().contains("shell-0"), "{}", out.text());
    }
    let r = http::get(
        &env,
        "/clusters/dev-east/api/v1/namespaces/load/pods",
        ADMIN,
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.body);
    east_echoes(&env, b"east is fine").await;
}

/// A frozen apiserver (its kernel still completes TCP handshakes, the process answers
/// nothing, as when it is stopped or wedged) is unreachable too: a 503 naming the cluster
/// within a bounded time (the connect timeout is 5 s, as `serve` sets it by default), while
/// requests to the other cluster are answered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_cluster_is_a_bounded_503_naming_it() {
    podgate_devcluster::install_crypto_provider();
    let mut env = Builder::demo().start().await;
    let west = env.clusters[1].addr();
    env.stop_cluster("dev-west").await;
    // The same address, now a listener that never accepts: connections complete in the
    // kernel's backlog and then hear nothing, not even a TLS ServerHello.
    let frozen = tokio::net::TcpListener::bind(west)
        .await
        .expect("rebind dev-west's address");

    let limit = Duration::from_secs(15);
    let env = &env;
    let stuck_get = west_get_is_a_503(env, limit, "frozen");
    let stuck_exec = west_exec_is_a_503(env, limit, "frozen");
    let others = async {
        // Meanwhile dev-east answers.
        let r = http::get(
            env,
            "/clusters/dev-east/api/v1/namespaces/default/pods",
            ADMIN,
        )
        .await;
        assert_eq!(r.code, 200, "{}", r.body);
        east_echoes(env, b"east is fine").await;
    };
    let _ = tokio::join!(stuck_get, stuck_exec, others);
    drop(frozen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_a_wrong_token_is_401() {
    podgate_devcluster::install_crypto_provider();
    let env = gateway::demo().await;
    for token in ["", "not-a-podgate-token"] {
        let r = http::get(&env, "/clusters/dev-east/api/v1/pods", token).await;
        let s = assert_status(r.code, &r.body, 401);
        assert_eq!(s["reason"], "Unauthorized", "{token:?}: {}", r.body);
        let (code, body) = ws::open(&env, token, ECHO_EXEC, V5, &[])
            .await
            .expect_err("no session without a valid token");
        assert_status(code, &body, 401);
    }
    // The devcluster's own tokens mean nothing to the gateway.
    let dc_admin = env.clusters[0]
        .token("admin")
        .expect("devcluster admin token")
        .to_string();
    let r = http::get(&env, "/clusters/dev-east/api/v1/pods", &dc_admin).await;
    assert_status(r.code, &r.body, 401);
    for k in kubectl::binaries() {
        let out = env
            .kubectl(&k, "not-a-podgate-token", "dev-east")
            .run(&["get", "pods"], b"")
            .await;
        out.assert_fails_saying(
            &["Unauthorized", "provide credentials"],
            &k.display().to_string(),
        );
    }
}

/// A client cannot choose its identity: `Impersonate-*` headers it sends never reach the
/// cluster, which sees the authenticated user only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_impersonation_headers_are_not_forwarded() {
    podgate_devcluster::install_crypto_provider();
    let env = gateway::demo().await;
    let masquerade = [
        ("Impersonate-User", "admin"),
        ("Impersonate-Group", "system:masters"),
    ];
    let exec =
        "/clusters/dev-east/api/v1/namespaces/default/pods/shell-0/exec?command=true&stdout=true";
    let denied = r#"pods "shell-0" is forbidden: User "bob" cannot get resource "pods/exec" in API group "" in the namespace "default""#;

    let (code, body) = ws::open(&env, BOB, exec, V5, &masquerade)
        .await
        .expect_err("bob gets no session by asking to be admin");
    let s = assert_status(code, &body, 403);
    assert_eq!(s["reason"], "Forbidden", "{body}");
    assert_eq!(s["message"], denied, "{body}");

    // A plain request through the proxy: the same answer, for bob.
    let bearer = format!("Bearer {BOB}");
    let mut headers = vec![("Authorization", bearer.as_str())];
    headers.extend(masquerade);
    let r = http::request(&env, "GET", exec, &headers, "").await;
    let s = assert_status(r.code, &r.body, 403);
    assert_eq!(s["message"], denied, "{}", r.body);

    // The same request as admin is allowed, so the 403 above was about who asked.
    east_echoes(&env, b"admin").await;
}

/// Every refusal the gateway itself makes is a `metav1.Status` with its HTTP code in `code`
/// and a JSON content type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gateway_refusal_is_a_status_json_with_its_code() {
    podgate_devcluster::install_crypto_provider();
    let env = gateway::demo().await;
    let exec_path = "/clusters/dev-east/api/v1/namespaces/default/pods/shell-0/exec?command=true";
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "a path outside /clusters/",
            format!("GET /api/v1/pods HTTP/1.1\r\nAuthorization: Bearer {ADMIN}"),
            404,
        ),
        (
            "an unknown cluster",
            format!("GET /clusters/nope/api HTTP/1.1\r\nAuthorization: Bearer {ADMIN}"),
            404,
        ),
        (
            "no credentials",
            "GET /clusters/dev-east/api HTTP/1.1".to_string(),
            401,
        ),
        (
            "a wrong token",
            "GET /clusters/dev-east/api HTTP/1.1\r\nAuthorization: Bearer wrong-token-1234567890"
                .to_string(),
            401,
        ),
        (
            "a SPDY upgrade",
            format!(
                "POST {exec_path} HTTP/1.1\r\nAuthorization: Bearer {ADMIN}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0"
            ),
            400,
        ),
        (
            "a WebSocket upgrade offering no channel protocol",
            format!(
                "GET {exec_path} HTTP/1.1\r\nAuthorization: Bearer {ADMIN}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: chat.example.com"
            ),
            400,
        ),
    ];
    for (what, head, code) in cases {
        let r = raw_http(&env, &head).await;
        assert_eq!(r.code, code, "{what}: {} {}", r.head, r.body);
        assert_status(r.code, &r.body, code);
        let ct = r.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/json"),
            "{what}: content-type {ct:?}"
        );
    }
    // The SPDY answer says what to do.
    let r = raw_http(
        &env,
        &format!(
            "POST {exec_path} HTTP/1.1\r\nAuthorization: Bearer {ADMIN}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nContent-Length: 0"
        ),
    )
    .await;
    assert!(r.body.contains("WebSocket"), "{}", r.body);
}

/// With one session per user, a second concurrent one of the same user is refused before
/// the upgrade with a 429 naming the limit; other users are not affected, and the slot comes
/// back when the first session ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_session_limit_is_a_429_naming_the_limit() {
    podgate_devcluster::install_crypto_provider();
    let env = Builder::demo().limits(|l| l.per_user = 1).start().await;
    let gw = env.sessions().clone();
    let (mut first, _) = ws::open(&env, ADMIN, ECHO_EXEC, V5, &[])
        .await
        .expect("the first session");
    echo_round_trip(&mut first, b"one").await;
    assert_eq!(gw.limits.active(), 1);

    let (code, body) = ws::open(&env, ADMIN, ECHO_EXEC, V5, &[])
        .await
        .expect_err("a second session of admin is refused");
    let s = assert_status(code, &body, 429);
    assert_eq!(s["reason"], "TooManyRequests", "{body}");
    let msg = s["message"].as_str().unwrap_or("");
    assert!(
        msg.contains(r#"user "admin""#) && msg.contains("1 open sessions"),
        "the message does not name the per-user limit: {msg}"
    );
    // A browser cannot read a refused handshake, so a browser's upgrade (it sends Origin) is
    // refused inside the socket: the same Status on the error stream, then a close that says it.
    let origin = env.origin();
    let (mut browser, _) = ws::open(&env, ADMIN, ECHO_EXEC, V5, &[("Origin", &origin)])
        .await
        .expect("a browser's refusal arrives inside the socket");
    match next_frame(&mut browser, Duration::from_secs(10)).await {
        Got::Data(3, json) => {
            let s: serde_json::Value = serde_json::from_slice(&json).expect("Status JSON");
            assert_eq!(s["reason"], "TooManyRequests");
            assert_eq!(s["code"], 429);
            assert!(
                s["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("1 open sessions"))
            );
        }
        other => panic!("expected the Status on stream 3, got {other:?}"),
    }
    match next_frame(&mut browser, Duration::from_secs(10)).await {
        Got::Close(Some(reason)) => assert!(reason.contains("1 open sessions"), "{reason}"),
        other => panic!("expected a close with a reason, got {other:?}"),
    }
    assert_eq!(gw.limits.active(), 1, "the refusal holds no session");

    // kubectl shows the same reason (its WebSocket attempt and its SPDY fallback both hit
    // the limit).
    let k = std::path::Path::new(kubectl::DEFAULT);
    let out = env
        .kubectl(k, ADMIN, "dev-east")
        .run(&["exec", "shell-0", "--", "true"], b"")
        .await;
    out.assert_fails_saying(&[r#"user "admin" already has 1 open sessions"#], "");

    // Another user is not limited by admin's sessions.
    let alice_exec = "/clusters/dev-east/api/v1/namespaces/default/pods/shell-0/exec?command=cat&stdin=true&stdout=true";
    let (mut alice, _) = ws::open(&env, ALICE, alice_exec, V5, &[])
        .await
        .expect("alice has her own slot");
    send_stdin(&mut alice, b"alice\n").await;
    assert_eq!(
        next_frame(&mut alice, Duration::from_secs(10)).await,
        Got::Data(1, b"alice\n".to_vec())
    );
    drop(alice);

    // The slot comes back when the first session ends.
    drop(first);
    assert!(
        wait_for(Duration::from_secs(10), || gw.limits.active() == 0).await,
        "sessions still counted: {}",
        gw.limits.active()
    );
    let (mut again, _) = ws::open(&env, ADMIN, ECHO_EXEC, V5, &[])
        .await
        .expect("admin's slot came back");
    echo_round_trip(&mut again, b"two").await;
}
