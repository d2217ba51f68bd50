//! When each cluster is probed: the health scheduler's decisions, without IO.
//!
//! With a fleet, probing must be cheap for podgate and never become load on the clusters:
//!
//! - the first probe of every cluster runs as soon as it is registered (at start, or when a
//!   reload adds or rebuilds it), bounded only by the concurrency limits, so "all up" comes
//!   quickly;
//! - later probes are spread over the interval: the second lands at a random point of the
//!   interval after the first, then each follows the previous by the interval plus up to 10 %
//!   jitter, so a burst at start does not repeat every interval;
//! - a cluster is probed at most once per interval: the next probe is scheduled from the end
//!   of the last one, never earlier than the interval;
//! - the interval stretches with the fleet: never shorter than clusters / `max_rate`, and
//!   probe starts are paced at `max_rate` per second (the first probes excepted);
//! - a cluster that keeps failing is probed less often: the interval doubles with each
//!   consecutive failure up to `backoff_max`;
//! - probes in flight are bounded in total and per apiserver address (many cluster ids may
//!   name one server).
//!
//! Time is `tokio::time::Instant`, so the tests drive it with paused time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How probing is paced (from `upstream.*` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The shortest time between two probes of one cluster.
    pub interval: Duration,
    /// Bounds one probe.
    pub timeout: Duration,
    /// Probe starts per second at most, over all clusters (first probes excepted).
    pub max_rate: u32,
    pub concurrency: usize,
    pub concurrency_per_server: usize,
    pub backoff_max: Duration,
}

impl Policy {
    pub fn from_config(u: &podgate_config::UpstreamConfig) -> Policy {
        Policy {
            interval: u.health_interval.get(),
            timeout: u.health_timeout.get(),
            max_rate: u.health_max_rate,
            concurrency: u.health_concurrency,
            concurrency_per_server: u.health_concurrency_per_server,
            backoff_max: u.health_backoff_max.get(),
        }
    }

    /// The time between probes of a cluster that is up, with `clusters` registered.
    pub fn period(&self, clusters: usize) -> Duration {
        let spread = Duration::from_secs_f64(clusters as f64 / f64::from(self.max_rate.max(1)));
        self.interval.max(spread).max(Duration::from_millis(1))
    }

    /// The time before the next probe of a cluster that failed `failures` times in a row.
    fn backoff(&self, period: Duration, failures: u32) -> Duration {
        let cap = self.backoff_max.max(period);
        let factor = 1u32 << failures.saturating_sub(1).min(20);
        period.saturating_mul(factor).min(cap)
    }

    fn gap(&self) -> Duration {
        Duration::from_secs_f64(1.0 / f64::from(self.max_rate.max(1)))
    }
}

/// A small, seedable random source for jitter (SplitMix64): spreading probes needs no more.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    pub fn seeded(seed: u64) -> Jitter {
        Jitter(seed)
    }

    /// Seeded from the clock and the process id: replicas started together still spread.
    pub fn from_entropy() -> Jitter {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Jitter(t ^ (u64::from(std::process::id()) << 32))
    }

    /// Uniform in `[0, 1)`.
    pub fn fraction(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug)]
struct State {
    server: Arc<str>,
    /// Its place in `queue`, when waiting for its time.
    queued: Option<(Instant, u64)>,
    /// Due, but its server had no free slot: in `blocked[server]`.
    blocked: bool,
    in_flight: bool,
    /// Has finished a probe since it was registered.
    probed: bool,
    failures: u32,
}

/// Which cluster to probe when. `K` identifies a cluster (its id).
#[derive(Debug)]
pub struct Schedule<K> {
    policy: Policy,
    clusters: HashMap<K, State>,
    /// Clusters waiting for their time, by (due, sequence).
    queue: BTreeMap<(Instant, u64), K>,
    /// Due clusters whose server is at its concurrency, per server, in due order.
    blocked: HashMap<Arc<str>, VecDeque<K>>,
    in_flight: usize,
    in_flight_per_server: HashMap<Arc<str>, usize>,
    /// No paced probe starts before this.
    next_paced: Instant,
    seq: u64,
    jitter: Jitter,
}

