//! One session's metrics: the guard the relay holds, and the collector that exports the
//! per-session series of the sessions that are alive right now.
//!
//! Per-session series are not kept in `prometheus` vectors. Each session owns its byte counters
//! (plain atomics); the collector reads the live sessions at scrape time. That makes the
//! relay's per-frame cost two relaxed atomic adds (the session's own counter and the cluster's
//! `podgate_session_bytes_total`), and it makes removal structural: a session that has left
//! the live set cannot be scraped, whatever path ended it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};

use crate::labels::{Direction, Outcome};
use crate::metrics::ClusterHandles;

/// Who and what a session is about: the labels of `podgate_session_info`.
///
/// Only `cluster` also labels aggregate series, and it must be a configured cluster id; the
/// other fields appear only on the capped per-session series.
#[derive(Clone, Copy, Debug)]
pub struct SessionLabels<'a> {
    /// Unique among live sessions (the gateway's session id).
    pub session_id: &'a str,
    pub user: &'a str,
    pub cluster: &'a str,
    pub namespace: &'a str,
    pub pod: &'a str,
    /// Empty when the client left it to the cluster's default.
    pub container: &'a str,
}

/// Whether sessions get per-session series (`podgate_session_info`, `podgate_session_relayed_bytes_total`,
/// `podgate_session_start_time_seconds`), and for how many sessions at once.
///
/// Every live session costs five series while it has them, with user-chosen label values, so
/// the cap is what keeps a burst of sessions from exploding the scrape. Sessions started while
/// the cap is reached never get series (they are counted in
/// `podgate_session_series_dropped_total`); every aggregate still counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionSeries {
    pub enabled: bool,
    pub max_sessions: usize,
}

impl Default for SessionSeries {
    /// On, for at most 1000 sessions at once.
    fn default() -> Self {
        SessionSeries {
            enabled: true,
            max_sessions: 1000,
        }
    }
}

/// The part of a session the collector reads.
pub(crate) struct SessionState {
    id: String,
    user: String,
    cluster: String,
    namespace: String,
    pod: String,
    container: String,
    start_unix_seconds: f64,
    bytes: [AtomicU64; 3],
}

/// The sessions that have per-session series, and the switch and cap that decide which do.
pub(crate) struct LiveSessions {
    enabled: AtomicBool,
    cap: AtomicUsize,
    sessions: Mutex<BTreeMap<String, Arc<SessionState>>>,
    descs: [Desc; 3],
}

const INFO: &str = "podgate_session_info";
/// A running total is a counter (Prometheus naming); `podgate_session_bytes_total` is the
/// per-cluster sum, so the per-session one has its own name.
const BYTES: &str = "podgate_session_relayed_bytes_total";
const START: &str = "podgate_session_start_time_seconds";

impl LiveSessions {
    pub(crate) fn new(series: SessionSeries) -> LiveSessions {
        let desc = |name: &str, help: &str, labels: &[&str]| {
            Desc::new(
                name.to_string(),
                help.to_string(),
                labels.iter().map(|l| l.to_string()).collect(),
                Default::default(),
            )
            .expect("static metric descriptions are valid")
        };
        LiveSessions {
            enabled: AtomicBool::new(series.enabled),
            cap: AtomicUsize::new(series.max_sessions),
            sessions: Mutex::new(BTreeMap::new()),
            descs: [
                desc(
                    INFO,
                    "A live session (always 1), labelled with who is connected to what. Removed \
                     when the session ends.",
                    &[
                        "session_id",
                        "user",
                        "cluster",
                        "namespace",
                        "pod",
                        "container",
                    ],
                ),
                desc(
                    BYTES,
                    "Bytes relayed so far by a live session, per stream. Removed when the \
                     session ends.",
                    &["session_id", "direction"],
                ),
                desc(
                    START,
                    "Start of a live session, in seconds since the Unix epoch. Removed when the \
                     session ends.",
                    &["session_id"],
                ),
            ],
        }
    }

    pub(crate) fn configure(&self, series: SessionSeries) {
        self.cap.store(series.max_sessions, Relaxed);
        self.enabled.store(series.enabled, Relaxed);
    }

    /// Admits a session to the per-session series. `Ok(false)` when series are switched off,
    /// `Err(())` when the cap is reached or the id is already live.
    fn admit(&self, state: &Arc<SessionState>) -> Result<bool, ()> {
        if !self.enabled.load(Relaxed) {
            return Ok(false);
        }
        let mut live = self.lock();
        if live.len() >= self.cap.load(Relaxed) || live.contains_key(&state.id) {
            return Err(());
        }
        live.insert(state.id.clone(), state.clone());
        Ok(true)
    }

