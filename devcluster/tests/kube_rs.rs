//! kube-rs speaks to the devcluster as to a real cluster: exec, attach, resize, exit status.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams, AttachedProcess, TerminalSize};
use podgate_testkit::devcluster::start;
use podgate_testkit::tty;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Sets the terminal of `p` to `(width, height)`, waits until its shell reports that size
/// (`what` names the session in the failure), types `exit` and returns the status it ends with.
async fn resize_then_exit(
    p: &mut AttachedProcess,
    (width, height): (u16, u16),
    exit: &[u8],
    what: &str,
) -> Status {
    let status = p.take_status().expect("status");
    let mut size = p.terminal_size().expect("a tty has a size channel");
    let mut stdin = p.stdin().expect("stdin");
    let mut stdout = p.stdout().expect("stdout");
    futures_util::SinkExt::send(&mut size, TerminalSize { width, height })
        .await
        .expect("resize");
    let want = format!("{height} {width}");
    assert!(
        tty::until_size(&mut stdin, &mut stdout, &want, "\n").await,
        "{what} never saw {width}x{height}"
    );
    stdin.write_all(exit).await.expect("typed");
    tokio::time::timeout(Duration::from_secs(20), status)
        .await
        .expect("the session ends in time")
        .expect("a status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_with_resize_and_exit_status() {
    let env = start().await;
    let pods: Api<Pod> = Api::namespaced(env.kube_client("admin").await, "default");
    let pod = pods.get("shell-0").await.expect("get pod");
    assert_eq!(pod.status.and_then(|s| s.phase).as_deref(), Some("Running"));

    let mut p = pods
        .exec("shell-0", ["sh"], &AttachParams::interactive_tty())
        .await
        .expect("exec");
    let st = resize_then_exit(&mut p, (123, 45), b"exit 4\n", "the pod").await;
    assert_eq!(st.reason.as_deref(), Some("NonZeroExitCode"));
    let code = st
        .details
        .and_then(|d| d.causes)
        .and_then(|c| c.into_iter().next())
        .and_then(|c| c.message);
    assert_eq!(code.as_deref(), Some("4"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_pipes_success_and_stdin_half_close() {
    let env = start().await;
    let pods: Api<Pod> = Api::namespaced(env.kube_client("admin").await, "default");
    let mut p = pods
        .exec(
            "shell-0",
            ["sh", "-c", "tr a-z A-Z; echo done >&2"],
            &AttachParams::default().stdin(true).stderr(true),
        )
        .await
        .expect("exec");
    let mut stdin = p.stdin().expect("stdin");
    let mut stdout = p.stdout().expect("stdout");
    let mut stderr = p.stderr().expect("stderr");
    let status = p.take_status().expect("status");
    stdin.write_all(b"hello kube-rs").await.unwrap();
    stdin.shutdown().await.unwrap(); // v5: [255, 0], so tr sees EOF.
    let mut out = String::new();
    let mut err = String::new();
    let (a, b) = tokio::join!(
        stdout.read_to_string(&mut out),
        stderr.read_to_string(&mut err)
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(out, "HELLO KUBE-RS");
    assert_eq!(err, "done\n");
    let st = status.await.expect("a status");
    assert_eq!(st.status.as_deref(), Some("Success"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_with_resize() {
    let env = start().await;
    let pods: Api<Pod> = Api::namespaced(env.kube_client("admin").await, "default");
    let mut p = pods
        .attach("shell-0", &AttachParams::interactive_tty())
        .await
        .expect("attach");
    let st = resize_then_exit(&mut p, (77, 22), b"exit\n", "attach").await;
    assert_eq!(st.status.as_deref(), Some("Success"));

    // The builtin echo container over attach.
    let load: Api<Pod> = Api::namespaced(env.kube_client("admin").await, "load");
    let mut p = load
        .attach("echo-0", &AttachParams::default().stdin(true).stderr(false))
        .await
        .expect("attach echo");
    let mut stdin = p.stdin().expect("stdin");
    let mut stdout = p.stdout().expect("stdout");
    stdin.write_all(b"ping\xff\x00").await.unwrap();
    let mut buf = [0u8; 6];
    tokio::time::timeout(Duration::from_secs(10), stdout.read_exact(&mut buf))
        .await
        .expect("echo in time")
        .unwrap();
    assert_eq!(&buf, b"ping\xff\x00");
}