impl<K: Clone + Eq + Hash> Schedule<K> {
    pub fn new(policy: Policy, jitter: Jitter) -> Schedule<K> {
        Schedule {
            policy,
            clusters: HashMap::new(),
            queue: BTreeMap::new(),
            blocked: HashMap::new(),
            in_flight: 0,
            in_flight_per_server: HashMap::new(),
            next_paced: Instant::now(),
            seq: 0,
            jitter,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The interval in force for the clusters registered now.
    pub fn period(&self) -> Duration {
        self.policy.period(self.clusters.len())
    }

    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Registers `key` (talking to `server`) as new: due at once. A key already known is
    /// started over (a rebuilt cluster is a new client).
    pub fn add(&mut self, key: K, server: Arc<str>, now: Instant) {
        self.remove(&key);
        self.clusters.insert(
            key.clone(),
            State {
                server,
                queued: None,
                blocked: false,
                in_flight: false,
                probed: false,
                failures: 0,
            },
        );
        self.enqueue(key, now);
    }

    /// Forgets `key`. A probe of it still in flight frees its slot when it finishes.
    pub fn remove(&mut self, key: &K) {
        let Some(state) = self.clusters.remove(key) else {
            return;
        };
        if let Some(at) = state.queued {
            self.queue.remove(&at);
        }
        if state.blocked
            && let Some(q) = self.blocked.get_mut(&state.server)
        {
            q.retain(|k| k != key);
        }
        if state.in_flight {
            // Its slot is released by `finish`, which finds no state; count it here instead.
            self.release(&state.server);
        }
    }

    pub fn contains(&self, key: &K) -> bool {
        self.clusters.contains_key(key)
    }

    /// Every key registered.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.clusters.keys()
    }

    fn enqueue(&mut self, key: K, at: Instant) {
        self.seq += 1;
        let slot = (at, self.seq);
        if let Some(state) = self.clusters.get_mut(&key) {
            state.queued = Some(slot);
            self.queue.insert(slot, key);
        }
    }

    fn release(&mut self, server: &Arc<str>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(n) = self.in_flight_per_server.get_mut(server) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight_per_server.remove(server);
            }
        }
    }

    fn server_has_room(&self, server: &Arc<str>) -> bool {
        self.in_flight_per_server.get(server).copied().unwrap_or(0)
            < self.policy.concurrency_per_server.max(1)
    }

    /// The next cluster to probe at `now`, if one is due and the limits allow it; it counts
    /// as in flight until [`Schedule::finish`].
    pub fn start_next(&mut self, now: Instant) -> Option<K> {
        if self.in_flight >= self.policy.concurrency.max(1) {
            return None;
        }
        // Clusters that were held back by their server come first, in the order they were due.
        let unblocked = self
            .blocked
            .iter()
            .find(|(server, q)| !q.is_empty() && self.server_has_room(server))
            .map(|(server, _)| server.clone());
        if let Some(server) = unblocked {
            let key = self.blocked.get_mut(&server).and_then(VecDeque::pop_front);
            if self.blocked.get(&server).is_some_and(VecDeque::is_empty) {
                self.blocked.remove(&server);
            }
            if let Some(key) = key
                && let Some(probed) = self.clusters.get(&key).map(|s| s.probed)
            {
                if probed && now < self.next_paced {
                    // Paced: put it back at the front and wait.
                    self.blocked.entry(server).or_default().push_front(key);
                    return None;
                }
                return Some(self.launch(key, now));
            }
        }
        loop {
            let (&(due, seq), _) = self.queue.first_key_value()?;
            if due > now {
                return None;
            }
            let state = self.clusters.get(&self.queue[&(due, seq)])?;
            if state.probed && now < self.next_paced {
                return None;
            }
            let server = state.server.clone();
            let key = self.queue.remove(&(due, seq))?;
            if let Some(s) = self.clusters.get_mut(&key) {
                s.queued = None;
            }
            if self.server_has_room(&server) {
                return Some(self.launch(key, now));
            }
            if let Some(s) = self.clusters.get_mut(&key) {
                s.blocked = true;
            }
            self.blocked.entry(server).or_default().push_back(key);
        }
    }

    fn launch(&mut self, key: K, now: Instant) -> K {
        if let Some(state) = self.clusters.get_mut(&key) {
            state.blocked = false;
            state.in_flight = true;
            if state.probed {
                self.next_paced = self.next_paced.max(now) + self.policy.gap();
            }
            self.in_flight += 1;
            *self
                .in_flight_per_server
                .entry(state.server.clone())
                .or_default() += 1;
        }
        key
    }

    /// The probe of `key` ended at `now`, the cluster `up` or not: schedules its next one.
    pub fn finish(&mut self, key: &K, up: bool, now: Instant) {
        let period = self.period();
        let Some(state) = self.clusters.get_mut(key) else {
            return; // removed meanwhile; `remove` released its slot
        };
        if !state.in_flight {
            return;
        }
        state.in_flight = false;
        let server = state.server.clone();
        let first = !state.probed;
        state.probed = true;
        let base = if up {
            state.failures = 0;
            period
        } else {
            state.failures = state.failures.saturating_add(1);
            self.policy.backoff(period, state.failures)
        };
        self.release(&server);
        // The first probes ran together: the second round spreads over a whole interval.
        // After that, up to 10 % later, never earlier.
        let spread = if first { 1.0 } else { 0.1 };
        let next = now + base.mul_f64(1.0 + spread * self.jitter.fraction());
        self.enqueue(key.clone(), next);
    }

    /// When [`Schedule::start_next`] may have something next, if anything is waiting.
    /// `None` while every probe slot is taken: only a [`Schedule::finish`] can free one, and
    /// a time in the past here would make the caller's loop spin.
    pub fn next_wake(&self) -> Option<Instant> {
        if self.in_flight >= self.policy.concurrency.max(1) {
            return None;
        }
        let queued = self.queue.first_key_value().map(|(&(due, _), key)| {
            let paced = self.clusters.get(key).is_some_and(|s| s.probed);
            if paced { due.max(self.next_paced) } else { due }
        });
        let blocked = self
            .blocked
            .iter()
            .any(|(server, q)| !q.is_empty() && self.server_has_room(server))
            .then_some(self.next_paced);
        match (queued, blocked) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
