//! The registry and the typed methods the gateway calls.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::labels::{self, CertificateUse, Direction, Outcome, ReloadResult, UNKNOWN_CLUSTER};
use crate::session::{LiveCollector, LiveSessions, SessionLabels, SessionMetrics, SessionSeries};

/// `Content-Type` of [`Metrics::render`]'s output (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Session setup (upgrade received → upstream streaming): an apiserver round trip plus the
/// container runtime starting the command; tens to hundreds of milliseconds when healthy.
const SETUP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Sessions last from a one-off command to a working day.
const DURATION_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0,
];
/// Proxied API requests, to response headers (a watch or a followed log counts until its
/// headers, not until it ends).
const REQUEST_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Every series of one cluster that a session touches, resolved once per cluster, so a session
/// start costs one map lookup and a frame none.
pub(crate) struct ClusterHandles {
    pub(crate) active: IntGauge,
    pub(crate) outcomes: [IntCounter; Outcome::ALL.len()],
    pub(crate) duration: Histogram,
    pub(crate) setup: Histogram,
    pub(crate) bytes: [IntCounter; 3],
    pub(crate) upstream_duration: Histogram,
}

/// podgate's metrics: one Prometheus registry and typed methods that only accept bounded label
/// values. Cheap to clone (an `Arc`); share one per process.
///
/// Cluster labels come from [`set_clusters`](Self::set_clusters) (the configured cluster ids);
/// an id that is not configured is reported as [`UNKNOWN_CLUSTER`] rather than minting a new
/// series. What is counted per cluster (sessions, their outcomes, bytes, setup and duration,
/// proxied request durations) is created, all at zero, when the cluster is first used (its
/// first session, refusal or proxied request), not for every configured cluster up front: a
/// fleet of 10,000 clusters that nobody uses would otherwise hold (and every scrape render)
/// about 70 zero series per cluster, 12.6 KiB of memory each. A session's outcome is counted
/// when it ends, after its series were created at its start, so `rate()` sees it;
/// `podgate_cluster_up` exists for every configured cluster from its first probe.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    sessions_active: IntGaugeVec,
    sessions_total: IntCounterVec,
    session_duration: HistogramVec,
    session_setup: HistogramVec,
    session_bytes_total: IntCounterVec,
    auth_failures: IntCounterVec,
    upstream_requests: IntCounterVec,
    upstream_duration: HistogramVec,
    cluster_up: IntGaugeVec,
    config_reloads: IntCounterVec,
    last_reload_success: IntGauge,
    tls_handshake_failures: IntCounter,
    build_info: IntGaugeVec,
    certificate_expiry: IntGaugeVec,
    audit_write_failures: IntCounter,
    audit_lines_dropped: IntCounter,
    unauthenticated: IntCounter,
    series_dropped: IntCounter,
    /// The configured cluster ids, each with its series once it was first used.
    clusters: RwLock<HashMap<String, OnceLock<Arc<ClusterHandles>>>>,
    unknown: OnceLock<Arc<ClusterHandles>>,
    live: Arc<LiveSessions>,
}

