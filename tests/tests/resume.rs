//! Sessions that survive a dropped connection (docs/protocol.md, "Resume"), through the real
//! gateway and devcluster with a client that speaks the protocol as the web UI does: the
//! connection drops without a close, the process in the pod carries on, and a resume gets
//! exactly the bytes after the last one read (none lost, none twice), then the exit status
//! the cluster sent. Back-pressure holds output until it is acknowledged; `overwrite` reports
//! its gap; the credential resumes only its own session for its own person; the window ends
//! a session nobody came back to; clients that do not opt in see none of it.

use podgate::session::SessionSettings;
use podgate::session::resume::ResumeSettings;
use podgate_testkit::gateway::{ADMIN, ALICE, Builder, Env};
use podgate_testkit::resume::{Page, Read, metric};
use podgate_testkit::wait::wait_for;
use podgate_testkit::ws::{self, Got, next_frame};
use std::path::Path;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

fn query(script: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for c in ["sh", "-c", script] {
        q.append_pair("command", c);
    }
    q.append_pair("stdin", "true");
    q.append_pair("stdout", "true");
    q.append_pair("stderr", "true");
    q.finish()
}

/// Resume on, with `window` and `buffer`; the rest as the tests need it by default.
fn resume(window: Duration, buffer: usize) -> ResumeSettings {
    ResumeSettings {
        window: Some(window),
        buffer,
        overwrite: false,
        heartbeat: Duration::from_secs(5),
        total: 64 << 20,
    }
}

/// The demo's gateway with `resume`, auditing into `audit`.
async fn gateway(resume: ResumeSettings, audit: &Path) -> Env {
    Builder::demo()
        .sessions(|s: &mut SessionSettings| s.resume = resume)
        .audit_file(audit)
        .start()
        .await
}

/// The audit lines written so far, once `done` holds for them (within 10 s).
async fn audit_lines(
    path: &Path,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let read = || {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect::<Vec<serde_json::Value>>()
    };
    let ok = wait_for(Duration::from_secs(10), || done(&read())).await;
    let lines = read();
    assert!(ok, "the audit never showed what was expected: {lines:#?}");
    lines
}