    fn remove(&self, state: &Arc<SessionState>) {
        let mut live = self.lock();
        // Only if it is this session's entry (ids are unique among live sessions, but a
        // refused duplicate must not remove the original).
        if live.get(&state.id).is_some_and(|s| Arc::ptr_eq(s, state)) {
            live.remove(&state.id);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Arc<SessionState>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut pair = LabelPair::default();
    pair.set_name(name.to_string());
    pair.set_value(value.to_string());
    pair
}

fn gauge(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = Metric::from_label(labels);
    m.set_gauge(g);
    m
}

fn counter(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut c = prometheus::proto::Counter::default();
    c.set_value(value);
    let mut m = Metric::from_label(labels);
    m.set_counter(c);
    m
}

fn family(desc: &Desc, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(desc.fq_name.clone());
    f.set_help(desc.help.clone());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

/// The registry holds its collectors in boxes; the sessions are shared with [`Metrics`].
///
/// [`Metrics`]: crate::Metrics
pub(crate) struct LiveCollector(pub(crate) Arc<LiveSessions>);

impl Collector for LiveCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        if !self.0.enabled.load(Relaxed) {
            return Vec::new();
        }
        // Copy the pointers out so the lock is not held while the families are built: session
        // starts and ends never wait on a scrape.
        let live: Vec<Arc<SessionState>> = self.0.lock().values().cloned().collect();
        let mut info = Vec::with_capacity(live.len());
        let mut bytes = Vec::with_capacity(live.len() * 3);
        let mut start = Vec::with_capacity(live.len());
        for s in &live {
            info.push(gauge(
                vec![
                    label("session_id", &s.id),
                    label("user", &s.user),
                    label("cluster", &s.cluster),
                    label("namespace", &s.namespace),
                    label("pod", &s.pod),
                    label("container", &s.container),
                ],
                1.0,
            ));
            for d in Direction::ALL {
                bytes.push(counter(
                    vec![label("session_id", &s.id), label("direction", d.as_str())],
                    s.bytes[d.index()].load(Relaxed) as f64,
                ));
            }
            start.push(gauge(
                vec![label("session_id", &s.id)],
                s.start_unix_seconds,
            ));
        }
        let [d_info, d_bytes, d_start] = &self.0.descs;
        vec![
            family(d_info, MetricType::GAUGE, info),
            family(d_bytes, MetricType::COUNTER, bytes),
            family(d_start, MetricType::GAUGE, start),
        ]
    }
}

/// One session's metrics, from [`Metrics::session_started`] until
/// [`finish`](Self::finish) (or drop).
///
/// While it lives the session counts in `podgate_sessions_active` and, if admitted, has its
/// per-session series. Cheap to use from the relay: [`add`](Self::add) is two relaxed atomic
/// adds on handles resolved when the session started, with no lock and no label lookup.
/// `Send + Sync`, so readers and writers of one session can share it by reference.
///
/// [`Metrics::session_started`]: crate::Metrics::session_started
pub struct SessionMetrics {
    pub(crate) state: Arc<SessionState>,
    pub(crate) cluster: Arc<ClusterHandles>,
    pub(crate) live: Arc<LiveSessions>,
    pub(crate) exported: bool,
    pub(crate) started: Instant,
    pub(crate) finished: std::sync::atomic::AtomicBool,
}

impl SessionMetrics {
    pub(crate) fn start(
        labels: SessionLabels<'_>,
        cluster_label: &str,
        cluster: Arc<ClusterHandles>,
        live: Arc<LiveSessions>,
        dropped: &prometheus::IntCounter,
    ) -> SessionMetrics {
        let now = SystemTime::now();
        let state = Arc::new(SessionState {
            id: labels.session_id.to_string(),
            user: labels.user.to_string(),
            cluster: cluster_label.to_string(),
            namespace: labels.namespace.to_string(),
            pod: labels.pod.to_string(),
            container: labels.container.to_string(),
            start_unix_seconds: now
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            bytes: Default::default(),
        });
        let exported = match live.admit(&state) {
            Ok(exported) => exported,
            Err(()) => {
                dropped.inc();
                false
            }
        };
        cluster.active.inc();
        SessionMetrics {
            state,
            cluster,
            live,
            exported,
            started: Instant::now(),
            finished: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Counts `n` bytes relayed on `direction`. Call it per frame: two relaxed atomic adds.
    #[inline]
    pub fn add(&self, direction: Direction, n: u64) {
        let i = direction.index();
        self.state.bytes[i].fetch_add(n, Relaxed);
        self.cluster.bytes[i].inc_by(n);
    }

    /// Bytes counted so far on `direction` (for `/debug/sessions` and the audit line).
    pub fn bytes(&self, direction: Direction) -> u64 {
        self.state.bytes[direction.index()].load(Relaxed)
    }

    /// Records the setup latency (upgrade received → upstream streaming) in
    /// `podgate_session_setup_seconds`. Call it once, when streaming starts.
    pub fn established(&self, setup: Duration) {
        self.cluster.setup.observe(setup.as_secs_f64());
    }

    /// Time since [`Metrics::session_started`](crate::Metrics::session_started).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Whether this session has per-session series (switched on, under the cap).
    pub fn exported(&self) -> bool {
        self.exported
    }

    pub fn session_id(&self) -> &str {
        &self.state.id
    }

    /// Ends the session: counts it in `podgate_sessions_total{outcome}`, records `duration` in
    /// `podgate_session_duration_seconds`, and removes its per-session series. Only the
    /// first call counts; by reference, so a registry of live sessions can own the guard.
    pub fn finish(&self, outcome: Outcome, duration: Duration) {
        self.end(outcome, duration);
    }

    fn end(&self, outcome: Outcome, duration: Duration) {
        if self
            .finished
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        if self.exported {
            self.live.remove(&self.state);
        }
        self.cluster.active.dec();
        self.cluster.outcomes[outcome.index()].inc();
        self.cluster.duration.observe(duration.as_secs_f64());
    }
}

impl Drop for SessionMetrics {
    /// A session dropped without [`finish`](Self::finish) (an early return, a panic in the
    /// relay) still leaves the live set and the active gauge, and is counted as
    /// [`Outcome::CLAMPED`].
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        self.end(Outcome::CLAMPED, elapsed);
    }
}

impl std::fmt::Debug for SessionMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMetrics")
            .field("session_id", &self.state.id)
            .field("cluster", &self.state.cluster)
            .field("exported", &self.exported)
            .finish_non_exhaustive()
    }
}
