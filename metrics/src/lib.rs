#![forbid(unsafe_code)]
//! podgate's Prometheus metrics: one registry, typed methods that only take bounded label
//! values, per-session series that exist only while their session lives, and the text
//! exposition for the admin listener's `/metrics`.
//!
//! Metric names and labels are an interface (the dashboard and alerts in `deploy/monitoring/`
//! depend on them):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `podgate_sessions_active` | gauge | cluster |
//! | `podgate_sessions_total` | counter | cluster, outcome ([`Outcome`]) |
//! | `podgate_session_duration_seconds` | histogram | cluster |
//! | `podgate_session_setup_seconds` | histogram | cluster |
//! | `podgate_session_bytes_total` | counter | cluster, direction ([`Direction`]) |
//! | `podgate_session_info` | gauge, 1 | session_id, user, cluster, namespace, pod, container |
//! | `podgate_session_relayed_bytes_total` | counter | session_id, direction |
//! | `podgate_session_start_time_seconds` | gauge | session_id |
//! | `podgate_session_series_dropped_total` | counter | |
//! | `podgate_auth_failures_total` | counter | reason |
//! | `podgate_upstream_requests_total` | counter | cluster, code |
//! | `podgate_upstream_request_duration_seconds` | histogram | cluster |
//! | `podgate_cluster_up` | gauge | cluster |
//! | `podgate_config_reloads_total` | counter | result ([`ReloadResult`]) |
//! | `podgate_config_last_reload_success_timestamp_seconds` | gauge | |
//! | `podgate_tls_handshake_failures_total` | counter | |
//! | `podgate_tls_certificate_expiry_timestamp_seconds` | gauge | use ([`CertificateUse`]), cluster |
//! | `podgate_build_info` | gauge, 1 | version, revision |
//! | `podgate_audit_write_failures_total` | counter | |
//! | `podgate_audit_lines_dropped_total` | counter | |
//! | `podgate_unauthenticated_requests_total` | counter | |
//! | `podgate_cluster_probes_total`, `_in_flight`, `podgate_cluster_probe_interval_seconds` | | see [`ProbeMetrics`] |
//! | `podgate_recordings_total`, `podgate_recording_*`, `podgate_observers_active` | | see [`RecordingMetrics`] |
//! | `podgate_file_transfers_total`, `podgate_file_transfer_bytes_total` | | see [`FileMetrics`] |
//! | `podgate_pod_index_pods`, `podgate_pod_index_watches`, `podgate_pod_index_relists_total`, `podgate_pod_searches_total` | | see [`PodIndexMetrics`] |
//! | `process_*` (Linux) | | resident memory, open/max fds, CPU seconds, threads, start time |
//!
//! The three `podgate_session_*` series keyed by `session_id` are the per-session series:
//! present while the session lives (and [`SessionSeries`] allows), gone once it ends.
//!
//! ```
//! use podgate_metrics::{Direction, Metrics, Outcome, SessionLabels, SessionSeries};
//! use std::time::Duration;
//!
//! let metrics = Metrics::new(["prod"], SessionSeries::default());
//! let session = metrics.session_started(SessionLabels {
//!     session_id: "s-1",
//!     user: "alice",
//!     cluster: "prod",
//!     namespace: "default",
//!     pod: "shell-0",
//!     container: "main",
//! });
//! session.established(Duration::from_millis(40));
//! session.add(Direction::Stdout, 512); // per frame
//! assert!(metrics.render().contains(r#"podgate_session_relayed_bytes_total{session_id="s-1",direction="stdout"} 512"#));
//! session.finish(Outcome::Completed, Duration::from_secs(3));
//! assert!(!metrics.render().contains("s-1"));
//! ```

mod agents;
mod files;
mod labels;
mod metrics;
mod podindex;
mod probes;
mod recording;
mod resume;
mod session;

pub use agents::{AgentMetrics, TunnelResult};
pub use files::{FileDirection, FileMetrics, FileResult};
pub use labels::{
    CertificateUse, Direction, NO_RESPONSE_CODE, OTHER_REASON, Outcome, ReloadResult,
    UNKNOWN_CLUSTER,
};
pub use metrics::{CONTENT_TYPE, Metrics};
pub use podindex::{PodIndexMetrics, SearchResult};
pub use probes::ProbeMetrics;
pub use recording::{RecordingMetrics, RecordingResult};
pub use resume::{ResumeFailure, ResumeMetrics};
pub use session::{SessionLabels, SessionMetrics, SessionSeries};

#[cfg(test)]
mod tests;

/// `registry`'s exposition text, as `/metrics` serves it (for the series' unit tests).
#[cfg(test)]
pub(crate) fn exposition(registry: &prometheus::Registry) -> String {
    let mut out = Vec::new();
    prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &registry.gather(),
        &mut out,
    )
    .expect("encodes");
    String::from_utf8(out).expect("utf-8")
}
