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

mod common;
#[path = "../../metrics/tests/support/mod.rs"]
mod support;

use common::*;
use futures_util::{SinkExt as _, StreamExt as _};
use podgate_metrics::{ReloadResult, SessionSeries};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use support::monitoring;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::Message;

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
    let proxy = SlowProxy::start(SLOW).await;
    let dial = proxy.dialer(WEST);
    let env = Arc::new(
        start_with(|t| {
            t.admin = true;
            t.session_series = SessionSeries {
                enabled: true,
                max_sessions: SERIES_CAP,
            };
            t.limits.per_cluster = PER_CLUSTER;
            t.dial = dial;
        })
        .await,
    );
    let gw = env.gateway().clone();
    let admin = env
        .demo
        .gateway
        .admin_addr
        .expect("the admin listener is on");
    // As `podgate serve` starts them; the admin listener sets podgate_cluster_up from them.
    let health = podgate::upstream::registry::spawn_health_checks(
        env.demo.gateway.clusters().clone(),
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
        let mut ws = exec(&env, token, EAST, namespace, pod, &query)
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

    let prometheus = Prometheus::start(&binary, admin).await;
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

    // Every query to run: (what, PromQL).
    let dashboard = monitoring::dashboard();
    let mut queries: Vec<(String, String)> = monitoring::alerts()
        .into_iter()
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
    let (code, body) = http_get(admin, "/debug/sessions")
        .await
        .expect("GET /debug/sessions");
    assert_eq!(code, 200, "{body}");
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
    let alerts: BTreeSet<String> = monitoring::alerts().into_iter().map(|(n, _)| n).collect();
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
    let gw = env.gateway();
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
    match exec(env, BOB, EAST, "load", "echo-0", ECHO).await {
        Err((code, _)) => assert_eq!(code, 403, "bob may not exec"), // denied, by the cluster
        Ok(_) => panic!("bob's exec was allowed"),
    }
    let pods = get(
        env,
        "/clusters/dev-east/api/v1/namespaces/load/pods",
        ADMIN,
        &[],
    )
    .await;
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
            match exec(env, ADMIN, WEST, "load", "echo-0", ECHO).await {
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

/// An exec WebSocket (v5) through the gateway, or the refusal's status and body.
async fn exec(
    env: &Env,
    token: &str,
    cluster: &str,
    namespace: &str,
    pod: &str,
    query: &str,
) -> Result<Ws, (u16, String)> {
    let path = format!("/clusters/{cluster}/api/v1/namespaces/{namespace}/pods/{pod}/exec?{query}");
    raw_ws(env, token, &path, &["v5.channel.k8s.io"], &[])
        .await
        .map(|(ws, _)| ws)
}

/// An echo session on `load/echo-0` as admin: one round trip, then it ends as `end` says.
async fn echo_session(env: &Env, cluster: &str, end: End) {
    let mut ws = exec(env, ADMIN, cluster, "load", "echo-0", ECHO)
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
    let mut ws = exec(env, ADMIN, EAST, "load", "flood-0", &query)
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
    let mut ws = exec(env, ADMIN, EAST, "default", "shell-0", query)
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
            let r = get(env, "/clusters/dev-east/api/v1/pods", "not-a-token", &[]).await;
            assert_eq!(r.code, 401, "{r:?}");
        })
        .await;
}

/// Plain HTTP to the TLS listener: the handshake fails and the gateway closes.
async fn tls_handshake_failure(env: &Env) {
    let mut tcp = tokio::net::TcpStream::connect(env.addr())
        .await
        .expect("connect to the gateway");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: podgate\r\n\r\n")
        .await
        .expect("write");
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest))
        .await
        .expect("the gateway closes a connection that does not speak TLS")
        .ok();
}

// ---------------------------------------------------------------------------------------
// dev-west's slowness.

/// A TCP proxy on loopback that holds each new connection for `delay` before connecting it
/// through to its target: the injected fault, not synchronisation. Every connection to the
/// cluster behind it (each session's upgrade, each health probe) takes `delay` longer.
struct SlowProxy {
    addr: SocketAddr,
    target: Arc<OnceLock<SocketAddr>>,
    task: tokio::task::JoinHandle<()>,
}

impl SlowProxy {
    async fn start(delay: Duration) -> SlowProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let target = Arc::new(OnceLock::<SocketAddr>::new());
        let to = target.clone();
        let task = tokio::spawn(async move {
            // Connections end with the proxy: dropping the set aborts them.
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                while conns.try_join_next().is_some() {}
                let to = *to.get().expect("the proxy's target is set");
                conns.spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Ok(mut server) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        SlowProxy { addr, target, task }
    }

    /// A [`Tuning::dial`] that sends the gateway through this proxy to `cluster`.
    fn dialer(&self, cluster: &'static str) -> Dial {
        let (target, proxy) = (self.target.clone(), self.addr);
        Box::new(move |id, addr| {
            if id != cluster {
                return addr;
            }
            target.set(addr).expect("one cluster behind the proxy");
            proxy
        })
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------
// Prometheus.

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
    /// Starts Prometheus scraping `target`'s `/metrics` every second, with the alert rules.
    async fn start(binary: &Path, target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = dir.path().join("rules.yaml");
        std::fs::write(&rules, monitoring::rule_groups().to_string()).expect("rules");
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
            let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
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
                if matches!(http_get(addr, "/-/ready").await, Ok((200, _))) {
                    return Prometheus {
                        child,
                        addr,
                        _dir: dir,
                    };
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("prometheus did not become ready");
    }

    async fn api(&self, path: &str) -> Value {
        let (status, body) = http_get(self.addr, path)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path}: {status}, not JSON ({e}): {body}"))
    }

    /// Runs an instant query; `Err` carries Prometheus' error for an invalid query.
    async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let v = self
            .api(&format!("/api/v1/query?query={}", encode(expr)))
            .await;
        if v["status"] != "success" {
            return Err(format!("{}: {}", v["errorType"], v["error"]));
        }
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// Polls `expr` until it returns data, or panics after `timeout`.
    async fn wait_for(&self, expr: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.query(expr).await.expect("valid query").is_empty() {
            assert!(
                Instant::now() < deadline,
                "no data for {expr} within {timeout:?}; targets: {}",
                self.api("/api/v1/targets").await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
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

/// A loopback port that was free a moment ago (for programs that cannot be told to pick one).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Percent-encodes a query parameter value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `GET path` over plain HTTP/1.0 (no chunking, the server closes), within 10 s: status and
/// body. For Prometheus' API and the gateway's admin listener.
async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| std::io::Error::other("no complete response within 10 s"))??;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    Ok((status, body.to_string()))
}
