//! Clusters behind NAT: a devcluster whose address only its `podgate agent` is given, the
//! agent dialling out to `podgate serve`, and real kubectl through gateway → tunnel → agent →
//! devcluster. The agent is killed mid-session and started again; wrong, foreign and revoked
//! tokens are refused; a reload that drops the cluster cuts its tunnel.

use podgate_devcluster::DevCluster;
use podgate_testkit::agent::{Agent, AgentSpec};
use podgate_testkit::kubectl;
use podgate_testkit::serve::{self, ADMIN, Config, Files, Held, Serve};
use podgate_testkit::tty::until_size;
use podgate_testkit::wait::{read_until, wait_until};
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
    edge: DevCluster,
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
        edge,
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
            kubeconfig: self.edge.kubeconfig().to_yaml(),
        }
        .start()
    }

    /// A token file of the agent's own (its Secret), holding `token`.
    fn agent_token(&self, name: &str, token: &str) -> PathBuf {
        self.files.write(&format!("{name}.agent-secret"), token)
    }

    /// Waits until the gateway logged a tunnel for `cluster` past `mark`.
    async fn connected(&self, mark: usize, cluster: &str) {
        let want = format!("cluster={cluster}");
        self.gw
            .line_after(mark, UP, "agent connected", |l| {
                l.contains("agent connected") && l.contains(&want)
            })
            .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_reaches_a_cluster_that_only_its_agent_can_reach() {
    let f = fixture().await;
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
    assert_eq!(
        f.edge.total_sessions(),
        2,
        "the two exec sessions ran on edge"
    );
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