fn exit_code(status: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(status).ok()?;
    if v["status"] == "Success" {
        return Some("0".into());
    }
    v["details"]["causes"]
        .as_array()?
        .iter()
        .find(|c| c["reason"] == "ExitCode")
        .and_then(|c| c["message"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_resumes_exactly_after_the_last_byte_read_then_tells_the_exit() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let audit = dir.path().join("audit.log");
    let env = gateway(resume(Duration::from_secs(60), 64 << 10), &audit).await;
    let script = "echo pid=$$; i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo n=$i; sleep 0.01; done; echo pid=$$; exit 3";
    let mut page = Page::open(&env, ADMIN, "default", "shell-0", &query(script)).await;
    page.read_until(LONG, |o| String::from_utf8_lossy(o).contains("n=40\n"))
        .await;
    page.ack().await;
    let before = page.offset;
    page.drop_connection();
    // The gateway notices (EOF without a close) and waits; the process runs on meanwhile.
    assert!(
        wait_for(LONG, || metric(
            &env,
            "podgate_resume_waiting_sessions",
            &[]
        ) == 1.0)
        .await,
        "the gateway never counted the session as waiting"
    );
    assert_eq!(
        env.sessions().limits.active(),
        1,
        "a waiting session counts toward the limits"
    );
    // The sessions list says it waits, and since when.
    let list = podgate_testkit::http::get(&env, "/podgate/sessions", ADMIN)
        .await
        .json();
    let item = &list["items"][0];
    assert_eq!(item["id"], page.session.as_str());
    assert!(
        item["resume"]["waiting_seconds"].as_f64().is_some(),
        "{item}"
    );
    // Output produced while nobody is attached is what the resume replays.
    let produced = || {
        env.sessions()
            .live
            .list()
            .first()
            .map_or(0, |s| s.bytes(podgate_metrics::Direction::Stdout))
    };
    assert!(
        wait_for(LONG, || produced() > before + 100).await,
        "the process did not carry on while its page was away"
    );
    let resumed = page.resume(&env, ADMIN).await;
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    assert_eq!(resumed["offset"], before);
    let list = podgate_testkit::http::get(&env, "/podgate/sessions", ADMIN)
        .await
        .json();
    assert!(
        list["items"][0]["resume"]["waiting_seconds"].is_null(),
        "{list}"
    );
    assert_eq!(resumed["gap"], 0);
    page.read_to_close(LONG).await;

    let text = String::from_utf8(page.output.clone()).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 302, "{text}");
    assert!(lines[0].starts_with("pid="));
    assert_eq!(
        lines[0], lines[301],
        "the same process, before and after the drop"
    );
    for (i, line) in lines[1..301].iter().enumerate() {
        assert_eq!(*line, format!("n={}", i + 1), "every number once, in order");
    }
    assert_eq!(page.status.len(), 1);
    assert_eq!(
        exit_code(&page.status[0]).as_deref(),
        Some("3"),
        "the exit status reaches the resumed page"
    );
    assert_eq!(page.close.as_ref().map(|c| c.0), Some(1000));
    assert_eq!(
        metric(&env, "podgate_resumes_total", &[("result", "succeeded")]),
        1.0
    );
    assert_eq!(metric(&env, "podgate_resume_waiting_sessions", &[]), 0.0);
    assert!(metric(&env, "podgate_resume_replayed_bytes_total", &[]) > 100.0);
    let lines = audit_lines(&audit, |l| l.iter().any(|l| l["event"] == "session_end")).await;
    let event = |name: &str| lines.iter().filter(|l| l["event"] == name).count();
    assert_eq!(event("session_dropped"), 1, "{lines:#?}");
    assert_eq!(event("session_resumed"), 1, "{lines:#?}");
    let end = lines
        .iter()
        .find(|l| l["event"] == "session_end")
        .expect("an end");
    assert_eq!(end["close_reason"], "exit_nonzero");
    assert_eq!(end["exit_code"], 3);
    assert!(
        !std::fs::read_to_string(&audit)
            .expect("audit")
            .contains(&page.credential),
        "the credential is never written down"
    );
    assert!(env.sessions_end(LONG).await);
    assert!(env.sessions().resume.is_empty());
    assert_eq!(env.sessions().resume.reserved(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_waits_for_acknowledgements_and_nothing_is_lost() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = gateway(
        resume(Duration::from_secs(60), 16 << 10),
        &dir.path().join("a"),
    )
    .await;
    let expected: String = (1..=30_000).map(|i| format!("{i}\n")).collect();
    let mut page = Page::open(&env, ADMIN, "default", "shell-0", &query("seq 1 30000")).await;
    // Nothing acknowledged: at most the buffer arrives, then the program waits.
    page.read_until(LONG, |o| !o.is_empty()).await;
    loop {
        match tokio::time::timeout(Duration::from_millis(500), page.read(LONG)).await {
            Ok(Read::Output(_)) => {}
            Ok(other) => panic!("{other:?} before anything was acknowledged"),
            Err(_) => break,
        }
        assert!(
            page.offset <= 16 << 10,
            "{} bytes arrived unacknowledged",
            page.offset
        );
    }
    assert!(page.offset <= 16 << 10);
    // Acknowledging lets it flow; halfway, the connection drops with output unacknowledged.
    page.ack().await;
    let mut since_ack = 0;
    while page.output.len() < expected.len() / 2 {
        if let Read::Output(n) = page.read(LONG).await {
            since_ack += n;
        }
        if since_ack >= 4 << 10 {
            page.ack().await;
            since_ack = 0;
        }
    }
    page.drop_connection();
    let resumed = page.resume(&env, ADMIN).await;
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    assert_eq!(resumed["gap"], 0, "back-pressure loses nothing");
    loop {
        match page.read(LONG).await {
            Read::Output(_) => page.ack().await,
            Read::Closed => break,
            _ => {}
        }
    }
    assert!(
        page.output == expected.as_bytes(),
        "output differs after {} bytes",
        page.output
            .iter()
            .zip(expected.as_bytes())
            .take_while(|(a, b)| a == b)
            .count()
    );
    assert_eq!(exit_code(&page.status[0]).as_deref(), Some("0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrite_drops_the_oldest_output_and_the_resume_is_told_the_gap() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = gateway(
        ResumeSettings {
            overwrite: true,
            ..resume(Duration::from_secs(60), 16 << 10)
        },
        &dir.path().join("a"),
    )
    .await;
    let expected: String = (1..=30_000).map(|i| format!("{i}\n")).collect();
    let mut page = Page::open(&env, ADMIN, "default", "shell-0", &query("seq 1 30000")).await;
    page.drop_connection();
    // With nobody attached the program is not held up: it finishes.
    assert!(
        wait_for(LONG, || env.clusters[0].active_sessions() == 0).await,
        "the program waited for a page although the buffer overwrites"
    );
    let resumed = page.resume(&env, ADMIN).await;
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    let gap = resumed["gap"].as_u64().expect("a gap");
    assert_eq!(resumed["offset"].as_u64(), Some(page.offset + gap));
    page.read_to_close(LONG).await;
    assert_eq!(
        gap as usize + page.output.len(),
        expected.len(),
        "gap + replay = everything"
    );
    assert!(page.output.len() <= 16 << 10);
    assert!(
        expected.as_bytes().ends_with(&page.output),
        "the replay is the newest output"
    );
    assert_eq!(
        exit_code(&page.status[0]).as_deref(),
        Some("0"),
        "the exit status waited for the page"
    );
    assert_eq!(
        metric(&env, "podgate_resume_gap_bytes_total", &[]),
        gap as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_resumes_only_its_own_session_for_its_own_person() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = gateway(
        resume(Duration::from_secs(60), 64 << 10),
        &dir.path().join("a"),
    )
    .await;
    let mut alice = Page::open(&env, ALICE, "default", "shell-0", &query("cat")).await;
    alice.send_stdin(b"one\n").await;
    alice.read_until(LONG, |o| o == b"one\n").await;
    let (credential, offset) = (alice.credential.clone(), alice.offset);
    let mut other = Page::detached(&alice.session, "", 0);
    let refused = |v: &serde_json::Value, reason: &str| {
        assert_eq!(v["type"], "refused", "{v}");
        assert_eq!(v["reason"], reason, "{v}");
    };
    // Another person with alice's credential, alice with a wrong one, a session id that does
    // not exist, an offset never produced.
    refused(
        &other.resume_with(&env, ADMIN, &credential, offset).await,
        "forbidden",
    );
    other.read_to_close(LONG).await;
    assert_eq!(other.close.as_ref().map(|c| c.0), Some(1008));
    refused(
        &other
            .resume_with(&env, ALICE, "not-the-credential", offset)
            .await,
        "bad_credential",
    );
    other.session = "no-such-session".into();
    refused(
        &other.resume_with(&env, ALICE, &credential, offset).await,
        "unknown_session",
    );
    other.session = alice.session.clone();
    refused(
        &other
            .resume_with(&env, ALICE, &credential, offset + 1000)
            .await,
        "bad_request",
    );
    // The resume upgrade without its entries.
    let path = format!("/podgate/sessions/{}/resume", alice.session);
    let (mut bare, _) = ws::open(&env, ALICE, &path, &[ws::V5], &[])
        .await
        .expect("upgraded");
    match next_frame(&mut bare, LONG).await {
        Got::Data(128, d) => {
            let v: serde_json::Value = serde_json::from_slice(&d).expect("json");
            refused(&v, "bad_request");
        }
        other => panic!("{other:?}"),
    }
    for reason in ["forbidden", "bad_credential", "unknown_session"] {
        assert_eq!(
            metric(
                &env,
                "podgate_resumes_total",
                &[("result", "failed"), ("reason", reason)]
            ),
            1.0,
            "{reason}"
        );
    }
    assert_eq!(
        metric(
            &env,
            "podgate_resumes_total",
            &[("result", "failed"), ("reason", "bad_request")]
        ),
        2.0
    );
    // None of that disturbed alice's connection.
    alice.send_stdin(b"two\n").await;
    alice.read_until(LONG, |o| o == b"one\ntwo\n").await;
    // Alice on a second connection while the first is still attached: it takes over.
    let mut second = Page::detached(&alice.session, &credential, alice.offset);
    let resumed = second.resume(&env, ALICE).await;
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    alice.read_to_close(LONG).await;
    assert_eq!(
        alice.close,
        Some((1000, "podgate: resumed on another connection".into()))
    );
    second.send_stdin(b"three\n").await;
    second.read_until(LONG, |o| o == b"three\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_nobody_comes_back_to_ends_when_the_window_does() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let audit = dir.path().join("audit.log");
    let env = gateway(resume(Duration::from_secs(1), 64 << 10), &audit).await;
    let mut page = Page::open(&env, ADMIN, "default", "shell-0", &query("cat")).await;
    page.drop_connection();
    assert!(
        env.sessions_end(LONG).await,
        "the session outlived its window"
    );
    let lines = audit_lines(&audit, |l| l.iter().any(|l| l["event"] == "session_end")).await;
    let end = lines
        .iter()
        .find(|l| l["event"] == "session_end")
        .expect("an end");
    assert_eq!(end["close_reason"], "resume_window_expired", "{end}");
    assert_eq!(
        metric(
            &env,
            "podgate_sessions_total",
            &[("outcome", "resume_window_expired")]
        ),
        1.0
    );
    let v = page.resume(&env, ADMIN).await;
    assert_eq!(v["reason"], "unknown_session", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_do_not_opt_in_see_nothing_of_it() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = gateway(
        resume(Duration::from_secs(60), 64 << 10),
        &dir.path().join("a"),
    )
    .await;
    let mut ws = env
        .admin_exec("default", "shell-0", &query("echo hi"))
        .await;
    let mut frames = Vec::new();
    loop {
        match next_frame(&mut ws, LONG).await {
            Got::Close(_) => break,
            Got::Data(s, d) => frames.push((s, d)),
        }
    }
    assert!(frames.iter().all(|(s, _)| *s != 128), "{frames:?}");
    assert_eq!(frames[0], (1, b"hi\n".to_vec()));
    assert!(env.sessions().resume.is_empty());
    // And a plain client that vanishes ends its session at once, as before.
    let ws = env.admin_exec("default", "shell-0", &query("cat")).await;
    assert!(wait_for(LONG, || env.clusters[0].active_sessions() == 1).await);
    drop(ws);
    assert!(env.sessions_end(LONG).await);
    assert_eq!(metric(&env, "podgate_resume_waiting_sessions", &[]), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_buffers_are_all_taken_the_longest_waiting_session_gives_way() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let audit = dir.path().join("audit.log");
    // Room for exactly one resumable session's buffer.
    let env = Builder::demo()
        .sessions(|s| {
            s.resume = ResumeSettings {
                total: 16 << 10,
                ..resume(Duration::from_secs(60), 16 << 10)
            }
        })
        .audit_file(&audit)
        .start()
        .await;
    let mut first = Page::open(&env, ADMIN, "default", "shell-0", &query("cat")).await;
    first.drop_connection();
    assert!(
        wait_for(LONG, || metric(
            &env,
            "podgate_resume_waiting_sessions",
            &[]
        ) == 1.0)
        .await,
        "the first session never waited"
    );
    // A new session takes the waiting one's buffer: that one ends, and says why.
    let mut second = Page::open(&env, ADMIN, "default", "shell-0", &query("cat")).await;
    let lines = audit_lines(&audit, |l| l.iter().any(|l| l["event"] == "session_end")).await;
    let end = lines
        .iter()
        .find(|l| l["event"] == "session_end")
        .expect("an end");
    assert_eq!(end["session_id"], first.session.as_str());
    assert_eq!(end["close_reason"], "resume_window_expired");
    assert!(
        end["message"].as_str().unwrap_or("").contains("gave way"),
        "{end}"
    );
    assert_eq!(first.resume(&env, ADMIN).await["reason"], "unknown_session");
    // With the one buffer held by an attached session, a third runs without resume: no hello,
    // its first frame is the cluster's.
    let mut third = env
        .admin_exec("default", "shell-0", &query("echo plain"))
        .await;
    assert_eq!(
        next_frame(&mut third, LONG).await,
        Got::Data(1, b"plain\n".to_vec())
    );
    second.send_stdin(b"still here\n").await;
    second.read_until(LONG, |o| o == b"still here\n").await;
    assert_eq!(env.sessions().resume.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_attached_page_hears_a_heartbeat_with_the_output_offset() {
    let env = Builder::demo()
        .sessions(|s| {
            s.resume = ResumeSettings {
                heartbeat: Duration::from_millis(300),
                ..resume(Duration::from_secs(60), 64 << 10)
            }
        })
        .start()
        .await;
    let mut page = Page::open(&env, ADMIN, "default", "shell-0", &query("cat")).await;
    page.send_stdin(b"abc\n").await;
    page.read_until(LONG, |o| o == b"abc\n").await;
    // Nothing more is output: what arrives is podgate's heartbeat, several of them.
    for _ in 0..3 {
        let beat = page.next_control(Duration::from_secs(3)).await;
        assert_eq!(beat["type"], "heartbeat", "{beat}");
        assert_eq!(beat["offset"], 4);
    }
    assert_eq!(page.output, b"abc\n");
}
