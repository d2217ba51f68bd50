//! Sessions on record, with real kubectl and real tools: every session recorded as asciicast
//! v2 that Debian's asciinema takes and replays byte for byte (a character split across
//! frames included) and pyte replays to the terminal's last screen (resizes included); the
//! audit's end line names the recording; `required` refuses a session whose recording cannot
//! start (a read-only disk), ends one whose disk fills or whose recording reaches the size
//! cap, and waits for a stalled disk without losing a byte, where `best_effort` goes on,
//! drops and counts; operators list, watch and end other people's sessions, and nobody else
//! may.

use futures_util::{SinkExt as _, StreamExt as _};
use podgate::recording::{Recording, Sink};
use podgate_config::{OperatorsConfig, Principals, RecordingConfig, RecordingMode};
use podgate_testkit::casts;
use podgate_testkit::casts::Cast;
use podgate_testkit::disks::{GatedSink, Tmpfs};
use podgate_testkit::gateway::{ADMIN, ALICE, BOB, Builder, Cluster, Env};
use podgate_testkit::http;
use podgate_testkit::kubectl::{self, DEFAULT};
use podgate_testkit::metrics::sample;
use podgate_testkit::serve::json_line;
use podgate_testkit::wait::{read_until, wait_for, wait_until};
use podgate_testkit::ws::{self, Got};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;
use tokio_tungstenite::tungstenite::Message;

const CLUSTER: &str = "dev-east";
const LONG: Duration = Duration::from_secs(30);

/// The admins (`system:masters`) have every right; nobody else has any.
fn admins() -> OperatorsConfig {
    let admins = Principals {
        users: vec![],
        groups: vec!["system:masters".into()],
    };
    OperatorsConfig {
        sessions: admins.clone(),
        observe: admins.clone(),
        terminate: admins.clone(),
        replay: admins,
    }
}

/// Recording in `mode` into `sink`, `tune`d.
fn recording(
    sink: Arc<dyn Sink>,
    mode: RecordingMode,
    tune: impl FnOnce(&mut RecordingConfig),
) -> Recording {
    let mut config = RecordingConfig {
        default: mode,
        dir: Some("/set-by-the-sink".into()),
        ..Default::default()
    };
    tune(&mut config);
    Recording::new(Some(sink), &config, &[], "test-replica".into())
}

fn dir_sink(dir: &Path) -> Arc<dyn Sink> {
    Arc::new(podgate::recording::DirSink::new(dir.to_path_buf()))
}

async fn gateway(recording: Recording, audit: Option<&Path>) -> Env {
    let mut b = Builder::new()
        .cluster(Cluster::new(CLUSTER))
        .recording(recording)
        .operators(admins());
    if let Some(a) = audit {
        b = b.audit_file(a);
    }
    b.start().await
}

/// The recordings `query` lists, as admin.
async fn listed(env: &Env, query: &str) -> Vec<serde_json::Value> {
    let a = http::get(env, &format!("/podgate/recordings?{query}"), ADMIN).await;
    assert_eq!(a.code, 200, "{}", a.body);
    a.json()["items"].as_array().cloned().unwrap_or_default()
}

/// The one recording there is, once its session's end is written in it.
async fn the_finished_recording(env: &Env) -> serde_json::Value {
    let mut found = None;
    let done = wait_until(LONG, Duration::from_millis(50), async || {
        let items = listed(env, "").await;
        found = items.first().cloned();
        items.len() == 1 && !items[0]["outcome"].is_null()
    })
    .await;
    assert!(done, "no finished recording: {found:?}");
    found.expect("a recording")
}

/// The `.cast` of recording `id` as the replay API serves it, and a copy in `dir`.
async fn replayed(env: &Env, id: &str, dir: &Path) -> (String, std::path::PathBuf) {
    let a = http::get(env, &format!("/podgate/recordings/{id}"), ADMIN).await;
    assert_eq!(a.code, 200, "{}", a.body);
    assert_eq!(a.header("content-type"), Some("application/x-asciicast"));
    let file = dir.join(format!("{id}.cast"));
    std::fs::write(&file, &a.body).expect("a copy");
    (a.body, file)
}

