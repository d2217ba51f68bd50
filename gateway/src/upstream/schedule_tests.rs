//! The scheduler under paused time: a simulated fleet whose probes take a fixed time and
//! whose clusters answer as a test says.

use super::*;
use std::collections::HashMap;

fn policy(interval_s: u64, max_rate: u32, concurrency: usize, per_server: usize) -> Policy {
    Policy {
        interval: Duration::from_secs(interval_s),
        timeout: Duration::from_secs(5),
        max_rate,
        concurrency,
        concurrency_per_server: per_server,
        backoff_max: Duration::from_secs(300),
    }
}

/// A probe's start and end, per cluster, and the most in flight seen.
#[derive(Default)]
struct Log {
    starts: HashMap<String, Vec<Instant>>,
    max_in_flight: usize,
    max_per_server: HashMap<String, usize>,
}

/// Runs `s` for `for_` of paused time: every probe takes `probe`, and `up(id, now)` says how
/// it ends. Servers are `server(id)`.
async fn simulate(
    s: &mut Schedule<String>,
    for_: Duration,
    probe: Duration,
    server: impl Fn(&str) -> String,
    up: impl Fn(&str, Instant) -> bool,
) -> Log {
    let end = Instant::now() + for_;
    let mut log = Log::default();
    let mut running: Vec<(Instant, String)> = Vec::new();
    loop {
        let now = Instant::now();
        while let Some(id) = s.start_next(now) {
            log.starts.entry(id.clone()).or_default().push(now);
            running.push((now + probe, id));
        }
        log.max_in_flight = log.max_in_flight.max(running.len());
        let mut per: HashMap<String, usize> = HashMap::new();
        for (_, id) in &running {
            *per.entry(server(id)).or_default() += 1;
        }
        for (srv, n) in per {
            let m = log.max_per_server.entry(srv).or_default();
            *m = (*m).max(n);
        }
        let next_end = running.iter().map(|(t, _)| *t).min();
        let next = [s.next_wake(), next_end].into_iter().flatten().min();
        let Some(next) = next.filter(|t| *t <= end) else {
            return log;
        };
        tokio::time::advance(next.saturating_duration_since(now)).await;
        let now = Instant::now();
        let (done, still): (Vec<_>, Vec<_>) = running.into_iter().partition(|(t, _)| *t <= now);
        running = still;
        for (_, id) in done {
            s.finish(&id, up(&id, now), now);
        }
    }
}

fn fleet(s: &mut Schedule<String>, n: usize, servers: usize) {
    let now = Instant::now();
    for i in 0..n {
        s.add(format!("c{i}"), format!("s{}", i % servers).into(), now);
    }
}

/// The server of cluster `cN` in a fleet of 4 servers (as [`fleet`] assigns them).
fn four_servers(id: &str) -> String {
    let i: usize = id[1..].parse().expect("cN");
    format!("s{}", i % 4)
}

#[tokio::test(start_paused = true)]
async fn first_probes_run_at_once_within_the_concurrency_limits() {
    let mut s = Schedule::new(policy(15, 100, 64, 8), Jitter::seeded(1));
    fleet(&mut s, 1000, 4);
    let t0 = Instant::now();
    let log = simulate(
        &mut s,
        Duration::from_secs(10),
        Duration::from_millis(20),
        four_servers,
        |_, _| true,
    )
    .await;
    // 4 servers x 8 each: 32 at once, never more; all 1,000 first probes done in
    // 1000 / 32 rounds of 20 ms, not paced at 100/s (that would take 10 s).
    assert_eq!(log.max_in_flight, 32);
    assert!(
        log.max_per_server.values().all(|&n| n == 8),
        "{:?}",
        log.max_per_server
    );
    assert_eq!(log.starts.len(), 1000);
    let last_first = log.starts.values().map(|v| v[0]).max().expect("starts");
    assert!(
        last_first - t0 <= Duration::from_millis(32 * 20),
        "{:?}",
        last_first - t0
    );
    // Nobody probed twice within the interval.
    assert!(log.starts.values().all(|v| v.len() == 1));

    // The total limit binds when servers are many.
    let mut s = Schedule::new(policy(15, 100, 10, 8), Jitter::seeded(2));
    fleet(&mut s, 100, 50);
    let log = simulate(
        &mut s,
        Duration::from_secs(1),
        Duration::from_millis(20),
        |id: &str| format!("s{}", id[1..].parse::<usize>().expect("cN") % 50),
        |_, _| true,
    )
    .await;
    assert_eq!(log.max_in_flight, 10);
}

#[tokio::test(start_paused = true)]
async fn later_probes_spread_over_the_interval_at_most_once_per_interval() {
    let interval = Duration::from_secs(15);
    let mut s = Schedule::new(policy(15, 1000, 64, 64), Jitter::seeded(3));
    fleet(&mut s, 1000, 4);
    let t0 = Instant::now();
    let log = simulate(
        &mut s,
        Duration::from_secs(150),
        Duration::from_millis(10),
        four_servers,
        |_, _| true,
    )
    .await;
    for (id, starts) in &log.starts {
        for w in starts.windows(2) {
            assert!(w[1] - w[0] >= interval, "{id}: {:?}", w[1] - w[0]);
        }
        // About one per interval: not fewer than 150 s / (2 x 15 s).
        assert!(starts.len() >= 5, "{id}: {}", starts.len());
    }
    // The second probes fall across the whole interval after the first round: each
    // tenth of it holds 5 % to 15 % of them (10 % expected).
    let mut tenths = [0usize; 10];
    for starts in log.starts.values() {
        let at = starts[1] - t0;
        assert!(at >= interval, "{at:?}");
        let tenth = ((at - interval).as_secs_f64() / interval.as_secs_f64() * 10.0) as usize;
        tenths[tenth.min(9)] += 1;
    }
    assert!(
        tenths.iter().all(|&n| (50..=150).contains(&n)),
        "{tenths:?}"
    );
    // And they stay spread: in every second of the last minute, at most twice the mean
    // rate (1000 / 15 s = 67/s) starts.
    let mut per_second: HashMap<u64, usize> = HashMap::new();
    for t in log.starts.values().flatten() {
        let sec = (*t - t0).as_secs();
        if sec >= 90 {
            *per_second.entry(sec).or_default() += 1;
        }
    }
    assert!(per_second.values().all(|&n| n <= 134), "{per_second:?}");
}

