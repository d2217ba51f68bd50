//! Clusters behind NAT: a devcluster whose address only its `podgate agent` is given, the
//! agent dialling out to `podgate serve`, and real kubectl through gateway → tunnel → agent →
//! devcluster. The agent is killed mid-session and started again; wrong, foreign and revoked
//! tokens are refused; a reload that drops the cluster cuts its tunnel.

use podgate_devcluster::DevCluster;
use podgate_testkit::agent::{Agent, AgentSpec};
use podgate_testkit::kubectl;
use podgate_testkit::serve::{self, ADMIN, Config, Files, Held, Serve};
use podgate_testkit::tty::until_size;
use podgate_testkit::wait::{read_until, wait_for, wait_until};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;

const PODGATE: &str = env!("CARGO_BIN_EXE_podgate");
const TOKEN: &str = "edge-agent-token-7f3a9c1e5b";
const OTHER_TOKEN: &str = "other-agent-token-2d8e4a6c0f";
/// How long a tunnel may take to come up (the agent's first dial is immediate).
const UP: Duration = Duration::from_secs(20);

/// `podgate serve` whose only way to `edge` (and `other`, which has no agent running) is an
/// agent; the devcluster behind `edge`.
struct Fixture {
    gw: Serve,
    files: Files,
    config: Config,
    /// The cluster, kept running, when it runs in this process's network namespace.
    _edge: Option<DevCluster>,
    /// Its kubeconfig (the agent's only).
    kubeconfig: String,
    /// Where the cluster and its agents run, when not here.
    netns: Option<podgate_testkit::netns::Netns>,
}

async fn fixture() -> Fixture {
    let edge = serve::cluster("edge").await;
    let config = Config::new(&[])
        .agent_cluster("edge")
        .agent_cluster("other");
    let files = serve::setup(&config);
    files.write_agent_token("edge", TOKEN);
    files.write_agent_token("other", OTHER_TOKEN);
    let gw = serve::start(Path::new(PODGATE), &files).await;
    Fixture {
        gw,
        files,
        config,
        kubeconfig: edge.kubeconfig().to_yaml(),
        _edge: Some(edge),
        netns: None,
    }
}

impl Fixture {
    /// An agent for `cluster` showing the token in `token_file`, its cluster `edge`.
    fn agent(&self, cluster: &str, token_file: &Path) -> Agent {
        AgentSpec {
            bin: Path::new(PODGATE),
            gateway: &self.gw,
            url: None,
            cluster,
            token_file,
            kubeconfig: self.kubeconfig.clone(),
            netns: self.netns.as_ref(),
            ca_pem: None,
        }
        .start()
    }

    /// A token file of the agent's own (its Secret), holding `token`.
    fn agent_token(&self, name: &str, token: &str) -> PathBuf {
        self.files.write(&format!("{name}.agent-secret"), token)
    }

    /// Waits until the gateway logged a tunnel for `cluster` past `mark`.
    async fn connected(&self, mark: usize, cluster: &str) {
        logged(&self.gw, mark, "agent connected", cluster).await;
    }

    /// `/podgate/clusters`' entry for `id`, as ADMIN sees it.
    async fn listed(&self, id: &str) -> serde_json::Value {
        let answer = podgate_testkit::http::get(&self.gw, "/podgate/clusters", ADMIN.token).await;
        assert_eq!(answer.code, 200, "{}", answer.body);
        answer.json()["clusters"]
            .as_array()
            .and_then(|l| l.iter().find(|c| c["id"] == id).cloned())
            .unwrap_or_else(|| panic!("{id} is not listed: {}", answer.body))
    }

    /// `/podgate/clusters`' entry for `id` once its `up` is `up`, within [`UP`].
    async fn up(&self, id: &str, up: bool) -> serde_json::Value {
        let mut last = serde_json::Value::Null;
        let reached = wait_until(UP, Duration::from_millis(100), async || {
            last = self.listed(id).await;
            last["up"] == up
        })
        .await;
        assert!(reached, "{id} never had up={up}: {last}");
        last
    }

    fn kubectl(&self) -> kubectl::Kubectl {
        self.gw.kubectl("edge", ADMIN.token)
    }
}

