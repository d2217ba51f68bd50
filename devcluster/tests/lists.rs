//! Real kubectl judges what a pod picker over thousands of pods needs: label and field
//! selectors, `--chunk-size` paging (`limit`/`continue`) across namespaces, generated pods
//! with owners, nodes and restarts, and `logs --previous` / `--timestamps`.

use podgate_devcluster::Topology;
use podgate_testkit::devcluster::{Env, start_with};
use podgate_testkit::kubectl::{self, Output};
use std::collections::BTreeSet;
use std::path::Path;

const FLEET: &str = r#"
namespaces:
  - name: fleet-a
    generate:
      - count: 7
        name: "web-{i}"
        labels: {app: web, shard: "s{i}"}
        owner: {kind: ReplicaSet, name: web-5d8f9}
        nodes: [node-a, node-b]
        # web-1 and web-4 Pending; web-2 and web-5 restarted twice.
        statuses: [{}, {phase: Pending}, {restarts: 2}]
  - name: fleet-b
    pods:
      - name: db-0
        labels: {app: db}
        containers: [{name: db, runtime: "builtin:echo"}]
    generate:
      - count: 5
        name: "web-{i}"
        labels: {app: web}
        owner: {kind: StatefulSet, name: web}
  - name: empty
users:
  - name: admin
    token: lists-admin-token
    groups: [system:masters]
"#;

async fn fleet() -> Env {
    start_with(Topology::parse("fleet.yaml", FLEET).expect("the fleet topology parses")).await
}

/// `(namespace, name)` of every row of `kubectl get pods -A` (a header first).
fn rows(out: &Output) -> Vec<(String, String)> {
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = out.text();
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    assert!(header.starts_with("NAMESPACE"), "{text}");
    lines
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (c[0].to_string(), c[1].to_string())
        })
        .collect()
}

