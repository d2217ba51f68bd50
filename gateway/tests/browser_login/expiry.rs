//! Access ends when the right to it ends: a session opened with a provider's ID token ends by
//! itself when that token expires (plus `sessions.credential_grace`), told on its error stream
//! and audited; one opened from a browser login lives on while the login refreshes its token,
//! and ends the same way once it stops.

use super::{session_cookie, session_of, setup_from, whoami};
use podgate_protocol::{Protocol, Status};
use podgate_testkit::kubectl::{self, WAITING};
use podgate_testkit::oidc::provider::{self, ALICE};
use podgate_testkit::wait::{read_until, wait_for};
use podgate_testkit::ws::{self, Got, next_frame, read_to_close, stream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The grace a session has past its credential's expiry, here.
const GRACE: u64 = 2;

/// What the gateway tells a session it ends for an expired credential.
const EXPIRED: &str = "the credential it was opened with expired at";

/// Now, in Unix seconds (with fractions): the clock `exp` is read against.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs_f64()
}

/// How long from now until the Unix time `at` (zero when past).
fn until(at: u64) -> Duration {
    Duration::from_secs_f64((at as f64 - unix_now()).max(0.0))
}

/// Asserts a session ended (seen at `ended`, Unix seconds) no earlier than its `deadline`
/// (the token's `exp` plus the grace) and not much after it.
fn assert_ended_on_time(ended: f64, deadline: u64, what: &str) {
    assert!(
        ended >= deadline as f64,
        "{what}: ended at {ended:.3}, before its credential's expiry plus grace ({deadline})"
    );
    assert!(
        ended <= deadline as f64 + 5.0,
        "{what}: ended at {ended:.3}, long after its credential's expiry plus grace ({deadline})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_when_the_token_it_was_opened_with_expires() {
    if !kubectl::available() {
        return;
    }
    const TTL: u64 = 5;
    let dir = tempfile::tempdir().expect("a temp dir");
    let audit = dir.path().join("audit.jsonl");
    // The gateway's default leeway (60 s) stays: a token it still accepts does not keep a
    // session open past the token's own `exp` plus the grace.
    let builder = provider::dev_only()
        .sessions(|s| s.credential_grace = Duration::from_secs(GRACE))
        .audit_file(&audit);
    let Some(s) = setup_from(builder, Some(TTL), |_| {}).await else {
        return;
    };
    let mut web = s.web();
    assert_eq!(web.log_in(ALICE, "/").await.code, 303);
    let session = session_of(&s, &web);
    let exp = session.expires_at;
    let deadline = exp + GRACE;

    let mut child = super::kubectl_with(&s, &session.token)
        .command(&WAITING)
        .spawn()
        .expect("kubectl starts");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    read_until(&mut stdout, &mut seen, until(deadline), "ready", |o| {
        o.contains("ready")
    })
    .await;
    let out = tokio::time::timeout(
        until(deadline) + Duration::from_secs(10),
        child.wait_with_output(),
    )
    .await
    .expect("the session outlived its token by 10 s")
    .expect("kubectl's output");
    let ended = unix_now();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "kubectl exited 0; stderr: {stderr}");
    let when = podgate::session::audit::timestamp(UNIX_EPOCH + Duration::from_secs(exp));
    assert!(
        stderr.contains(&format!("{EXPIRED} {when}")),
        "kubectl does not say why: {stderr}"
    );
    assert_ended_on_time(ended, deadline, "the kubectl session");
    assert!(s.env.sessions_end(Duration::from_secs(10)).await);

    // The audit line says why it ended.
    let end = || {
        std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON lines"))
            .find(|l| l["event"] == "session_end")
    };
    assert!(wait_for(Duration::from_secs(10), || end().is_some()).await);
    let end = end().expect("an end line");
    assert_eq!(end["close_reason"], "credential_expired", "{end}");
    assert_eq!(
        (end["user"].as_str(), end["pod"].as_str()),
        (Some("alice"), Some("shell-0"))
    );
    assert!(
        end["message"].as_str().is_some_and(|m| m.contains(EXPIRED)),
        "{end}"
    );
}

