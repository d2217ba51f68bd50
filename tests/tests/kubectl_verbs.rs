//! The rest of kubectl's interactive verbs through podgate: `auth whoami`, `auth can-i` (and
//! `--list`) answered for the impersonated person, also where the edge policy restricts
//! namespaces (self reviews are questions about oneself), and `kubectl debug` (an ephemeral
//! container, then an attach to it).

use podgate_config::AccessPolicy;
use podgate_testkit::gateway::{ADMIN, ALICE, BOB, Builder, Cluster};
use podgate_testkit::kubectl::DEFAULT;
use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_whoami_and_can_i_answer_for_the_person_not_the_gateway() {
    if !podgate_testkit::kubectl::available() {
        return;
    }
    let env = Builder::new()
        .cluster(Cluster::new("dev-east"))
        .cluster(Cluster::new("default-only").access(AccessPolicy {
            namespaces: vec!["default".into()],
            ..Default::default()
        }))
        .start()
        .await;
    let k = |token: &str, ctx: &str| env.kubectl(Path::new(DEFAULT), token, ctx);
    for ctx in ["dev-east", "default-only"] {
        // whoami: the impersonated person, never the gateway's own identity.
        let out = k(ALICE, ctx).run(&["auth", "whoami"], b"").await;
        assert_eq!(out.code, 0, "{ctx}: {}", out.stderr);
        let text = out.text();
        assert!(
            text.contains("alice") && text.contains("dev"),
            "{ctx}: {text}"
        );
        assert!(!text.contains("podgate"), "{ctx}: {text}");
        // can-i: the cluster's rules for alice (exec in `default` only).
        let yes = k(ALICE, ctx)
            .run(
                &[
                    "auth",
                    "can-i",
                    "create",
                    "pods",
                    "--subresource=exec",
                    "-n",
                    "default",
                ],
                b"",
            )
            .await;
        assert_eq!(
            (yes.code, yes.text().trim()),
            (0, "yes"),
            "{ctx}: {}",
            yes.stderr
        );
        let list = k(ALICE, ctx)
            .run(&["auth", "can-i", "--list", "-n", "default"], b"")
            .await;
        assert_eq!(list.code, 0, "{ctx}: {}", list.stderr);
        assert!(list.text().contains("pods/exec"), "{ctx}: {}", list.text());
    }
    let no = k(ALICE, "dev-east")
        .run(
            &[
                "auth",
                "can-i",
                "create",
                "pods",
                "--subresource=exec",
                "-n",
                "shop",
            ],
            b"",
        )
        .await;
    assert_eq!((no.code, no.text().trim()), (1, "no"), "{}", no.stderr);
    let bob = k(BOB, "dev-east")
        .run(
            &[
                "auth",
                "can-i",
                "create",
                "pods",
                "--subresource=exec",
                "-n",
                "default",
            ],
            b"",
        )
        .await;
    assert_eq!(bob.text().trim(), "no", "{}", bob.stderr);
    let admin = k(ADMIN, "dev-east").run(&["auth", "whoami"], b"").await;
    assert!(admin.text().contains("system:masters"), "{}", admin.text());
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_debug_adds_an_ephemeral_container_and_attaches_through_podgate() {
    if !podgate_testkit::kubectl::available() {
        return;
    }
    let env = Builder::new()
        .cluster(Cluster::new("dev-east"))
        .start()
        .await;
    let admin = env.kubectl(Path::new(DEFAULT), ADMIN, "dev-east");
    let out = admin
        .run(
            &[
                "debug",
                "-i",
                "shell-0",
                "--image=busybox",
                "--target=main",
                "--container=dbg",
                "--",
                "sh",
                "-c",
                "read x; echo debug-saw-$x",
            ],
            b"hello\n",
        )
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.text().contains("debug-saw-hello"), "{}", out.text());
    let pod = admin
        .run(
            &[
                "get",
                "pod",
                "shell-0",
                "-o",
                "jsonpath={.spec.ephemeralContainers[*].name}/{.spec.ephemeralContainers[*].image}",
            ],
            b"",
        )
        .await;
    assert_eq!(pod.text().trim(), "dbg/busybox", "{}", pod.stderr);
    // A second one by the same name is the cluster's 422.
    let again = admin
        .run(
            &[
                "debug",
                "shell-0",
                "--image=alpine",
                "--container=dbg",
                "--",
                "true",
            ],
            b"",
        )
        .await;
    again.assert_fails_saying(&["dbg"], "a changed ephemeral container");
    // alice may exec in default, but not add containers.
    let alice = env.kubectl(Path::new(DEFAULT), ALICE, "dev-east");
    let denied = alice
        .run(&["debug", "shell-0", "--image=busybox", "--", "true"], b"")
        .await;
    denied.assert_fails_saying(
        &["cannot patch resource \"pods/ephemeralcontainers\""],
        "alice",
    );
    assert!(env.sessions_end(std::time::Duration::from_secs(30)).await);
    env.shutdown().await;
}

/// `kubectl debug -it POD --image=busybox --target=main -- sh` under a real terminal: the
/// shell in the ephemeral container answers what is typed, and kubectl ends with it (attach
/// reports no exit code: kubectl exits 0, as against a real cluster).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_debug_it_gives_a_shell_through_podgate() {
    if !podgate_testkit::kubectl::available() {
        return;
    }
    use tokio::io::AsyncWriteExt as _;
    let env = Builder::new()
        .cluster(Cluster::new("dev-east"))
        .start()
        .await;
    let mut tty = env.kubectl(Path::new(DEFAULT), ADMIN, "dev-east").pty(
        &[
            "debug",
            "-it",
            "shell-0",
            "--image=busybox",
            "--target=main",
            "--",
            "sh",
        ],
        24,
        80,
    );
    let t = std::time::Duration::from_secs(30);
    let mut seen = Vec::new();
    podgate_testkit::wait::read_until(&mut tty.read, &mut seen, t, "kubectl's prompt hint", |s| {
        s.contains("If you don't see a command prompt")
    })
    .await;
    tty.write
        .write_all(b"echo in-$((6*7))-debug\r")
        .await
        .expect("typed");
    podgate_testkit::wait::read_until(&mut tty.read, &mut seen, t, "the shell's answer", |s| {
        s.contains("in-42-debug")
    })
    .await;
    tty.write.write_all(b"exit\r").await.expect("typed");
    assert_eq!(tty.exit_code(t).await, Some(0));
    assert!(env.sessions_end(t).await);
    env.shutdown().await;
}
