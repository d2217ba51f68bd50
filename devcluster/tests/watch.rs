//! Pod watches as kube-apiserver serves them, judged by kube-rs: events after a list's
//! resourceVersion (ADDED, MODIFIED, DELETED), the initial state when none is given, selectors
//! and namespaces filtering events, `410 Expired` for a resourceVersion older than the
//! store's history, and kube-runtime's watcher (list, then watch) following changes.

use futures_util::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use podgate_devcluster::topology::{Generate, PodSpec};
use podgate_testkit::devcluster::start;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

fn spec(name: &str, app: &str) -> PodSpec {
    let mut p = Generate {
        count: 1,
        name: "x-{i}".into(),
        labels: [("app".to_string(), app.to_string())].into(),
        annotations: Default::default(),
        owner: None,
        nodes: Vec::new(),
        containers: Vec::new(),
        statuses: Vec::new(),
    }
    .pod(0);
    p.name = name.into();
    p
}

/// The next event of `events` within [`LIMIT`], as `(type, namespace/name)`.
async fn next(
    events: &mut (impl futures_util::Stream<Item = Result<WatchEvent<Pod>, kube::Error>> + Unpin),
) -> (String, String) {
    let ev = tokio::time::timeout(LIMIT, events.next())
        .await
        .expect("an event in time")
        .expect("the watch is open")
        .expect("a valid event");
    let name = |p: &Pod| {
        format!(
            "{}/{}",
            p.metadata.namespace.as_deref().unwrap_or(""),
            p.metadata.name.as_deref().unwrap_or("")
        )
    };
    match ev {
        WatchEvent::Added(p) => ("ADDED".into(), name(&p)),
        WatchEvent::Modified(p) => ("MODIFIED".into(), name(&p)),
        WatchEvent::Deleted(p) => ("DELETED".into(), name(&p)),
        WatchEvent::Bookmark(_) => ("BOOKMARK".into(), String::new()),
        WatchEvent::Error(s) => (format!("ERROR {} {}", s.code, s.reason), s.message),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_from_a_list_see_changes_in_order_filtered_by_selector_and_namespace() {
    let env = start().await;
    let client = env.kube_client("admin").await;
    let all: Api<Pod> = Api::all(client.clone());
    let list = all.list(&ListParams::default()).await.expect("a list");
    let rv = list.metadata.resource_version.expect("a resourceVersion");
    let mut everything = all
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("a watch")
        .boxed();
    let mut labelled = all
        .watch(&WatchParams::default().labels("app=late"), &rv)
        .await
        .expect("a watch")
        .boxed();
    let in_default: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut namespaced = in_default
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("a watch")
        .boxed();
    let ns = env
        .cluster
        .topology()
        .namespaces
        .iter()
        .map(|n| n.name.clone())
        .find(|n| n != "default")
        .expect("a second namespace");
    env.cluster
        .create_pod(&ns, spec("other-0", "other"))
        .expect("created");
    env.cluster
        .create_pod("default", spec("late-0", "late"))
        .expect("created");
    assert!(env.cluster.delete_pod("default", "late-0"));
    assert!(!env.cluster.delete_pod("default", "late-0"));
    assert_eq!(
        env.cluster.create_pod("nowhere", spec("x", "x")),
        Err("namespaces \"nowhere\" not found".into())
    );
    assert_eq!(
        next(&mut everything).await,
        ("ADDED".into(), format!("{ns}/other-0"))
    );
    assert_eq!(
        next(&mut everything).await,
        ("ADDED".into(), "default/late-0".into())
    );
    assert_eq!(
        next(&mut everything).await,
        ("DELETED".into(), "default/late-0".into())
    );
    assert_eq!(next(&mut labelled).await.1, "default/late-0");
    assert_eq!(next(&mut labelled).await.0, "DELETED");
    assert_eq!(next(&mut namespaced).await.1, "default/late-0");
    // A watch without a resourceVersion starts with the state as it is.
    let mut fresh = all
        .watch(&WatchParams::default().labels("app=other"), "0")
        .await
        .expect("a watch")
        .boxed();
    assert_eq!(
        next(&mut fresh).await,
        ("ADDED".into(), format!("{ns}/other-0"))
    );
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_version_older_than_the_history_is_410_expired() {
    let env = start().await;
    let client = env.kube_client("admin").await;
    let all: Api<Pod> = Api::all(client);
    let rv = all
        .list(&ListParams::default().limit(1))
        .await
        .expect("a list")
        .metadata
        .resource_version
        .expect("a resourceVersion");
    for i in 0..=podgate_devcluster::store::HISTORY {
        env.cluster
            .create_pod("default", spec(&format!("churn-{i}"), "churn"))
            .expect("created");
    }
    let mut old = all
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("the watch answers")
        .boxed();
    let (kind, message) = next(&mut old).await;
    assert_eq!(kind, "ERROR 410 Expired");
    assert!(
        message.starts_with("too old resource version: "),
        "{message}"
    );
    // The stream ends after the error, as kube-apiserver's does.
    let end = tokio::time::timeout(LIMIT, old.next())
        .await
        .expect("it ends");
    assert!(end.is_none());
    let bad = all.watch(&WatchParams::default(), "not-a-number").await;
    let first = match bad {
        Ok(s) => s.boxed().try_next().await.err().map(|e| e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    assert!(first.is_some_and(|e| e.contains("invalid resource version")));
    env.cluster.shutdown().await;
}

type Pods = std::collections::BTreeSet<String>;

fn step(ev: kube::runtime::watcher::Event<Pod>, seen: &mut Pods) {
    use kube::runtime::watcher::Event;
    match ev {
        Event::Apply(p) | Event::InitApply(p) => {
            seen.insert(p.metadata.name.unwrap_or_default());
        }
        Event::Delete(p) => {
            seen.remove(&p.metadata.name.unwrap_or_default());
        }
        Event::Init => seen.clear(),
        Event::InitDone => {}
    }
}

/// Follows `stream` until `done(seen)`, or panics after [`LIMIT`].
async fn follow(
    stream: &mut (
             impl futures_util::Stream<
        Item = Result<kube::runtime::watcher::Event<Pod>, kube::runtime::watcher::Error>,
    > + Unpin
         ),
    seen: &mut Pods,
    what: &str,
    done: impl Fn(&Pods, bool) -> bool,
) {
    let run = async {
        loop {
            let ev = stream.try_next().await.expect("a watcher event");
            let Some(ev) = ev else {
                panic!("the watcher ended")
            };
            let init_done = matches!(ev, kube::runtime::watcher::Event::InitDone);
            step(ev, seen);
            if done(seen, init_done) {
                return;
            }
        }
    };
    tokio::time::timeout(LIMIT, run)
        .await
        .unwrap_or_else(|_| panic!("never {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_runtime_watcher_follows_creations_and_deletions() {
    use kube::runtime::watcher;
    let env = start().await;
    let client = env.kube_client("admin").await;
    let all: Api<Pod> = Api::all(client);
    let mut stream = watcher(all, watcher::Config::default().page_size(2)).boxed();
    let mut seen = Pods::new();
    follow(&mut stream, &mut seen, "listed", |_, init_done| init_done).await;
    assert!(!seen.is_empty());
    env.cluster
        .create_pod("default", spec("followed-0", "f"))
        .expect("created");
    follow(&mut stream, &mut seen, "added", |s, _| {
        s.contains("followed-0")
    })
    .await;
    assert!(env.cluster.delete_pod("default", "followed-0"));
    follow(&mut stream, &mut seen, "deleted", |s, _| {
        !s.contains("followed-0")
    })
    .await;
    env.cluster.shutdown().await;
}
