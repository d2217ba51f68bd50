//! A real Prometheus scrapes a running gateway's admin listener while a scripted load of real
//! sessions runs through the gateway to two devclusters; then every expression of the alert
//! rules and the dashboard goes through Prometheus' HTTP API and must be a valid query that
//! returns data. The scrape config carries the ServiceMonitor's target labels and its metric
//! relabelings, so the dashboard's live-sessions table is checked as it will look in a cluster.
//!
//! dev-east is healthy. dev-west sits behind a proxy that holds every new connection for a
//! little over 2 s: its health probes time out (down), its sessions are slow to set up, and
//! the load fills its session limit so that more sessions are refused (failing). So every
//! alert's condition holds, for dev-west only.

use futures_util::{SinkExt as _, StreamExt as _};
use podgate_metrics::{ReloadResult, SessionSeries};
use podgate_testkit::gateway::{ADMIN, ALICE, BOB, Builder, Env};
use podgate_testkit::http;
use podgate_testkit::link::Link;
use podgate_testkit::prometheus::{self as support, Server as Prometheus, monitoring};
use podgate_testkit::wait::wait_for;
use podgate_testkit::ws::tungstenite::Message;
use podgate_testkit::ws::{Got, Ws, echo_round_trip, next_frame};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const EAST: &str = "dev-east";
const WEST: &str = "dev-west";
/// How long dev-west's proxy holds each new connection: past the setup-latency alert's 2 s.
const SLOW: Duration = Duration::from_millis(2100);
/// Health probes give up after this (below [`SLOW`], so dev-west is down).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Per-session series cap: below the number of [`LIVE`] sessions.
const SERIES_CAP: usize = 2;
/// Sessions per cluster; each round fills dev-west's with slow sessions.
const PER_CLUSTER: usize = 6;
/// Sessions refused on dev-west per round: 3 of 9, above the failure-ratio alert's 20 %.
const REFUSED: usize = 3;
/// Refused credentials per round: the auth-failure alert wants more than 1/s over 5 minutes,
/// that is more than 300 that Prometheus saw happen (a fraction of a second's work).
const AUTH_FAILURES: usize = 400;
/// Alerts that fire only when podgate is gone or a certificate is about to expire: here they
/// must stay quiet (their firing is proven by promtool's unit tests in deploy/).
const QUIET: [&str; 2] = ["PodgateDown", "PodgateCertificateExpiringSoon"];
/// Resumes of a session this gateway does not hold: the affinity alert wants at least 5.
const UNKNOWN_RESUMES: usize = 6;
/// Overall budget for Prometheus to have scraped enough for every query.
const DEADLINE: Duration = Duration::from_secs(40);

