//! Health probe series: how many probes podgate sends its clusters, and at what pace. With a
//! fleet, probing is the one load podgate puts on every cluster and on itself at rest, so its
//! rate is shown rather than assumed (`rate(podgate_cluster_probes_total[5m])`).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `podgate_cluster_probes_total` | counter | result (`up`, `down`) |
//! | `podgate_cluster_probes_in_flight` | gauge | |
//! | `podgate_cluster_probe_interval_seconds` | gauge | |
//!
//! Made by whoever probes (the cluster registry) and registered into the gateway's
//! [`crate::Metrics`] registry with [`ProbeMetrics::register`].

use prometheus::{Gauge, IntCounterVec, IntGauge, Opts, Registry};
use std::time::Duration;

/// The probe series; clones share them.
#[derive(Clone)]
pub struct ProbeMetrics {
    probes: IntCounterVec,
    in_flight: IntGauge,
    interval: Gauge,
}

impl Default for ProbeMetrics {
    fn default() -> Self {
        ProbeMetrics::new()
    }
}

impl ProbeMetrics {
    pub fn new() -> ProbeMetrics {
        let probes = IntCounterVec::new(
            Opts::new(
                "podgate_cluster_probes_total",
                "Health probes (GET /version) sent to clusters, by result.",
            ),
            &["result"],
        )
        .expect("valid metric");
        for result in ["up", "down"] {
            probes.with_label_values(&[result]);
        }
        ProbeMetrics {
            probes,
            in_flight: IntGauge::with_opts(Opts::new(
                "podgate_cluster_probes_in_flight",
                "Health probes waiting for their answer right now.",
            ))
            .expect("valid metric"),
            interval: Gauge::with_opts(Opts::new(
                "podgate_cluster_probe_interval_seconds",
                "The time between two probes of a cluster that is up: upstream.health_interval, \
                 or longer when the fleet is larger than upstream.health_max_rate allows in it.",
            ))
            .expect("valid metric"),
        }
    }

    /// Adds the series to `registry` (the gateway's, for `/metrics`).
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.probes.clone()))?;
        registry.register(Box::new(self.in_flight.clone()))?;
        registry.register(Box::new(self.interval.clone()))
    }

    /// One probe ended, with the cluster up or not.
    pub fn probed(&self, up: bool) {
        self.probes
            .with_label_values(&[if up { "up" } else { "down" }])
            .inc();
    }

    pub fn set_in_flight(&self, n: usize) {
        self.in_flight.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn set_interval(&self, interval: Duration) {
        self.interval.set(interval.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_render_once_registered() {
        let m = crate::Metrics::new(["a"], Default::default());
        let probes = ProbeMetrics::new();
        probes.register(m.registry()).expect("registers");
        probes.probed(true);
        probes.probed(true);
        probes.probed(false);
        probes.set_in_flight(3);
        probes.set_interval(Duration::from_millis(12_500));
        let text = m.render();
        for line in [
            "podgate_cluster_probes_total{result=\"up\"} 2",
            "podgate_cluster_probes_total{result=\"down\"} 1",
            "podgate_cluster_probes_in_flight 3",
            "podgate_cluster_probe_interval_seconds 12.5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        // A second registry (a second gateway in one process) takes them too.
        probes
            .register(&Registry::new())
            .expect("registers elsewhere");
    }
}
