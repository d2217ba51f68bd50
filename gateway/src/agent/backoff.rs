//! When an agent dials again after a failure: exponential, with jitter so that a thousand
//! agents cut off by one gateway restart do not all come back in the same instant.

use std::time::Duration;

/// First wait, and the most a wait grows to.
pub const FIRST: Duration = Duration::from_millis(250);
pub const MAX: Duration = Duration::from_secs(30);
/// A tunnel that stayed up this long was a success: the next failure starts from `FIRST`.
pub const HEALTHY: Duration = Duration::from_secs(30);

/// The waits between attempts: `FIRST`, doubling up to `MAX`, each spread ±30 %.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST }
    }
}

impl Backoff {
    /// The wait before the next attempt; `unit` is a random number in `[0, 1)`.
    pub fn next(&mut self, unit: f64) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(MAX);
        base.mul_f64(0.7 + 0.6 * unit.clamp(0.0, 1.0))
    }

    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

/// A random number in `[0, 1)` from the OS (jitter needs no more).
pub fn unit() -> f64 {
    let mut b = [0u8; 8];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_with_bounded_jitter_and_resets() {
        let mut b = Backoff::default();
        let low: Vec<Duration> = (0..10).map(|_| b.next(0.0)).collect();
        assert_eq!(low[0], FIRST.mul_f64(0.7));
        assert_eq!(low[1], (FIRST * 2).mul_f64(0.7));
        assert_eq!(*low.last().expect("ten"), MAX.mul_f64(0.7));
        let mut b = Backoff::default();
        assert_eq!(b.next(1.0), FIRST.mul_f64(1.3));
        b.reset();
        assert_eq!(b.next(0.5), FIRST);
        for _ in 0..100 {
            let u = unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
