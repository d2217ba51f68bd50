//! Every ending of a session, on in-memory pipes with paused time: no sockets, no TLS, a few
//! milliseconds each. The test plays both the client and the cluster.

use super::*;
use crate::session::audit::SessionRecord;
use crate::session::registry::{Control, Credential, LiveSession, Stop};
use crate::tap::{Ended, Stream as TapStream, Tap};
use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocket};
use podgate_protocol::{Protocol, Status};
use std::sync::Arc;
use tokio::io::DuplexStream;

const LIMIT: usize = 64 << 10;

fn settings() -> SessionSettings {
    SessionSettings {
        resume: crate::session::resume::ResumeSettings::off(),
        keepalive: Duration::from_secs(20),
        idle_timeout: Some(Duration::from_secs(30 * 60)),
        max_duration: Some(Duration::from_secs(12 * 3600)),
        max_message: LIMIT,
        credential_grace: Duration::from_secs(300),
    }
}

pub(crate) fn live_session() -> Arc<LiveSession> {
    live_session_as("s-1", None, None)
}

/// A live session `id` of alice's (kubectl, v5, a tty on default/shell-0), logged in through
/// the browser as `login` if given, its credential expiring at `expires_at` (seconds) if given.
/// The one such fixture for the session module's tests.
pub(crate) fn live_session_as(
    id: &str,
    login: Option<&str>,
    expires_at: Option<u64>,
) -> Arc<LiveSession> {
    let metrics = podgate_metrics::Metrics::new(["c"], Default::default());
    let record = SessionRecord {
        session_id: id.into(),
        user: "alice".into(),
        groups: vec![],
        source: String::new(),
        cluster: "c".into(),
        namespace: "default".into(),
        pod: "shell-0".into(),
        container: String::new(),
        command: vec!["sh".into()],
        tty: true,
        protocol: "v5.channel.k8s.io".into(),
        start: String::new(),
        recording: None,
    };
    Arc::new(LiveSession {
        metrics: metrics.session_started(podgate_metrics::SessionLabels {
            session_id: id,
            user: "alice",
            cluster: "c",
            namespace: "default",
            pod: "shell-0",
            container: "",
        }),
        record,
        credential: Credential {
            identity: podgate_auth::Identity::new("alice", ["dev"]).expect("identity"),
            static_token: None,
            browser_session: login.map(str::to_string),
        },
        activity: Clock::new(Instant::now()),
        control: Arc::new(Control::new(expires_at)),
        recording: None,
        client: "kubectl",
    })
}

/// Records what the tap sees.
#[derive(Default)]
struct Recorder {
    output: Mutex<Vec<(TapStream, u64, Vec<u8>)>>,
    notices: Mutex<Vec<String>>,
    ended: Mutex<Option<Ended>>,
}

impl Tap for Recorder {
    fn output(&self, stream: TapStream, offset: u64, data: &[u8]) {
        self.output
            .lock()
            .unwrap()
            .push((stream, offset, data.to_vec()));
    }
    fn notice(&self, text: &str) {
        self.notices.lock().unwrap().push(text.to_string());
    }
    fn ended(&self, ended: &Ended) {
        *self.ended.lock().unwrap() = Some(ended.clone());
    }
}

struct Harness {
    /// The test's client.
    client: WebSocket<DuplexStream>,
    /// The test's cluster.
    cluster: WebSocket<DuplexStream>,
    relay: tokio::task::JoinHandle<Ending>,
    session: Arc<LiveSession>,
    shutdown: CancellationToken,
    tap: Arc<Recorder>,
}

fn start_with(
    settings: SessionSettings,
    client_protocol: Protocol,
    upstream_protocol: Protocol,
) -> Harness {
    let (client_end, relay_client) = tokio::io::duplex(1 << 20);
    let (relay_upstream, cluster_end) = tokio::io::duplex(1 << 20);
    let session = live_session();
    let shutdown = CancellationToken::new();
    let tap = Arc::new(Recorder::default());
    let (s, sh, t) = (session.clone(), shutdown.clone(), tap.clone());
    let relay = tokio::spawn(async move {
        let settings = settings;
        run(
            WebSocket::after_handshake(relay_client, Role::Server),
            WebSocket::after_handshake(relay_upstream, Role::Client),
            Params {
                client_protocol,
                upstream_protocol,
                settings: &settings,
                session: &s,
                tap: Some(&*t),
                shutdown: &sh,
                cluster: "c",
            },
        )
        .await
    });
    // The test reads close frames itself: fastwebsockets' automatic echo fails once the relay
    // is gone, and loses the close it answers.
    let mut client = WebSocket::after_handshake(client_end, Role::Client);
    client.set_auto_close(false);
    let mut cluster = WebSocket::after_handshake(cluster_end, Role::Server);
    cluster.set_auto_close(false);
    Harness {
        client,
        cluster,
        relay,
        session,
        shutdown,
        tap,
    }
}

