//! Real kubectl is the judge: every version we ship against must see a real API server.

use podgate_testkit::devcluster::start;
use podgate_testkit::kubectl::{self, Input};
use podgate_testkit::tty::until_size;
use std::path::Path;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_streams_and_exit_code() {
    let env = start().await;
    for k in kubectl::binaries() {
        let out = env.kubectl(&k).sh(kubectl::STREAMS).await;
        out.assert_streams_apart(&k.display().to_string());
    }
}

/// A pod's processes see a container's environment, not the host user's: their own HOME (so
/// no host rc files or history), the pod's hostname, and nothing else the host process has.
/// `yes | kubectl exec -i ... -- head -c 2`: the process exits while kubectl is still sending
/// stdin. The devcluster sends the exit status and its close frame, then reads (and drops) what
/// kubectl still sends until kubectl's close frame, before it closes the connection: had it
/// closed with stdin unread, its kernel would answer with a TCP RST, and kubectl's kernel may
/// drop the status and the close before kubectl reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_status_arrives_while_stdin_still_flows() {
    let env = start().await;
    let (mut runs_total, mut noisy) = (0, 0);
    for (i, k) in kubectl::binaries().into_iter().enumerate() {
        // 30 runs of each on the default kubectl; fewer on the pinned ones.
        let runs = if i == 0 { 30 } else { 10 };
        for run in 0..runs {
            for (script, code, stderr) in [
                ("head -c 2", 0, ""),
                (
                    "head -c 2; exit 3",
                    3,
                    "command terminated with exit code 3\n",
                ),
            ] {
                let args = [
                    "exec", "-i", "-n", "default", "shell-0", "--", "sh", "-c", script,
                ];
                let out = env.kubectl(&k).run(&args, Input::Yes).await;
                let (rest, noise) = without_close_sent(&out.stderr);
                runs_total += 1;
                noisy += usize::from(noise);
                assert_eq!(
                    (out.code, out.stdout.as_slice(), rest.as_str()),
                    (code, &b"y\n"[..], stderr),
                    "{} run {run} of {script:?}; stderr: {}",
                    k.display(),
                    out.stderr
                );
            }
        }
    }
    eprintln!("{noisy} of {runs_total} runs logged a stdin write after the end");
}

