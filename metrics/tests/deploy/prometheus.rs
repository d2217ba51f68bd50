//! A real Prometheus scrapes a tiny HTTP server serving `Metrics::render()` while a driver runs
//! fake sessions through the API; then every expression of the alert rules and the dashboard
//! goes through Prometheus' HTTP API and must be a valid query that returns data. The scrape
//! config carries the ServiceMonitor's target labels and its metric relabelings, so the
//! dashboard's live-sessions table is checked as it will look in a cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use podgate_metrics::{
    CONTENT_TYPE, Direction, Metrics, Outcome, ReloadResult, SessionLabels, SessionMetrics,
    SessionSeries,
};
use serde_json::{Value, json};

use crate::support;

/// Overall budget for Prometheus to have scraped enough for every query.
const DEADLINE: Duration = Duration::from_secs(40);

/// Prometheus as a child process, killed when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(binary: &Path, target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = dir.path().join("rules.yaml");
        std::fs::write(&rules, crate::rule_groups().to_string()).expect("rules");
        let config = json!({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [rules],
            "scrape_configs": [{
                "job_name": "podgate-admin",
                "static_configs": [{
                    "targets": [target.to_string()],
                    // What the Prometheus Operator attaches to a ServiceMonitor's targets.
                    "labels": {
                        "namespace": "podgate",
                        "pod": "podgate-7d9f8-abcde",
                        "container": "podgate",
                        "service": "podgate-admin",
                        "endpoint": "admin",
                    },
                }],
                "metric_relabel_configs": service_monitor_relabelings(),
            }],
        });
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config.to_string()).expect("config");

        // Prometheus cannot listen on port 0; a port that was free a moment ago may be taken
        // by the time it binds, so try a few.
        for _ in 0..3 {
            let addr: SocketAddr = ([127, 0, 0, 1], support::free_port()).into();
            let mut child = Command::new(binary)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start prometheus");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(15) {
                if let Ok(Some(status)) = child.try_wait() {
                    eprintln!("prometheus exited ({status}) on {addr}, retrying");
                    break;
                }
                if matches!(support::http_get(addr, "/-/ready"), Ok((200, _))) {
                    return Prometheus {
                        child,
                        addr,
                        _dir: dir,
                    };
                }
                thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("prometheus did not become ready");
    }

    fn api(&self, path: &str) -> Value {
        let (status, body) =
            support::http_get(self.addr, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path}: {status}, not JSON ({e}): {body}"));
        v
    }

    /// Runs an instant query; `Err` carries Prometheus' error for an invalid query.
    fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let v = self.api(&format!("/api/v1/query?query={}", support::encode(expr)));
        if v["status"] != "success" {
            return Err(format!("{}: {}", v["errorType"], v["error"]));
        }
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }
}

/// The ServiceMonitor's `metricRelabelings`, in Prometheus' own spelling.
fn service_monitor_relabelings() -> Value {
    let text = support::read(&support::deploy("monitoring/servicemonitor.yaml"));
    let sm: Value = serde_norway::from_str(&text).expect("ServiceMonitor YAML");
    let relabelings = &sm["spec"]["endpoints"][0]["metricRelabelings"];
    fn snake(key: &str) -> String {
        let mut out = String::new();
        for c in key.chars() {
            if c.is_ascii_uppercase() {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }
    Value::Array(
        relabelings
            .as_array()
            .expect("metricRelabelings")
            .iter()
            .map(|r| {
                Value::Object(
                    r.as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (snake(k), v.clone()))
                        .collect(),
                )
            })
            .collect(),
    )
}

/// Scripted load: long-lived sessions (more than the per-session cap), and every 100ms a burst
/// of short sessions, failures, auth failures, upstream requests and reloads. prod is healthy;
/// staging is down, slow and failing, so every alert's condition holds.
struct Driver {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    _live: Vec<SessionMetrics>,
}

/// The long-lived sessions: (id, user, cluster, namespace, pod, container).
const LIVE: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("live-1", "alice", "prod", "shop", "web-0", "app"),
    ("live-2", "bob", "prod", "default", "shell-0", ""),
    ("live-3", "carol", "staging", "load", "echo-0", "main"),
    ("live-4", "dave", "prod", "default", "multi-0", "sidecar"),
    ("live-5", "erin", "prod", "shop", "db-0", "db"),
];
const CAP: usize = 4;