fn metric(env: &Env, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(&env.gateway.metrics().render(), name, labels).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sessions_are_recorded_as_asciinema_replays_them() {
    if !kubectl::available() || !casts::asciinema_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let audit = dir.path().join("audit.jsonl");
    let env = gateway(
        recording(
            dir_sink(&dir.path().join("rec")),
            RecordingMode::BestEffort,
            |_| {},
        ),
        Some(&audit),
    )
    .await;
    let kubectl = env.kubectl(Path::new(DEFAULT), ADMIN, CLUSTER);
    // "é" is split across two writes, so two frames, on its way.
    let script =
        r"printf 'h\303\251llo\n'; printf 'caf\303'; sleep 0.2; printf '\251 au lait\n'; exit 3";
    let out = kubectl.sh(script).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(out.stdout, "héllo\ncafé au lait\n".as_bytes());

    let item = the_finished_recording(&env).await;
    assert_eq!(item["user"], "admin");
    assert_eq!(item["client"], "kubectl");
    assert_eq!(item["cluster"], CLUSTER);
    assert_eq!(item["pod"], "shell-0");
    assert_eq!(item["outcome"], "exit_nonzero");
    assert_eq!(item["exit_code"], 3);
    assert_eq!(item["truncated"], false);
    let id = item["id"].as_str().expect("an id").to_string();
    let (text, file) = replayed(&env, &id, dir.path()).await;

    // asciinema takes it, and its output is the session's, byte for byte.
    assert_eq!(casts::asciinema_cat(&file).await, out.stdout, "{text}");
    let cast = Cast::parse(&text);
    let p = cast.podgate();
    assert_eq!(p["session_id"], item["session_id"]);
    assert_eq!(p["user"], "admin");
    assert_eq!(p["groups"], serde_json::json!(["system:masters"]));
    assert_eq!(p["namespace"], "default");
    assert_eq!(p["container"], "main");
    assert_eq!(p["client"], "kubectl");
    assert_eq!(
        cast.markers().last(),
        Some(&"end: exit_nonzero, exit code 3")
    );
    assert!(
        !cast.events.iter().any(|(_, c, _)| c == "i"),
        "input is not recorded by default: {text}"
    );

    // The file is podgate's alone, where the layout says.
    use std::os::unix::fs::PermissionsExt as _;
    let on_disk = casts::path(&dir.path().join("rec"), &id).expect("a recording id");
    let mode = std::fs::metadata(&on_disk)
        .expect("the file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", on_disk.display());
    let parent = std::fs::metadata(on_disk.parent().expect("a dir")).expect("dir");
    assert_eq!(parent.permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::read_to_string(&on_disk).expect("file"), text);

    // The audit's end line names the recording.
    let end = json_line(&audit, LONG, "the session's end", |l| {
        l["event"] == "session_end"
    })
    .await;
    assert_eq!(end["recording"], id.as_str(), "{end}");
    let replay = json_line(&audit, LONG, "the replay", |l| {
        l["event"] == "recording_replayed"
    })
    .await;
    assert_eq!(replay["recording"], id.as_str());
    assert_eq!(replay["user"], "admin");
    assert_eq!(
        metric(
            &env,
            "podgate_recordings_total",
            &[("cluster", CLUSTER), ("result", "written")]
        ),
        1.0
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stderr_is_kept_apart_and_input_is_recorded_only_when_asked() {
    if !kubectl::available() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let env = gateway(
        recording(dir_sink(dir.path()), RecordingMode::BestEffort, |c| {
            c.input = true
        }),
        None,
    )
    .await;
    let kubectl = env.kubectl(Path::new(DEFAULT), ADMIN, CLUSTER);
    let out = kubectl
        .run(
            &[
                "exec",
                "-i",
                "shell-0",
                "--",
                "sh",
                "-c",
                "read l; echo \"out:$l\"; echo err >&2",
            ],
            b"typed\n",
        )
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let item = the_finished_recording(&env).await;
    let (text, _) = replayed(&env, item["id"].as_str().expect("id"), dir.path()).await;
    let cast = Cast::parse(&text);
    assert_eq!(cast.joined("i"), "typed\n", "{text}");
    // stderr's output follows a "stderr" marker; stdout's first output is stdout's.
    let at = |needle: &str| {
        cast.events
            .iter()
            .position(|(_, c, d)| c == "o" && d.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {text}"))
    };
    let err = at("err\n");
    assert_eq!(cast.events[err - 1].1, "m", "{text}");
    assert_eq!(cast.events[err - 1].2, "stderr", "{text}");
    assert!(
        at("out:typed") < err
            || cast.events[..at("out:typed")]
                .iter()
                .any(|e| e.2 == "stdout")
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_session_replays_to_its_last_screen_resizes_included() {
    if !kubectl::available() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let env = gateway(
        recording(dir_sink(dir.path()), RecordingMode::BestEffort, |_| {}),
        None,
    )
    .await;
    let kubectl = env.kubectl(Path::new(DEFAULT), ADMIN, CLUSTER);
    let mut tty = kubectl.pty(&["exec", "-it", "shell-0", "--", "sh"], 30, 100);
    let mut seen = Vec::new();
    tty.write
        .write_all(b"echo READY-$((40+2))\r")
        .await
        .expect("typing");
    read_until(&mut tty.read, &mut seen, LONG, "the shell", |s| {
        s.contains("READY-42")
    })
    .await;
    tty.write
        .resize(pty_process::Size::new(40, 120))
        .expect("a resize");
    // The shell sees the new size once kubectl sent it; then a character split across frames.
    tty.write
        .write_all(b"while [ \"$(stty size)\" != '40 120' ]; do :; done; printf 'caf\\303'; sleep 0.2; printf '\\251 SIZE-%s\\n' \"$(stty size)\"\r")
        .await
        .expect("typing");
    read_until(&mut tty.read, &mut seen, LONG, "the output", |s| {
        s.contains("café SIZE-40 120")
    })
    .await;
    tty.write.write_all(b"exit\r").await.expect("typing");
    assert_eq!(tty.exit_code(LONG).await, Some(0));

    let item = the_finished_recording(&env).await;
    let (text, file) = replayed(&env, item["id"].as_str().expect("id"), dir.path()).await;
    let cast = Cast::parse(&text);
    assert_eq!(
        cast.header["width"], 100,
        "the first size is the header's: {text}"
    );
    assert_eq!(cast.header["height"], 30);
    assert_eq!(cast.podgate()["tty"], true);
    assert!(
        cast.events
            .iter()
            .any(|(_, c, d)| c == "r" && d == "120x40"),
        "{text}"
    );
    assert!(cast.joined("o").contains("café SIZE-40 120"), "{text}");
    if let Some(screen) = casts::pyte_screen(&file) {
        assert_eq!((screen.cols, screen.rows), (120, 40));
        assert!(
            // A prompt may share the line when the typing reached the tty before the shell
            // printed its prompt (the tty echoes at once): the shell's timing, not the replay's.
            screen
                .display
                .iter()
                .any(|l| l.trim_start_matches("# ") == "café SIZE-40 120"),
            "{:#?}",
            screen.display
        );
    }
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_refuses_a_session_its_disk_cannot_take_and_ends_one_whose_disk_fills() {
    if !kubectl::available() {
        return;
    }
    let Some(disk) = Tmpfs::mount("256k") else {
        return;
    };
    let env = gateway(
        recording(dir_sink(disk.path()), RecordingMode::Required, |_| {}),
        None,
    )
    .await;
    let kubectl = env.kubectl(Path::new(DEFAULT), ADMIN, CLUSTER);

    // The disk fills mid-session: the session ends, saying why, and kubectl fails.
    let out = kubectl
        .sh("i=0; while :; do i=$((i+1)); echo \"line $i: the disk fills up with this\"; done")
        .await;
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("its recording failed") && out.stderr.contains("No space left"),
        "{}",
        out.stderr
    );
    assert!(env.sessions_end(LONG).await);
    assert_eq!(
        metric(
            &env,
            "podgate_recordings_total",
            &[("cluster", CLUSTER), ("result", "failed")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &env,
            "podgate_sessions_total",
            &[("cluster", CLUSTER), ("outcome", "recording_failed")]
        ),
        1.0,
        "{}",
        env.gateway.metrics().render()
    );

    // A disk that cannot be written: nothing runs unrecorded.
    disk.read_only();
    let out = kubectl.sh("echo must-not-run").await;
    assert_ne!(out.code, 0);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("must-not-run"));
    assert!(
        out.stderr
            .contains("records every session (recording: required)")
            && out.stderr.contains("could not start"),
        "{}",
        out.stderr
    );
    assert_eq!(
        env.cluster(CLUSTER).total_sessions(),
        1,
        "the refused session reached the cluster"
    );
    assert_eq!(
        metric(
            &env,
            "podgate_recordings_total",
            &[("cluster", CLUSTER), ("result", "failed")]
        ),
        // kubectl asks twice: over WebSocket, then its SPDY fallback; both are refused.
        3.0
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn best_effort_goes_on_when_the_disk_fails() {
    if !kubectl::available() {
        return;
    }
    let Some(disk) = Tmpfs::mount("64k") else {
        return;
    };
    let env = gateway(
        recording(dir_sink(disk.path()), RecordingMode::BestEffort, |_| {}),
        None,
    )
    .await;
    let kubectl = env.kubectl(Path::new(DEFAULT), ADMIN, CLUSTER);
    // 200 KB through a 64 KiB disk: the session ends as the pod's command did.
    let out = kubectl.sh("head -c 200000 /dev/zero | tr '\\0' x").await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.len(), 200_000);
    assert!(
        wait_for(LONG, || metric(
            &env,
            "podgate_recordings_total",
            &[("cluster", CLUSTER), ("result", "failed")]
        ) == 1.0)
        .await
    );
    disk.read_only();
    let out = kubectl.sh("echo unrecorded").await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, b"unrecorded\n");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_size_cap_truncates_best_effort_and_ends_required() {
    if !kubectl::available() || !casts::asciinema_available() {
        return;
    }
    for mode in [RecordingMode::BestEffort, RecordingMode::Required] {
        let dir = tempfile::tempdir().expect("dir");
        let env = gateway(
            recording(dir_sink(dir.path()), mode, |c| {
                c.max_session_bytes = podgate_config::ByteSize(16 << 10);
                c.buffer_bytes = podgate_config::ByteSize(64 << 10);
            }),
            None,
        )
        .await;
        let kubectl = env.kubectl(Path::new(DEFAULT), ADMIN, CLUSTER);
        // A required session is ended at the cap: its output never ends by itself.
        let script = match mode {
            RecordingMode::Required => "i=0; while :; do i=$((i+1)); echo \"line $i\"; done",
            _ => "i=0; while [ $i -lt 4000 ]; do i=$((i+1)); echo \"line $i\"; done",
        };
        let out = kubectl.sh(script).await;
        let item = the_finished_recording(&env).await;
        let (text, file) = replayed(&env, item["id"].as_str().expect("id"), dir.path()).await;
        assert!(text.len() < 20 << 10, "{mode:?}: {} bytes", text.len());
        assert_eq!(item["truncated"], true, "{mode:?}: {item}");
        let cast = Cast::parse(&text);
        assert!(
            cast.markers()
                .iter()
                .any(|m| m.contains("recording truncated: it reached the size cap of 16KiB")),
            "{mode:?}: {:?}",
            cast.markers()
        );
        // What was recorded is the start of the output, and asciinema still takes the file.
        let replay = casts::asciinema_cat(&file).await;
        assert!(out.stdout.starts_with(&replay), "{mode:?}");
        assert_eq!(
            metric(
                &env,
                "podgate_recordings_total",
                &[("cluster", CLUSTER), ("result", "truncated")]
            ),
            1.0
        );
        match mode {
            RecordingMode::Required => {
                assert_ne!(out.code, 0);
                assert!(
                    out.stderr.contains("reached the size cap"),
                    "{}",
                    out.stderr
                );
                // What ran past the cap unrecorded is bounded by the recording's buffer
                // (the relay never waits on the disk, so that much can be on its way).
                assert!(
                    out.stdout.len() < (16 << 10) + (64 << 10) + (1 << 20),
                    "{} bytes reached kubectl",
                    out.stdout.len()
                );
            }
            _ => {
                assert_eq!(out.code, 0, "{}", out.stderr);
                assert!(String::from_utf8_lossy(&out.stdout).ends_with("line 4000\n"));
            }
        }
        env.shutdown().await;
    }
}

/// 1 MB of output in 4 KiB lines: many events.
const FLOOD: &str =
    "i=0; while [ $i -lt 256 ]; do i=$((i+1)); head -c 4095 /dev/zero | tr '\\0' a; echo; done";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_disk_holds_a_required_session_and_loses_nothing() {
    if !kubectl::available() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let sink = GatedSink::new(dir.path());
    let env = gateway(
        recording(sink.clone(), RecordingMode::Required, |c| {
            c.buffer_bytes = podgate_config::ByteSize(16 << 10)
        }),
        None,
    )
    .await;
    let kubectl = env.kubectl(Path::new(DEFAULT), ADMIN, CLUSTER);
    sink.hold();
    let run = tokio::spawn(async move { kubectl.sh(FLOOD).await });
    assert!(
        wait_for(LONG, || sink.waiting() == 1).await,
        "the writer never reached the disk"
    );
    // With the disk stalled the session cannot finish: its buffer is 16 KiB of a megabyte.
    let finished = wait_for(Duration::from_secs(3), || run.is_finished()).await;
    assert!(
        !finished,
        "a required session ran past its stalled recording"
    );
    sink.open();
    let out = run.await.expect("kubectl");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.len(), 256 * 4096);
    let item = the_finished_recording(&env).await;
    let (text, _) = replayed(&env, item["id"].as_str().expect("id"), dir.path()).await;
    let cast = Cast::parse(&text);
    assert_eq!(
        cast.joined("o").as_bytes(),
        out.stdout,
        "the recording lost output"
    );
    assert_eq!(
        metric(
            &env,
            "podgate_recording_events_dropped_total",
            &[("cluster", CLUSTER)]
        ),
        0.0
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_disk_never_holds_a_best_effort_session() {
    if !kubectl::available() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let sink = GatedSink::new(dir.path());
    let env = gateway(
        recording(sink.clone(), RecordingMode::BestEffort, |c| {
            c.buffer_bytes = podgate_config::ByteSize(16 << 10)
        }),
        None,
    )
    .await;
    let kubectl = env.kubectl(Path::new(DEFAULT), ADMIN, CLUSTER);
    sink.hold();
    // The whole session runs while the disk is stalled.
    let out = kubectl.sh(FLOOD).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.len(), 256 * 4096);
    let dropped = metric(
        &env,
        "podgate_recording_events_dropped_total",
        &[("cluster", CLUSTER)],
    );
    assert!(
        dropped > 0.0,
        "nothing was dropped with a 16 KiB buffer and a stalled disk"
    );
    sink.open();
    let item = the_finished_recording(&env).await;
    let (text, _) = replayed(&env, item["id"].as_str().expect("id"), dir.path()).await;
    let cast = Cast::parse(&text);
    let recorded = cast.joined("o").len();
    assert!(
        recorded < out.stdout.len() / 4,
        "{recorded} bytes recorded of a stalled disk"
    );
    assert!(
        cast.markers()
            .iter()
            .any(|m| m.contains("events were not recorded")),
        "{:?}",
        cast.markers()
    );
    assert_eq!(cast.markers().last(), Some(&"end: completed, exit code 0"));
    env.shutdown().await;
}

/// Alice's shell: a v5 exec on shell-0 running `sh` with stdin.
async fn alices_shell(env: &Env) -> ws::Ws {
    env.exec(
        ALICE,
        CLUSTER,
        "default",
        "shell-0",
        "command=sh&stdin=true&stdout=true&stderr=true",
    )
    .await
    .unwrap_or_else(|(c, b)| panic!("alice's exec: {c} {b}"))
}

/// Reads `ws`'s output until it contains `needle`; everything read.
async fn stdout_until(ws: &mut ws::Ws, seen: &mut String, needle: &str) {
    while !seen.contains(needle) {
        match ws::next_frame(ws, LONG).await {
            // stdout and stderr (where a session without a terminal is told of watchers).
            Got::Data(1 | 2, d) => seen.push_str(&String::from_utf8_lossy(&d)),
            Got::Data(..) => {}
            Got::Close(r) => panic!("closed ({r:?}) before {needle:?}; saw {seen:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_watch_and_end_other_peoples_sessions_and_nobody_else_may() {
    let dir = tempfile::tempdir().expect("dir");
    let audit = dir.path().join("audit.jsonl");
    let env = gateway(
        recording(
            dir_sink(&dir.path().join("rec")),
            RecordingMode::BestEffort,
            |_| {},
        ),
        Some(&audit),
    )
    .await;
    let mut shell = alices_shell(&env).await;
    let mut seen = String::new();
    ws::send_stdin(&mut shell, b"echo before-$((1+1))\n").await;
    stdout_until(&mut shell, &mut seen, "before-2").await;

    // Everyone sees their own; bob sees nothing, and may do nothing to it.
    let list = |token: &'static str| {
        let env = &env;
        async move {
            let a = http::get(env, "/podgate/sessions", token).await;
            assert_eq!(a.code, 200, "{}", a.body);
            a.json()
        }
    };
    let mine = list(ALICE).await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1), "{mine}");
    assert_eq!(mine["replica"], "test-replica");
    let id = mine["items"][0]["id"].as_str().expect("id").to_string();
    assert_eq!(
        mine["items"][0]["client"], "kubectl",
        "a bearer token's session: {mine}"
    );
    let bobs = list(BOB).await;
    assert_eq!(bobs["items"], serde_json::json!([]), "{bobs}");
    let all = list(ADMIN).await;
    assert_eq!(all["items"][0]["id"], id.as_str());
    assert_eq!(all["items"][0]["may"]["observe"], true);
    for (method, path) in [
        ("DELETE", format!("/podgate/sessions/{id}")),
        ("GET", format!("/podgate/sessions/{id}/observe")),
    ] {
        let bearer = format!("Bearer {BOB}");
        let a = http::request(&env, method, &path, &[("Authorization", &bearer)], "").await;
        assert_eq!(a.code, 404, "bob {method} {path}: {}", a.body);
    }
    for path in ["/podgate/recordings", "/podgate/recordings/x"] {
        let a = http::get(&env, path, ALICE).await;
        let s = http::assert_status(a.code, &a.body, 403);
        assert!(
            s["message"]
                .as_str()
                .is_some_and(|m| m.contains("operators.replay")),
            "{s}"
        );
    }

    // The admin watches: the screen so far first, then live output; alice is told.
    let path = format!("/podgate/sessions/{id}/observe");
    let (mut watch, _) = ws::open(&env, ADMIN, &path, &[], &[])
        .await
        .expect("observe");
    let mut watched = String::new();
    let mut next_line = async || -> serde_json::Value {
        let msg = tokio::time::timeout(LONG, watch.next())
            .await
            .expect("a line in time")
            .expect("a message")
            .expect("a frame");
        match msg {
            Message::Text(t) => serde_json::from_str(t.as_str()).expect("an asciicast line"),
            other => panic!("not a line: {other:?}"),
        }
    };
    let header = next_line().await;
    assert_eq!(header["version"], 2, "{header}");
    assert_eq!(header["podgate"]["user"], "alice");
    while !watched.contains("before-2") {
        let e = next_line().await;
        if e[1] == "o" {
            watched.push_str(e[2].as_str().unwrap_or_default());
        }
    }
    stdout_until(&mut shell, &mut seen, "admin started watching this session").await;
    ws::send_stdin(&mut shell, b"echo after-$((2+2))\n").await;
    while !watched.contains("after-4") {
        let e = next_line().await;
        if e[1] == "o" {
            watched.push_str(e[2].as_str().unwrap_or_default());
        }
    }
    assert_eq!(list(ADMIN).await["items"][0]["observers"], 1);
    // What the observer types goes nowhere.
    watch
        .send(Message::text("echo typed-by-observer\n"))
        .await
        .expect("a frame");

    // The admin ends it: alice reads who and why on stream 3, the observer sees the end.
    let bearer = format!("Bearer {ADMIN}");
    let a = http::request(
        &env,
        "DELETE",
        &format!("/podgate/sessions/{id}?reason=incident%20%23412"),
        &[("Authorization", &bearer)],
        "",
    )
    .await;
    assert_eq!(a.code, 200, "{}", a.body);
    let ended = ws::read_to_close(&mut shell).await;
    let frames = ended.frames(podgate_protocol::Protocol::V5);
    let status = String::from_utf8_lossy(&ws::stream(&frames, 3)).into_owned();
    assert!(
        status.contains("podgate: session closed by admin: incident #412"),
        "{status}"
    );
    assert!(status.contains("\"Failure\""), "{status}");
    assert!(!seen.contains("typed-by-observer"));
    let mut markers = Vec::new();
    loop {
        match tokio::time::timeout(LONG, watch.next())
            .await
            .expect("the end in time")
        {
            Some(Ok(Message::Text(t))) => {
                let e: serde_json::Value = serde_json::from_str(t.as_str()).expect("a line");
                if e[1] == "m" {
                    markers.push(e[2].as_str().unwrap_or_default().to_string());
                }
            }
            Some(Ok(Message::Close(_))) | None => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("the observer's socket failed: {e}"),
        }
    }
    assert!(
        markers
            .iter()
            .any(|m| m.starts_with("end: terminated")
                && m.contains("closed by admin: incident #412")),
        "{markers:?}"
    );
    assert!(env.sessions_end(LONG).await);
    let t = json_line(&audit, LONG, "the termination", |l| {
        l["event"] == "session_terminated"
    })
    .await;
    assert_eq!(t["operator"], "admin");
    assert_eq!(t["user"], "alice");
    assert_eq!(t["reason"], "incident #412");
    json_line(&audit, LONG, "the watch", |l| {
        l["event"] == "session_observed"
    })
    .await;
    assert_eq!(
        metric(
            &env,
            "podgate_sessions_total",
            &[("cluster", CLUSTER), ("outcome", "terminated")]
        ),
        1.0
    );
    assert!(
        wait_for(LONG, || metric(&env, "podgate_observers_active", &[])
            == 0.0)
        .await
    );
    env.shutdown().await;
}

/// An observer's frames are dropped unread, so they are bounded: one of 64 KiB or more ends
/// that observation with 1009 and the reason, and nothing else (the session goes on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_that_sends_a_large_frame_is_closed_and_the_session_goes_on() {
    let dir = tempfile::tempdir().expect("dir");
    let env = gateway(
        recording(
            dir_sink(&dir.path().join("rec")),
            RecordingMode::BestEffort,
            |_| {},
        ),
        None,
    )
    .await;
    let mut shell = alices_shell(&env).await;
    let mut seen = String::new();
    ws::send_stdin(&mut shell, b"echo before-$((1+1))\n").await;
    stdout_until(&mut shell, &mut seen, "before-2").await;
    let a = http::get(&env, "/podgate/sessions", ADMIN).await;
    assert_eq!(a.code, 200, "{}", a.body);
    let id = a.json()["items"][0]["id"].as_str().expect("id").to_string();
    let path = format!("/podgate/sessions/{id}/observe");
    let (mut watch, _) = ws::open(&env, ADMIN, &path, &[], &[])
        .await
        .expect("observe");
    stdout_until(&mut shell, &mut seen, "admin started watching this session").await;
    // Just under the bound is dropped like any typing; at the bound the observation ends.
    watch
        .send(Message::binary(vec![b'x'; (64 << 10) - 1]))
        .await
        .expect("a frame under the bound");
    watch
        .send(Message::binary(vec![b'x'; 64 << 10]))
        .await
        .expect("a frame at the bound");
    let close = loop {
        match tokio::time::timeout(LONG, watch.next())
            .await
            .expect("the close in time")
        {
            Some(Ok(Message::Close(c))) => break c,
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    let close = close.expect("a close with a code");
    assert_eq!(u16::from(close.code), 1009, "{close:?}");
    assert_eq!(
        close.reason.as_str(),
        "the observer sent a frame of 64 KiB or more"
    );
    // Alice's session is untouched.
    ws::send_stdin(&mut shell, b"echo after-$((2+2))\n").await;
    stdout_until(&mut shell, &mut seen, "after-4").await;
    assert!(!seen.contains("xxxx"));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_is_not_recorded_cannot_be_watched() {
    let env = Builder::new()
        .cluster(Cluster::new(CLUSTER))
        .operators(admins())
        .start()
        .await;
    let mut shell = alices_shell(&env).await;
    let mut seen = String::new();
    ws::send_stdin(&mut shell, b"echo up\n").await;
    stdout_until(&mut shell, &mut seen, "up").await;
    let a = http::get(&env, "/podgate/sessions", ADMIN).await;
    let id = a.json()["items"][0]["id"].as_str().expect("id").to_string();
    assert_eq!(a.json()["items"][0]["may"]["observe"], false);
    let refused = ws::open(
        &env,
        ADMIN,
        &format!("/podgate/sessions/{id}/observe"),
        &[],
        &[],
    )
    .await;
    let Err((code, body)) = refused else {
        panic!("an unrecorded session was opened for watching")
    };
    let s = http::assert_status(code, &body, 409);
    assert!(
        s["message"]
            .as_str()
            .is_some_and(|m| m.contains("not recorded")),
        "{s}"
    );
    let a = http::get(&env, "/podgate/recordings", ADMIN).await;
    http::assert_status(a.code, &a.body, 404);
    drop(shell);
    env.shutdown().await;
}