/// kubectl's stdin goroutine may still write once the session is over, and client-go logs
/// the failed write (`v2.go:104] "Unhandled Error" err="websocket: close sent"`, `v2.go:104]
/// websocket: close sent`, or `write on closed stream 0`): the exit status and output are
/// complete by then. kubectl 1.30 also logs `websocket.go:296] Unknown stream id 1, discarding
/// message` when a frame arrives before it registered its streams (kubernetes#131189): the
/// server's empty "ready" frame, as the asserted output shows nothing else was lost. Returns
/// stderr without those lines, and whether there were any.
fn without_close_sent(stderr: &str) -> (String, bool) {
    let mut noise = false;
    let rest: String = stderr
        .split_inclusive('\n')
        .filter(|l| {
            // client-go's copyStdin in remotecommand/v2.go, as klog prints it by version.
            let is = (l.contains(" v2.go:")
                && (l.contains("websocket: close sent") || l.contains("write on closed stream 0")))
                || (l.contains(" websocket.go:") && l.contains("Unknown stream id"));
            noise |= is;
            !is
        })
        .collect();
    (rest, noise)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_processes_get_their_own_environment() {
    let env = start().await;
    let k = &kubectl::binaries()[0];
    let script = "echo \"home=$HOME\"; echo \"host=$HOSTNAME\"; \
                  echo \"pkg=${CARGO_PKG_NAME:-none}\"; [ \"$PWD\" = \"$HOME\" ] && echo same";
    let out = env.kubectl(k).sh(script).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    let home = std::env::var("HOME").unwrap_or_default();
    assert!(!text.contains(&format!("home={home}\n")), "{text}");
    assert!(text.contains("host=shell-0\n"), "{text}");
    // cargo sets CARGO_PKG_NAME for this test process; the pod must not inherit it.
    assert!(text.contains("pkg=none\n"), "{text}");
    assert!(text.contains("same\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_stdin_round_trips_byte_exact() {
    let env = start().await;
    // Every byte value, in a pattern that is not periodic in 2^n.
    let data: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for k in kubectl::binaries() {
        let out = env
            .kubectl(&k)
            .run(&["exec", "-i", "shell-0", "--", "cat"], &data)
            .await;
        assert_eq!(out.code, 0, "{}: {}", k.display(), out.stderr);
        assert!(
            out.stdout == data,
            "{}: got {} bytes back, not the same 1 MiB",
            k.display(),
            out.stdout.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_and_not_found_messages() {
    let env = start().await;
    for k in kubectl::binaries() {
        let out = env
            .kubectl(&k)
            .run(&["--context", "bob", "exec", "shell-0", "--", "true"], b"")
            .await;
        assert_ne!(out.code, 0);
        assert!(
            out.stderr.contains(
                r#"Error from server (Forbidden): pods "shell-0" is forbidden: User "bob" cannot"#
            ) && out
                .stderr
                .contains(r#"resource "pods/exec" in API group "" in the namespace "default""#),
            "{}: {}",
            k.display(),
            out.stderr
        );
        let out = env.kubectl(&k).run(&["get", "pod", "nope"], b"").await;
        out.assert_fails_saying(
            &[r#"Error from server (NotFound): pods "nope" not found"#],
            "",
        );
        let out = env
            .kubectl(&k)
            .run(&["exec", "multi-0", "-c", "nope", "--", "true"], b"")
            .await;
        assert!(
            out.stderr
                .contains("container nope is not valid for pod multi-0"),
            "{}",
            out.stderr
        );
        // alice may exec in default but not in shop.
        let out = env
            .kubectl(&k)
            .run(
                &["--context", "alice", "exec", "shell-0", "--", "true"],
                b"",
            )
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = env
            .kubectl(&k)
            .run(
                &[
                    "--context",
                    "alice",
                    "-n",
                    "shop",
                    "exec",
                    "web-0",
                    "--",
                    "true",
                ],
                b"",
            )
            .await;
        assert!(
            out.stderr.contains(r#"User "alice" cannot"#),
            "{}",
            out.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_pods_lists_every_namespace() {
    let env = start().await;
    for k in kubectl::binaries() {
        let out = env.kubectl(&k).run(&["get", "pods", "-A"], b"").await;
        out.assert_lists_every_namespace(&k.display().to_string());
        // bob may list; an unauthenticated user may not.
        let out = env
            .kubectl(&k)
            .run(
                &[
                    "--context",
                    "bob",
                    "get",
                    "pods",
                    "-n",
                    "shop",
                    "-o",
                    "name",
                ],
                b"",
            )
            .await;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).lines().count(),
            2,
            "{}",
            out.stderr
        );
        let out = env
            .kubectl(&k)
            .run(&["--token", "wrong", "get", "pods"], b"")
            .await;
        assert!(
            out.stderr.contains("Unauthorized") || out.stderr.contains("provide credentials"),
            "{}",
            out.stderr
        );
    }
}

/// `kubectl exec -it` under a real pseudo-terminal: the pod sees the window size, and follows
/// a resize of the local terminal (SIGWINCH → stream 4 → TIOCSWINSZ).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_tty_follows_window_size() {
    use tokio::io::AsyncWriteExt as _;
    let env = start().await;
    for k in kubectl::binaries() {
        let mut tty = env
            .kubectl(&k)
            .pty(&["exec", "-it", "shell-0", "--", "sh"], 31, 97);
        // kubectl sends the window size as soon as it connects; the devcluster waits a moment
        // for it before starting the shell, but under load it may come later, as it may on a
        // real cluster: ask until the shell reports it.
        assert!(
            until_size(&mut tty.write, &mut tty.read, "31 97", "\r").await,
            "{}: the pod never saw 97x31",
            k.display()
        );
        tty.write
            .resize(pty_process::Size::new(40, 120))
            .expect("resize");
        // The resize travels asynchronously (SIGWINCH, stream 4, TIOCSWINSZ): ask until seen.
        let ok = until_size(&mut tty.write, &mut tty.read, "40 120", "\r").await;
        assert!(ok, "{}: the pod never saw 40x120", k.display());
        tty.write.write_all(b"exit 7\r").await.expect("typed");
        assert_eq!(
            tty.exit_code(Duration::from_secs(20)).await,
            Some(7),
            "{}",
            k.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_apply() {
    let env = start().await;
    for k in kubectl::binaries() {
        let out = env
            .kubectl(&k)
            .run(&["logs", "multi-0", "-c", "sidecar"], b"")
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .starts_with("devcluster multi-0/sidecar: log line 1")
        );
        let out = env
            .kubectl(&k)
            .run(&["logs", "shell-0", "--tail", "1"], b"")
            .await;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "devcluster shell-0/main: log line 3\n"
        );

        let name = format!(
            "cm-{}",
            k.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("k")
                .replace('.', "-")
        );
        let yaml = |v: &str| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: {v}\n")
        };
        let out = env
            .kubectl(&k)
            .run(&["apply", "-f", "-"], yaml("one").as_bytes())
            .await;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("configmap/{name} created"),
            "{}",
            out.stderr
        );
        let out = env
            .kubectl(&k)
            .run(&["apply", "-f", "-"], yaml("two").as_bytes())
            .await;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("configmap/{name} configured"),
            "{}",
            out.stderr
        );
        let out = env
            .kubectl(&k)
            .run(
                &["get", "configmap", &name, "-o", "jsonpath={.data.k}"],
                b"",
            )
            .await;
        assert_eq!(out.stdout, b"two");
        let out = env
            .kubectl(&k)
            .run(
                &["--context", "bob", "apply", "-f", "-"],
                yaml("three").as_bytes(),
            )
            .await;
        assert!(out.stderr.contains("forbidden"), "{}", out.stderr);
        let out = env
            .kubectl(&k)
            .run(&["delete", "configmap", &name], b"")
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
}

/// `logs -f` keeps streaming new lines until the client leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_streams() {
    use tokio::io::AsyncBufReadExt as _;
    let env = start().await;
    let mut child = env
        .kubectl(Path::new(kubectl::DEFAULT))
        .command(&["logs", "-f", "shell-0"])
        .spawn()
        .expect("kubectl");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        let mut n = 0;
        while let Ok(Some(l)) = lines.next_line().await {
            n += 1;
            if l.ends_with("log line 6") {
                return n;
            }
        }
        n
    })
    .await
    .expect("six lines within 20 s");
    assert_eq!(got, 6);
    let _ = child.kill().await;
}