fn pods(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_filter_across_namespaces() {
    if !kubectl::available() {
        return;
    }
    let env = fleet().await;
    let k = env.kubectl(Path::new(kubectl::DEFAULT));
    let out = k
        .run(
            &[
                "get",
                "pods",
                "-A",
                "-l",
                "app=web",
                "--field-selector",
                "status.phase=Running",
            ],
            b"",
        )
        .await;
    let want: Vec<(&str, &str)> = ["web-0", "web-2", "web-3", "web-5", "web-6"]
        .iter()
        .map(|n| ("fleet-a", *n))
        .chain(
            ["web-0", "web-1", "web-2", "web-3", "web-4"]
                .iter()
                .map(|n| ("fleet-b", *n)),
        )
        .collect();
    assert_eq!(rows(&out), pods(&want));
    // Set-based selectors, a negated field, and a namespace.
    let out = k
        .run(
            &[
                "get",
                "pods",
                "-A",
                "-l",
                "app in (web,db),shard notin (s0,s1,s2,s3,s4,s5)",
                "--field-selector",
                "spec.nodeName!=node-b,metadata.namespace=fleet-a",
            ],
            b"",
        )
        .await;
    assert_eq!(rows(&out), pods(&[("fleet-a", "web-6")]));
    let out = k
        .run(
            &[
                "get",
                "pods",
                "-n",
                "fleet-b",
                "-l",
                "!shard,app",
                "-o",
                "name",
            ],
            b"",
        )
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.text(),
        "pod/db-0\npod/web-0\npod/web-1\npod/web-2\npod/web-3\npod/web-4\n"
    );
    // Namespaces select too.
    let out = k
        .run(
            &[
                "get",
                "ns",
                "--field-selector",
                "metadata.name=empty",
                "-o",
                "name",
            ],
            b"",
        )
        .await;
    assert_eq!(out.text(), "namespace/empty\n", "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_selectors_are_refused_with_kubes_words() {
    if !kubectl::available() {
        return;
    }
    let env = fleet().await;
    let k = env.kubectl(Path::new(kubectl::DEFAULT));
    let out = k.run(&["get", "pods", "-A", "-l", "app in"], b"").await;
    out.assert_fails_saying(
        &["unable to parse requirement: found '' expected: '('"],
        "an unfinished set",
    );
    assert!(out.stderr.contains("BadRequest"), "{}", out.stderr);
    let out = k
        .run(
            &["get", "pods", "-A", "--field-selector", "spec.image=x"],
            b"",
        )
        .await;
    out.assert_fails_saying(
        &["field label not supported: spec.image"],
        "an unknown field",
    );
    let out = k
        .run(
            &["get", "pods", "-A", "--field-selector", "status.phase"],
            b"",
        )
        .await;
    out.assert_fails_saying(&["can't understand 'status.phase'"], "no operator");
    let out = k
        .run(
            &["get", "--raw", "/api/v1/pods?limit=1&continue=garbage"],
            b"",
        )
        .await;
    out.assert_fails_saying(&["invalid continue token"], "a forged token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_lists_return_every_pod_once() {
    if !kubectl::available() {
        return;
    }
    let env = fleet().await;
    let mut all: Vec<(String, String)> = (0..7)
        .map(|i| ("fleet-a".to_string(), format!("web-{i}")))
        .chain(std::iter::once(("fleet-b".to_string(), "db-0".to_string())))
        .chain((0..5).map(|i| ("fleet-b".to_string(), format!("web-{i}"))))
        .collect();
    all.sort();
    for bin in kubectl::binaries() {
        let k = env.kubectl(&bin);
        let l = bin.display().to_string();
        let out = k
            .run(&["get", "pods", "-A", "--chunk-size=2", "-v=6"], b"")
            .await;
        let got = rows(&out);
        let unique: BTreeSet<_> = got.iter().cloned().collect();
        assert_eq!(got.len(), unique.len(), "{l}: a pod twice: {got:?}");
        assert_eq!(got, all, "{l}");
        // Seven pages of two: one first request, six continuations.
        let continued = out
            .stderr
            .lines()
            .filter(|x| x.contains("/api/v1/pods?") && x.contains("continue="))
            .count();
        assert_eq!(continued, 6, "{l}: {}", out.stderr);
        let out = k.run(&["get", "pods", "-A", "--chunk-size=0"], b"").await;
        assert_eq!(rows(&out), all, "{l}");
    }
    // The wire: a page, its token, and how many remain.
    let k = env.kubectl(Path::new(kubectl::DEFAULT));
    let page = |q: &str| {
        let k = k.clone();
        let q = q.to_string();
        async move {
            let out = k.run(&["get", "--raw", &q], b"").await;
            assert_eq!(out.code, 0, "{q}: {}", out.stderr);
            serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("a PodList")
        }
    };
    let first = page("/api/v1/namespaces/fleet-b/pods?limit=4").await;
    assert_eq!(first["metadata"]["remainingItemCount"], 2);
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(names(&first), ["db-0", "web-0", "web-1", "web-2"]);
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("a continue token");
    let second = page(&format!(
        "/api/v1/namespaces/fleet-b/pods?limit=4&continue={token}"
    ))
    .await;
    assert_eq!(names(&second), ["web-3", "web-4"]);
    assert!(second["metadata"].get("continue").is_none(), "{second}");
    assert!(second["metadata"].get("remainingItemCount").is_none());
    // With a selector, the remaining count is unknown (as kube-apiserver says nothing).
    let sel = page("/api/v1/pods?limit=2&labelSelector=app%3Dweb").await;
    assert!(sel["metadata"]["continue"].is_string());
    assert!(sel["metadata"].get("remainingItemCount").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_pods_carry_owner_node_and_status() {
    if !kubectl::available() {
        return;
    }
    let env = fleet().await;
    let k = env.kubectl(Path::new(kubectl::DEFAULT));
    let out = k
        .run(&["get", "pod", "-n", "fleet-a", "web-2", "-o", "json"], b"")
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let pod: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a pod");
    let owner = &pod["metadata"]["ownerReferences"][0];
    assert_eq!(
        (
            &owner["kind"],
            &owner["name"],
            &owner["apiVersion"],
            &owner["controller"]
        ),
        (
            &"ReplicaSet".into(),
            &"web-5d8f9".into(),
            &"apps/v1".into(),
            &true.into()
        )
    );
    assert_eq!(pod["metadata"]["labels"]["shard"], "s2");
    assert_eq!(pod["spec"]["nodeName"], "node-a");
    assert_eq!(pod["status"]["phase"], "Running");
    assert_eq!(pod["status"]["containerStatuses"][0]["restartCount"], 2);
    assert_eq!(
        pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"],
        1
    );
    let out = k
        .run(&["get", "pods", "-n", "fleet-a", "-o", "wide"], b"")
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = out.text();
    let row = |name: &str| -> Vec<String> {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in {text}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let web1 = row("web-1");
    assert_eq!(&web1[1..3], ["0/1", "ContainerCreating"], "{text}");
    let web2 = row("web-2");
    assert_eq!(&web2[1..4], ["1/1", "Running", "2"], "{text}");
    assert!(web2.contains(&"node-a".to_string()), "{text}");
    assert!(row("web-3").contains(&"node-b".to_string()), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_and_timestamped_logs() {
    if !kubectl::available() {
        return;
    }
    let env = fleet().await;
    for bin in kubectl::binaries() {
        let k = env.kubectl(&bin);
        let l = bin.display().to_string();
        let out = k
            .run(&["logs", "-n", "fleet-a", "web-2", "--previous"], b"")
            .await;
        assert_eq!(out.code, 0, "{l}: {}", out.stderr);
        assert_eq!(
            out.text(),
            "devcluster web-2/main (previous): log line 1\n\
             devcluster web-2/main (previous): log line 2\n\
             devcluster web-2/main (previous): log line 3\n\
             devcluster web-2/main (previous): exiting with code 1\n",
            "{l}"
        );
        let out = k
            .run(
                &[
                    "logs",
                    "-n",
                    "fleet-a",
                    "web-2",
                    "--previous",
                    "--tail=1",
                    "-f",
                ],
                b"",
            )
            .await;
        assert_eq!(
            out.text(),
            "devcluster web-2/main (previous): exiting with code 1\n",
            "{l}: a previous instance's log ends even when followed; {}",
            out.stderr
        );
        let out = k
            .run(&["logs", "-n", "fleet-a", "web-0", "--previous"], b"")
            .await;
        out.assert_fails_saying(
            &[r#"previous terminated container "main" in pod "web-0" not found"#],
            &l,
        );
        let out = k.run(&["logs", "-n", "fleet-a", "web-1"], b"").await;
        out.assert_fails_saying(
            &[r#"container "main" in pod "web-1" is waiting to start: ContainerCreating"#],
            &l,
        );
        let out = k
            .run(&["logs", "-n", "fleet-a", "web-3", "--timestamps"], b"")
            .await;
        assert_eq!(out.code, 0, "{l}: {}", out.stderr);
        let text = out.text();
        let mut times = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let (at, rest) = line.split_once(' ').unwrap_or(("", line));
            let t: k8s_openapi::jiff::Timestamp = at
                .parse()
                .unwrap_or_else(|e| panic!("{l}: {at:?} is not RFC 3339: {e}"));
            assert!(at.ends_with('Z') && at.contains('.'), "{l}: {line}");
            assert_eq!(rest, format!("devcluster web-3/main: log line {}", n + 1));
            times.push(t);
        }
        assert_eq!(times.len(), 3, "{l}: {text}");
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{l}: {text}");
        // The pod started at the cluster's start: its lines are within the last hour.
        let out = k
            .run(
                &[
                    "logs",
                    "-n",
                    "fleet-a",
                    "web-3",
                    "--since=1h",
                    "--timestamps",
                ],
                b"",
            )
            .await;
        assert_eq!(out.text().lines().count(), 3, "{l}: {}", out.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_send_only_what_the_selectors_select() {
    if !kubectl::available() {
        return;
    }
    let env = fleet().await;
    let k = env.kubectl(Path::new(kubectl::DEFAULT));
    // timeoutSeconds bounds the watch on the server's side: it ends by itself.
    let out = k
        .run(
            &[
                "get",
                "--raw",
                "/api/v1/pods?watch=true&labelSelector=app%3Dweb&fieldSelector=status.phase%3DPending&timeoutSeconds=1",
            ],
            b"",
        )
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let names: Vec<String> = out
        .text()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a watch event");
            assert_eq!(v["type"], "ADDED");
            format!(
                "{}/{}",
                v["object"]["metadata"]["namespace"].as_str().unwrap_or(""),
                v["object"]["metadata"]["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(names, ["fleet-a/web-1", "fleet-a/web-4"]);
}
