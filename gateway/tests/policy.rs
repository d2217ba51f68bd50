//! The access policy at the edge: refused before any request reaches the cluster, with a
//! 403 naming the cluster; the cluster list shows only what a person may use.

mod common;
use common::*;
use podgate_config::AccessPolicy;

fn body_json(body: &str) -> serde_json::Value {
    // Chunked bodies carry a size line first; the JSON is the line that starts with '{'.
    let json = body.lines().find(|l| l.starts_with('{')).unwrap_or(body);
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_outside_the_allowed_groups_are_refused_at_the_edge() {
    let policy = AccessPolicy {
        groups: vec!["system:masters".into()],
        ..Default::default()
    };
    let env = start_full(&[], policy, |_| {}).await;
    let (code, body) = get(&env, TOKEN, "/clusters/old/api/v1/namespaces/default/pods").await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = get(&env, ALICE, "/clusters/old/api/v1/namespaces/default/pods").await;
    assert_eq!(code, 403);
    let s = body_json(&body);
    assert_eq!(s["reason"], "Forbidden");
    assert_eq!(
        s["message"],
        "podgate: user \"alice\" may not use cluster \"old\" (not among its allowed users or groups)"
    );
    // The cluster list shows only what each person may use.
    let (_, body) = get(&env, ALICE, "/podgate/clusters").await;
    assert_eq!(
        body_json(&body)["clusters"].as_array().map(Vec::len),
        Some(0)
    );
    let (_, body) = get(&env, TOKEN, "/podgate/clusters").await;
    assert_eq!(body_json(&body)["clusters"][0]["id"], "old");
    let (_, body) = get(&env, ALICE, "/podgate/whoami").await;
    assert_eq!(
        body_json(&body),
        serde_json::json!({"user": "alice", "groups": ["dev"]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_limited_and_nothing_reaches_the_cluster_when_refused() {
    let policy = AccessPolicy {
        namespaces: vec!["load".into()],
        ..Default::default()
    };
    let env = start_full(&[], policy, |_| {}).await;
    assert_eq!(
        get(&env, TOKEN, "/clusters/old/api/v1").await.0,
        200,
        "discovery stays open"
    );
    assert_eq!(
        get(&env, TOKEN, "/clusters/old/api/v1/namespaces/load/pods")
            .await
            .0,
        200
    );
    let (code, body) = get(
        &env,
        TOKEN,
        "/clusters/old/api/v1/namespaces/default/pods/shell-0",
    )
    .await;
    assert_eq!(code, 403);
    assert!(
        body_json(&body)["message"]
            .as_str()
            .unwrap_or("")
            .contains("only in namespaces [\"load\"], not namespace \"default\""),
        "{body}"
    );
    assert_eq!(
        get(&env, TOKEN, "/clusters/old/api/v1/pods").await.0,
        403,
        "all namespaces at once"
    );

    // An exec outside the namespaces never becomes a session on the cluster.
    let before = env.cluster.total_sessions();
    let (code, _) = get(
        &env,
        TOKEN,
        "/clusters/old/api/v1/namespaces/default/pods/shell-0/exec?command=true",
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(env.cluster.total_sessions(), before);
}