/// Sessions held open while Prometheus is queried, all on dev-east: (token, user, namespace,
/// pod, container, command). Opened in this order, so the first [`SERIES_CAP`] get
/// per-session series and the rest (and every session of the load) are beyond the cap.
const LIVE: &[(&str, &str, &str, &str, &str, &str)] = &[
    (ADMIN, "admin", "load", "echo-0", "echo", "echo"),
    (ALICE, "alice", "default", "shell-0", "", "cat"),
    (ADMIN, "admin", "default", "multi-0", "sidecar", "cat"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alert_and_dashboard_query_returns_data_from_a_real_prometheus_scraping_the_gateway()
{
    let Some(binary) = support::tool("prometheus") else {
        return;
    };
    let started = Instant::now();
    // dev-west's slowness: a link that holds every new connection a little over 2 s.
    let proxy = Link::with_delay(SLOW).await;
    let recordings = tempfile::tempdir().expect("a recordings dir");
    let env = Arc::new(
        Builder::demo()
            .admin(true)
            .session_series(SessionSeries {
                enabled: true,
                max_sessions: SERIES_CAP,
            })
            .limits(|l| l.per_cluster = PER_CLUSTER)
            // Every audit line fails to be written (ENOSPC): the audit alert fires.
            .audit_file(std::path::Path::new("/dev/full"))
            // Every session is recorded; dev-west's recordings fail: the recording alert fires.
            .recording(podgate::recording::Recording::new(
                Some(podgate_testkit::disks::failing_for(recordings.path(), WEST)),
                &podgate_config::RecordingConfig {
                    default: podgate_config::RecordingMode::BestEffort,
                    dir: Some(recordings.path().to_path_buf()),
                    ..Default::default()
                },
                &[],
                "prometheus-test".into(),
            ))
            .dial(proxy.dialer(WEST))
            .start()
            .await,
    );
    let gw = env.sessions().clone();
    let admin = env.gateway.admin_addr.expect("the admin listener is on");
    // As `podgate serve` starts them; the admin listener sets podgate_cluster_up from them.
    let health = podgate::upstream::registry::spawn_health_checks(
        env.gateway.clusters().clone(),
        PROBE_TIMEOUT,
        PROBE_TIMEOUT,
        gw.shutdown.child_token(),
    );

    let mut live = Vec::new();
    for &(token, _, namespace, pod, container, command) in LIVE {
        let mut query = format!("command={command}&stdin=true&stdout=true&stderr=false");
        if !container.is_empty() {
            query.push_str(&format!("&container={container}"));
        }
        let mut ws = env
            .exec(token, EAST, namespace, pod, &query)
            .await
            .unwrap_or_else(|(code, body)| panic!("live session on {pod}: {code} {body}"));
        echo_round_trip(&mut ws, b"hello\n").await;
        live.push(ws);
    }
    assert_eq!(gw.limits.active(), LIVE.len());
    assert_eq!(gw.metrics.exported_sessions(), SERIES_CAP);
    // One refused credential before the first scrape, so the series of its reason has a
    // sample from the start and `rate()` counts every later one.
    auth_failures(&env, 1).await;
    unknown_resumes(&env, 1).await;

    let prometheus =
        Prometheus::start(&binary, &monitoring::rule_groups(), scrape_configs(admin)).await;
    // The load starts once Prometheus holds a first sample of the gateway's counters (rates
    // and increases count from there) and has seen dev-east up (so dev-east is never reported
    // down below).
    prometheus
        .wait_for(
            r#"podgate_cluster_up{cluster="dev-east"} == 1"#,
            Duration::from_secs(15),
        )
        .await;
    let mut load = Load::start(env.clone(), LIVE.len());
    // Resumes that reach a replica without their session (no affinity): the resume alert.
    unknown_resumes(&env, UNKNOWN_RESUMES).await;

    // Every query to run: (what, PromQL).
    let dashboard = monitoring::dashboard();
    let mut queries: Vec<(String, String)> = monitoring::alerts()
        .into_iter()
        .filter(|(name, _)| !QUIET.contains(&name.as_str()))
        .map(|(name, expr)| (format!("alert {name}"), expr))
        .collect();
    for (panel, ref_id, expr) in monitoring::dashboard_queries(&dashboard) {
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
        load.check().await;
        // Traffic on the live sessions: their series move, and reading answers the pings.
        for ws in &mut live {
            echo_round_trip(ws, b"more\n").await;
        }
        for (what, expr) in pending.clone() {
            let rows = prometheus
                .query(&expr)
                .await
                .unwrap_or_else(|e| panic!("{what} is not a valid query: {e}\n{expr}"));
            if !rows.is_empty() {
                pending.remove(&what);
                results.insert(what, rows);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let targets = prometheus.api("/api/v1/targets").await;
    assert!(
        pending.is_empty(),
        "no data after {:?} ({} rounds of load) for:\n{}\n\ntargets: {targets}",
        started.elapsed(),
        load.rounds(),
        pending
            .iter()
            .map(|(w, e)| format!("  {w}: {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The alerts that must stay quiet while podgate is scraped and its certificates are far
    // from expiry: valid queries that return nothing.
    for (name, expr) in monitoring::alerts()
        .into_iter()
        .filter(|(n, _)| QUIET.contains(&n.as_str()))
    {
        let rows = prometheus
            .query(&expr)
            .await
            .unwrap_or_else(|e| panic!("alert {name} is not a valid query: {e}\n{expr}"));
        assert!(
            rows.is_empty(),
            "{name} fires on a healthy gateway: {rows:?}"
        );
    }

    // The alerts name the cluster that is down, slow and failing, and only that one.
    let west = BTreeSet::from([WEST.to_string()]);
    for alert in [
        "PodgateClusterDown",
        "PodgateSessionFailureRatioHigh",
        "PodgateSessionSetupSlow",
    ] {
        let clusters: BTreeSet<String> = labels_of(&results[&format!("alert {alert}")])
            .into_iter()
            .filter_map(|l| l.get("cluster").cloned())
            .collect();
        assert_eq!(clusters, west, "{alert}");
    }

    // The live-sessions table: the first SERIES_CAP live sessions, as the gateway lists them
    // on /debug/sessions, each with its target's namespace, pod and container (not the
    // gateway pod's, thanks to the ServiceMonitor's relabelings).
    let answer = http::plain(admin, "GET", "/debug/sessions", &[], "")
        .await
        .expect("GET /debug/sessions");
    let body = answer.body;
    assert_eq!(answer.code, 200, "{body}");
    let listed: Value = serde_json::from_str(&body).expect("/debug/sessions JSON");
    let mut expected = BTreeMap::new();
    for &(_, user, namespace, pod, container, _) in &LIVE[..SERIES_CAP] {
        let s = listed["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .find(|s| {
                s["user"] == user
                    && s["cluster"] == EAST
                    && s["namespace"] == namespace
                    && s["pod"] == pod
                    && s["container"] == container
            })
            .unwrap_or_else(|| panic!("live session on {pod} not in /debug/sessions: {body}"));
        let row = [
            ("session_id", s["id"].as_str().expect("id")),
            ("user", user),
            ("cluster", EAST),
            ("namespace", namespace),
            ("pod", pod),
            ("container", container),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty()) // Prometheus has no empty labels
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>();
        expected.insert(row["session_id"].clone(), row);
    }
    let table_expr = &queries
        .iter()
        .find(|(w, _)| w == "panel \"Live sessions\" A")
        .expect("the live-sessions table")
        .1;
    let table: BTreeMap<String, BTreeMap<String, String>> =
        labels_of(&prometheus.query(table_expr).await.expect("valid query"))
            .into_iter()
            .map(|l| (l["session_id"].clone(), l))
            .collect();
    assert_eq!(table, expected);

    // The aggregate series keep the gateway pod's labels (what prometheus-adapter maps for
    // the HorizontalPodAutoscaler).
    let active = prometheus
        .query("podgate_sessions_active")
        .await
        .expect("valid query");
    assert_eq!(active.len(), 2, "one per cluster: {active:?}");
    for row in &active {
        assert_eq!(row["metric"]["namespace"], "podgate", "{row}");
        assert_eq!(row["metric"]["pod"], "podgate-7d9f8-abcde", "{row}");
    }
    let exported = prometheus
        .query("{__name__=~\"podgate_.*\", __name__!=\"podgate_session_info\", exported_namespace=~\".+\"}")
        .await
        .expect("valid query");
    assert!(exported.is_empty(), "exported_* labels left: {exported:?}");

    // Prometheus evaluates the rules itself: all healthy, every alert pending or firing.
    let deadline = Instant::now() + Duration::from_secs(10);
    let alerts: BTreeSet<String> = monitoring::alerts()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| !QUIET.contains(&n.as_str()))
        .collect();
    loop {
        let rules = prometheus.api("/api/v1/rules").await;
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
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let rounds = load.stop().await;
    drop(live);
    drop(prometheus);
    health.abort();
    eprintln!(
        "prometheus test took {:?} ({rounds} rounds of load)",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// The load.

/// Rounds of real sessions and requests through the gateway, in a task, until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `baseline`: the sessions open outside the load, which it waits to be back to between
    /// its steps.
    fn start(env: Arc<Env>, baseline: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicUsize::new(0));
        let (flag, count) = (stop.clone(), rounds.clone());
        let task = tokio::spawn(async move {
            while !flag.load(Ordering::SeqCst) {
                round(&env, baseline, count.load(Ordering::SeqCst)).await;
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        Load {
            stop,
            rounds,
            task: Some(task),
        }
    }

    fn rounds(&self) -> usize {
        self.rounds.load(Ordering::SeqCst)
    }

    /// Fails the test with the load's own panic if it stopped early.
    async fn check(&mut self) {
        if self.task.as_ref().is_some_and(|t| t.is_finished()) {
            self.join().await;
            panic!("the load stopped early");
        }
    }

    /// Stops after the current round; returns how many rounds ran.
    async fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.join().await;
        self.rounds()
    }

    async fn join(&mut self) {
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("the load task: {e}"),
            }
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// One round: on dev-east, sessions that end in each ordinary way, a denied one, a plain API
/// request; on dev-west, slow sessions filling its limit and more that are refused; all along,
/// refused credentials and a failed TLS handshake.
async fn round(env: &Env, baseline: usize, n: usize) {
    let gw = env.sessions();
    if n == 0 {
        // `podgate serve` re-reads its config file and counts each reload's result; a gateway
        // started with `podgate::app::start` has no reload to trigger. This stands in for a
        // refused and an applied reload, on the running gateway's own registry.
        gw.metrics.config_reload(ReloadResult::Failure);
        gw.metrics.config_reload(ReloadResult::Success);
    }

    // dev-east, one step at a time.
    let settled = || wait_for(Duration::from_secs(10), || gw.limits.active() == baseline);
    assert!(settled().await, "{} sessions open", gw.limits.active());
    echo_session(env, EAST, End::Pod).await; // completed
    echo_session(env, EAST, End::Client).await; // client_closed
    flood_session(env, 4096).await; // completed, stdout
    exit_nonzero_session(env).await; // exit_nonzero, stderr
    match env.exec(BOB, EAST, "load", "echo-0", ECHO).await {
        Err((code, _)) => assert_eq!(code, 403, "bob may not exec"), // denied, by the cluster
        Ok(_) => panic!("bob's exec was allowed"),
    }
    let pods = http::get(env, "/clusters/dev-east/api/v1/namespaces/load/pods", ADMIN).await;
    assert_eq!(pods.code, 200, "{}", pods.body);

    // dev-west: PER_CLUSTER slow sessions hold its every slot while the proxy delays them;
    // then REFUSED more are refused (limit_reached). Meanwhile, credentials are refused.
    assert!(settled().await, "{} sessions open", gw.limits.active());
    let slow =
        futures_util::future::join_all((0..PER_CLUSTER).map(|_| echo_session(env, WEST, End::Pod)));
    let refused = async {
        let full = wait_for(Duration::from_secs(10), || {
            gw.limits.active() == baseline + PER_CLUSTER
        })
        .await;
        assert!(
            full,
            "dev-west's slots never filled: {}",
            gw.limits.active()
        );
        for _ in 0..REFUSED {
            match env.exec(ADMIN, WEST, "load", "echo-0", ECHO).await {
                Err((code, body)) => assert_eq!(code, 429, "{body}"),
                Ok(_) => panic!("a session beyond dev-west's limit was accepted"),
            }
        }
    };
    let noise = async {
        auth_failures(env, AUTH_FAILURES).await;
        tls_handshake_failure(env).await;
    };
    tokio::join!(slow, refused, noise);
}

const ECHO: &str = "command=echo&stdin=true&stdout=true&stderr=false";

/// How a session ends.
enum End {
    /// stdin is closed, echo exits 0: completed.
    Pod,
    /// The client goes away: client_closed.
    Client,
}

/// An echo session on `load/echo-0` as admin: one round trip, then it ends as `end` says.
async fn echo_session(env: &Env, cluster: &str, end: End) {
    let mut ws = env
        .exec(ADMIN, cluster, "load", "echo-0", ECHO)
        .await
        .unwrap_or_else(|(code, body)| panic!("echo on {cluster}: {code} {body}"));
    echo_round_trip(&mut ws, b"ping").await;
    match end {
        End::Client => drop(ws),
        End::Pod => {
            ws.send(Message::binary(vec![255, 0])) // close stdin (stream 0)
                .await
                .expect("stdin closed");
            let (_, _, status) = to_the_end(&mut ws).await;
            assert_eq!(status["status"], "Success", "echo on {cluster}: {status}");
        }
    }
}

/// `flood-0` writes `bytes` to stdout and exits 0.
async fn flood_session(env: &Env, bytes: usize) {
    let query = format!("command={bytes}&stdout=true&stderr=false");
    let mut ws = env
        .exec(ADMIN, EAST, "load", "flood-0", &query)
        .await
        .unwrap_or_else(|(code, body)| panic!("flood: {code} {body}"));
    let (out, _, status) = to_the_end(&mut ws).await;
    assert_eq!(out.len(), bytes);
    assert_eq!(status["status"], "Success", "flood: {status}");
}

/// A shell that writes to stderr and exits 3.
async fn exit_nonzero_session(env: &Env) {
    let query = "command=sh&command=-c&command=echo%20oops%20%3E%262%3B%20exit%203\
                 &stdout=true&stderr=true";
    let mut ws = env
        .exec(ADMIN, EAST, "default", "shell-0", query)
        .await
        .unwrap_or_else(|(code, body)| panic!("sh: {code} {body}"));
    let (_, err, status) = to_the_end(&mut ws).await;
    assert_eq!(err, b"oops\n");
    assert_eq!(status["reason"], "NonZeroExitCode", "sh: {status}");
}

/// Reads a session to its close: stdout, stderr, and the status of channel 3.
async fn to_the_end(ws: &mut Ws) -> (Vec<u8>, Vec<u8>, Value) {
    let (mut out, mut err, mut status) = (Vec::new(), Vec::new(), Value::Null);
    loop {
        match next_frame(ws, Duration::from_secs(20)).await {
            Got::Data(1, d) => out.extend_from_slice(&d),
            Got::Data(2, d) => err.extend_from_slice(&d),
            Got::Data(3, d) => status = serde_json::from_slice(&d).expect("status JSON"),
            Got::Data(c, _) => panic!("a frame on stream {c}"),
            Got::Close(_) => return (out, err, status),
        }
    }
}

/// `n` requests with a token nobody has, 8 at a time; each is refused with a 401.
async fn auth_failures(env: &Env, n: usize) {
    futures_util::stream::iter(0..n)
        .for_each_concurrent(8, |_| async {
            let r = http::get(env, "/clusters/dev-east/api/v1/pods", "not-a-token").await;
            assert_eq!(r.code, 401, "{r:?}");
        })
        .await;
}

/// Plain HTTP to the TLS listener: the handshake fails and the gateway closes.
async fn tls_handshake_failure(env: &Env) {
    http::plain(env.addr(), "GET", "/", &[], "")
        .await
        .expect("the gateway closes a connection that does not speak TLS");
}

// ---------------------------------------------------------------------------------------
// Prometheus.

/// Scraping `target`'s `/metrics` as the ServiceMonitor has it scraped.
fn scrape_configs(target: std::net::SocketAddr) -> Value {
    json!([{
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
    }])
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

/// The label sets of a query's result rows.
fn labels_of(rows: &[Value]) -> Vec<BTreeMap<String, String>> {
    rows.iter()
        .map(|r| {
            r["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .collect()
}

/// `n` resumes of a session id no replica holds, each answered `unknown_session`.
async fn unknown_resumes(env: &Env, n: usize) {
    for _ in 0..n {
        let mut page = podgate_testkit::resume::Page::detached("no-such-session", "x", 0);
        let v = page.resume_with(env, ADMIN, "not-the-credential", 0).await;
        assert_eq!(v["reason"], "unknown_session", "{v}");
    }
}