/// The cluster in a network namespace of the test's own, on that namespace's loopback: no
/// route leads there from the gateway; its agent, inside with it, reaches the gateway over a
/// veth pair. Everything a person does with kubectl goes gateway → tunnel → agent → cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_reaches_a_cluster_that_only_its_agent_can_reach() {
    let netns = podgate_testkit::netns::Netns::create();
    let inside = netns.devcluster("edge");
    assert!(inside.addr.ip().is_loopback(), "{}", inside.addr);
    let host = netns.host_ip.to_string();
    // The edge policy applies to it as to any cluster: alice is not among its users.
    let config = Config::new(&[])
        .agent_cluster("edge")
        .access("edge", "{users: [admin, bob]}")
        .set("listen", &format!("{host}:0"));
    let files = serve::setup_for(&config, &["127.0.0.1", &host]);
    files.write_agent_token("edge", TOKEN);
    let gw = serve::start(Path::new(PODGATE), &files).await;
    let f = Fixture {
        gw,
        files,
        config,
        _edge: None,
        kubeconfig: inside.kubeconfig.clone(),
        netns: Some(netns),
    };
    // Before any agent: the cluster is listed, down, and says why.
    let before = f.listed("edge").await;
    assert_eq!(before["agent"]["connected"], 0, "{before}");
    assert!(
        before["agent"]["disconnected_since"].is_string(),
        "{before}"
    );
    let out = f.kubectl().run(&["get", "pods"], b"").await;
    out.assert_fails_saying(&["ServiceUnavailable"], "get before the agent");
    let answer = podgate_testkit::http::get(&f.gw, "/clusters/edge/api/v1/pods", ADMIN.token).await;
    assert_eq!(answer.code, 503, "{}", answer.body);
    assert!(
        answer.body.contains("no podgate agent is connected"),
        "{}",
        answer.body
    );

    let mark = f.gw.mark();
    let token = f.agent_token("edge", TOKEN);
    let _agent = f.agent("edge", &token);
    f.connected(mark, "edge").await;
    let k = f.kubectl();

    // get, across namespaces.
    let out = k.run(&["get", "pods", "-A"], b"").await;
    out.assert_lists_every_namespace("get pods -A through the agent");

    // exec with 1 MiB of binary stdin, byte-exact.
    let data: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let out = k.run(&["exec", "-i", "shell-0", "--", "cat"], &data).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout == data,
        "got {} bytes back, not the same 1 MiB",
        out.stdout.len()
    );

    // exec -it under a terminal: the size, a resize, the exit code.
    let mut tty = k.pty(&["exec", "-it", "shell-0", "--", "sh"], 31, 97);
    let t = Duration::from_secs(20);
    let mut seen = Vec::new();
    read_until(&mut tty.read, &mut seen, t, "a prompt", |s| !s.is_empty()).await;
    assert!(
        until_size(&mut tty.write, &mut tty.read, "31 97", "\r").await,
        "the pod never saw 31x97"
    );
    tty.write
        .resize(pty_process::Size::new(40, 120))
        .expect("resize");
    assert!(
        until_size(&mut tty.write, &mut tty.read, "40 120", "\r").await,
        "the pod never saw 40x120"
    );
    tty.write.write_all(b"exit 7\r").await.expect("typed");
    assert_eq!(tty.exit_code(t).await, Some(7));

    // get -w: the list, then the watch stays open (a streamed response through the tunnel).
    let mut watch = k
        .command(&["get", "pods", "-w", "-n", "load"])
        .spawn()
        .expect("kubectl starts");
    let mut stdout = watch.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    read_until(&mut stdout, &mut seen, t, "rows for echo-0", |s| {
        s.lines()
            .any(|l| l.split_whitespace().next() == Some("echo-0"))
    })
    .await;
    assert!(
        tokio::time::timeout(Duration::from_secs(1), watch.wait())
            .await
            .is_err(),
        "kubectl get -w ended after the list"
    );
    watch.kill().await.expect("kill kubectl");

    // logs -f: new lines keep arriving.
    let mut follow = k
        .command(&["logs", "-f", "shell-0"])
        .spawn()
        .expect("kubectl starts");
    let mut stdout = follow.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    let lines = |s: &str| s.matches('\n').count();
    read_until(&mut stdout, &mut seen, t, "a first line", |s| lines(s) >= 1).await;
    let now = k.run(&["logs", "shell-0"], b"").await;
    assert_eq!(now.code, 0, "{}", now.stderr);
    let n = lines(&now.text());
    read_until(
        &mut stdout,
        &mut seen,
        Duration::from_secs(30),
        "two new lines from logs -f",
        |s| lines(s) >= n + 2,
    )
    .await;
    follow.kill().await.expect("kill kubectl");

    // port-forward (SPDY inside WebSocket, upgraded through the tunnel): HTTP, and 1 MiB
    // each way byte-exact, over two ports at once.
    let pf = podgate_testkit::portforward::start(&k, "shop", "web-0", &[80, 7])
        .await
        .unwrap_or_else(|e| panic!("port-forward did not start: {e}"));
    let (status, body) = podgate_testkit::portforward::http_get(pf.local[0], "/")
        .await
        .expect("GET / through the forwarded port");
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, b"web-0\n");
    assert_eq!(
        podgate_testkit::portforward::fetch_pattern(pf.local[0], 1 << 20)
            .await
            .expect("1 MiB down"),
        (1 << 20, true)
    );
    let sent = data.clone();
    assert!(
        podgate_testkit::portforward::echo(pf.local[1], &sent)
            .await
            .expect("1 MiB echoed")
            == sent
    );
    pf.stop().await;

    // apply: a request body through the tunnel, then read back.
    let manifest = f.files.write(
        "agent-cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: through-agent\n  namespace: default\ndata:\n  k: \"sent through the tunnel\"\n",
    );
    let manifest = manifest.to_str().expect("utf-8 path");
    let out = k.run(&["apply", "-f", manifest], b"").await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = k
        .run(
            &[
                "get",
                "configmap",
                "through-agent",
                "-o",
                "jsonpath={.data.k}",
            ],
            b"",
        )
        .await;
    assert_eq!(out.text(), "sent through the tunnel", "{}", out.stderr);

    // attach, upgraded through the tunnel too; stdin's end ends the echo with 0.
    let out = k
        .run(
            &["attach", "-i", "-n", "load", "echo-0"],
            b"hello through the agent\n",
        )
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.text().contains("hello through the agent\n"),
        "{}",
        out.text()
    );

    // The edge policy, before anything reaches the tunnel.
    let out =
        f.gw.kubectl("edge", serve::ALICE.token)
            .run(&["get", "pods"], b"")
            .await;
    out.assert_fails_saying(
        &[r#"podgate: user "alice" may not use cluster "edge""#],
        "alice at the edge",
    );

    // The cluster's RBAC judged the person: bob may not exec there.
    let out =
        f.gw.kubectl("edge", serve::BOB.token)
            .run(&["exec", "shell-0", "--", "true"], b"")
            .await;
    out.assert_fails_saying(&["forbidden", "Forbidden"], "bob's exec through the agent");

    // Health follows the tunnel: up (probed through it), one agent.
    let listed = f.up("edge", true).await;
    assert_eq!(listed["agent"]["connected"], 1, "{listed}");
    assert!(listed["agent"]["disconnected_since"].is_null(), "{listed}");
    let metrics = f.gw.admin_get("/metrics").await.body;
    assert_eq!(
        podgate_testkit::metrics::sample(&metrics, "podgate_agent_tunnels", &[("cluster", "edge")]),
        Some(1.0),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_ends_its_sessions_readably_and_a_new_one_serves() {
    let f = fixture().await;
    let token = f.agent_token("edge", TOKEN);
    let gateway = podgate_testkit::process::Process::pid(f.gw.pid());
    let fds_before = gateway.fds();
    let mark = f.gw.mark();
    let mut agent = f.agent("edge", &token);
    f.connected(mark, "edge").await;
    f.up("edge", true).await;

    let mut held = Held::open(&f.kubectl(), "default", "shell-0", "cat").await;
    held.echoes("before the agent dies").await;
    let mark = f.gw.mark();
    agent.kill();
    // The session fails, readably, and not with exit 0.
    let out = held.ended(Duration::from_secs(30)).await;
    assert_ne!(
        out.code, 0,
        "kubectl exited 0 after its tunnel died: {}",
        out.stderr
    );
    assert!(
        !out.stderr.trim().is_empty(),
        "kubectl said nothing about the end"
    );
    f.gw.line_after(mark, UP, "agent disconnected", |l| {
        l.contains("agent disconnected") && l.contains("cluster=edge")
    })
    .await;
    let listed = f.up("edge", false).await;
    assert_eq!(listed["agent"]["connected"], 0, "{listed}");
    assert!(
        listed["agent"]["disconnected_since"].is_string(),
        "{listed}"
    );
    assert!(
        listed["error"]
            .as_str()
            .is_some_and(|e| e.contains("no podgate agent is connected")),
        "{listed}"
    );

    // A new agent (the pod restarted): new sessions work, the gateway was not restarted.
    let mark = f.gw.mark();
    let _again = f.agent("edge", &token);
    f.connected(mark, "edge").await;
    let mut held = Held::open(&f.kubectl(), "default", "shell-0", "cat").await;
    held.echoes("after the agent came back").await;
    f.up("edge", true).await;
    drop(held);
    drop(_again);
    // Everything the tunnels and their sessions held is given back.
    let back = wait_for(Duration::from_secs(20), || gateway.fds() <= fds_before).await;
    assert!(
        back,
        "the gateway holds {} fds, {fds_before} before any tunnel",
        gateway.fds()
    );
}

/// An agent told to stop (its pod deleted in a rollout) says goodbye on its tunnel rather
/// than cutting it, and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_agent_closes_its_tunnel_cleanly() {
    let f = fixture().await;
    let token = f.agent_token("edge", TOKEN);
    let mark = f.gw.mark();
    let mut agent = f.agent("edge", &token);
    f.connected(mark, "edge").await;
    let mark = f.gw.mark();
    agent.sigterm();
    let status = agent.exit_within(Duration::from_secs(20)).await;
    assert!(status.success(), "{status:?}: {}", agent.log().join("\n"));
    let line = logged(&f.gw, mark, "agent disconnected", "edge").await;
    assert!(line.contains("the agent closed it"), "{line}");
}

/// A gateway stopping with agents connected drains and exits; the agents try again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_stops_cleanly_with_agents_connected() {
    let mut f = fixture().await;
    let token = f.agent_token("edge", TOKEN);
    let mark = f.gw.mark();
    let agent = f.agent("edge", &token);
    f.connected(mark, "edge").await;
    let mut held = Held::open(&f.kubectl(), "default", "shell-0", "cat").await;
    held.echoes("before the stop").await;
    let agent_mark = agent.mark();
    f.gw.sigterm();
    let status = f.gw.exit_within(Duration::from_secs(40)).await;
    assert!(status.success(), "{status:?}");
    let out = held.ended(Duration::from_secs(10)).await;
    assert_ne!(out.code, 0, "{}", out.stderr);
    agent
        .line_after(agent_mark, Duration::from_secs(20), "tunnel ended")
        .await;
}