impl Metrics {
    /// A registry with every podgate metric and the process metrics (Linux), knowing
    /// `clusters` (the configured cluster ids) as cluster labels.
    pub fn new<I, S>(clusters: I, session_series: SessionSeries) -> Metrics
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let registry = Registry::new();
        fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
            r.register(Box::new(c.clone()))
                .expect("static metric definitions register once");
            c
        }
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &registry,
                IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let histogram_vec = |name: &str, help: &str, buckets: &[f64]| {
            reg(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                    &["cluster"],
                )
                .expect("valid metric"),
            )
        };
        let counter = |name: &str, help: &str| {
            reg(
                &registry,
                IntCounter::with_opts(Opts::new(name, help)).expect("valid metric"),
            )
        };

        let live = Arc::new(LiveSessions::new(session_series));
        registry
            .register(Box::new(LiveCollector(live.clone())))
            .expect("static metric definitions register once");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("the process collector registers once");

        let inner = Inner {
            sessions_active: gauge_vec(
                "podgate_sessions_active",
                "Exec/attach sessions open right now.",
                &["cluster"],
            ),
            sessions_total: counter_vec(
                "podgate_sessions_total",
                "Exec/attach sessions ended or refused, by outcome.",
                &["cluster", "outcome"],
            ),
            session_duration: histogram_vec(
                "podgate_session_duration_seconds",
                "How long sessions lasted.",
                DURATION_BUCKETS,
            ),
            session_setup: histogram_vec(
                "podgate_session_setup_seconds",
                "Time from a session's upgrade request to upstream streaming.",
                SETUP_BUCKETS,
            ),
            session_bytes_total: counter_vec(
                "podgate_session_bytes_total",
                "Bytes relayed by sessions, per stream (stdin: client to pod).",
                &["cluster", "direction"],
            ),
            auth_failures: counter_vec(
                "podgate_auth_failures_total",
                "Requests refused because authentication failed, by reason.",
                &["reason"],
            ),
            upstream_requests: counter_vec(
                "podgate_upstream_requests_total",
                "Requests sent to clusters, by HTTP status (\"error\": no response).",
                &["cluster", "code"],
            ),
            upstream_duration: histogram_vec(
                "podgate_upstream_request_duration_seconds",
                "Time from sending a request to a cluster to its response headers.",
                REQUEST_BUCKETS,
            ),
            cluster_up: gauge_vec(
                "podgate_cluster_up",
                "Whether the last health probe of a cluster succeeded (1) or not (0).",
                &["cluster"],
            ),
            config_reloads: counter_vec(
                "podgate_config_reloads_total",
                "Config reloads, by result.",
                &["result"],
            ),
            last_reload_success: reg(
                &registry,
                IntGauge::with_opts(Opts::new(
                    "podgate_config_last_reload_success_timestamp_seconds",
                    "When the config file was last loaded or reloaded successfully (Unix seconds).",
                ))
                .expect("valid metric"),
            ),
            tls_handshake_failures: counter(
                "podgate_tls_handshake_failures_total",
                "TLS handshakes on the public listener that failed.",
            ),
            build_info: gauge_vec(
                "podgate_build_info",
                "The running build (always 1): its version and the git revision it was built from.",
                &["version", "revision"],
            ),
            certificate_expiry: gauge_vec(
                "podgate_tls_certificate_expiry_timestamp_seconds",
                "When a certificate podgate presents expires (notAfter, Unix seconds): the \
                 serving certificate (use=\"serving\"), or a cluster's client certificate \
                 (use=\"cluster_client\").",
                &["use", "cluster"],
            ),
            audit_write_failures: counter(
                "podgate_audit_write_failures_total",
                "Audit lines that could not be written to the audit output (an I/O error).",
            ),
            audit_lines_dropped: counter(
                "podgate_audit_lines_dropped_total",
                "Audit lines dropped because the writer's queue was full (a slow output).",
            ),
            unauthenticated: counter(
                "podgate_unauthenticated_requests_total",
                "Requests that carried no credential at all (a logged-out page view, a client \
                 without a token); failed credentials count in podgate_auth_failures_total.",
            ),
            series_dropped: counter(
                "podgate_session_series_dropped_total",
                "Sessions that got no per-session series because the cap was reached.",
            ),
            registry,
            clusters: RwLock::new(HashMap::new()),
            unknown: OnceLock::new(),
            live,
        };
        for r in ReloadResult::ALL {
            inner.config_reloads.with_label_values(&[r.as_str()]);
        }
        let metrics = Metrics {
            inner: Arc::new(inner),
        };
        metrics.set_clusters(clusters);
        metrics
    }

    /// Declares the configured cluster ids (at start and after every config reload). New ids
    /// get their series when first used; ids no longer configured lose `podgate_cluster_up`,
    /// so a removed cluster neither alerts as down nor shows as up. Their counters stay until
    /// restart, as counters do; sessions still open on them finish normally.
    pub fn set_clusters<I, S>(&self, clusters: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let inner = &self.inner;
        let mut map = inner.clusters.write().unwrap_or_else(|p| p.into_inner());
        let mut next = HashMap::new();
        for id in clusters {
            let id = id.as_ref();
            let handles = map.remove(id).unwrap_or_default();
            next.insert(id.to_string(), handles);
        }
        for removed in map.keys() {
            let _ = inner.cluster_up.remove_label_values(&[removed]);
            let _ = inner
                .certificate_expiry
                .remove_label_values(&[CertificateUse::ClusterClient.as_str(), removed]);
        }
        *map = next;
    }

    /// Changes the per-session switch and cap (e.g. after a config reload). Switching off hides
    /// every per-session series at once; a lower cap applies to sessions started from now on.
    pub fn set_session_series(&self, series: SessionSeries) {
        self.inner.live.configure(series);
    }

    /// A session was accepted (upgrade request received and authorized): it counts as active
    /// until [`SessionMetrics::finish`] or drop, and gets per-session series if they are on
    /// and under the cap. Call [`SessionMetrics::established`] when streaming starts.
    pub fn session_started(&self, labels: SessionLabels<'_>) -> SessionMetrics {
        let (cluster_label, handles) = self.inner.cluster(labels.cluster);
        SessionMetrics::start(
            labels,
            cluster_label,
            handles,
            self.inner.live.clone(),
            &self.inner.series_dropped,
        )
    }

    /// A session that never started (refused by policy or a limit, or failed before
    /// [`Metrics::session_started`]): counts in `podgate_sessions_total` only.
    pub fn session_rejected(&self, cluster: &str, outcome: Outcome) {
        self.inner.cluster(cluster).1.outcomes[outcome.index()].inc();
    }

    /// An authentication failure. `reason` is the auth crate's bounded label (e.g.
    /// `AuthError::reason()`); anything that is not a short `[a-z0-9_]` identifier counts as
    /// [`labels::OTHER_REASON`].
    pub fn auth_failure(&self, reason: &'static str) {
        self.inner
            .auth_failures
            .with_label_values(&[labels::auth_reason(reason)])
            .inc();
    }

    /// A request the gateway sent to a cluster (proxied API calls and exec/attach upgrades):
    /// `code` is the response status, `None` if no response came back; `elapsed` is the time to
    /// the response headers (or to the failure).
    pub fn upstream_request(&self, cluster: &str, code: Option<u16>, elapsed: Duration) {
        let (cluster_label, handles) = self.inner.cluster(cluster);
        handles.upstream_duration.observe(elapsed.as_secs_f64());
        self.inner
            .upstream_requests
            .with_label_values(&[cluster_label, &labels::status_code(code)])
            .inc();
    }

    /// The result of a cluster's health probe. Ignored (returns `false`) for an id that is not
    /// configured, so a stale probe cannot resurrect a removed cluster.
    pub fn set_cluster_up(&self, cluster: &str, up: bool) -> bool {
        let known = self.inner.lock_clusters().contains_key(cluster);
        if known {
            self.inner
                .cluster_up
                .with_label_values(&[cluster])
                .set(up as i64);
        }
        known
    }

    /// A config reload's result; a success also sets the time of the last success.
    pub fn config_reload(&self, result: ReloadResult) {
        self.inner
            .config_reloads
            .with_label_values(&[result.as_str()])
            .inc();
        if result == ReloadResult::Success {
            self.config_loaded();
        }
    }

    /// The config was loaded (at start) or reloaded successfully, now.
    pub fn config_loaded(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        self.inner.last_reload_success.set(now);
    }

    /// The running build: `podgate_build_info{version, revision} 1` (one series).
    pub fn set_build_info(&self, version: &str, revision: &str) {
        self.inner.build_info.reset();
        self.inner
            .build_info
            .with_label_values(&[version, revision])
            .set(1);
    }

    /// When a certificate podgate presents expires (`None`: it has none any more).
    /// `cluster` is empty for the serving certificate; a cluster id not configured is ignored.
    pub fn set_certificate_expiry(
        &self,
        use_: CertificateUse,
        cluster: &str,
        not_after: Option<u64>,
    ) {
        if use_ == CertificateUse::ClusterClient
            && !self.inner.lock_clusters().contains_key(cluster)
        {
            return;
        }
        let labels = [use_.as_str(), cluster];
        match not_after {
            Some(t) => self
                .inner
                .certificate_expiry
                .with_label_values(&labels)
                .set(i64::try_from(t).unwrap_or(i64::MAX)),
            None => {
                let _ = self.inner.certificate_expiry.remove_label_values(&labels);
            }
        }
    }

    /// `lines` audit lines that could not be written.
    pub fn audit_write_failures(&self, lines: u64) {
        self.inner.audit_write_failures.inc_by(lines);
    }

    pub fn audit_line_dropped(&self) {
        self.inner.audit_lines_dropped.inc();
    }

    /// A request with no credential at all (not a failed one).
    pub fn unauthenticated_request(&self) {
        self.inner.unauthenticated.inc();
    }

    pub fn tls_handshake_failure(&self) {
        self.inner.tls_handshake_failures.inc();
    }

    /// Sessions that have per-session series right now.
    pub fn exported_sessions(&self) -> usize {
        self.inner.live.len()
    }

    /// Every metric in the Prometheus text format ([`CONTENT_TYPE`]), for `GET /metrics`.
    pub fn render(&self) -> String {
        let families = self.inner.registry.gather();
        let mut out = Vec::with_capacity(16 * 1024);
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            // Cannot happen with the metrics defined here; say so in the output rather than
            // failing the scrape.
            out.extend_from_slice(format!("# podgate: encoding failed: {e}\n").as_bytes());
        }
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
    }

    /// The underlying registry, to register more collectors.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }
}

