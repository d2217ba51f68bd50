//! kube-rs speaks to the devcluster as to a real cluster: exec, attach, resize, exit status.

mod common;
use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, TerminalSize};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

async fn read_until(r: &mut (impl tokio::io::AsyncRead + Unpin), needle: &str) -> String {
    let mut seen = Vec::new();
    let ok = tokio::time::timeout(Duration::from_secs(20), async {
        while !String::from_utf8_lossy(&seen).contains(needle) {
            let mut buf = [0u8; 4096];
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await;
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert_eq!(ok, Ok(true), "never saw {needle:?} in {text:?}");
    text
}

/// Asks the shell for its window size until it reports `want` (a resize travels
/// asynchronously), looking at everything it printed, within 20 s.
async fn until_size(
    stdin: &mut (impl tokio::io::AsyncWrite + Unpin),
    stdout: &mut (impl tokio::io::AsyncRead + Unpin),
    want: &str,
) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    while std::time::Instant::now() < deadline {
        stdin.write_all(b"echo S=$(stty size)=\n").await.unwrap();
        seen.push_str(&read_until(stdout, "=\r\n").await);
        if seen.contains(&format!("S={want}=")) {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_with_resize_and_exit_status() {
    let env = start().await;
    let pods: Api<Pod> = Api::namespaced(kube_client(&env, "admin").await, "default");
    let pod = pods.get("shell-0").await.expect("get pod");
    assert_eq!(pod.status.and_then(|s| s.phase).as_deref(), Some("Running"));

    let mut p = pods
        .exec("shell-0", ["sh"], &AttachParams::interactive_tty())
        .await
        .expect("exec");
    let mut size = p.terminal_size().expect("tty has a size channel");
    let mut stdin = p.stdin().expect("stdin");
    let mut stdout = p.stdout().expect("stdout");
    let status = p.take_status().expect("status");
    futures_util::SinkExt::send(
        &mut size,
        TerminalSize {
            width: 123,
            height: 45,
        },
    )
    .await
    .expect("resize");
    assert!(
        until_size(&mut stdin, &mut stdout, "45 123").await,
        "the pod never saw 123x45"
    );
    stdin.write_all(b"exit 4\n").await.unwrap();
    let st = tokio::time::timeout(Duration::from_secs(20), status)
        .await
        .expect("status in time")
        .expect("a status");
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
    let pods: Api<Pod> = Api::namespaced(kube_client(&env, "admin").await, "default");
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
    let pods: Api<Pod> = Api::namespaced(kube_client(&env, "admin").await, "default");
    let mut p = pods
        .attach("shell-0", &AttachParams::interactive_tty())
        .await
        .expect("attach");
    let status = p.take_status().expect("status");
    let mut size = p.terminal_size().expect("size channel");
    let mut stdin = p.stdin().expect("stdin");
    let mut stdout = p.stdout().expect("stdout");
    futures_util::SinkExt::send(
        &mut size,
        TerminalSize {
            width: 77,
            height: 22,
        },
    )
    .await
    .expect("resize");
    assert!(
        until_size(&mut stdin, &mut stdout, "22 77").await,
        "attach never saw 77x22"
    );
    stdin.write_all(b"exit\n").await.unwrap();
    let st = tokio::time::timeout(Duration::from_secs(20), status)
        .await
        .expect("attach ends")
        .expect("a status");
    assert_eq!(st.status.as_deref(), Some("Success"));

    // The builtin echo container over attach.
    let load: Api<Pod> = Api::namespaced(kube_client(&env, "admin").await, "load");
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