impl Driver {
    fn start(metrics: &Metrics) -> Driver {
        let live = LIVE
            .iter()
            .map(|&(session_id, user, cluster, namespace, pod, container)| {
                let s = metrics.session_started(SessionLabels {
                    session_id,
                    user,
                    cluster,
                    namespace,
                    pod,
                    container,
                });
                s.established(Duration::from_millis(30));
                s
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let m = metrics.clone();
        let thread = thread::spawn(move || {
            let mut n = 0u64;
            while !flag.load(Ordering::SeqCst) {
                tick(&m, n);
                n += 1;
                thread::sleep(Duration::from_millis(100));
            }
        });
        Driver {
            stop,
            thread: Some(thread),
            _live: live,
        }
    }

    /// Adds bytes to the long-lived sessions too, so their series move.
    fn feed(&self) {
        for s in &self._live {
            s.add(Direction::Stdout, 4096);
            s.add(Direction::Stdin, 16);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn tick(m: &Metrics, n: u64) {
    // prod: healthy, fast; sessions end in every ordinary way.
    for (i, outcome) in [
        Outcome::Completed,
        Outcome::ExitNonzero,
        Outcome::ClientClosed,
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("prod-{n}-{i}");
        let s = m.session_started(SessionLabels {
            session_id: &id,
            user: "loadgen",
            cluster: "prod",
            namespace: "load",
            pod: "echo-0",
            container: "main",
        });
        s.established(Duration::from_millis(20 + 10 * i as u64));
        s.add(Direction::Stdin, 64);
        s.add(Direction::Stdout, 8192);
        s.add(Direction::Stderr, 128);
        s.finish(outcome, Duration::from_secs(2 + 30 * i as u64));
        m.upstream_request("prod", Some(200), Duration::from_millis(15));
    }
    // staging: down, slow to set up, failing.
    let id = format!("staging-{n}");
    let s = m.session_started(SessionLabels {
        session_id: &id,
        user: "loadgen",
        cluster: "staging",
        namespace: "load",
        pod: "echo-0",
        container: "main",
    });
    s.established(Duration::from_secs(4));
    s.finish(Outcome::UpstreamError, Duration::from_secs(4));
    m.session_rejected("staging", Outcome::LimitReached);
    m.upstream_request("staging", None, Duration::from_secs(5));
    m.upstream_request("staging", Some(503), Duration::from_millis(900));
    m.set_cluster_up("prod", true);
    m.set_cluster_up("staging", false);

    for _ in 0..20 {
        m.auth_failure("expired");
    }
    m.auth_failure("bad_signature");
    m.tls_handshake_failure();
    m.config_reload(ReloadResult::Success);
    m.config_reload(ReloadResult::Failure);
}

/// Grafana's variables, as the test sets them: every cluster, a rate window of a few scrapes.
fn grafana(expr: &str) -> String {
    let out = expr
        .replace("$__rate_interval", "10s")
        .replace("${cluster}", ".*")
        .replace("$cluster", ".*");
    assert!(!out.contains('$'), "unhandled variable in {expr}");
    out
}

/// `label_values(metric, label)` (the dashboard's variable query) as PromQL.
fn label_values(query: &str) -> String {
    let inner = query
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unsupported variable query {query}"));
    let (metric, label) = inner.split_once(',').expect("label_values(metric, label)");
    format!("count by ({}) ({})", label.trim(), metric.trim())
}

#[test]
fn every_alert_and_dashboard_query_returns_data_from_a_real_prometheus() {
    let Some(binary) = support::tool("prometheus") else {
        return;
    };
    let started = Instant::now();
    let metrics = Metrics::new(
        ["prod", "staging"],
        SessionSeries {
            enabled: true,
            max_sessions: CAP,
        },
    );
    let served = metrics.clone();
    let server = support::Server::start(CONTENT_TYPE, move || served.render());
    let prometheus = Prometheus::start(&binary, server.addr);
    let driver = Driver::start(&metrics);

    // Every query to run: (what, PromQL).
    let dashboard = crate::dashboard();
    let mut queries: Vec<(String, String)> = crate::alerts()
        .into_iter()
        .map(|(name, expr)| (format!("alert {name}"), expr))
        .collect();
    for (panel, ref_id, expr) in crate::dashboard_queries(&dashboard) {
        queries.push((format!("panel {panel:?} {ref_id}"), grafana(&expr)));
    }
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        if var["type"] == "query" {
            let q = var["query"]["query"].as_str().expect("variable query");
            queries.push((format!("variable {}", var["name"]), label_values(q)));
        }
    }

    // Poll until each query has returned data once. Invalid queries fail at once.
    let mut pending: BTreeMap<String, String> = queries.iter().cloned().collect();
    let mut results: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    while !pending.is_empty() && started.elapsed() < DEADLINE {
        driver.feed();
        for (what, expr) in pending.clone() {
            let rows = prometheus
                .query(&expr)
                .unwrap_or_else(|e| panic!("{what} is not a valid query: {e}\n{expr}"));
            if !rows.is_empty() {
                pending.remove(&what);
                results.insert(what, rows);
            }
        }
        thread::sleep(Duration::from_millis(500));
    }
    let targets = prometheus.api("/api/v1/targets");
    assert!(
        pending.is_empty(),
        "no data after {:?} for:\n{}\n\ntargets: {targets}",
        started.elapsed(),
        pending
            .iter()
            .map(|(w, e)| format!("  {w}: {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The data is the data the driver made.
    let labels_of = |what: &str| -> Vec<BTreeMap<String, String>> {
        results[what]
            .iter()
            .map(|r| {
                r["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect()
            })
            .collect()
    };
    let clusters = |what: &str| -> BTreeSet<String> {
        labels_of(what)
            .into_iter()
            .filter_map(|l| l.get("cluster").cloned())
            .collect()
    };
    let staging = BTreeSet::from(["staging".to_string()]);
    assert_eq!(clusters("alert PodgateClusterDown"), staging);
    assert_eq!(clusters("alert PodgateSessionFailureRatioHigh"), staging);
    assert_eq!(clusters("alert PodgateSessionSetupSlow"), staging);

    // The live-sessions table: at most CAP sessions, each with its target's namespace, pod and
    // container (not the gateway pod's, thanks to the ServiceMonitor's relabelings).
    let table = labels_of("panel \"Live sessions\" A");
    assert!(!table.is_empty() && table.len() <= CAP, "{table:?}");
    for row in &table {
        let id = &row["session_id"];
        let &(_, user, cluster, namespace, pod, container) = LIVE
            .iter()
            .find(|l| l.0 == id)
            .unwrap_or_else(|| panic!("unexpected session in the table: {row:?}"));
        assert_eq!(row["user"], user);
        assert_eq!(row["cluster"], cluster);
        assert_eq!(row["namespace"], namespace, "{row:?}");
        assert_eq!(row["pod"], pod, "{row:?}");
        assert_eq!(
            row.get("container").map(String::as_str).unwrap_or(""),
            container,
            "{row:?}"
        );
    }
    // The aggregate series keep the gateway pod's labels (what prometheus-adapter maps for
    // the HorizontalPodAutoscaler).
    let active = prometheus
        .query("podgate_sessions_active")
        .expect("valid query");
    assert!(!active.is_empty());
    for row in &active {
        assert_eq!(row["metric"]["namespace"], "podgate", "{row}");
        assert_eq!(row["metric"]["pod"], "podgate-7d9f8-abcde", "{row}");
    }
    let exported = prometheus
        .query("{__name__=~\"podgate_.*\", __name__!=\"podgate_session_info\", exported_namespace=~\".+\"}")
        .expect("valid query");
    assert!(exported.is_empty(), "exported_* labels left: {exported:?}");

    // Prometheus evaluates the rules itself: all healthy, every alert pending or firing.
    let deadline = Instant::now() + Duration::from_secs(10);
    let alerts: BTreeSet<String> = crate::alerts().into_iter().map(|(n, _)| n).collect();
    loop {
        let rules = prometheus.api("/api/v1/rules");
        let mut active = BTreeSet::new();
        let mut problems = Vec::new();
        for group in rules["data"]["groups"].as_array().into_iter().flatten() {
            for rule in group["rules"].as_array().into_iter().flatten() {
                if rule["health"] != "ok" {
                    problems.push(format!(
                        "{}: {} {}",
                        rule["name"], rule["health"], rule["lastError"]
                    ));
                }
                if rule["state"] == "pending" || rule["state"] == "firing" {
                    active.insert(rule["name"].as_str().unwrap().to_string());
                }
            }
        }
        if problems.is_empty() && active == alerts {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rules: problems {problems:?}, active {active:?}, want {alerts:?}"
        );
        thread::sleep(Duration::from_millis(500));
    }

    drop(driver);
    drop(prometheus);
    drop(server);
    eprintln!("prometheus test took {:?}", started.elapsed());
}