fn start() -> Harness {
    start_with(settings(), Protocol::V5, Protocol::V5)
}

fn bin(p: &[u8]) -> Frame<'static> {
    Frame::new(true, OpCode::Binary, None, Payload::Owned(p.to_vec()))
}

fn stream_frame(stream: u8, data: &[u8]) -> Frame<'static> {
    let mut p = vec![stream];
    p.extend_from_slice(data);
    bin(&p)
}

/// What a side received: data messages as (stream, bytes), and the close code and reason.
#[derive(Debug, Default)]
struct Received {
    frames: Vec<(u8, Vec<u8>)>,
    close: Option<(u16, String)>,
}

impl Received {
    fn status(&self) -> Option<Status> {
        self.frames
            .iter()
            .find(|(s, d)| *s == 3 && !d.is_empty())
            .and_then(|(_, d)| serde_json::from_slice(d).ok())
    }
}

/// Reads until a close frame (answered by fastwebsockets) or the end of the stream.
async fn read_to_close(ws: &mut WebSocket<DuplexStream>) -> Received {
    let mut got = Received::default();
    loop {
        match ws.read_frame().await {
            Ok(f) if f.opcode == OpCode::Close => {
                let code = if f.payload.len() >= 2 {
                    u16::from_be_bytes([f.payload[0], f.payload[1]])
                } else {
                    1005
                };
                let reason =
                    String::from_utf8_lossy(f.payload.get(2..).unwrap_or_default()).into_owned();
                got.close = Some((code, reason));
                return got;
            }
            Ok(f) if matches!(f.opcode, OpCode::Binary | OpCode::Text) => {
                if let Some((&s, rest)) = f.payload.split_first() {
                    got.frames.push((s, rest.to_vec()));
                }
            }
            Ok(_) => {}
            Err(_) => return got,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_exit_status_and_output_reach_the_client_then_a_normal_close() {
    let mut h = start();
    h.cluster
        .write_frame(stream_frame(1, b"hello "))
        .await
        .unwrap();
    h.cluster
        .write_frame(stream_frame(2, b"world"))
        .await
        .unwrap();
    h.cluster
        .write_frame(stream_frame(
            3,
            &Status::exit_code(3, "exit status 3").to_json(),
        ))
        .await
        .unwrap();
    h.cluster
        .write_frame(Frame::close(1000, b""))
        .await
        .unwrap();
    let got = read_to_close(&mut h.client).await;
    assert_eq!(got.frames[0], (1, b"hello ".to_vec()));
    assert_eq!(got.frames[1], (2, b"world".to_vec()));
    assert_eq!(got.status().and_then(|s| s.exit_code_value()), Some(3));
    assert_eq!(got.close.map(|c| c.0), Some(1000));
    let ending = h.relay.await.unwrap();
    assert_eq!(ending, Ending::Cluster(Verdict::Exited(3)));
    assert_eq!(ending.outcome(), podgate_metrics::Outcome::ExitNonzero);
    // The tap saw every output byte at its offset, and the ending.
    let output = h.tap.output.lock().unwrap().clone();
    assert_eq!(
        output,
        [
            (TapStream::Stdout, 0, b"hello ".to_vec()),
            (TapStream::Stderr, 6, b"world".to_vec())
        ]
    );
    assert_eq!(
        h.tap.ended.lock().unwrap().as_ref().map(|e| e.exit_code),
        Some(Some(3))
    );
    assert_eq!(h.session.bytes(podgate_metrics::Direction::Stdout), 6);
}

#[tokio::test(start_paused = true)]
async fn a_lost_cluster_is_a_failure_the_client_can_read() {
    for cut in ["eof", "garbage"] {
        let mut h = start();
        h.cluster
            .write_frame(stream_frame(1, b"partial"))
            .await
            .unwrap();
        let mut raw = h.cluster.into_inner();
        if cut == "garbage" {
            // A frame header with reserved bits set: a broken stream, not a close.
            tokio::io::AsyncWriteExt::write_all(&mut raw, &[0xf2, 0x00])
                .await
                .unwrap();
        }
        drop(raw);
        let got = read_to_close(&mut h.client).await;
        assert_eq!(got.frames[0], (1, b"partial".to_vec()));
        let status = got.status().expect("a status on the error stream");
        assert_eq!(status.status, "Failure");
        let message = status.message.unwrap_or_default();
        assert!(
            message.contains("lost the connection to cluster \"c\""),
            "{cut}: {message}"
        );
        let (code, reason) = got.close.expect("a close frame");
        assert_ne!(code, 1000, "{cut}: a lost cluster is not a normal close");
        assert!(
            reason.starts_with("podgate: lost the connection"),
            "{reason}"
        );
        let ending = h.relay.await.unwrap();
        assert!(
            matches!(ending, Ending::UpstreamLost(_) | Ending::UpstreamError(_)),
            "{cut}: {ending:?}"
        );
        assert_ne!(ending.outcome(), podgate_metrics::Outcome::Completed);
        assert_eq!(
            h.tap.notices.lock().unwrap().len(),
            1,
            "the notice is not output"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_exit_status_is_not_lost_while_stdin_still_flows() {
    let mut h = start();
    // The client keeps typing while the command exits and the cluster goes away.
    let (mut c_read, mut c_write) = h.client.split(tokio::io::split);
    let typing = tokio::spawn(async move {
        for _ in 0..10_000 {
            if c_write.write_frame(stream_frame(0, b"y\n")).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
        c_write
    });
    h.cluster.write_frame(stream_frame(1, b"yy")).await.unwrap();
    h.cluster
        .write_frame(stream_frame(3, &Status::success().to_json()))
        .await
        .unwrap();
    h.cluster
        .write_frame(Frame::close(1000, b""))
        .await
        .unwrap();
    drop(h.cluster);
    let mut got = Received::default();
    loop {
        let f = c_read
            .read_frame(&mut |_| async { Ok::<_, std::io::Error>(()) })
            .await
            .expect("the client reads to the close");
        match f.opcode {
            OpCode::Close => {
                got.close = Some((
                    u16::from_be_bytes([f.payload[0], f.payload[1]]),
                    String::new(),
                ));
                break;
            }
            OpCode::Binary => got.frames.push((f.payload[0], f.payload[1..].to_vec())),
            _ => {}
        }
    }
    assert!(got.frames.contains(&(1, b"yy".to_vec())));
    assert_eq!(got.status().and_then(|s| s.exit_code_value()), Some(0));
    assert_eq!(got.close.map(|c| c.0), Some(1000));
    let mut c_write = typing.await.unwrap();
    let _ = c_write.write_frame(Frame::close(1000, b"")).await;
    assert_eq!(h.relay.await.unwrap(), Ending::Cluster(Verdict::Exited(0)));
}

#[tokio::test(start_paused = true)]
async fn a_client_close_closes_the_cluster_side() {
    let mut h = start();
    h.client
        .write_frame(stream_frame(0, b"ls\n"))
        .await
        .unwrap();
    h.client.write_frame(Frame::close(1000, b"")).await.unwrap();
    let got = read_to_close(&mut h.cluster).await;
    assert_eq!(got.frames, [(0, b"ls\n".to_vec())]);
    assert_eq!(got.close.map(|c| c.0), Some(1000));
    assert_eq!(h.relay.await.unwrap(), Ending::ClientClosed);
    // The client's connection simply ending is a close too.
    let h = start();
    drop(h.client);
    assert_eq!(h.relay.await.unwrap(), Ending::ClientClosed);
}

#[tokio::test(start_paused = true)]
async fn text_messages_reach_the_cluster_as_channel_frames() {
    let mut h = start_with(settings(), Protocol::V4, Protocol::V4);
    // The official Python client: write_stdin("ls\n") and a str resize, as text frames.
    h.client
        .write_frame(Frame::text(Payload::Owned(b"\x00ls\n".to_vec())))
        .await
        .unwrap();
    h.client
        .write_frame(Frame::text(Payload::Owned(
            b"\x04{\"Width\": 100, \"Height\": 33}".to_vec(),
        )))
        .await
        .unwrap();
    h.client.write_frame(Frame::close(1000, b"")).await.unwrap();
    let got = read_to_close(&mut h.cluster).await;
    assert_eq!(
        got.frames,
        [
            (0, b"ls\n".to_vec()),
            (4, b"{\"Width\": 100, \"Height\": 33}".to_vec())
        ]
    );
    assert_eq!(h.session.bytes(podgate_metrics::Direction::Stdin), 3);
    h.relay.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_fragmented_message_past_the_limit_is_refused_with_1009() {
    let mut h = start();
    let fragment = |first: bool, bytes: usize| {
        let opcode = if first {
            OpCode::Binary
        } else {
            OpCode::Continuation
        };
        Frame::new(false, opcode, None, Payload::Owned(vec![b'x'; bytes]))
    };
    // 1 KiB, then 16 KiB continuations: past the 64 KiB limit at the fifth.
    h.client.write_frame(fragment(true, 1024)).await.unwrap();
    for _ in 0..4 {
        h.client
            .write_frame(fragment(false, 16 << 10))
            .await
            .unwrap();
    }
    let got = read_to_close(&mut h.client).await;
    let (code, reason) = got.close.expect("a close as the total passes the limit");
    assert_eq!(code, 1009);
    assert!(reason.contains("65536 byte limit"), "{reason}");
    // The client keeps sending (its close is not out yet): the relay reads on and drops it,
    // so the close it sent is not lost to a reset, and holds nothing of it.
    for _ in 0..64 {
        h.client
            .write_frame(fragment(false, 16 << 10))
            .await
            .expect("the relay still reads after its close");
    }
    assert!(
        !h.relay.is_finished(),
        "it waits for the client's close reply"
    );
    h.client.write_frame(Frame::close(1009, b"")).await.unwrap();
    let ending = h.relay.await.unwrap();
    assert!(
        matches!(ending, Ending::ClientError { code: 1009, .. }),
        "{ending:?}"
    );
    // Nothing of the fragments reached the cluster; it was closed.
    let to_cluster = read_to_close(&mut h.cluster).await;
    assert!(to_cluster.frames.is_empty());
    assert!(to_cluster.close.is_some());
}

#[tokio::test(start_paused = true)]
async fn one_frame_past_the_limit_is_refused_with_1009_before_it_is_read() {
    let mut h = start();
    let _ = h.client.write_frame(bin(&vec![0u8; LIMIT + 1])).await;
    let got = read_to_close(&mut h.client).await;
    let (code, reason) = got.close.expect("a close");
    assert_eq!(code, 1009);
    assert!(reason.contains("65536 byte limit"), "{reason}");
    assert!(matches!(
        h.relay.await.unwrap(),
        Ending::ClientError { code: 1009, .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_message_at_the_limit_passes_in_fragments() {
    let mut h = start();
    let mut first = vec![0u8];
    first.extend_from_slice(&vec![b'a'; 1000]);
    h.client
        .write_frame(Frame::new(
            false,
            OpCode::Binary,
            None,
            Payload::Owned(first),
        ))
        .await
        .unwrap();
    h.client
        .write_frame(Frame::new(
            true,
            OpCode::Continuation,
            None,
            Payload::Owned(vec![b'b'; LIMIT - 1001]),
        ))
        .await
        .unwrap();
    h.client.write_frame(Frame::close(1000, b"")).await.unwrap();
    let got = read_to_close(&mut h.cluster).await;
    assert_eq!(got.frames.len(), 1);
    assert_eq!(got.frames[0].1.len(), LIMIT - 1);
    h.relay.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_oversized_message_from_the_cluster_is_a_failure_for_the_client() {
    let mut h = start();
    let big = vec![1u8; LIMIT + 1];
    let _ = h.cluster.write_frame(bin(&big)).await;
    let got = read_to_close(&mut h.client).await;
    assert_eq!(got.status().map(|s| s.status), Some("Failure".into()));
    assert_eq!(got.close.map(|c| c.0), Some(1011));
    assert!(matches!(h.relay.await.unwrap(), Ending::UpstreamError(_)));
}

#[tokio::test(start_paused = true)]
async fn idle_sessions_end_with_a_reason() {
    let mut s = settings();
    s.idle_timeout = Some(Duration::from_secs(60));
    let mut h = start_with(s, Protocol::V5, Protocol::V5);
    let got = read_to_close(&mut h.client).await;
    let status = got.status().expect("a status");
    assert_eq!(status.reason.as_deref(), Some("Timeout"));
    assert!(
        status
            .message
            .unwrap_or_default()
            .contains("1m without input or output")
    );
    assert!(matches!(
        h.relay.await.unwrap(),
        Ending::Policy {
            policy: Policy::IdleTimeout,
            ..
        }
    ));
    assert!(
        read_to_close(&mut h.cluster).await.close.is_some(),
        "the cluster side is closed"
    );
}

#[tokio::test(start_paused = true)]
async fn sessions_end_at_the_maximum_duration_even_when_busy() {
    let mut s = settings();
    s.max_duration = Some(Duration::from_secs(3600));
    s.idle_timeout = None;
    let mut h = start_with(s, Protocol::V5, Protocol::V5);
    let (mut c_read, _c_write) = h.client.split(tokio::io::split);
    let busy = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        loop {
            ticks.tick().await;
            if h.cluster.write_frame(stream_frame(1, b".")).await.is_err() {
                return;
            }
        }
    });
    let mut status = None;
    loop {
        let f = c_read
            .read_frame(&mut |_| async { Ok::<_, std::io::Error>(()) })
            .await
            .expect("frames until the close");
        if f.opcode == OpCode::Close {
            break;
        }
        if f.payload.first() == Some(&3) {
            status = serde_json::from_slice::<Status>(&f.payload[1..]).ok();
        }
    }
    assert!(
        status
            .and_then(|s| s.message)
            .unwrap_or_default()
            .contains("maximum session duration of 1h")
    );
    assert!(matches!(
        h.relay.await.unwrap(),
        Ending::Policy {
            policy: Policy::MaxDuration,
            ..
        }
    ));
    busy.abort();
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_answering_is_dropped() {
    let h = start();
    // The client never reads: no pongs, no sign of life.
    let ending = h.relay.await.unwrap();
    assert_eq!(ending, Ending::ClientUnresponsive);
    drop(h.client);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_answers_pings_stays() {
    let mut s = settings();
    s.idle_timeout = Some(Duration::from_secs(600));
    let mut h = start_with(s, Protocol::V5, Protocol::V5);
    // Reading answers the pings; the session lives until the idle timeout, far past the
    // liveness limit (50 s).
    let got = read_to_close(&mut h.client).await;
    assert!(got.status().is_some());
    assert!(matches!(
        h.relay.await.unwrap(),
        Ending::Policy {
            policy: Policy::IdleTimeout,
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn shutdown_tells_the_client_why() {
    let mut h = start();
    h.shutdown.cancel();
    let got = read_to_close(&mut h.client).await;
    assert!(
        got.status()
            .and_then(|s| s.message)
            .unwrap_or_default()
            .contains("shutting down")
    );
    assert!(matches!(
        h.relay.await.unwrap(),
        Ending::Policy {
            policy: Policy::Shutdown,
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn revoked_access_ends_the_session_with_the_reason() {
    let mut h = start();
    h.session.control.stop(
        Stop::AccessRevoked,
        "podgate: session closed: access was revoked".into(),
    );
    let got = read_to_close(&mut h.client).await;
    let status = got.status().expect("a status");
    assert_eq!(status.reason.as_deref(), Some("Forbidden"));
    assert_eq!(
        status.message.as_deref(),
        Some("podgate: session closed: access was revoked")
    );
    let ending = h.relay.await.unwrap();
    assert_eq!(ending.outcome(), podgate_metrics::Outcome::AccessRevoked);
}

#[tokio::test(start_paused = true)]
async fn v5_stdin_close_towards_a_v4_cluster_closes_its_socket_and_the_status_still_arrives() {
    let mut h = start_with(settings(), Protocol::V5, Protocol::V4);
    // The cluster answers a close with the exit status, then its own close.
    h.client
        .write_frame(stream_frame(0, b"data"))
        .await
        .unwrap();
    h.client.write_frame(bin(&[255, 0])).await.unwrap();
    // The cluster sees the data, then a close (a v4 client's stdin EOF).
    let got = read_to_close(&mut h.cluster).await;
    assert_eq!(got.frames, [(0, b"data".to_vec())]);
    h.cluster
        .write_frame(stream_frame(3, &Status::exit_code(1, "x").to_json()))
        .await
        .unwrap();
    h.cluster
        .write_frame(Frame::close(1000, b""))
        .await
        .unwrap();
    let got = read_to_close(&mut h.client).await;
    assert_eq!(got.status().and_then(|s| s.exit_code_value()), Some(1));
    assert_eq!(h.relay.await.unwrap(), Ending::Cluster(Verdict::Exited(1)));
}
