//! The pod search (`/podgate/pods/search`) through a real gateway in front of devclusters
//! with thousands of generated pods: across namespaces and clusters, only what the cluster
//! lets each person list, kept current by the watch, bounded, closed when idle, refused when
//! it names too many clusters, and never asking a cluster it does not name.

use podgate_devcluster::Topology;
use podgate_testkit::gateway::{ADMIN, Builder, Cluster, Env};
use podgate_testkit::http;
use podgate_testkit::metrics::sample;
use podgate_testkit::pod_fleet::{CAROL, extra_pod, fleet, people};
use podgate_testkit::wait::{wait_for, wait_until};
use serde_json::Value;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const EVERY: Duration = Duration::from_millis(50);

fn builder(clusters: &[(&str, Topology)]) -> Builder {
    clusters
        .iter()
        .fold(Builder::new().tokens(&people()), |b, (id, t)| {
            b.cluster(Cluster::new(id).topology(t.clone()))
        })
}

fn query(q: &str, clusters: &[&str], limit: usize) -> String {
    let mut s = format!(
        "/podgate/pods/search?limit={limit}&q={}",
        form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    );
    for c in clusters {
        s.push_str("&cluster=");
        s.push_str(c);
    }
    s
}

async fn search(env: &Env, token: &str, q: &str, clusters: &[&str], limit: usize) -> Value {
    let a = http::get(env, &query(q, clusters, limit), token).await;
    assert_eq!(a.code, 200, "{} {}", a.head, a.body);
    a.json()
}

/// Searches until every named cluster is `ready`; the last answer.
async fn ready(env: &Env, token: &str, q: &str, clusters: &[&str], limit: usize) -> Value {
    let mut last = Value::Null;
    let ok = wait_until(LIMIT, EVERY, async || {
        last = search(env, token, q, clusters, limit).await;
        last["clusters"]
            .as_array()
            .is_some_and(|cs| cs.iter().all(|c| c["state"] == "ready"))
    })
    .await;
    assert!(ok, "never ready: {last}");
    last
}

