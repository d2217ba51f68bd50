//! A running session's log lines carry who, where and what
//! (`session{session_id=… user=… cluster=…}: session ended outcome=…`) without a span that
//! lives as long as the session.
//!
//! A span per session held open for its lifetime costs a slot in tracing-subscriber's span
//! registry, and the registry never gives slots back: after 10,000 idle sessions closed, 3.3
//! MiB of slots stayed (BENCHMARKS.md, "Memory after load"), and every poll of the session's
//! task entered and left the span. Instead the task runs in a [`scope`] holding the session's
//! [`SessionLog`], and each line logged in it with [`session_log!`] is written inside a span
//! made for that line, with the same name and fields: the line reads as before, and the
//! registry holds as many slots as lines being written at once.
//!
//! A line logged with plain `tracing::info!` inside a session carries no session fields: use
//! [`session_log!`] in code that runs in a session's task.

use super::registry::LiveSession;
use std::future::Future;
use std::sync::Arc;

tokio::task_local! {
    static CURRENT: SessionLog;
}

/// The fields of a session's log lines.
#[derive(Clone)]
pub struct SessionLog {
    session: Arc<LiveSession>,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Exec {
        client_protocol: &'static str,
        upstream_protocol: &'static str,
    },
    PortForward {
        protocol: &'static str,
    },
}

impl SessionLog {
    /// An exec or attach session: lines under `session{…}`.
    pub fn exec(
        session: Arc<LiveSession>,
        client_protocol: &'static str,
        upstream_protocol: &'static str,
    ) -> SessionLog {
        SessionLog {
            session,
            kind: Kind::Exec {
                client_protocol,
                upstream_protocol,
            },
        }
    }

    /// A port-forward session: lines under `portforward{…}`.
    pub fn port_forward(session: Arc<LiveSession>, protocol: &'static str) -> SessionLog {
        SessionLog {
            session,
            kind: Kind::PortForward { protocol },
        }
    }

    /// A span for one line, with the session's fields.
    fn span(&self) -> tracing::Span {
        let r = &self.session.record;
        match self.kind {
            Kind::Exec {
                client_protocol,
                upstream_protocol,
            } => tracing::info_span!("session",
                session_id = %r.session_id,
                user = %r.user,
                cluster = %r.cluster,
                namespace = %r.namespace,
                pod = %r.pod,
                container = %r.container,
                command = %r.command.join(" "),
                client_protocol,
                upstream_protocol,
            ),
            Kind::PortForward { protocol } => tracing::info_span!("portforward",
                session_id = %r.session_id,
                user = %r.user,
                cluster = %r.cluster,
                namespace = %r.namespace,
                pod = %r.pod,
                protocol,
            ),
        }
    }
}

/// `task` with `log` as the session whose fields its [`session_log!`] lines carry, also while
/// it is dropped (a cancelled session still writes its end line).
pub fn scope<F: Future>(log: SessionLog, task: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(log, task)
}

/// Runs `write` (one log line) inside a span with the current session's fields; outside a
/// session's task (the audit writer, a handshake), without one.
pub fn in_session(write: impl FnOnce()) {
    match CURRENT.try_with(SessionLog::span) {
        Ok(span) => span.in_scope(write),
        Err(_not_in_a_session) => write(),
    }
}

