//! A session's own reasons to end, and when to look again: what exec's relay and the
//! port-forward relay ask on every wake of their one timer (pure: the caller brings the time,
//! the last activity and the credential's expiry).

use super::ending::Policy;
use crate::session::SessionSettings;
use crate::session::registry::Stop;
use std::time::Duration;
use tokio::time::Instant;

/// How a kind of session names itself in its endings.
pub struct Words {
    /// `podgate: session closed`.
    pub closed: &'static str,
    /// What idle means: `without input or output`.
    pub idle: &'static str,
    /// What to do after a shutdown: `reconnect to get a new session`.
    pub after_shutdown: &'static str,
}

/// What the timer does next.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// End the session, with this reason.
    End(Policy, String),
    /// Ping the client (the keepalive is due).
    Ping,
    /// Sleep until then (or until a stop, a notice or the shutdown).
    Sleep(Instant),
}

/// The state the deadlines are judged on.
pub struct Now {
    pub now: Instant,
    pub started: Instant,
    /// The last relayed input or output.
    pub activity: Instant,
    /// The credential's expiry (Unix seconds), when it has one.
    pub expires_at: Option<u64>,
    /// Unix seconds now.
    pub unix: u64,
    pub next_ping: Instant,
}

pub fn next(settings: &SessionSettings, s: &Now, words: &Words) -> Next {
    let closed = words.closed;
    if let Some(d) = settings.max_duration
        && s.now >= s.started + d
    {
        return Next::End(
            Policy::MaxDuration,
            format!(
                "{closed}: it reached the maximum session duration of {}",
                human(d)
            ),
        );
    }
    let idle_due = settings.idle_timeout.map(|i| s.activity + i);
    if let (Some(due), Some(i)) = (idle_due, settings.idle_timeout)
        && s.now >= due
    {
        return Next::End(
            Policy::IdleTimeout,
            format!("{closed} after {} {} (idle timeout)", human(i), words.idle),
        );
    }
    // Moved later when a browser login refreshes.
    let expiry = s
        .expires_at
        .map(|at| (at, at.saturating_add(settings.credential_grace.as_secs())));
    if let Some((at, deadline)) = expiry
        && deadline <= s.unix
    {
        return Next::End(
            Policy::CredentialExpired,
            format!(
                "{closed}: the credential it was opened with expired at {}; sign in again and reconnect",
                crate::session::audit::timestamp(std::time::UNIX_EPOCH + Duration::from_secs(at))
            ),
        );
    }
    if s.now >= s.next_ping {
        return Next::Ping;
    }
    let wake = [
        settings.max_duration.map(|d| s.started + d),
        idle_due,
        expiry.map(|(_, deadline)| s.now + Duration::from_secs(deadline.saturating_sub(s.unix))),
    ]
    .into_iter()
    .flatten()
    .fold(s.next_ping, Instant::min);
    Next::Sleep(wake)
}

/// The ending of a session the gateway shut down.
pub fn shutdown(words: &Words) -> (Policy, String) {
    (
        Policy::Shutdown,
        format!(
            "{}: the gateway is shutting down; {}",
            words.closed, words.after_shutdown
        ),
    )
}

/// The policy under which a session stopped from outside ends.
pub fn stopped(stop: Stop) -> Policy {
    match stop {
        Stop::AccessRevoked => Policy::AccessRevoked,
        Stop::Terminated => Policy::Terminated,
        Stop::RecordingFailed => Policy::RecordingFailed,
    }
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Durations as the config file writes them (`30m`, `1h30m`), so messages match settings.
pub fn human(d: Duration) -> String {
    podgate_config::Duration::from(d).to_string()
}

/// A close frame's reason is at most 123 bytes; cut on a character boundary.
pub fn close_reason(message: &str) -> String {
    let mut end = message.len().min(123);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXEC: Words = Words {
        closed: "podgate: session closed",
        idle: "without input or output",
        after_shutdown: "reconnect to get a new session",
    };

    fn settings() -> SessionSettings {
        SessionSettings {
            resume: crate::session::resume::ResumeSettings::off(),
            keepalive: Duration::from_secs(20),
            idle_timeout: Some(Duration::from_secs(60)),
            max_duration: Some(Duration::from_secs(3600)),
            max_message: 1 << 20,
            credential_grace: Duration::from_secs(300),
        }
    }

    #[test]
    fn the_first_deadline_ends_the_session_and_the_next_one_wakes_it() {
        let t0 = Instant::now();
        let s = |secs: u64, activity: u64, expires: Option<u64>| Now {
            now: t0 + Duration::from_secs(secs),
            started: t0,
            activity: t0 + Duration::from_secs(activity),
            expires_at: expires,
            unix: 1_000_000 + secs,
            next_ping: t0 + Duration::from_secs(secs + 20),
        };
        let cfg = settings();
        assert_eq!(
            next(&cfg, &s(10, 5, None), &EXEC),
            Next::Sleep(t0 + Duration::from_secs(30))
        );
        assert_eq!(
            next(&cfg, &s(70, 5, None), &EXEC),
            Next::End(
                Policy::IdleTimeout,
                "podgate: session closed after 1m without input or output (idle timeout)".into()
            )
        );
        assert!(matches!(
            next(&cfg, &s(3600, 3599, None), &EXEC),
            Next::End(Policy::MaxDuration, _)
        ));
        // Expired at 1,000,000: past its 5 minutes' grace at 1,000,300.
        assert!(matches!(
            next(&cfg, &s(299, 298, Some(1_000_000)), &EXEC),
            Next::Sleep(_)
        ));
        let Next::End(Policy::CredentialExpired, m) =
            next(&cfg, &s(300, 299, Some(1_000_000)), &EXEC)
        else {
            panic!("not expired at the end of its grace")
        };
        assert!(
            m.starts_with("podgate: session closed: the credential it was opened with expired at ")
        );
        let mut due = s(10, 9, None);
        due.next_ping = due.now;
        assert_eq!(next(&cfg, &due, &EXEC), Next::Ping);
    }

    #[test]
    fn close_reasons_are_cut_on_a_character() {
        let long = "é".repeat(100);
        let r = close_reason(&long);
        assert!(r.len() <= 123 && r.chars().all(|c| c == 'é'));
    }
}