/// Waits until `gw` logged `what` (`agent connected`, `agent disconnected`) for `cluster`
/// past `mark`; the line.
async fn logged(gw: &Serve, mark: usize, what: &str, cluster: &str) -> String {
    let want = format!("cluster={cluster}");
    gw.line_after(mark, Duration::from_secs(60), what, |l| {
        l.contains(what) && l.contains(&want)
    })
    .await
}

/// The agent's log line saying the gateway refused its tunnel, past `mark`.
async fn refused(agent: &Agent, mark: usize) -> String {
    agent
        .line_after(mark, UP, "refused the tunnel: HTTP 403")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_foreign_and_revoked_tokens_are_refused_and_a_reload_cuts_the_tunnel() {
    let f = fixture().await;

    // A token nobody issued, and the other cluster's token: refused, with the reason.
    let wrong = f.agent_token("wrong", "not-a-token-of-anyone");
    let mark = f.gw.mark();
    let bad = f.agent("edge", &wrong);
    let line = refused(&bad, 0).await;
    assert!(line.contains("not the agent token of cluster"), "{line}");
    f.gw.line_after(mark, UP, "a refusal for the wrong token", |l| {
        l.contains("agent tunnel refused") && l.contains("wrong_token")
    })
    .await;
    drop(bad);
    let foreign = f.agent_token("foreign", OTHER_TOKEN);
    let bad = f.agent("edge", &foreign);
    refused(&bad, 0).await;
    drop(bad);
    // A cluster that is not served through agents at all.
    let bad = f.agent("nowhere", &foreign);
    let line = bad.line_after(0, UP, "refused the tunnel: HTTP 403").await;
    assert!(line.contains("serves no cluster"), "{line}");
    drop(bad);
    let metrics = f.gw.admin_get("/metrics").await.body;
    for (result, at_least) in [("wrong_token", 2.0), ("unknown_cluster", 1.0)] {
        let n = podgate_testkit::metrics::sample(
            &metrics,
            "podgate_agent_tunnel_attempts_total",
            &[("result", result)],
        )
        .unwrap_or(0.0);
        assert!(n >= at_least, "{result}: {n} in {metrics}");
    }
    assert_eq!(
        podgate_testkit::metrics::sample(&metrics, "podgate_agent_tunnels", &[("cluster", "edge")])
            .unwrap_or(0.0),
        0.0
    );

    // The right token: connected. Then the operator rotates edge's token: the tunnel made
    // with the old one is cut at the reload, and the agent, still showing it, is refused.
    let secret = f.agent_token("edge", TOKEN);
    let mark = f.gw.mark();
    let agent = f.agent("edge", &secret);
    f.connected(mark, "edge").await;
    let mut held = Held::open(&f.kubectl(), "default", "shell-0", "cat").await;
    held.echoes("before the rotation").await;
    let agent_mark = agent.mark();
    let line =
        f.gw.reload(|| {
            f.files
                .write_agent_token("edge", "edge-agent-token-rotated");
        })
        .await;
    assert!(
        line.contains("edge"),
        "the reload did not rebuild edge: {line}"
    );
    let out = held.ended(Duration::from_secs(30)).await;
    assert_ne!(
        out.code, 0,
        "a session on a cut tunnel exited 0: {}",
        out.stderr
    );
    refused(&agent, agent_mark).await;
    // The agent's Secret gets the new token: it is back without a restart.
    let mark = f.gw.mark();
    f.files
        .write("edge.agent-secret", "edge-agent-token-rotated");
    f.connected(mark, "edge").await;
    let mut held = Held::open(&f.kubectl(), "default", "shell-0", "cat").await;
    held.echoes("after the rotation").await;

    // A reload that removes the cluster cuts its tunnel at once, and the agent is refused.
    let agent_mark = agent.mark();
    let config = f.config.clone().without("edge");
    f.gw.reload(|| f.files.write_config(&config)).await;
    let out = held.ended(Duration::from_secs(30)).await;
    assert_ne!(out.code, 0, "{}", out.stderr);
    let line = agent
        .line_after(agent_mark, UP, "refused the tunnel: HTTP 403")
        .await;
    assert!(line.contains("serves no cluster"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_keeps_a_tunnel_to_every_replica_and_follows_the_name() {
    use podgate::agent::{Options, Resolver, run_with};
    use std::sync::{Arc, Mutex};
    let edge = serve::cluster("edge").await;
    let files = serve::setup(&Config::new(&[]).agent_cluster("edge"));
    files.write_agent_token("edge", TOKEN);
    // Two replicas of one installation: the same files, each its own port.
    let a = serve::start(Path::new(PODGATE), &files).await;
    let b = serve::start(Path::new(PODGATE), &files).await;
    // What the gateway's name resolves to (a headless Service's records), changed below.
    let records = Arc::new(Mutex::new(vec![a.addr, b.addr]));
    let answer = records.clone();
    let resolver = Resolver {
        every: Duration::from_millis(200),
        resolve: Arc::new(move |_, _| {
            let found = answer.lock().expect("records").clone();
            Box::pin(async move { Ok(found) })
        }),
    };
    let kubeconfig = files.write("agent.kubeconfig", &edge.kubeconfig().to_yaml());
    let ca = files.write("agent-ca.crt", &files.ca_pem);
    let stop = tokio_util::sync::CancellationToken::new();
    let (mark_a, mark_b) = (a.mark(), b.mark());
    let agent = tokio::spawn(run_with(
        Options {
            gateway: a.url.clone(),
            cluster: "edge".into(),
            token_file: files.path("edge.agent-token"),
            ca_file: Some(ca),
            kubeconfig: Some(kubeconfig),
            context: Some("podgate".into()),
        },
        stop.clone(),
        resolver,
    ));
    logged(&a, mark_a, "agent connected", "edge").await;
    logged(&b, mark_b, "agent connected", "edge").await;
    // Either replica routes to the cluster, with no state shared between them.
    let mut on_a = Held::open(&a.kubectl("edge", ADMIN.token), "default", "shell-0", "cat").await;
    on_a.echoes("through replica a").await;
    let mut on_b = Held::open(&b.kubectl("edge", ADMIN.token), "default", "shell-0", "cat").await;
    on_b.echoes("through replica b").await;

    // Replica b leaves the name: the agent closes its tunnel there; a keeps serving.
    let mark = b.mark();
    *records.lock().expect("records") = vec![a.addr];
    logged(&b, mark, "agent disconnected", "edge").await;
    let out = on_b.ended(Duration::from_secs(30)).await;
    assert_ne!(
        out.code, 0,
        "a session on a closed tunnel exited 0: {}",
        out.stderr
    );
    on_a.echoes("replica a still serves").await;
    // And b comes back into the name: a tunnel again.
    let mark = b.mark();
    *records.lock().expect("records") = vec![a.addr, b.addr];
    logged(&b, mark, "agent connected", "edge").await;
    let mut on_b = Held::open(&b.kubectl("edge", ADMIN.token), "default", "shell-0", "cat").await;
    on_b.echoes("replica b again").await;

    stop.cancel();
    let ended = tokio::time::timeout(Duration::from_secs(20), agent)
        .await
        .expect("the agent stops when told");
    assert!(matches!(ended, Ok(Ok(()))), "{ended:?}");
}

/// A tunnel whose link goes silent (a NAT that dropped its mapping, a cable pulled) is found
/// dead by the keepalive pings, within their bound, and its sessions end with an error; the
/// agent comes back once the link does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_tunnel_is_found_dead_and_its_sessions_end() {
    let f = fixture().await;
    let link = podgate_testkit::link::Link::to(f.gw.addr).await;
    let token = f.agent_token("edge", TOKEN);
    let mark = f.gw.mark();
    let _agent = AgentSpec {
        bin: Path::new(PODGATE),
        gateway: &f.gw,
        url: Some(format!("https://{}", link.addr())),
        cluster: "edge",
        token_file: &token,
        kubeconfig: f.kubeconfig.clone(),
        netns: None,
        ca_pem: None,
    }
    .start();
    f.connected(mark, "edge").await;
    let mut held = Held::open(&f.kubectl(), "default", "shell-0", "cat").await;
    held.echoes("before the silence").await;

    let mark = f.gw.mark();
    link.go_silent().await;
    let silent_at = std::time::Instant::now();
    let line = logged(&f.gw, mark, "agent disconnected", "edge").await;
    let bound = podgate::tunnel::KEEPALIVE + podgate::tunnel::KEEPALIVE_TIMEOUT;
    assert!(
        silent_at.elapsed() < bound + Duration::from_secs(10),
        "found dead after {:?} (bound {bound:?}): {line}",
        silent_at.elapsed()
    );
    let out = held.ended(Duration::from_secs(30)).await;
    assert_ne!(
        out.code, 0,
        "a session on a dead tunnel exited 0: {}",
        out.stderr
    );

    let mark = f.gw.mark();
    link.restore();
    f.connected(mark, "edge").await;
    let mut held = Held::open(&f.kubectl(), "default", "shell-0", "cat").await;
    held.echoes("after the link came back").await;
}

/// Shells whose readers stopped reading hold only their own streams' windows: other sessions
/// and requests on the same tunnel go on (HTTP/2's connection window is not theirs to use up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_readers_do_not_stall_the_tunnel() {
    /// More than one connection window of hyper's defaults (5 MiB) at their stream window
    /// (2 MiB): with those, these alone would stop the tunnel.
    const STALLED: usize = 12;
    let f = fixture().await;
    let token = f.agent_token("edge", TOKEN);
    let mark = f.gw.mark();
    let _agent = f.agent("edge", &token);
    f.connected(mark, "edge").await;
    let mut floods = Vec::new();
    for _ in 0..STALLED {
        // Its stdout is piped and never read.
        let child = f
            .kubectl()
            .command(&["exec", "shell-0", "--", "yes", "podgate"])
            .spawn()
            .expect("kubectl starts");
        floods.push(child);
    }
    // Stalled: every flood's relayed stdout has stopped growing.
    let mut last: Option<Vec<u64>> = None;
    let stalled = wait_until(
        Duration::from_secs(60),
        Duration::from_millis(500),
        async || {
            let sessions = f.gw.admin_get("/debug/sessions").await.json();
            let mut now: Vec<u64> = sessions["sessions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s["command"][0] == "yes")
                .map(|s| s["bytes"]["stdout"].as_u64().unwrap_or(0))
                .collect();
            now.sort_unstable();
            let same = now.len() == STALLED && now[0] > 0 && last.as_ref() == Some(&now);
            last = Some(now);
            same
        },
    )
    .await;
    assert!(stalled, "the floods never stalled: {last:?}");
    // Another shell on the same tunnel relays, and a request is answered.
    let mut held = Held::open(&f.kubectl(), "default", "shell-0", "cat").await;
    held.echoes("past twelve stalled readers").await;
    let out = f.kubectl().run(&["get", "pods"], b"").await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    for mut flood in floods {
        let _ = flood.kill().await;
    }
}

/// The agent verifies the gateway: one that trusts another CA (a gateway impostor, a
/// misconfigured ConfigMap) never opens a tunnel and says why; two agents for one cluster both
/// serve it, and losing one leaves it served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_verify_the_gateway_and_several_serve_one_cluster() {
    let f = fixture().await;
    let token = f.agent_token("edge", TOKEN);
    let other_ca = podgate_devcluster::tls::generate_pem(&["127.0.0.1".into()])
        .expect("a cert")
        .ca_pem;
    let mark = f.gw.mark();
    let distrustful = AgentSpec {
        bin: Path::new(PODGATE),
        gateway: &f.gw,
        url: None,
        cluster: "edge",
        token_file: &token,
        kubeconfig: f.kubeconfig.clone(),
        netns: None,
        ca_pem: Some(other_ca),
    }
    .start();
    let line = distrustful.line_after(0, UP, "cannot connect").await;
    assert!(
        line.contains("TLS") && line.contains("certificate"),
        "{line}"
    );
    assert!(
        !f.gw
            .log()
            .iter()
            .skip(mark)
            .any(|l| l.contains("agent connected")),
        "an agent that does not trust the gateway got a tunnel"
    );
    drop(distrustful);

    let mark = f.gw.mark();
    let mut one = f.agent("edge", &token);
    f.connected(mark, "edge").await;
    let mark = f.gw.mark();
    let _two = f.agent("edge", &token);
    f.connected(mark, "edge").await;
    assert_eq!(f.listed("edge").await["agent"]["connected"], 2);
    // Sessions over the two tunnels (requests take turns: `links.rs` tests the order), then
    // one agent dies: the sessions it carried end with an error, the others go on.
    let mut held = Vec::new();
    for i in 0..4 {
        let mut h = Held::open(&f.kubectl(), "default", "shell-0", "cat").await;
        h.echoes(&format!("session {i}")).await;
        held.push(h);
    }
    let mark = f.gw.mark();
    one.kill();
    logged(&f.gw, mark, "agent disconnected", "edge").await;
    for (i, mut h) in held.into_iter().enumerate() {
        // Each either still relays or has ended (or ends now) with a failure, never exit 0.
        if h.running() && h.try_echo(&format!("session {i} after the kill")).await {
            continue;
        }
        let out = h.ended(Duration::from_secs(30)).await;
        assert_ne!(
            out.code, 0,
            "session {i} on the killed agent exited 0: {}",
            out.stderr
        );
    }
    let mut after = Held::open(&f.kubectl(), "default", "shell-0", "cat").await;
    after.echoes("a new session on the agent left").await;
    assert_eq!(f.listed("edge").await["agent"]["connected"], 1);
}