/// `tracing::event!` at `$level` (`INFO`, `DEBUG`, …) with the running session's fields. The
/// span is made only when the line is written: a disabled level costs one check.
macro_rules! session_log {
    ($level:ident, $($arg:tt)+) => {
        if tracing::enabled!(tracing::Level::$level) {
            $crate::session::log_scope::in_session(|| {
                tracing::event!(tracing::Level::$level, $($arg)+)
            })
        }
    };
}
pub(crate) use session_log;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::logging::tests::Captured;
    use crate::session::relay::tests::live_session;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tracing::span;
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

    /// Counts the spans made.
    #[derive(Clone, Default)]
    struct Spans(Arc<AtomicUsize>);

    impl<S: tracing::Subscriber> Layer<S> for Spans {
        fn on_new_span(&self, _: &span::Attributes<'_>, _: &span::Id, _: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl Spans {
        fn made(&self) -> usize {
            self.0.load(Ordering::Relaxed)
        }
    }

    /// The gateway's text format at INFO, into `Captured`.
    fn capture() -> (Captured, Spans, tracing::subscriber::DefaultGuard) {
        let lines = Captured::default();
        let spans = Spans::default();
        let w = lines.clone();
        let subscriber = tracing_subscriber::registry()
            .with(LevelFilter::INFO)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(move || w.clone())
                    .with_ansi(false)
                    .fmt_fields(crate::app::logging::EscapedFields),
            )
            .with(spans.clone());
        (lines, spans, tracing::subscriber::set_default(subscriber))
    }

    const EXEC_FIELDS: &str = "session{session_id=s-1 user=alice cluster=c namespace=default \
                               pod=shell-0 container=\"\" command=sh \
                               client_protocol=\"v5.channel.k8s.io\" \
                               upstream_protocol=\"v4.channel.k8s.io\"}: ";

    /// Writes its line when dropped, as the session guard writes the end line.
    struct EndLine;
    impl Drop for EndLine {
        fn drop(&mut self) {
            session_log!(INFO, outcome = "cancelled", "session ended");
        }
    }

    #[tokio::test]
    async fn a_sessions_lines_carry_its_fields_and_no_span_is_open_between_them() {
        let (lines, spans, _default) = capture();
        let log = SessionLog::exec(live_session(), "v5.channel.k8s.io", "v4.channel.k8s.io");
        scope(log, async {
            session_log!(INFO, setup_ms = 3u64, "session started");
            // Between lines the task is in no span: nothing holds a registry slot.
            assert!(tracing::Span::current().is_none());
            tokio::task::yield_now().await;
            session_log!(INFO, "{}", "podgate: the command exited");
        })
        .await;
        session_log!(INFO, "outside any session");
        // One span per line in the session, made for it; none outside.
        assert_eq!(spans.made(), 2);
        let got: Vec<String> = lines.text().lines().map(str::to_string).collect();
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(
            got[0].contains(&format!(
                "{EXEC_FIELDS}podgate::session::log_scope::tests: session started setup_ms=3"
            )),
            "{got:#?}"
        );
        assert!(
            got[1].contains(&format!(
                "{EXEC_FIELDS}podgate::session::log_scope::tests: podgate: the command exited"
            )),
            "{got:#?}"
        );
        assert!(
            got[2].contains(" INFO podgate::session::log_scope::tests: outside any session"),
            "{got:#?}"
        );
    }

    #[tokio::test]
    async fn a_cancelled_sessions_end_line_still_carries_its_fields() {
        let (lines, _spans, _default) = capture();
        let log = SessionLog::port_forward(live_session(), "v2.portforward.k8s.io");
        let task = scope(log, async {
            let _end = EndLine;
            std::future::pending::<()>().await;
        });
        let mut task = Box::pin(task);
        // Started (the guard is held), then dropped mid-session, as a task at shutdown.
        assert!(poll_once(task.as_mut()).is_pending());
        drop(task);
        let got: Vec<String> = lines.text().lines().map(str::to_string).collect();
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(
            got[0].contains(
                "portforward{session_id=s-1 user=alice cluster=c namespace=default pod=shell-0 \
                 protocol=\"v2.portforward.k8s.io\"}: podgate::session::log_scope::tests: \
                 session ended outcome=\"cancelled\""
            ),
            "{got:#?}"
        );
    }

    #[tokio::test]
    async fn a_disabled_level_makes_no_span() {
        let (lines, spans, _default) = capture();
        let log = SessionLog::exec(live_session(), "v5.channel.k8s.io", "v4.channel.k8s.io");
        scope(log, async {
            session_log!(DEBUG, "dropping a malformed channel frame");
        })
        .await;
        assert_eq!(spans.made(), 0);
        assert_eq!(lines.text(), "");
    }

    fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        f.poll(&mut cx)
    }
}
