//! Real kubectl (1.30, 1.32 through the dispatcher, 1.33) through the gateway to both demo
//! clusters: exec, attach, get, get -w, logs, logs -f, apply, and the cluster's own refusals.
//! Every kubectl × cluster pair runs concurrently.

mod common;
use common::*;
use futures_util::future::join_all;
use podgate::app::demo::CLUSTER_IDS;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;

/// Every (kubectl, cluster) pair.
fn pairs() -> Vec<(PathBuf, &'static str)> {
    kubectls()
        .into_iter()
        .flat_map(|k| CLUSTER_IDS.map(|c| (k.clone(), c)))
        .collect()
}

fn label(k: &std::path::Path, ctx: &str) -> String {
    format!("{} → {ctx}", k.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_keeps_streams_apart_and_passes_the_exit_code() {
    podgate_devcluster::install_crypto_provider();
    let env = start_demo().await;
    let pairs = pairs();
    join_all(pairs.iter().map(|(k, ctx)| {
        let env = &env;
        async move {
            let out = kubectl(
                env,
                k,
                ADMIN,
                ctx,
                &[
                    "exec",
                    "shell-0",
                    "--",
                    "sh",
                    "-c",
                    "echo out; echo err >&2; exit 3",
                ],
                b"",
            )
            .await;
            let l = label(k, ctx);
            assert_eq!(out.code, 3, "{l}: {}", out.stderr);
            assert_eq!(out.text(), "out\n", "{l}");
            assert!(out.stderr.starts_with("err\n"), "{l}: {:?}", out.stderr);
            assert!(
                out.stderr.contains("command terminated with exit code 3"),
                "{l}: {}",
                out.stderr
            );
        }
    }))
    .await;
    // Each cluster ran one session per kubectl: the gateway routed by the path's cluster id.
    for (i, dc) in env.demo.clusters.iter().enumerate() {
        assert_eq!(
            dc.total_sessions(),
            kubectls().len() as u64,
            "sessions on {}",
            CLUSTER_IDS[i]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_stdin_round_trips_one_mib_of_binary_byte_exact() {
    podgate_devcluster::install_crypto_provider();
    let env = start_demo().await;
    // Every byte value, in a pattern that is not periodic in 2^n.
    let data: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let pairs = pairs();
    join_all(pairs.iter().map(|(k, ctx)| {
        let (env, data) = (&env, &data);
        async move {
            let out = kubectl(
                env,
                k,
                ADMIN,
                ctx,
                &["exec", "-i", "shell-0", "--", "cat"],
                data,
            )
            .await;
            let l = label(k, ctx);
            assert_eq!(out.code, 0, "{l}: {}", out.stderr);
            assert!(
                out.stdout == *data,
                "{l}: got {} bytes back, not the same 1 MiB",
                out.stdout.len()
            );
        }
    }))
    .await;
}

/// `kubectl exec -it` under a real pseudo-terminal: the pod sees the window size, and follows
/// a resize of the local terminal (SIGWINCH → stream 4 through the gateway → TIOCSWINSZ).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_tty_sees_the_window_size_and_follows_a_resize() {
    podgate_devcluster::install_crypto_provider();
    let env = start_demo().await;
    let pairs = pairs();
    join_all(pairs.iter().map(|(k, ctx)| {
        let env = &env;
        async move {
            let l = label(k, ctx);
            let (pty, pts) = pty_process::open().expect("pty");
            pty.resize(pty_process::Size::new(31, 97)).expect("resize");
            let mut child = pty_process::Command::new(k)
                .args(kubectl_args(env, ADMIN, ctx))
                .args(["exec", "-it", "shell-0", "--", "sh"])
                .env("HOME", env.dir.path())
                .kill_on_drop(true)
                .spawn(pts)
                .expect("kubectl under a pty");
            let (mut r, mut w) = pty.into_split();
            let t = Duration::from_secs(20);
            // The shell's prompt: the session is up.
            let mut seen = Vec::new();
            read_until(&mut r, &mut seen, t, "a prompt", |s| !s.is_empty()).await;
            // Asks the shell for its size until it reports `rows cols`. kubectl sends the
            // first size and the typed line concurrently, so the first answer may predate it.
            async fn sees(
                r: &mut pty_process::OwnedReadPty,
                w: &mut pty_process::OwnedWritePty,
                size: &str,
            ) -> bool {
                for _ in 0..50 {
                    let mut seen = Vec::new();
                    w.write_all(b"echo SIZE=$(stty size)=\r").await.unwrap();
                    read_until(
                        r,
                        &mut seen,
                        Duration::from_secs(20),
                        "a size report",
                        |s| {
                            s.split_once("=\r\n")
                                .is_some_and(|(_, after)| after.contains("=\r\n"))
                        },
                    )
                    .await;
                    if String::from_utf8_lossy(&seen).contains(&format!("SIZE={size}=")) {
                        return true;
                    }
                }
                false
            }
            assert!(
                sees(&mut r, &mut w, "31 97").await,
                "{l}: the pod never saw 31x97"
            );
            w.resize(pty_process::Size::new(40, 120)).expect("resize");
            assert!(
                sees(&mut r, &mut w, "40 120").await,
                "{l}: the pod never saw 40x120"
            );
            w.write_all(b"exit 7\r").await.unwrap();
            let status = tokio::time::timeout(t, child.wait())
                .await
                .expect("kubectl exits")
                .expect("status");
            assert_eq!(status.code(), Some(7), "{l}");
        }
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_to_the_echo_container_echoes() {
    podgate_devcluster::install_crypto_provider();
    let env = start_demo().await;
    let pairs = pairs();
    join_all(pairs.iter().map(|(k, ctx)| {
        let env = &env;
        async move {
            let l = label(k, ctx);
            // stdin ends after the line: kubectl sends the close signal, echo exits 0.
            let out = kubectl(
                env,
                k,
                ADMIN,
                ctx,
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
        }
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_pods_lists_every_namespace() {
    podgate_devcluster::install_crypto_provider();
    let env = start_demo().await;
    let pairs = pairs();
    join_all(pairs.iter().map(|(k, ctx)| {
        let env = &env;
        async move {
            let l = label(k, ctx);
            let out = kubectl(env, k, ADMIN, ctx, &["get", "pods", "-A"], b"").await;
            assert_eq!(out.code, 0, "{l}: {}", out.stderr);
            let text = out.text();
            let header: Vec<&str> = text
                .lines()
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            assert_eq!(
                header,
                ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"],
                "{l}: {text}"
            );
            for (ns, pod, ready) in [
                ("default", "shell-0", "1/1"),
                ("default", "multi-0", "2/2"),
                ("load", "echo-0", "1/1"),
                ("load", "flood-0", "1/1"),
                ("shop", "web-0", "1/1"),
            ] {
                assert!(
                    text.lines().any(|line| {
                        let c: Vec<&str> = line.split_whitespace().collect();
                        c.len() >= 4
                            && c[0] == ns
                            && c[1] == pod
                            && c[2] == ready
                            && c[3] == "Running"
                    }),
                    "{l}: {ns}/{pod} missing in:\n{text}"
                );
            }
        }
    }))
    .await;
}

/// `kubectl get pods -w` prints the list, then keeps the watch open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_pods_watch_prints_the_list_and_stays_open() {
    podgate_devcluster::install_crypto_provider();
    let env = start_demo().await;
    let pairs = pairs();
    join_all(pairs.iter().map(|(k, ctx)| {
        let env = &env;
        async move {
            let l = label(k, ctx);
            let mut child =
                kubectl_command(env, k, ADMIN, ctx, &["get", "pods", "-w", "-n", "load"])
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
        }
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_print_the_containers_lines() {
    podgate_devcluster::install_crypto_provider();
    let env = start_demo().await;
    let pairs = pairs();
    join_all(pairs.iter().map(|(k, ctx)| {
        let env = &env;
        async move {
            let l = label(k, ctx);
            let out = kubectl(env, k, ADMIN, ctx, &["logs", "shell-0"], b"").await;
            assert_eq!(out.code, 0, "{l}: {}", out.stderr);
            assert!(
                out.text().lines().any(|line| !line.trim().is_empty()),
                "{l}: no log lines: {:?}",
                out.text()
            );
            // Exactly what the cluster itself gives (later flags override the helper's).
            let i = CLUSTER_IDS.iter().position(|c| c == ctx).expect("cluster");
            let direct = env.dir.path().join(format!("direct-{ctx}.kubeconfig"));
            if !direct.exists() {
                env.demo.clusters[i]
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
            let straight = kubectl(env, k, ADMIN, ctx, &args, b"").await;
            assert_eq!(straight.code, 0, "{l} (direct): {}", straight.stderr);
            assert_eq!(
                out.text(),
                straight.text(),
                "{l}: through podgate vs direct"
            );
        }
    }))
    .await;
}

/// `kubectl logs -f` keeps streaming: after it has started, two more lines arrive than the
/// container had logged at a moment when the follow stream was already open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_keeps_streaming_new_lines() {
    podgate_devcluster::install_crypto_provider();
    let env = start_demo().await;
    let pairs = pairs();
    join_all(pairs.iter().map(|(k, ctx)| {
        let env = &env;
        async move {
            let l = label(k, ctx);
            let mut child = kubectl_command(env, k, ADMIN, ctx, &["logs", "-f", "shell-0"])
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
            let now = kubectl(env, k, ADMIN, ctx, &["logs", "shell-0"], b"").await;
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
        }
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_a_configmap_that_get_returns() {
    podgate_devcluster::install_crypto_provider();
    let env = start_demo().await;
    let pairs = pairs();
    join_all(pairs.iter().enumerate().map(|(i, (k, ctx))| {
        let env = &env;
        async move {
            let l = label(k, ctx);
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
            let out = kubectl(env, k, ADMIN, ctx, &["apply", "-f", file], b"").await;
            assert_eq!(out.code, 0, "{l}: {}", out.stderr);
            assert_eq!(out.text().trim(), format!("configmap/{name} created"), "{l}");
            let out = kubectl(
                env,
                k,
                ADMIN,
                ctx,
                &["get", "configmap", &name, "-o", "jsonpath={.data.k}"],
                b"",
            )
            .await;
            assert_eq!(out.code, 0, "{l}: {}", out.stderr);
            assert_eq!(out.text(), value, "{l}");
        }
    }))
    .await;
}

/// The gateway accepts bob and alice; the cluster's RBAC (seen through impersonation)
/// decides, and kubectl prints the cluster's own message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clusters_rbac_decides_and_its_message_reaches_kubectl() {
    podgate_devcluster::install_crypto_provider();
    let env = start_demo().await;
    let pairs = pairs();
    join_all(pairs.iter().map(|(k, ctx)| {
        let env = &env;
        async move {
            let l = label(k, ctx);
            let out = kubectl(env, k, BOB, ctx, &["exec", "shell-0", "--", "true"], b"").await;
            assert_ne!(out.code, 0, "{l}");
            assert!(
                out.stderr.contains(
                    r#"pods "shell-0" is forbidden: User "bob" cannot get resource "pods/exec" in API group "" in the namespace "default""#
                ),
                "{l}: {}",
                out.stderr
            );
            // bob may list pods.
            let out = kubectl(env, k, BOB, ctx, &["get", "pods", "-o", "name"], b"").await;
            assert_eq!(out.code, 0, "{l}: {}", out.stderr);
            assert!(out.text().contains("pod/shell-0"), "{l}: {}", out.text());
            // alice may exec in default, not in shop.
            let out = kubectl(env, k, ALICE, ctx, &["exec", "shell-0", "--", "true"], b"").await;
            assert_eq!(out.code, 0, "{l}: {}", out.stderr);
            let out = kubectl(
                env,
                k,
                ALICE,
                ctx,
                &["exec", "-n", "shop", "web-0", "--", "true"],
                b"",
            )
            .await;
            assert_ne!(out.code, 0, "{l}");
            assert!(
                out.stderr.contains(
                    r#"pods "web-0" is forbidden: User "alice" cannot get resource "pods/exec" in API group "" in the namespace "shop""#
                ),
                "{l}: {}",
                out.stderr
            );
        }
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_pod_and_missing_container_are_named() {
    podgate_devcluster::install_crypto_provider();
    let env = start_demo().await;
    let pairs = pairs();
    join_all(pairs.iter().map(|(k, ctx)| {
        let env = &env;
        async move {
            let l = label(k, ctx);
            let out = kubectl(env, k, ADMIN, ctx, &["exec", "nope", "--", "true"], b"").await;
            assert_ne!(out.code, 0, "{l}");
            assert!(
                out.stderr.contains(r#"pods "nope" not found"#),
                "{l}: {}",
                out.stderr
            );
            let out = kubectl(
                env,
                k,
                ADMIN,
                ctx,
                &["exec", "multi-0", "-c", "nope", "--", "true"],
                b"",
            )
            .await;
            assert_ne!(out.code, 0, "{l}");
            assert!(
                out.stderr
                    .contains("container nope is not valid for pod multi-0"),
                "{l}: {}",
                out.stderr
            );
        }
    }))
    .await;
}
