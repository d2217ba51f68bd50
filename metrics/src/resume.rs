//! Sessions that survive a dropped connection (docs/protocol.md, "Resume").
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `podgate_resume_waiting_sessions` | gauge | |
//! | `podgate_resumes_total` | counter | result (`succeeded`, `failed`), reason |
//! | `podgate_resume_replayed_bytes_total` | counter | |
//! | `podgate_resume_gap_bytes_total` | counter | |
//!
//! `reason` is `resumed` for a success, else one of [`ResumeFailure`]'s values. Drops are
//! not counted here: every drop ends as a resume or as `podgate_sessions_total{outcome=
//! "resume_window_expired"}`.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Why a resume was refused: the `reason` of `podgate_resumes_total{result="failed"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeFailure {
    /// No session of that id waits here (ended, never existed, or held by another replica).
    UnknownSession,
    /// Another person's session.
    Forbidden,
    /// The credential is not the session's.
    BadCredential,
    /// The session's window ended.
    Expired,
    /// Not a readable resume (no credential or offset entry, not v5).
    BadRequest,
}

impl ResumeFailure {
    pub const ALL: [ResumeFailure; 5] = [
        ResumeFailure::UnknownSession,
        ResumeFailure::Forbidden,
        ResumeFailure::BadCredential,
        ResumeFailure::Expired,
        ResumeFailure::BadRequest,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ResumeFailure::UnknownSession => "unknown_session",
            ResumeFailure::Forbidden => "forbidden",
            ResumeFailure::BadCredential => "bad_credential",
            ResumeFailure::Expired => "expired",
            ResumeFailure::BadRequest => "bad_request",
        }
    }
}

/// The resume series; clones share them.
#[derive(Clone)]
pub struct ResumeMetrics {
    waiting: IntGauge,
    resumes: IntCounterVec,
    replayed: IntCounter,
    gap: IntCounter,
}

impl Default for ResumeMetrics {
    fn default() -> Self {
        ResumeMetrics::new()
    }
}

impl ResumeMetrics {
    pub fn new() -> ResumeMetrics {
        let counter = |name: &str, help: &str| {
            IntCounter::with_opts(Opts::new(name, help)).expect("valid metric")
        };
        let m = ResumeMetrics {
            waiting: IntGauge::with_opts(Opts::new(
                "podgate_resume_waiting_sessions",
                "Sessions whose client dropped and that wait for their page to resume them.",
            ))
            .expect("valid metric"),
            resumes: IntCounterVec::new(
                Opts::new(
                    "podgate_resumes_total",
                    "Resume attempts, by result (succeeded, failed) and reason.",
                ),
                &["result", "reason"],
            )
            .expect("valid metric"),
            replayed: counter(
                "podgate_resume_replayed_bytes_total",
                "Output bytes sent again to pages that resumed.",
            ),
            gap: counter(
                "podgate_resume_gap_bytes_total",
                "Output bytes a resume skipped because the buffer no longer held them.",
            ),
        };
        // Zeroed, so `rate()` sees the first of each.
        m.resumes.with_label_values(&["succeeded", "resumed"]);
        for f in ResumeFailure::ALL {
            m.resumes.with_label_values(&["failed", f.as_str()]);
        }
        m
    }

    /// Adds the series to `registry` (the gateway's, for `/metrics`).
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.waiting.clone()))?;
        registry.register(Box::new(self.resumes.clone()))?;
        registry.register(Box::new(self.replayed.clone()))?;
        registry.register(Box::new(self.gap.clone()))
    }

    pub fn waiting(&self, delta: i64) {
        self.waiting.add(delta);
    }

    pub fn succeeded(&self, replayed: u64, gap: u64) {
        self.resumes
            .with_label_values(&["succeeded", "resumed"])
            .inc();
        self.replayed.inc_by(replayed);
        self.gap.inc_by(gap);
    }

    pub fn failed(&self, reason: ResumeFailure) {
        self.resumes
            .with_label_values(&["failed", reason.as_str()])
            .inc();
    }

    /// Output bytes dropped by an `overwrite` buffer that a resume then skipped is counted by
    /// [`succeeded`](Self::succeeded); this is for reading the series in tests.
    pub fn waiting_now(&self) -> i64 {
        self.waiting.get()
    }
}
