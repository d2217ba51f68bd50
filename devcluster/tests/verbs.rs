//! Real kubectl and the Python client judge the devcluster's port-forward (SPDY/3.1 inside
//! WebSocket for kubectl 1.31+, the v4 channel protocol for Python), its self reviews (also
//! under impersonation, as a gateway sends them) and its ephemeral containers (`kubectl
//! debug`), directly, without a gateway.

use podgate_testkit::devcluster::start;
use podgate_testkit::portforward::{self, echo, fetch_pattern, http_get};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_port_forward_reaches_the_builtin_ports() {
    if !podgate_testkit::kubectl::available() {
        return;
    }
    let env = start().await;
    for k in portforward::websocket_kubectls() {
        let l = k.display().to_string();
        let pf = portforward::start(&env.kubectl(&k), "shop", "web-0", &[80, 7])
            .await
            .unwrap_or_else(|e| panic!("{l}: {e}"));
        let (status, body) = http_get(pf.local[0], "/").await.expect("GET /");
        assert!(status.contains(" 200 "), "{l}: {status}");
        assert_eq!(body, b"web-0\n", "{l}");
        let (status, _) = http_get(pf.local[0], "/nope").await.expect("GET /nope");
        assert!(status.contains(" 404 "), "{l}: {status}");
        assert_eq!(
            fetch_pattern(pf.local[0], 3 << 20).await.expect("3 MiB"),
            (3 << 20, true)
        );
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 256) as u8).collect();
        assert!(echo(pf.local[1], &data).await.expect("echo") == data, "{l}");
        pf.stop().await;
    }
    // A port nothing listens on: containerd's words, inside the kubelet's.
    let mut pf = portforward::start(
        &env.kubectl(std::path::Path::new(podgate_testkit::kubectl::DEFAULT)),
        "shop",
        "web-0",
        &[9],
    )
    .await
    .expect("the tunnel opens");
    let stderr = pf.fail_one_connection().await;
    assert!(
        stderr.contains("error forwarding port 9 to pod")
            && stderr.contains("failed to connect to localhost:9 inside namespace")
            && stderr.contains("connect: connection refused"),
        "{stderr}"
    );
    assert!(env.sessions_end(Duration::from_secs(30)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_clients_portforward_speaks_v4() {
    let Some(python) = podgate_testkit::python::python() else {
        return;
    };
    let env = start().await;
    let run = portforward::python(&python, &env.kubeconfig, None).await;
    assert_eq!(run.http, "web-0\n", "{run:?}");
    assert!(run.echoed, "{run:?}");
    assert!(
        run.refused
            .unwrap_or_default()
            .contains("connection refused")
    );
    assert!(env.sessions_end(Duration::from_secs(30)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_reviews_and_debug_answer_as_kube_apiserver() {
    if !podgate_testkit::kubectl::available() {
        return;
    }
    let env = start().await;
    let k = env.kubectl(std::path::Path::new(podgate_testkit::kubectl::DEFAULT));
    // As a gateway asks: its own identity impersonating alice.
    let who = k
        .run(
            &[
                "--context",
                "podgate",
                "--as",
                "alice",
                "--as-group",
                "dev",
                "auth",
                "whoami",
            ],
            b"",
        )
        .await;
    assert_eq!(who.code, 0, "{}", who.stderr);
    assert!(
        who.text().contains("alice") && !who.text().contains("podgate"),
        "{}",
        who.text()
    );
    for (ns, want) in [("default", "yes"), ("shop", "no")] {
        let out = k
            .run(
                &[
                    "--context",
                    "alice",
                    "auth",
                    "can-i",
                    "get",
                    "pods",
                    "--subresource=portforward",
                    "-n",
                    ns,
                ],
                b"",
            )
            .await;
        assert_eq!(out.text().trim(), want, "{ns}: {}", out.stderr);
    }
    let dbg = k
        .run(
            &[
                "debug",
                "-i",
                "shell-0",
                "--image=busybox",
                "--target=main",
                "--",
                "sh",
                "-c",
                "echo in-debug",
            ],
            b"",
        )
        .await;
    assert_eq!(dbg.code, 0, "{}", dbg.stderr);
    assert!(dbg.text().contains("in-debug"), "{}", dbg.text());
    let pod = k
        .run(
            &[
                "get",
                "pod",
                "shell-0",
                "-o",
                "jsonpath={.status.ephemeralContainerStatuses[0].state.running}",
            ],
            b"",
        )
        .await;
    assert!(pod.text().contains("startedAt"), "{}", pod.text());
}
