//! Session recording and live observers.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `podgate_recordings_total` | counter | cluster, result (`written`, `truncated`, `failed`) |
//! | `podgate_recording_events_dropped_total` | counter | cluster |
//! | `podgate_recording_bytes_total` | counter | cluster |
//! | `podgate_observers_active` | gauge | |
//!
//! A recording ends `written` (whole, to the session's end), `truncated` (the size cap
//! stopped a `best_effort` recording) or `failed` (it could not start, or an I/O error
//! stopped it). Sessions an operator ended count in `podgate_sessions_total{outcome=
//! "terminated"}`; sessions ended because their required recording failed, in
//! `outcome="recording_failed"`.

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

/// How a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingResult {
    Written,
    Truncated,
    Failed,
}

impl RecordingResult {
    pub const ALL: [RecordingResult; 3] = [
        RecordingResult::Written,
        RecordingResult::Truncated,
        RecordingResult::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordingResult::Written => "written",
            RecordingResult::Truncated => "truncated",
            RecordingResult::Failed => "failed",
        }
    }
}

/// The recording series; clones share them.
#[derive(Clone)]
pub struct RecordingMetrics {
    recordings: IntCounterVec,
    dropped: IntCounterVec,
    bytes: IntCounterVec,
    observers: IntGauge,
}

impl Default for RecordingMetrics {
    fn default() -> Self {
        RecordingMetrics::new()
    }
}

impl RecordingMetrics {
    pub fn new() -> RecordingMetrics {
        let vec = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        RecordingMetrics {
            recordings: vec(
                "podgate_recordings_total",
                "Session recordings ended, by result (written, truncated at the size cap, failed).",
                &["cluster", "result"],
            ),
            dropped: vec(
                "podgate_recording_events_dropped_total",
                "Events a best_effort recording dropped because the disk fell behind.",
                &["cluster"],
            ),
            bytes: vec(
                "podgate_recording_bytes_total",
                "Bytes written to session recordings.",
                &["cluster"],
            ),
            observers: IntGauge::with_opts(Opts::new(
                "podgate_observers_active",
                "People watching a live session right now.",
            ))
            .expect("valid metric"),
        }
    }

    /// Adds the series to `registry` (the gateway's, for `/metrics`).
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.recordings.clone()))?;
        registry.register(Box::new(self.dropped.clone()))?;
        registry.register(Box::new(self.bytes.clone()))?;
        registry.register(Box::new(self.observers.clone()))
    }

    /// Zeroed series for a cluster that records, so `rate()` sees its first recording.
    pub fn cluster(&self, cluster: &str) {
        for r in RecordingResult::ALL {
            self.recordings.with_label_values(&[cluster, r.as_str()]);
        }
        self.dropped.with_label_values(&[cluster]);
        self.bytes.with_label_values(&[cluster]);
    }

    pub fn ended(&self, cluster: &str, result: RecordingResult) {
        self.recordings
            .with_label_values(&[cluster, result.as_str()])
            .inc();
    }

    pub fn dropped(&self, cluster: &str, events: u64) {
        self.dropped.with_label_values(&[cluster]).inc_by(events);
    }

    pub fn written(&self, cluster: &str, bytes: u64) {
        self.bytes.with_label_values(&[cluster]).inc_by(bytes);
    }

    pub fn observer_joined(&self) {
        self.observers.inc();
    }

    pub fn observer_left(&self) {
        self.observers.dec();
    }
}
