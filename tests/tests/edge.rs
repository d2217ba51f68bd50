//! The edge as the cluster will see it: paths judged as the cluster decodes them (ambiguous
//! ones refused), people refused a whole cluster reading podgate's reason in kubectl, and
//! every refused session attempt on record.

use podgate_config::AccessPolicy;
use podgate_testkit::gateway::{ADMIN, ALICE, BOB, Builder, Cluster};
use podgate_testkit::http::{self, assert_status};
use podgate_testkit::kubectl::{self, DEFAULT};
use podgate_testkit::ws;
use std::path::Path;
use std::time::Duration;

/// `GET path` as `token`, the path sent exactly as written.
async fn raw_get(env: &podgate_testkit::gateway::Env, path: &str, token: &str) -> http::Answer {
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
        env.addr()
    );
    http::send(env, head.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_are_judged_as_the_cluster_decodes_them() {
    // alice may use dev-east only in namespace default.
    let env = Builder::new()
        .cluster(Cluster::new("dev-east").access(AccessPolicy {
            namespaces: vec!["default".into()],
            ..Default::default()
        }))
        .start()
        .await;
    // Read two ways by servers: refused before any policy runs, for everyone.
    for path in [
        "/clusters/dev-east/api/v1/namespaces/default/../shop/pods",
        "/clusters/dev-east/api/v1/namespaces/default/./pods",
        "/clusters/dev-east/openapi/../api/v1/namespaces/shop/pods",
        "/clusters/dev-east/api/v1/namespaces/default%2F..%2Fshop/pods",
        "/clusters/dev-east/api/v1/namespaces/%2e%2e/pods",
        "/clusters/dev-east/api/v1/namespaces/%252e%252e/pods",
        "/clusters/dev-east/api//v1/namespaces/default/pods",
        "/clusters/dev-east/api/v1/namespaces/%zz/pods",
    ] {
        for token in [ALICE, ADMIN] {
            let r = raw_get(&env, path, token).await;
            let s = assert_status(r.code, &r.body, 400);
            assert!(
                s["message"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("the request path"),
                "{path}: {}",
                r.body
            );
        }
    }
    // Percent-encoding is what the cluster decodes: `defaul%74` is default, `sho%70` is shop,
    // `ap%69` is api (no way around the namespace rule through "discovery").
    let ok = raw_get(
        &env,
        "/clusters/dev-east/api/v1/namespaces/defaul%74/pods",
        ALICE,
    )
    .await;
    assert_eq!(ok.code, 200, "{}", ok.body);
    assert_eq!(ok.json()["kind"], "PodList");
    for path in [
        "/clusters/dev-east/api/v1/namespaces/sho%70/pods",
        "/clusters/dev-east/ap%69/v1/namespaces/shop/pods",
    ] {
        let r = raw_get(&env, path, ALICE).await;
        let s = assert_status(r.code, &r.body, 403);
        assert!(
            s["message"]
                .as_str()
                .unwrap_or("")
                .contains("not namespace \"shop\""),
            "{path}: {}",
            r.body
        );
    }
    // An exec path spelled with escapes is still an exec: a session, counted and judged.
    let exec =
        "/clusters/dev-east/api/v1/namespaces/sho%70/pods/web-0/ex%65c?command=true&stdout=true";
    let (code, body) = ws::open(&env, ALICE, exec, &[ws::V5], &[])
        .await
        .expect_err("refused at the edge");
    assert_status(code, &body, 403);
    assert_eq!(
        podgate_testkit::metrics::sample(
            &env.gateway.metrics().render(),
            "podgate_sessions_total",
            &[("cluster", "dev-east"), ("outcome", "denied")]
        ),
        Some(1.0)
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_refused_a_cluster_read_podgates_reason_in_kubectl() {
    if !kubectl::available() {
        return;
    }
    // dev-east admits admin only; bob and alice are refused the whole cluster.
    let env = Builder::new()
        .cluster(Cluster::new("dev-east").access(AccessPolicy {
            users: vec!["admin".into()],
            ..Default::default()
        }))
        .start()
        .await;
    let reason = "podgate: user \"bob\" may not use cluster \"dev-east\"";
    let bob = env.kubectl(Path::new(DEFAULT), BOB, "dev-east");
    for args in [
        &["get", "pods"][..],
        &["get", "pods", "-n", "shop", "web-0"],
        &["exec", "-n", "default", "shell-0", "--", "true"],
        &["logs", "-n", "default", "shell-0"],
        &["get", "deployments"],
    ] {
        let out = bob.run(args, b"").await;
        out.assert_fails_saying(&[reason], &format!("bob: kubectl {args:?}"));
        assert!(
            !out.stderr.contains("(Forbidden): unknown"),
            "kubectl {args:?}: {}",
            out.stderr
        );
    }
    // Their discovery is podgate's own: the built-in groups only, nothing of the cluster's.
    let apis = http::get(&env, "/clusters/dev-east/apis", BOB).await;
    assert_eq!(apis.code, 200, "{}", apis.body);
    let groups: Vec<String> = apis.json()["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(groups, ["apps", "batch"]);
    let version = http::get(&env, "/clusters/dev-east/version", BOB).await;
    assert_status(version.code, &version.body, 403);
    // The admitted person still gets the cluster's real answers.
    let admin = env.kubectl(Path::new(DEFAULT), ADMIN, "dev-east");
    let out = admin.run(&["get", "pods", "-A"], b"").await;
    out.assert_lists_every_namespace("admin");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refused_session_attempt_is_audited_with_its_reason() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let audit = dir.path().join("audit.jsonl");
    let env = Builder::new()
        .cluster(Cluster::new("dev-east"))
        .cluster(Cluster::new("admins-only").access(AccessPolicy {
            users: vec!["admin".into()],
            ..Default::default()
        }))
        .limits(|l| l.per_user = 1)
        .audit_file(&audit)
        .start()
        .await;
    let exec = |cluster: &str, ns: &str, pod: &str| {
        format!(
            "/clusters/{cluster}/api/v1/namespaces/{ns}/pods/{pod}/exec?command=sh&stdin=true&stdout=true"
        )
    };
    let refused = |r: Result<(ws::Ws, Option<String>), (u16, String)>, code: u16| {
        let (got, body) = r.expect_err("refused");
        assert_eq!(got, code, "{body}");
    };
    // The edge policy, the cluster's own 403 and 404, a request that is no valid upgrade.
    refused(
        ws::open(
            &env,
            ALICE,
            &exec("admins-only", "default", "shell-0"),
            &[ws::V5],
            &[],
        )
        .await,
        403,
    );
    refused(
        ws::open(
            &env,
            BOB,
            &exec("dev-east", "default", "shell-0"),
            &[ws::V5],
            &[],
        )
        .await,
        403,
    );
    refused(
        ws::open(
            &env,
            ADMIN,
            &exec("dev-east", "default", "nope"),
            &[ws::V5],
            &[],
        )
        .await,
        404,
    );
    refused(
        ws::open(
            &env,
            ADMIN,
            &exec("dev-east", "default", "shell-0"),
            &["v9.channel.k8s.io"],
            &[],
        )
        .await,
        400,
    );
    // A limit: alice may hold one session.
    let (_open, _) = ws::open(
        &env,
        ALICE,
        &exec("dev-east", "default", "shell-0"),
        &[ws::V5],
        &[],
    )
    .await
    .expect("alice's first session");
    refused(
        ws::open(
            &env,
            ALICE,
            &exec("dev-east", "default", "shell-0"),
            &[ws::V5],
            &[],
        )
        .await,
        429,
    );
    // A question is not a mutation: `kubectl auth can-i` posts a review.
    let review = http::request(
        &env,
        "POST",
        "/clusters/dev-east/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        &[("Authorization", &format!("Bearer {ADMIN}")), ("Content-Type", "application/json")],
        r#"{"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1","spec":{"resourceAttributes":{"verb":"get","resource":"pods"}}}"#,
    )
    .await;
    assert_ne!(review.code, 0);
    // A real mutation is audited.
    let cm = http::request(
        &env,
        "POST",
        "/clusters/dev-east/api/v1/namespaces/default/configmaps",
        &[
            ("Authorization", &format!("Bearer {ADMIN}")),
            ("Content-Type", "application/json"),
        ],
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"audited"},"data":{"a":"b"}}"#,
    )
    .await;
    assert_eq!(cm.code, 201, "{}", cm.body);

    let lines = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each audit line is JSON"))
            .collect()
    };
    assert!(
        podgate_testkit::wait::wait_for(Duration::from_secs(10), || {
            lines()
                .iter()
                .filter(|l| l["event"] == "session_refused")
                .count()
                >= 5
                && lines().iter().any(|l| l["event"] == "request")
        })
        .await,
        "{:#?}",
        lines()
    );
    let all = lines();
    let refusals: Vec<(&str, &str, u64, &str)> = all
        .iter()
        .filter(|l| l["event"] == "session_refused")
        .map(|l| {
            (
                l["user"].as_str().unwrap_or(""),
                l["close_reason"].as_str().unwrap_or(""),
                l["code"].as_u64().unwrap_or(0),
                l["message"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let expect = [
        (
            "alice",
            "denied",
            403,
            "may not use cluster \"admins-only\"",
        ),
        ("bob", "denied", 403, "cannot get resource \"pods/exec\""),
        ("admin", "denied", 404, "pods \"nope\" not found"),
        (
            "admin",
            "bad_request",
            400,
            "none of the offered WebSocket subprotocols",
        ),
        ("alice", "limit_reached", 429, "already has 1 open sessions"),
    ];
    assert_eq!(refusals.len(), expect.len(), "{refusals:#?}");
    for ((user, reason, code, message), got) in expect.iter().zip(&refusals) {
        assert_eq!((got.0, got.1, got.2), (*user, *reason, *code), "{got:?}");
        assert!(got.3.contains(message), "{got:?}");
    }
    // Each names what was tried.
    for l in all.iter().filter(|l| l["event"] == "session_refused") {
        assert_eq!(l["pod"].as_str().map(|p| !p.is_empty()), Some(true), "{l}");
        assert_eq!(l["command"], serde_json::json!(["sh"]), "{l}");
    }
    let requests: Vec<&str> = all
        .iter()
        .filter(|l| l["event"] == "request")
        .filter_map(|l| l["path"].as_str())
        .collect();
    assert_eq!(
        requests,
        ["/api/v1/namespaces/default/configmaps"],
        "reviews are not mutations"
    );
    env.shutdown().await;
}