/// An exec of a shell that says it is up and then waits, for the v5 WebSocket.
const WAITING_EXEC: &str = "/clusters/old/api/v1/namespaces/default/pods/shell-0/exec?command=sh&command=-c&command=echo%20ready%3B%20exec%20sleep%20600&stdout=true&stderr=true";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_session_that_refreshes_its_token_keeps_its_shell() {
    const TTL: u64 = 3;
    const GRACE: u64 = 1;
    // How long past the expiry (plus grace) of the token the shell was opened with it is kept
    // open by refreshing; and how often the page asks (a load pattern, as the web UI's).
    const KEPT_PAST: f64 = 3.0;
    const PACE: Duration = Duration::from_secs(1);
    let builder =
        provider::dev_only().sessions(|s| s.credential_grace = Duration::from_secs(GRACE));
    let Some(s) = setup_from(builder, Some(TTL), |_| {}).await else {
        return;
    };
    let mut web = s.web();
    assert_eq!(web.log_in(ALICE, "/").await.code, 303);
    let first = session_of(&s, &web);
    let cookie = format!(
        "podgate_session={}",
        web.cookie("podgate_session").expect("cookie")
    );
    let own = s.env.origin();
    let (mut shell, _) = ws::open(
        &s.env,
        "",
        WAITING_EXEC,
        &[ws::V5],
        &[("Cookie", &cookie), ("Origin", &own)],
    )
    .await
    .expect("the gateway's own page opens a shell");
    // The upgrade itself may have refreshed the token (it expires within a minute): the one
    // the session was opened with was issued by now, so it expires by now + TTL.
    let opened_at = unix_now().floor() as u64;
    let mut output = Vec::new();
    while output != b"ready\n" {
        match next_frame(&mut shell, Duration::from_secs(10)).await {
            Got::Data(1, data) if output.len() + data.len() <= 6 => output.extend(data),
            other => panic!("expected the shell to say ready, got {other:?} after {output:?}"),
        }
    }
    let ending = tokio::spawn(async move {
        let ended = read_to_close(&mut shell).await;
        (ended, unix_now())
    });

    // The page keeps asking with its cookie, taking each refreshed one.
    let keep_until = (opened_at + TTL + GRACE) as f64 + KEPT_PAST;
    let mut refreshes = 0;
    while unix_now() < keep_until {
        let me = whoami(&mut web).await;
        assert_eq!(me.code, 200, "{}", me.body);
        if session_cookie(&me).is_some() {
            refreshes += 1;
        }
        assert!(
            !ending.is_finished(),
            "the shell ended at {:.3} while its login was being refreshed (opened at \
             {opened_at}, first token expiring at {})",
            unix_now(),
            first.expires_at
        );
        tokio::time::sleep(PACE).await;
    }
    let last = session_of(&s, &web);
    assert!(refreshes >= 3, "only {refreshes} refreshes");
    assert!(
        last.expires_at > opened_at + TTL,
        "{} {opened_at}",
        last.expires_at
    );
    assert!(!ending.is_finished(), "the shell ended while refreshed");
    assert_eq!(s.env.sessions().live.len(), 1);

    // The page stops: the shell ends once the last refreshed token expires, plus the grace.
    let deadline = last.expires_at + GRACE;
    let (ended, at) = tokio::time::timeout(until(deadline) + Duration::from_secs(10), ending)
        .await
        .expect("the shell outlived its last token by 10 s")
        .expect("the reader");
    assert_ended_on_time(at, deadline, "the browser's shell");
    let frames = ended.frames(Protocol::V5);
    assert!(stream(&frames, 1).is_empty(), "{frames:?}");
    let status: Status = serde_json::from_slice(&stream(&frames, 3)).expect("a Status on stream 3");
    assert_eq!(status.status, "Failure", "{status:?}");
    assert_eq!(status.reason.as_deref(), Some("Unauthorized"), "{status:?}");
    assert_eq!(
        status.cause("podgate.io/outcome"),
        Some("credential_expired"),
        "{status:?}"
    );
    assert!(
        status
            .message
            .as_deref()
            .is_some_and(|m| m.contains(EXPIRED)),
        "{status:?}"
    );
    assert!(s.env.sessions_end(Duration::from_secs(10)).await);
}
