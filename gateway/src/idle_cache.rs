//! Lets jemalloc collect an idle worker thread's cache.
//!
//! jemalloc keeps freed objects in a per-thread cache and collects it only as that thread
//! allocates or frees: every 64 KiB allocated or freed, one size class is collected (3/4 of
//! what it holds that was not used since that class was last collected; `tcache_event` in
//! jemalloc 5.3's `src/tcache.c`). A worker that goes quiet after a peak keeps its cache for
//! good, and the cached objects pin their slabs, which the background thread cannot purge:
//! 10,000 sessions closed, RSS stayed at 2.09× the pre-load baseline (BENCHMARKS.md, "Memory
//! after load"). Flushing it directly (`thread.tcache.flush`) needs tikv-jemalloc-ctl's
//! `unsafe` raw API, and turning the caches off costs CPU per byte; so when a worker parks,
//! at most once a second, it allocates and frees enough to take every size class through
//! two more collections. A parked worker wakes again for the gateway's periodic work (the
//! config watch every 2 s, health probes), so the next park after the last session sweeps.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// At most one sweep per worker per this: under load a park costs one clock read.
const EVERY: Duration = Duration::from_secs(1);
/// A size jemalloc's thread cache serves (≤ 32 KiB), so the sweep itself takes nothing from
/// the arenas after its first piece.
const PIECE: usize = 16 * 1024;
/// Each pair is 16 KiB allocated and 16 KiB freed: half an allocation and half a free
/// collection event. Two rounds over jemalloc's 41 thread-cached size classes, rounded up.
const PAIRS: usize = 2 * 44 * 2;

// jemalloc 5.3: one collection event per 64 KiB allocated and one per 64 KiB freed, 41
// thread-cached size classes with the default tcache_max of 32 KiB.
const _: () = assert!(2 * PAIRS * PIECE / (64 * 1024) >= 2 * 41);
const _: () = assert!(PIECE <= 32 * 1024);

thread_local! {
    static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// For `tokio::runtime::Builder::on_thread_park`.
pub fn on_park() {
    let now = Instant::now();
    if LAST.with(|last| take_turn(last, now)) {
        sweep();
    }
}

/// Whether a sweep is due at `now`; if so, `now` becomes the last one.
fn take_turn(last: &Cell<Option<Instant>>, now: Instant) -> bool {
    let due = last
        .get()
        .is_none_or(|at| now.saturating_duration_since(at) >= EVERY);
    if due {
        last.set(Some(now));
    }
    due
}

fn sweep() {
    for _ in 0..PAIRS {
        // black_box: an allocation nobody reads may be optimised away, and with it the event.
        drop(std::hint::black_box(Vec::<u8>::with_capacity(PIECE)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_sweeps_on_its_first_park_then_at_most_once_per_period() {
        let last = Cell::new(None);
        let t0 = Instant::now();
        assert!(take_turn(&last, t0));
        assert!(!take_turn(&last, t0 + Duration::from_millis(999)));
        assert!(take_turn(&last, t0 + EVERY));
        assert!(!take_turn(&last, t0 + EVERY + Duration::from_millis(1)));
        // An earlier instant than the mark (saturating: never a panic) neither sweeps nor moves it.
        assert!(!take_turn(&last, t0));
        assert_eq!(last.get(), Some(t0 + EVERY));
    }
}
