//! Latency samples and their percentiles.

use serde::Serialize;
use std::time::Duration;

/// Latencies in microseconds. Kept whole (a million samples is 4 MB), so percentiles are
/// exact rather than estimated from buckets.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    micros: Vec<u32>,
}

/// Percentiles of a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.micros
            .push(u32::try_from(d.as_micros()).unwrap_or(u32::MAX));
    }

    pub fn extend(&mut self, other: Samples) {
        self.micros.extend(other.micros);
    }

    pub fn len(&self) -> usize {
        self.micros.len()
    }

    pub fn is_empty(&self) -> bool {
        self.micros.is_empty()
    }

    /// `None` without samples.
    pub fn summary(&mut self) -> Option<Summary> {
        if self.micros.is_empty() {
            return None;
        }
        self.micros.sort_unstable();
        let at = |q: f64| {
            // Nearest rank: the smallest sample with at least q of all samples at or below it.
            let n = self.micros.len();
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            f64::from(self.micros[rank - 1]) / 1000.0
        };
        Some(Summary {
            count: self.micros.len(),
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        })
    }
}

/// Smallest, median and largest of a few values (per-session throughput spread).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

pub fn spread(values: &[f64]) -> Option<Spread> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Some(Spread {
        min: v[0],
        median: v[(v.len() - 1) / 2],
        max: v[v.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::default();
        for ms in 1..=100u64 {
            s.push(Duration::from_millis(ms));
        }
        let sum = s.summary().unwrap();
        assert_eq!(sum.count, 100);
        assert_eq!(sum.p50_ms, 50.0);
        assert_eq!(sum.p95_ms, 95.0);
        assert_eq!(sum.p99_ms, 99.0);
        assert_eq!(sum.max_ms, 100.0);
        assert!(Samples::default().summary().is_none());
        let mut one = Samples::default();
        one.push(Duration::from_micros(1500));
        assert_eq!(one.summary().unwrap().p99_ms, 1.5);
    }

    #[test]
    fn spread_of_values() {
        let s = spread(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        assert!(spread(&[]).is_none());
    }
}
