//! The access policy at the edge: refused before any request reaches the cluster, with a
//! 403 naming the cluster; the cluster list shows only what a person may use.

use podgate_config::AccessPolicy;
use podgate_testkit::gateway::{ADMIN, ALICE, Builder, Cluster, Env};
use podgate_testkit::http::get;

/// A gateway in front of cluster `old` with the edge access `policy`.
async fn start(policy: AccessPolicy) -> Env {
    Builder::new()
        .cluster(Cluster::new("old").access(policy))
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_outside_the_allowed_groups_are_refused_at_the_edge() {
    let policy = AccessPolicy {
        groups: vec!["system:masters".into()],
        ..Default::default()
    };
    let env = start(policy).await;
    let r = get(&env, "/clusters/old/api/v1/namespaces/default/pods", ADMIN).await;
    assert_eq!(r.code, 200, "{}", r.body);
    let r = get(&env, "/clusters/old/api/v1/namespaces/default/pods", ALICE).await;
    assert_eq!(r.code, 403);
    let s = r.json();
    assert_eq!(s["reason"], "Forbidden");
    assert_eq!(
        s["message"],
        "podgate: user \"alice\" may not use cluster \"old\" (not among its allowed users or groups)"
    );
    // The cluster list shows only what each person may use.
    let r = get(&env, "/podgate/clusters", ALICE).await;
    assert_eq!(r.json()["clusters"].as_array().map(Vec::len), Some(0));
    let r = get(&env, "/podgate/clusters", ADMIN).await;
    assert_eq!(r.json()["clusters"][0]["id"], "old");
    let r = get(&env, "/podgate/whoami", ALICE).await;
    assert_eq!(
        r.json(),
        serde_json::json!({"user": "alice", "groups": ["dev"]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_limited_and_nothing_reaches_the_cluster_when_refused() {
    let policy = AccessPolicy {
        namespaces: vec!["load".into()],
        ..Default::default()
    };
    let env = start(policy).await;
    assert_eq!(
        get(&env, "/clusters/old/api/v1", ADMIN).await.code,
        200,
        "discovery stays open"
    );
    assert_eq!(
        get(&env, "/clusters/old/api/v1/namespaces/load/pods", ADMIN)
            .await
            .code,
        200
    );
    let r = get(
        &env,
        "/clusters/old/api/v1/namespaces/default/pods/shell-0",
        ADMIN,
    )
    .await;
    assert_eq!(r.code, 403);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("only in namespaces [\"load\"], not namespace \"default\""),
        "{}",
        r.body
    );
    assert_eq!(
        get(&env, "/clusters/old/api/v1/pods", ADMIN).await.code,
        403,
        "all namespaces at once"
    );

    // An exec outside the namespaces never becomes a session on the cluster.
    let before = env.cluster("old").total_sessions();
    let exec = "/clusters/old/api/v1/namespaces/default/pods/shell-0/exec?command=true";
    assert_eq!(get(&env, exec, ADMIN).await.code, 403);
    assert_eq!(env.cluster("old").total_sessions(), before);
}
