//! The pod search's per-cluster index (list, then watch; closed when idle).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `podgate_pod_index_pods` | gauge | cluster (only while its index is open) |
//! | `podgate_pod_index_watches` | gauge | |
//! | `podgate_pod_index_relists_total` | counter | |
//! | `podgate_pod_searches_total` | counter | result ([`SearchResult`]) |

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// How a search was answered: the `result` of `podgate_pod_searches_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchResult {
    /// Answered (some clusters may still be syncing or in error: see the answer).
    Ok,
    /// A bad request: too many clusters, a query too long, an unknown cluster.
    Refused,
}

impl SearchResult {
    pub const ALL: [SearchResult; 2] = [SearchResult::Ok, SearchResult::Refused];

    pub const fn as_str(self) -> &'static str {
        match self {
            SearchResult::Ok => "ok",
            SearchResult::Refused => "refused",
        }
    }
}

/// The pod index series; clones share them.
#[derive(Clone)]
pub struct PodIndexMetrics {
    pods: IntGaugeVec,
    watches: IntGauge,
    relists: IntCounter,
    searches: IntCounterVec,
}

impl Default for PodIndexMetrics {
    fn default() -> Self {
        PodIndexMetrics::new()
    }
}

impl PodIndexMetrics {
    pub fn new() -> PodIndexMetrics {
        let m = PodIndexMetrics {
            pods: IntGaugeVec::new(
                Opts::new(
                    "podgate_pod_index_pods",
                    "Pods held in a cluster's search index, while it is open.",
                ),
                &["cluster"],
            )
            .expect("valid metric"),
            watches: IntGauge::new(
                "podgate_pod_index_watches",
                "Cluster pod indexes open (each one list-and-watch).",
            )
            .expect("valid metric"),
            relists: IntCounter::new(
                "podgate_pod_index_relists_total",
                "Pod index lists after the first (410 Gone, a broken watch).",
            )
            .expect("valid metric"),
            searches: IntCounterVec::new(
                Opts::new("podgate_pod_searches_total", "Pod searches, by result."),
                &["result"],
            )
            .expect("valid metric"),
        };
        for r in SearchResult::ALL {
            m.searches.with_label_values(&[r.as_str()]);
        }
        m
    }

    /// Adds the series to `registry` (the gateway's, for `/metrics`).
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.pods.clone()))?;
        registry.register(Box::new(self.watches.clone()))?;
        registry.register(Box::new(self.relists.clone()))?;
        registry.register(Box::new(self.searches.clone()))
    }

    /// An index opened (`+1`) or closed (`-1`, and its `pods` series goes).
    pub fn index_open(&self, cluster: &str, open: bool) {
        if open {
            self.watches.inc();
            self.pods.with_label_values(&[cluster]).set(0);
        } else {
            self.watches.dec();
            let _ = self.pods.remove_label_values(&[cluster]);
        }
    }

    pub fn set_pods(&self, cluster: &str, pods: usize) {
        self.pods
            .with_label_values(&[cluster])
            .set(i64::try_from(pods).unwrap_or(i64::MAX));
    }

    pub fn relisted(&self) {
        self.relists.inc();
    }

    pub fn searched(&self, result: SearchResult) {
        self.searches.with_label_values(&[result.as_str()]).inc();
    }

    /// `podgate_pod_index_watches` now (tests).
    pub fn watches(&self) -> i64 {
        self.watches.get()
    }

    /// `podgate_pod_index_relists_total` now (tests).
    pub fn relists(&self) -> u64 {
        self.relists.get()
    }

    /// `podgate_pod_searches_total{result}` now (tests).
    pub fn searches(&self, result: SearchResult) -> u64 {
        self.searches.with_label_values(&[result.as_str()]).get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_and_close_move_the_gauges() {
        let m = PodIndexMetrics::new();
        let r = Registry::new();
        m.register(&r).unwrap();
        m.index_open("a", true);
        m.set_pods("a", 7);
        assert_eq!(m.watches(), 1);
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&r.gather())
            .unwrap();
        assert!(
            text.contains("podgate_pod_index_pods{cluster=\"a\"} 7"),
            "{text}"
        );
        m.index_open("a", false);
        assert_eq!(m.watches(), 0);
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&r.gather())
            .unwrap();
        assert!(!text.contains("cluster=\"a\""), "{text}");
        m.searched(SearchResult::Refused);
        assert_eq!(m.searches(SearchResult::Refused), 1);
    }
}