impl Inner {
    fn handles(&self, cluster: &str) -> ClusterHandles {
        let l = &[cluster];
        ClusterHandles {
            active: self.sessions_active.with_label_values(l),
            outcomes: Outcome::ALL.map(|o| {
                self.sessions_total
                    .with_label_values(&[cluster, o.as_str()])
            }),
            duration: self.session_duration.with_label_values(l),
            setup: self.session_setup.with_label_values(l),
            bytes: Direction::ALL.map(|d| {
                self.session_bytes_total
                    .with_label_values(&[cluster, d.as_str()])
            }),
            upstream_duration: self.upstream_duration.with_label_values(l),
        }
    }

    /// The label and handles for `cluster`, or for [`UNKNOWN_CLUSTER`] if it is not configured.
    fn cluster<'a>(&self, cluster: &'a str) -> (&'a str, Arc<ClusterHandles>) {
        if let Some(slot) = self.lock_clusters().get(cluster) {
            // Two first uses at once build it once; the vectors' own locks are taken under
            // this read lock, never the other way round.
            let handles = slot.get_or_init(|| Arc::new(self.handles(cluster)));
            return (cluster, handles.clone());
        }
        let unknown = self
            .unknown
            .get_or_init(|| Arc::new(self.handles(UNKNOWN_CLUSTER)));
        (UNKNOWN_CLUSTER, unknown.clone())
    }

    fn lock_clusters(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<String, OnceLock<Arc<ClusterHandles>>>> {
        self.clusters.read().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut clusters: Vec<String> = self.inner.lock_clusters().keys().cloned().collect();
        clusters.sort();
        f.debug_struct("Metrics")
            .field("clusters", &clusters)
            .field("exported_sessions", &self.exported_sessions())
            .finish_non_exhaustive()
    }
}
