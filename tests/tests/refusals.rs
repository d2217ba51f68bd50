//! What the gateway refuses and how: unknown and stopped clusters, missing credentials, a
//! client trying to choose its own identity, session limits. Every refusal is a
//! `metav1.Status` with the HTTP code in `code`, so kubectl prints its message.

mod common;
use common::*;
use std::time::Duration;

const ECHO_EXEC: &str = "/clusters/dev-east/api/v1/namespaces/load/pods/echo-0/exec?command=echo&stdin=true&stdout=true";
const V5: &[&str] = &["v5.channel.k8s.io"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_cluster_is_a_404_status_naming_it() {
    podgate_devcluster::install_crypto_provider();
    let env = start_demo().await;
    let r = get(&env, "/clusters/nope/api/v1/pods", ADMIN, &[]).await;
    let s = assert_status(r.code, &r.body, 404);
    assert_eq!(s["reason"], "NotFound", "{}", r.body);
    assert!(
        s["message"].as_str().unwrap_or("").contains("\"nope\""),
        "{}",
        r.body
    );
    // The same for an exec upgrade.
    let refused = raw_ws(
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

    for k in kubectls() {
        let url = format!("{}/clusters/nope", env.demo.gateway.url());
        let out = kubectl(
            &env,
            &k,
            ADMIN,
            "dev-east",
            &["--server", &url, "get", "pods"],
            b"",
        )
        .await;
        assert_ne!(out.code, 0, "{}: {}", k.display(), out.text());
        assert!(
            out.stderr.contains("NotFound") || out.stderr.contains("not found"),
            "{}: {}",
            k.display(),
            out.stderr
        );
    }
}

/// A cluster that stops answering gets a prompt 503 naming it; the other cluster is
/// unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_cluster_is_a_prompt_503_naming_it_and_others_still_work() {
    podgate_devcluster::install_crypto_provider();
    let mut env = start_demo().await;
    // Both work first, so the gateway holds pooled connections to dev-west when it stops,
    // and kubectl has dev-west's discovery cached (as for someone who was using it).
    for id in ["dev-east", "dev-west"] {
        let r = get(
            &env,
            &format!("/clusters/{id}/api/v1/namespaces/default/pods"),
            ADMIN,
            &[],
        )
        .await;
        assert_eq!(r.code, 200, "{id}: {}", r.body);
    }
    for k in kubectls() {
        let out = kubectl(&env, &k, ADMIN, "dev-west", &["get", "pods"], b"").await;
        assert_eq!(out.code, 0, "{}: {}", k.display(), out.stderr);
    }
    env.stop_cluster("dev-west").await;

    // Bounded: well under the gateway's connect timeout order, whatever the failure.
    let limit = Duration::from_secs(15);
    let r = tokio::time::timeout(
        limit,
        get(
            &env,
            "/clusters/dev-west/api/v1/namespaces/default/pods",
            ADMIN,
            &[],
        ),
    )
    .await
    .expect("the gateway answers for a stopped cluster within 15 s");
    let s = assert_status(r.code, &r.body, 503);
    assert_eq!(s["reason"], "ServiceUnavailable", "{}", r.body);
    assert!(
        s["message"].as_str().unwrap_or("").contains("dev-west"),
        "{}",
        r.body
    );
    // An exec upgrade to it too.
    let refused = tokio::time::timeout(
        limit,
        raw_ws(
            &env,
            ADMIN,
            "/clusters/dev-west/api/v1/namespaces/load/pods/echo-0/exec?command=echo&stdin=true",
            V5,
            &[],
        ),
    )
    .await
    .expect("exec on a stopped cluster is refused within 15 s");
    let (code, body) = refused.expect_err("no session on a stopped cluster");
    let s = assert_status(code, &body, 503);
    assert!(
        s["message"].as_str().unwrap_or("").contains("dev-west"),
        "{body}"
    );

    let cold_cache = env.dir.path().join("cold-cache");
    let cold_cache = cold_cache.to_str().expect("utf-8 path");
    for k in kubectls() {
        // With discovery cached, kubectl's GET gets the 503 and prints its message.
        let out = kubectl_within(limit, &env, &k, ADMIN, "dev-west", &["get", "pods"], b"").await;
        assert_ne!(out.code, 0, "{}", k.display());
        assert!(
            out.stderr
                .contains(r#"Error from server (ServiceUnavailable): cluster "dev-west""#),
            "{}: kubectl does not name the cluster: {}",
            k.display(),
            out.stderr
        );
        // Without, discovery fails first; client-go's discovery prints only the 503's
        // generic text, but still promptly.
        let out = kubectl_within(
            limit,
            &env,
            &k,
            ADMIN,
            "dev-west",
            &["--cache-dir", cold_cache, "get", "pods"],
            b"",
        )
        .await;
        assert_ne!(out.code, 0, "{}", k.display());
        assert!(
            out.stderr.contains("(ServiceUnavailable)"),
            "{}: {}",
            k.display(),
            out.stderr
        );
        let out = kubectl_within(limit, &env, &k, ADMIN, "dev-east", &["get", "pods"], b"").await;
        assert_eq!(out.code, 0, "{}: {}", k.display(), out.stderr);
        assert!(out.text().contains("shell-0"), "{}", out.text());
    }
    let r = get(
        &env,
        "/clusters/dev-east/api/v1/namespaces/load/pods",
        ADMIN,
        &[],
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.body);
    let (mut ws, _) = raw_ws(&env, ADMIN, ECHO_EXEC, V5, &[])
        .await
        .expect("exec on dev-east");
    echo_round_trip(&mut ws, b"east is fine").await;
}

/// A frozen apiserver (its kernel still completes TCP handshakes, the process answers
/// nothing, as when it is stopped or wedged) is unreachable too: a 503 naming the cluster
/// within a bounded time (the connect timeout is 5 s, as `serve` sets it by default), while
/// requests to the other cluster are answered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_cluster_is_a_bounded_503_naming_it() {
    podgate_devcluster::install_crypto_provider();
    let mut env = start_with(|_| {}).await;
    let west = env.demo.clusters[1].addr();
    env.stop_cluster("dev-west").await;
    // The same address, now a listener that never accepts: connections complete in the
    // kernel's backlog and then hear nothing, not even a TLS ServerHello.
    let frozen = tokio::net::TcpListener::bind(west)
        .await
        .expect("rebind dev-west's address");

    let limit = Duration::from_secs(15);
    let env = &env;
    let stuck_get = async {
        let r = tokio::time::timeout(
            limit,
            get(
                env,
                "/clusters/dev-west/api/v1/namespaces/default/pods",
                ADMIN,
                &[],
            ),
        )
        .await
        .expect("the gateway answers for a frozen cluster within 15 s");
        let s = assert_status(r.code, &r.body, 503);
        assert!(
            s["message"].as_str().unwrap_or("").contains("dev-west"),
            "{}",
            r.body
        );
    };
    let stuck_exec = async {
        let refused = tokio::time::timeout(
            limit,
            raw_ws(
                env,
                ADMIN,
                "/clusters/dev-west/api/v1/namespaces/load/pods/echo-0/exec?command=echo&stdin=true",
                V5,
                &[],
            ),
        )
        .await
        .expect("exec on a frozen cluster is refused within 15 s");
        let (code, body) = refused.expect_err("no session on a frozen cluster");
        let s = assert_status(code, &body, 503);
        assert!(
            s["message"].as_str().unwrap_or("").contains("dev-west"),
            "{body}"
        );
    };
    let others = async {
        // Meanwhile dev-east answers.
        let r = get(
            env,
            "/clusters/dev-east/api/v1/namespaces/default/pods",
            ADMIN,
            &[],
        )
        .await;
        assert_eq!(r.code, 200, "{}", r.body);
        let (mut ws, _) = raw_ws(env, ADMIN, ECHO_EXEC, V5, &[])
            .await
            .expect("exec on dev-east");
        echo_round_trip(&mut ws, b"east is fine").await;
    };
    tokio::join!(stuck_get, stuck_exec, others);
    drop(frozen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_a_wrong_token_is_401() {
    podgate_devcluster::install_crypto_provider();
    let env = start_demo().await;
    for token in ["", "not-a-podgate-token"] {
        let r = get(&env, "/clusters/dev-east/api/v1/pods", token, &[]).await;
        let s = assert_status(r.code, &r.body, 401);
        assert_eq!(s["reason"], "Unauthorized", "{token:?}: {}", r.body);
        let (code, body) = raw_ws(&env, token, ECHO_EXEC, V5, &[])
            .await
            .expect_err("no session without a valid token");
        assert_status(code, &body, 401);
    }
    // The devcluster's own tokens mean nothing to the gateway.
    let dc_admin = env.demo.clusters[0]
        .token("admin")
        .expect("devcluster admin token")
        .to_string();
    let r = get(&env, "/clusters/dev-east/api/v1/pods", &dc_admin, &[]).await;
    assert_status(r.code, &r.body, 401);
    for k in kubectls() {
        let out = kubectl(
            &env,
            &k,
            "not-a-podgate-token",
            "dev-east",
            &["get", "pods"],
            b"",
        )
        .await;
        assert_ne!(out.code, 0, "{}", k.display());
        assert!(
            out.stderr.contains("Unauthorized") || out.stderr.contains("provide credentials"),
            "{}: {}",
            k.display(),
            out.stderr
        );
    }
}

/// A client cannot choose its identity: `Impersonate-*` headers it sends never reach the
/// cluster, which sees the authenticated user only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_impersonation_headers_are_not_forwarded() {
    podgate_devcluster::install_crypto_provider();
    let env = start_demo().await;
    let masquerade = [
        ("Impersonate-User", "admin"),
        ("Impersonate-Group", "system:masters"),
    ];
    let exec =
        "/clusters/dev-east/api/v1/namespaces/default/pods/shell-0/exec?command=true&stdout=true";
    let denied = r#"pods "shell-0" is forbidden: User "bob" cannot get resource "pods/exec" in API group "" in the namespace "default""#;

    let (code, body) = raw_ws(&env, BOB, exec, V5, &masquerade)
        .await
        .expect_err("bob gets no session by asking to be admin");
    let s = assert_status(code, &body, 403);
    assert_eq!(s["reason"], "Forbidden", "{body}");
    assert_eq!(s["message"], denied, "{body}");

    // A plain request through the proxy: the same answer, for bob.
    let lines: Vec<String> = masquerade
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let r = get(&env, exec, BOB, &lines).await;
    let s = assert_status(r.code, &r.body, 403);
    assert_eq!(s["message"], denied, "{}", r.body);

    // The same request as admin is allowed, so the 403 above was about who asked.
    let (mut ws, _) = raw_ws(&env, ADMIN, ECHO_EXEC, V5, &[])
        .await
        .expect("admin may exec");
    echo_round_trip(&mut ws, b"admin").await;
}

/// Every refusal the gateway itself makes is a `metav1.Status` with its HTTP code in `code`
/// and a JSON content type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gateway_refusal_is_a_status_json_with_its_code() {
    podgate_devcluster::install_crypto_provider();
    let env = start_demo().await;
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
    let env = start_with(|t| t.limits.per_user = 1).await;
    let gw = env.gateway().clone();
    let (mut first, _) = raw_ws(&env, ADMIN, ECHO_EXEC, V5, &[])
        .await
        .expect("the first session");
    echo_round_trip(&mut first, b"one").await;
    assert_eq!(gw.limits.active(), 1);

    let (code, body) = raw_ws(&env, ADMIN, ECHO_EXEC, V5, &[])
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
    let origin = format!("https://{}", env.addr());
    let (mut browser, _) = raw_ws(&env, ADMIN, ECHO_EXEC, V5, &[("Origin", &origin)])
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
    let k = std::path::PathBuf::from("/usr/bin/kubectl");
    let out = kubectl(
        &env,
        &k,
        ADMIN,
        "dev-east",
        &["exec", "shell-0", "--", "true"],
        b"",
    )
    .await;
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains(r#"user "admin" already has 1 open sessions"#),
        "{}",
        out.stderr
    );

    // Another user is not limited by admin's sessions.
    let alice_exec = "/clusters/dev-east/api/v1/namespaces/default/pods/shell-0/exec?command=cat&stdin=true&stdout=true";
    let (mut alice, _) = raw_ws(&env, ALICE, alice_exec, V5, &[])
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
    let (mut again, _) = raw_ws(&env, ADMIN, ECHO_EXEC, V5, &[])
        .await
        .expect("admin's slot came back");
    echo_round_trip(&mut again, b"two").await;
}