fn pods(answer: &Value) -> Vec<(String, String, String)> {
    answer["results"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                    (s("cluster"), s("namespace"), s("pod"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn metric(env: &Env, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    sample(&env.gateway.metrics().render(), name, labels)
}

/// Every `podgate_upstream_requests_total{cluster}` sample, summed over codes.
fn upstream_requests(env: &Env, cluster: &str) -> f64 {
    let text = env.gateway.metrics().render();
    text.lines()
        .filter(|l| {
            l.starts_with("podgate_upstream_requests_total{")
                && l.contains(&format!("cluster=\"{cluster}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn finds_pods_across_namespaces_and_clusters_by_name_owner_label_and_node() {
    let env = builder(&[("east", fleet(2500, 1500)), ("west", fleet(1000, 0))])
        .start()
        .await;
    let both = ["east", "west"];
    let a = ready(&env, ADMIN, "api-6b7c9-17", &both, 50).await;
    let found = pods(&a);
    for c in both {
        assert!(
            found.contains(&(c.into(), "team-a".into(), "api-6b7c9-17".into())),
            "{c}: {found:?}"
        );
    }
    // The exact name first (either cluster), then names that start with it.
    assert_eq!(found[0].2, "api-6b7c9-17", "{found:?}");
    let first = &a["results"][0];
    assert_eq!(first["owner"]["kind"], "Deployment", "{first}");
    assert_eq!(first["owner"]["name"], "api");
    assert_eq!(first["phase"], "Running");
    assert_eq!(first["ready"], "1/1");
    assert_eq!(first["restarts"], 0);
    assert!(first["node"].as_str().unwrap_or("").starts_with("node-"));
    assert!(first["age_seconds"].is_i64(), "{first}");
    // 4,000 on east and 1,000 on west, plus the built-in pods: all listed through pages.
    let all = search(&env, ADMIN, "", &both, 1).await;
    assert!(
        all["matched"].as_u64().unwrap_or(0) >= 5000,
        "{}",
        all["clusters"]
    );
    // Owner (the Job), label and node, and several words at once.
    let jobs = search(&env, ADMIN, "nightly", &["east"], 5).await;
    assert_eq!(jobs["matched"], 1500, "{}", jobs["clusters"]);
    let label = search(&env, ADMIN, "app=worker", &both, 5).await;
    assert_eq!(label["matched"], 1500);
    let node = search(&env, ADMIN, "node-2 team-b", &both, 5).await;
    assert_eq!(node["matched"], 500);
    let none = search(&env, ADMIN, "app=worker west-only-nothing", &both, 5).await;
    assert_eq!(none["matched"], 0);
    assert_eq!(metric(&env, "podgate_pod_index_watches", &[]), Some(2.0));
    assert!(metric(&env, "podgate_pod_searches_total", &[("result", "ok")]).unwrap_or(0.0) >= 5.0);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_sees_only_the_namespaces_the_cluster_lets_them_list() {
    let env = builder(&[("east", fleet(300, 200))]).start().await;
    // Admin may list everything: both teams.
    let admin = ready(&env, ADMIN, "", &["east"], 500).await;
    let namespaces: std::collections::BTreeSet<String> =
        pods(&admin).into_iter().map(|p| p.1).collect();
    assert!(namespaces.contains("team-b"), "{namespaces:?}");
    // carol's group may list pods in team-a only: the cluster says so, the gateway's own
    // policy for the cluster is open.
    let carol = ready(&env, CAROL, "", &["east"], 500).await;
    let seen = pods(&carol);
    assert_eq!(carol["matched"], 300, "{}", carol["clusters"]);
    assert!(seen.iter().all(|p| p.1 == "team-a"), "{seen:?}");
    let workers = search(&env, CAROL, "worker", &["east"], 10).await;
    assert_eq!(workers["matched"], 0, "{workers}");
    assert_eq!(workers["clusters"][0]["unchecked_namespaces"], 0);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pods_created_and_deleted_show_up_and_go_through_the_watch() {
    let env = builder(&[("east", fleet(1200, 0))]).start().await;
    let before = ready(&env, ADMIN, "late-arrival", &["east"], 10).await;
    assert_eq!(before["matched"], 0);
    let lists_before = upstream_requests(&env, "east");
    env.cluster("east")
        .create_pod("team-b", extra_pod("late-arrival-0"))
        .expect("the pod is created");
    let mut last = Value::Null;
    let shown = wait_until(LIMIT, EVERY, async || {
        last = search(&env, ADMIN, "late-arrival", &["east"], 10).await;
        pods(&last) == [("east".into(), "team-b".into(), "late-arrival-0".into())]
    })
    .await;
    assert!(shown, "never shown: {last}");
    assert_eq!(last["results"][0]["owner"]["kind"], "StatefulSet");
    assert!(env.cluster("east").delete_pod("team-b", "late-arrival-0"));
    let gone = wait_until(LIMIT, EVERY, async || {
        last = search(&env, ADMIN, "late-arrival", &["east"], 10).await;
        last["matched"] == 0
    })
    .await;
    assert!(gone, "never gone: {last}");
    // Through the watch, not by listing again: no relist, and only the searches' own
    // requests (none: admin may list everything, answered from cache) reached the cluster.
    assert_eq!(
        metric(&env, "podgate_pod_index_relists_total", &[]),
        Some(0.0)
    );
    assert!(
        upstream_requests(&env, "east") - lists_before <= 1.0,
        "the index listed again"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_index_is_bounded_and_says_it_is_truncated() {
    let env = builder(&[("east", fleet(1500, 0))])
        .pod_index(|c| c.max_pods = 400)
        .start()
        .await;
    let a = ready(&env, ADMIN, "", &["east"], 1).await;
    assert_eq!(a["clusters"][0]["truncated"], true, "{a}");
    assert_eq!(a["matched"], 400);
    assert_eq!(
        metric(&env, "podgate_pod_index_pods", &[("cluster", "east")]),
        Some(400.0)
    );
    // More pods arriving do not grow it. Then one it holds goes: once that shows, the
    // watch has applied every change before it (events come in order).
    for i in 0..50 {
        env.cluster("east")
            .create_pod("team-b", extra_pod(&format!("more-{i}")))
            .expect("created");
    }
    let held = pods(&a);
    let (_, ns, name) = held.first().expect("a pod held");
    assert!(env.cluster("east").delete_pod(ns, name));
    let mut last = Value::Null;
    let applied = wait_until(LIMIT, EVERY, async || {
        last = search(&env, ADMIN, "", &["east"], 1).await;
        last["matched"] == 399
    })
    .await;
    assert!(applied, "{last}");
    assert_eq!(last["clusters"][0]["truncated"], true);
    assert_eq!(
        metric(&env, "podgate_pod_index_pods", &[("cluster", "east")]),
        Some(399.0)
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unused_index_is_closed_after_the_idle_timeout() {
    let env = builder(&[("east", fleet(100, 0))])
        .pod_index(|c| c.idle_timeout = podgate_config::Duration::from_millis(400))
        .start()
        .await;
    ready(&env, ADMIN, "api", &["east"], 1).await;
    assert_eq!(metric(&env, "podgate_pod_index_watches", &[]), Some(1.0));
    let closed = wait_for(LIMIT, || {
        metric(&env, "podgate_pod_index_watches", &[]) == Some(0.0)
            && metric(&env, "podgate_pod_index_pods", &[("cluster", "east")]).is_none()
    })
    .await;
    assert!(closed, "{}", env.gateway.metrics().render());
    // And a search opens it again.
    let again = ready(&env, ADMIN, "api-6b7c9-3", &["east"], 1).await;
    assert_eq!(pods(&again)[0].2, "api-6b7c9-3");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn too_many_clusters_or_none_is_a_400_and_clusters_not_named_are_never_asked() {
    let env = builder(&[
        ("east", fleet(200, 0)),
        ("west", fleet(200, 0)),
        ("north", fleet(200, 0)),
    ])
    .pod_index(|c| c.max_clusters_per_search = 2)
    .start()
    .await;
    let refused = http::get(&env, &query("api", &["east", "west", "north"], 10), ADMIN).await;
    let status = http::assert_status(refused.code, &refused.body, 400);
    assert_eq!(status["kind"], "Status");
    assert!(
        status["message"]
            .as_str()
            .unwrap_or("")
            .contains("at most 2"),
        "{status}"
    );
    let none = http::get(&env, "/podgate/pods/search?q=api", ADMIN).await;
    http::assert_status(none.code, &none.body, 400);
    assert_eq!(metric(&env, "podgate_pod_index_watches", &[]), Some(0.0));
    // Only the clusters named are indexed and asked.
    let a = ready(&env, ADMIN, "api", &["east", "west"], 10).await;
    assert_eq!(a["clusters"].as_array().map(Vec::len), Some(2));
    assert!(upstream_requests(&env, "east") > 0.0);
    assert_eq!(upstream_requests(&env, "north"), 0.0);
    assert!(metric(&env, "podgate_pod_index_pods", &[("cluster", "north")]).is_none());
    assert!(
        metric(&env, "podgate_pod_searches_total", &[("result", "refused")]).unwrap_or(0.0) >= 2.0
    );
    // An unknown cluster is reported, not searched.
    let unknown = search(&env, ADMIN, "api", &["nowhere"], 10).await;
    assert_eq!(unknown["clusters"][0]["state"], "error");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broken_watch_resumes_and_lists_again_when_its_version_is_gone() {
    let link = podgate_testkit::link::Link::start().await;
    let env = builder(&[("east", fleet(200, 0))])
        .dial(link.dialer("east"))
        .start()
        .await;
    ready(&env, ADMIN, "churn", &["east"], 1).await;
    assert_eq!(
        metric(&env, "podgate_pod_index_relists_total", &[]),
        Some(0.0)
    );
    // The watch's connection is cut and new ones refused: the index says so, and keeps what
    // it had.
    link.break_new();
    link.cut_reset().await;
    let mut last = Value::Null;
    let broken = wait_until(LIMIT, EVERY, async || {
        last = search(&env, ADMIN, "api-6b7c9-7", &["east"], 5).await;
        last["clusters"][0]["state"] == "error"
    })
    .await;
    assert!(broken, "{last}");
    assert!(last["matched"].as_u64().unwrap_or(0) > 0, "{last}");
    // Meanwhile more changes than the cluster remembers: resuming from the old version is
    // 410, so the index lists again and has them all.
    for i in 0..=podgate_devcluster::store::HISTORY {
        env.cluster("east")
            .create_pod("team-b", extra_pod(&format!("churn-{i}")))
            .expect("created");
    }
    link.restore();
    let relisted = wait_until(LIMIT, EVERY, async || {
        last = search(&env, ADMIN, "churn", &["east"], 1).await;
        last["clusters"][0]["state"] == "ready"
            && last["matched"].as_u64() == Some(podgate_devcluster::store::HISTORY as u64 + 1)
    })
    .await;
    assert!(relisted, "{last}");
    assert_eq!(
        metric(&env, "podgate_pod_index_relists_total", &[]),
        Some(1.0)
    );
    env.shutdown().await;
}