#[tokio::test(start_paused = true)]
async fn a_large_fleet_stretches_the_interval_and_is_paced() {
    let mut s = Schedule::new(policy(15, 100, 64, 8), Jitter::seeded(4));
    fleet(&mut s, 10_000, 4);
    assert_eq!(s.period(), Duration::from_secs(100));
    let t0 = Instant::now();
    let log = simulate(
        &mut s,
        Duration::from_secs(400),
        Duration::from_millis(5),
        four_servers,
        |_, _| true,
    )
    .await;
    // After the first round, never more than 100 starts in any second.
    let mut per_second: HashMap<u64, usize> = HashMap::new();
    for starts in log.starts.values() {
        for t in &starts[1..] {
            *per_second.entry((*t - t0).as_secs()).or_default() += 1;
        }
        for w in starts.windows(2) {
            assert!(w[1] - w[0] >= Duration::from_secs(100), "{:?}", w[1] - w[0]);
        }
    }
    let max = per_second.values().copied().max().unwrap_or(0);
    assert!(max <= 101, "{max} in one second");
    let total: usize = per_second.values().sum();
    // About 3 intervals' worth after the first: 10,000 x (400 - 100) / 100 / 1.05 or more.
    assert!(total > 25_000, "{total}");
}

#[tokio::test(start_paused = true)]
async fn a_down_cluster_backs_off_and_recovers() {
    let mut s = Schedule::new(policy(10, 100, 4, 4), Jitter::seeded(5));
    let t0 = Instant::now();
    s.add("down".to_string(), "s0".into(), t0);
    s.add("up".to_string(), "s0".into(), t0);
    let recovers = t0 + Duration::from_secs(400);
    let log = simulate(
        &mut s,
        Duration::from_secs(900),
        Duration::from_millis(1),
        |_| "s0".to_string(),
        |id, now| id == "up" || now >= recovers,
    )
    .await;
    let down = &log.starts["down"];
    let gaps: Vec<f64> = down
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    // After the first failure the next probe comes after one interval, spread over it
    // (10 s to 20 s, the first round's spread); then 20, 40, 80, 160 and the 300 s cap
    // (each up to 10 % more) while down; back to 10 s once it answers.
    let expect_base = [10.0, 20.0, 40.0, 80.0, 160.0, 300.0];
    for (i, base) in expect_base.iter().enumerate() {
        let g = gaps[i];
        if i == 0 {
            assert!((10.0..20.0).contains(&g), "gap {i}: {g} in {gaps:?}");
        } else {
            assert!(
                g >= *base && g <= base * 1.1 + 0.01,
                "gap {i}: {g} in {gaps:?}"
            );
        }
    }
    let after: Vec<f64> = down
        .windows(2)
        .filter(|w| w[0] > recovers)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    assert!(
        !after.is_empty() && after.iter().all(|g| (10.0..=11.01).contains(g)),
        "{after:?}"
    );
    // The healthy one kept its pace meanwhile.
    let up = &log.starts["up"];
    assert!(up.len() > 80, "{}", up.len());
}

#[tokio::test(start_paused = true)]
async fn removal_frees_slots_and_readding_starts_over() {
    let mut s = Schedule::new(policy(10, 100, 1, 1), Jitter::seeded(6));
    let now = Instant::now();
    s.add("a".to_string(), "s".into(), now);
    s.add("b".to_string(), "s".into(), now);
    assert_eq!(s.start_next(now).as_deref(), Some("a"));
    assert_eq!(s.start_next(now), None, "one at a time");
    s.remove(&"a".to_string());
    assert_eq!(s.in_flight(), 0);
    // a's probe ending later changes nothing.
    s.finish(&"a".to_string(), true, now);
    assert_eq!(s.start_next(now).as_deref(), Some("b"));
    s.finish(&"b".to_string(), true, now);
    assert_eq!(s.start_next(now), None, "b waits for its interval");
    // Added again (a rebuilt cluster): due at once, not in an interval.
    s.add("b".to_string(), "s".into(), now);
    assert_eq!(s.start_next(now).as_deref(), Some("b"));
    assert_eq!(s.len(), 1);
    assert!(s.contains(&"b".to_string()) && !s.contains(&"a".to_string()));
}

#[test]
fn jitter_is_uniform_enough_and_seeded() {
    let mut a = Jitter::seeded(7);
    let mut b = Jitter::seeded(7);
    let mut buckets = [0usize; 10];
    for _ in 0..10_000 {
        let x = a.fraction();
        assert_eq!(x, b.fraction());
        assert!((0.0..1.0).contains(&x));
        buckets[(x * 10.0) as usize] += 1;
    }
    assert!(
        buckets.iter().all(|&n| (900..=1100).contains(&n)),
        "{buckets:?}"
    );
}
