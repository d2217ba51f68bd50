//! Real kubectl (1.30, 1.32 through the dispatcher, 1.33) through the gateway to both demo
//! clusters: exec, attach, get, get -w, logs, logs -f, apply, and the cluster's own refusals.
//! Every kubectl × cluster pair runs concurrently.

use futures_util::future::join_all;
use podgate::app::demo::CLUSTER_IDS;
use podgate_testkit::gateway::{self, ADMIN, ALICE, BOB, Env};
use podgate_testkit::kubectl;
use podgate_testkit::tty::until_size;
use podgate_testkit::wait::read_until;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;

/// Every (kubectl, cluster) pair.
fn pairs() -> Vec<(PathBuf, &'static str)> {
    kubectl::binaries()
        .into_iter()
        .flat_map(|k| CLUSTER_IDS.map(|c| (k.clone(), c)))
        .collect()
}

/// Starts the demo and runs `check` for every (kubectl, cluster) pair at once, with the
/// pair's number and its label; returns the demo.
async fn each_pair(check: impl AsyncFn(&Env, usize, &Path, &'static str, &str)) -> Env {
    let env = gateway::demo().await;
    let (demo, check) = (&env, &check);
    join_all(
        pairs()
            .into_iter()
            .enumerate()
            .map(|(i, (k, ctx))| async move {
                let l = format!("{} → {ctx}", k.display());
                check(demo, i, &k, ctx, &l).await
            }),
    )
    .await;
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_keeps_streams_apart_and_passes_the_exit_code() {
    let env = each_pair(async |env, _, k, ctx, l| {
        let out = env.kubectl(k, ADMIN, ctx).sh(kubectl::STREAMS).await;
        out.assert_streams_apart(l);
    })
    .await;
    // Each cluster ran one session per kubectl: the gateway routed by the path's cluster id.
    for (i, dc) in env.clusters.iter().enumerate() {
        assert_eq!(
            dc.total_sessions(),
            kubectl::binaries().len() as u64,
            "sessions on {}",
            CLUSTER_IDS[i]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_stdin_round_trips_one_mib_of_binary_byte_exact() {
    // Every byte value, in a pattern that is not periodic in 2^n.
    let data: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    each_pair(async |env, _, k, ctx, l| {
        let out = env
            .kubectl(k, ADMIN, ctx)
            .run(&["exec", "-i", "shell-0", "--", "cat"], &data)
            .await;
        assert_eq!(out.code, 0, "{l}: {}", out.stderr);
        assert!(
            out.stdout == data,
            "{l}: got {} bytes back, not the same 1 MiB",
            out.stdout.len()
        );
    })
    .await;
}

/// `kubectl exec -it` under a real pseudo-terminal: the pod sees the window size, and follows
/// a resize of the local terminal (SIGWINCH → stream 4 through the gateway → TIOCSWINSZ).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_tty_sees_the_window_size_and_follows_a_resize() {
    each_pair(async |env, _, k, ctx, l| {
        let mut tty =
            env.kubectl(k, ADMIN, ctx)
                .pty(&["exec", "-it", "shell-0", "--", "sh"], 31, 97);
        let t = Duration::from_secs(20);
        // The shell's prompt: the session is up.
        let mut seen = Vec::new();
        read_until(&mut tty.read, &mut seen, t, "a prompt", |s| !s.is_empty()).await;
        // kubectl sends the first size and the typed line concurrently, so the first
        // answer may predate it.
        assert!(
            until_size(&mut tty.write, &mut tty.read, "31 97", "\r").await,
            "{l}: the pod never saw 31x97"
        );
        tty.write
            .resize(pty_process::Size::new(40, 120))
            .expect("resize");
        assert!(
            until_size(&mut tty.write, &mut tty.read, "40 120", "\r").await,
            "{l}: the pod never saw 40x120"
        );
        tty.write.write_all(b"exit 7\r").await.expect("typed");
        assert_eq!(tty.exit_code(t).await, Some(7), "{l}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_to_the_echo_container_echoes() {
    each_pair(async |env, _, k, ctx, l| {
        // stdin ends after the line: kubectl sends the close signal, echo exits 0.
        let out = env
            .kubectl(k, ADMIN, ctx)
            .run(
                &["attach", "-i", "-n", "load", "echo-0"],
                b"hello through podgate\n",
            )
            .await;
        assert_eq!(out.code, 0, "{l}: {}", out.stderr);
        assert!(
            out.text().contains("hello through podgate\n"),
            "{l}: stdout {:?}, stderr {:?}",
            out.text(),
            out.stderr
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_pods_lists_every_namespace() {
    each_pair(async |env, _, k, ctx, l| {
        let out = env
            .kubectl(k, ADMIN, ctx)
            .run(&["get", "pods", "-A"], b"")
            .await;
        out.assert_lists_every_namespace(l);
    })
    .await;
}

/// `kubectl get pods -w` prints the list, then keeps the watch open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_pods_watch_prints_the_list_and_stays_open() {
    each_pair(async |env, _, k, ctx, l| {
        let mut child = env
            .kubectl(k, ADMIN, ctx)
            .command(&["get", "pods", "-w", "-n", "load"])
            .spawn()
            .expect("kubectl starts");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut seen = Vec::new();
        let rows = |s: &str| {
            ["echo-0", "flood-0"].iter().all(|pod| {
                s.lines()
                    .any(|line| line.split_whitespace().next() == Some(*pod))
            })
        };
        read_until(
            &mut stdout,
            &mut seen,
            Duration::from_secs(30),
            "rows for echo-0 and flood-0",
            rows,
        )
        .await;
        // Staying open is the behaviour under test: a watch that failed or ended would
        // make kubectl exit within this second.
        let ended = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
        if let Ok(status) = ended {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use tokio::io::AsyncReadExt as _;
                let _ = e.read_to_string(&mut err).await;
            }
            panic!("{l}: kubectl get -w ended ({status:?}) after the list: {err}");
        }
        child.kill().await.expect("kill kubectl");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_print_the_containers_lines() {
    each_pair(async |env, _, k, ctx, l| {
        let out = env
            .kubectl(k, ADMIN, ctx)
            .run(&["logs", "shell-0"], b"")
            .await;
        assert_eq!(out.code, 0, "{l}: {}", out.stderr);
        assert!(
            out.text().lines().any(|line| !line.trim().is_empty()),
            "{l}: no log lines: {:?}",
            out.text()
        );
        // Exactly what the cluster itself gives (later flags override the helper's).
        let direct = env.dir.path().join(format!("direct-{ctx}.kubeconfig"));
        if !direct.exists() {
            env.cluster(ctx)
                .kubeconfig()
                .write(&direct)
                .expect("direct kubeconfig");
        }
        let direct = direct.to_str().expect("utf-8 path");
        let args = [
            "--kubeconfig",
            direct,
            "--context",
            "admin",
            "logs",
            "shell-0",
        ];
        let straight = env.kubectl(k, ADMIN, ctx).run(&args, b"").await;
        assert_eq!(straight.code, 0, "{l} (direct): {}", straight.stderr);
        assert_eq!(
            out.text(),
            straight.text(),
            "{l}: through podgate vs direct"
        );
    })
    .await;
}

/// `kubectl logs -f` keeps streaming: after it has started, two more lines arrive than the
/// container had logged at a moment when the follow stream was already open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_keeps_streaming_new_lines() {
    each_pair(async |env, _, k, ctx, l| {
        let mut child = env
            .kubectl(k, ADMIN, ctx)
            .command(&["logs", "-f", "shell-0"])
            .spawn()
            .expect("kubectl starts");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut seen = Vec::new();
        let lines = |s: &str| s.matches('\n').count();
        read_until(
            &mut stdout,
            &mut seen,
            Duration::from_secs(20),
            "a first line from logs -f",
            |s| lines(s) >= 1,
        )
        .await;
        // The follow stream is open now; whatever the log holds at this point it printed
        // or will print, and anything beyond came while following.
        let now = env
            .kubectl(k, ADMIN, ctx)
            .run(&["logs", "shell-0"], b"")
            .await;
        assert_eq!(now.code, 0, "{l}: {}", now.stderr);
        let n = lines(&now.text());
        read_until(
            &mut stdout,
            &mut seen,
            Duration::from_secs(30),
            &format!("{} lines (2 new ones) from logs -f", n + 2),
            |s| lines(s) >= n + 2,
        )
        .await;
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "{l}: logs -f ended"
        );
        child.kill().await.expect("kill kubectl");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_a_configmap_that_get_returns() {
    each_pair(async |env, i, k, ctx, l| {
            let name = format!("e2e-{i}");
            let value = format!("value {i} for {ctx}");
            let file = env.dir.path().join(format!("{name}.yaml"));
            std::fs::write(
                &file,
                format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\ndata:\n  k: \"{value}\"\n"
                ),
            )
            .expect("manifest written");
            let file = file.to_str().expect("utf-8 path");
            let out = env.kubectl(k, ADMIN, ctx).run(&["apply", "-f", file], b"").await;
            assert_eq!(out.code, 0, "{l}: {}", out.stderr);
            assert_eq!(out.text().trim(), format!("configmap/{name} created"), "{l}");
            let out = env.kubectl(k, ADMIN, ctx).run(&["get", "configmap", &name, "-o", "jsonpath={.data.k}"], b"")
            .await;
            assert_eq!(out.code, 0, "{l}: {}", out.stderr);
            assert_eq!(out.text(), value, "{l}");
    })
    .await;
}

/// The gateway accepts bob and alice; the cluster's RBAC (seen through impersonation)
/// decides, and kubectl prints the cluster's own message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clusters_rbac_decides_and_its_message_reaches_kubectl() {
    each_pair(async |env, _, k, ctx, l| {
            let out = env.kubectl(k, BOB, ctx).run(&["exec", "shell-0", "--", "true"], b"").await;
            out.assert_fails_saying(&[r#"pods "shell-0" is forbidden: User "bob" cannot get resource "pods/exec" in API group "" in the namespace "default""#], l);
            // bob may list pods.
            let out = env.kubectl(k, BOB, ctx).run(&["get", "pods", "-o", "name"], b"").await;
            assert_eq!(out.code, 0, "{l}: {}", out.stderr);
            assert!(out.text().contains("pod/shell-0"), "{l}: {}", out.text());
            // alice may exec in default, not in shop.
            let out = env.kubectl(k, ALICE, ctx).run(&["exec", "shell-0", "--", "true"], b"").await;
            assert_eq!(out.code, 0, "{l}: {}", out.stderr);
            let out = env.kubectl(k, ALICE, ctx).run(&["exec", "-n", "shop", "web-0", "--", "true"], b"")
            .await;
            out.assert_fails_saying(&[r#"pods "web-0" is forbidden: User "alice" cannot get resource "pods/exec" in API group "" in the namespace "shop""#], l);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_pod_and_missing_container_are_named() {
    each_pair(async |env, _, k, ctx, l| {
        let out = env
            .kubectl(k, ADMIN, ctx)
            .run(&["exec", "nope", "--", "true"], b"")
            .await;
        out.assert_fails_saying(&[r#"pods "nope" not found"#], l);
        let out = env
            .kubectl(k, ADMIN, ctx)
            .run(&["exec", "multi-0", "-c", "nope", "--", "true"], b"")
            .await;
        out.assert_fails_saying(&["container nope is not valid for pod multi-0"], l);
    })
    .await;
}
