//! Self reviews agree with the edge: where the cluster's `access.namespaces` would refuse
//! what a `SelfSubjectAccessReview` or `SelfSubjectRulesReview` asks about, podgate answers
//! it (no, with its reason) without asking the cluster; elsewhere the cluster answers. Real
//! kubectl (protobuf bodies), and raw JSON ones.

use podgate_config::AccessPolicy;
use podgate_testkit::gateway::{ALICE, Builder, Cluster, Env};
use podgate_testkit::http;
use podgate_testkit::kubectl::DEFAULT;
use podgate_testkit::metrics::sample;
use std::path::Path;

/// Reviews the cluster answered (`201 Created`; health probes and discovery are `200`).
fn reviews_upstream(env: &Env) -> f64 {
    sample(
        &env.gateway.metrics().render(),
        "podgate_upstream_requests_total",
        &[("cluster", "default-only"), ("code", "201")],
    )
    .unwrap_or(0.0)
}

async fn restricted() -> Env {
    Builder::new()
        .cluster(Cluster::new("default-only").access(AccessPolicy {
            namespaces: vec!["default".into()],
            ..Default::default()
        }))
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_can_i_agrees_with_the_edge() {
    if !podgate_testkit::kubectl::available() {
        return;
    }
    let env = restricted().await;
    let k = || env.kubectl(Path::new(DEFAULT), ALICE, "default-only");
    let can_i = |args: &'static [&'static str]| async move {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        k().run(&all, b"").await
    };

    // Outside `access`: podgate's no (the cluster itself would say yes), the cluster not asked.
    let before = reviews_upstream(&env);
    let no = can_i(&["get", "pods", "-n", "shop"]).await;
    assert_eq!(no.code, 1, "{}\n{}", no.text(), no.stderr);
    let text = no.text();
    assert!(text.starts_with("no - podgate: "), "{text}");
    assert!(
        text.contains("only in namespaces [\"default\"], not namespace \"shop\""),
        "{text}"
    );
    let all = can_i(&["list", "pods", "-A"]).await;
    assert_eq!(all.code, 1, "{}\n{}", all.text(), all.stderr);
    assert!(
        all.text().contains("not cluster-wide \"pods\""),
        "{}",
        all.text()
    );
    let list = can_i(&["--list", "-n", "shop"]).await;
    // kubectl prints the header alone, and podgate's reason as the list's evaluation error.
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(list.text().lines().count(), 1, "{}", list.text());
    assert!(list.text().starts_with("Resources"), "{}", list.text());
    assert!(
        list.stderr
            .starts_with("Warning: the list may be incomplete: podgate: cluster \"default-only\""),
        "{}",
        list.stderr
    );
    assert_eq!(
        reviews_upstream(&env),
        before,
        "no review reached the cluster"
    );

    // Inside: the cluster's own answers, one request each.
    let yes = can_i(&["get", "pods", "-n", "default"]).await;
    assert_eq!((yes.code, yes.text().trim()), (0, "yes"), "{}", yes.stderr);
    assert_eq!(reviews_upstream(&env), before + 1.0);
    let exec = can_i(&["create", "pods", "--subresource=exec", "-n", "default"]).await;
    assert_eq!(exec.text().trim(), "yes", "{}", exec.stderr);
    let list = can_i(&["--list", "-n", "default"]).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(list.text().contains("pods/exec"), "{}", list.text());
    assert_eq!(reviews_upstream(&env), before + 3.0);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_reviews_and_bad_bodies() {
    let env = restricted().await;
    let path = "/clusters/default-only/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let bearer = format!("Bearer {ALICE}");
    let post = |body: String, content_type: &'static str| {
        let (env, bearer) = (&env, bearer.clone());
        async move {
            let headers = [
                ("Authorization", bearer.as_str()),
                ("Content-Type", content_type),
                ("Accept", "application/json"),
            ];
            http::request(env, "POST", path, &headers, &body).await
        }
    };
    let review = |ns: &str| {
        format!(
            r#"{{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{{"resourceAttributes":{{"namespace":"{ns}","verb":"get","resource":"pods"}}}}}}"#
        )
    };
    let no = post(review("shop"), "application/json").await;
    assert_eq!(no.code, 201, "{}", no.body);
    let v: serde_json::Value = serde_json::from_str(&no.body).expect("JSON");
    assert_eq!(v["kind"], "SelfSubjectAccessReview");
    assert_eq!(v["status"]["allowed"], false);
    assert!(
        v["status"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("podgate: ")),
        "{v}"
    );
    assert_eq!(v["spec"]["resourceAttributes"]["namespace"], "shop");
    let yes = post(review("default"), "application/json").await;
    assert_eq!(yes.code, 201, "{}", yes.body);
    let v: serde_json::Value = serde_json::from_str(&yes.body).expect("JSON");
    assert_eq!(v["status"]["allowed"], true, "{v}");

    let bad = post("not a review".into(), "application/json").await;
    assert_eq!(bad.code, 400, "{}", bad.body);
    assert!(bad.body.contains("\"kind\":\"Status\""), "{}", bad.body);
    let bad = post(
        "k8s\0\u{12}\u{7f}".into(),
        "application/vnd.kubernetes.protobuf",
    )
    .await;
    assert_eq!(bad.code, 400, "{}", bad.body);
    let big = post(
        format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024)),
        "application/json",
    )
    .await;
    assert_eq!(big.code, 413, "{}", big.body);
    assert!(big.body.contains("RequestEntityTooLarge"), "{}", big.body);
    env.shutdown().await;
}
