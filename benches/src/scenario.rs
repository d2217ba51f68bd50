//! The scenarios, each run against one target: sessions are opened, used as a person (or a
//! script) would, and closed, while the target's process is watched from `/proc`.

use crate::client::{self, Event, Exec, SharedWr, Ws};
use crate::procfs::{self, Peak, Sample};
use crate::stats::{self, Samples, Spread};
use crate::target::Target;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Open N sessions and hold them: memory per session and CPU at rest.
    Idle,
    /// N sessions typing into builtin:echo every interval: echo round trip.
    Interactive,
    /// M sessions reading builtin:flood: aggregate MB/s.
    Throughput,
    /// Open and close sessions as fast as they go: sessions/s and setup latency.
    Churn,
    /// A mix of the above for a duration.
    Soak,
}

impl Scenario {
    /// Whether the run also goes through the reference relay: the floor of a relay that
    /// terminates TLS on both legs, for the figures a second hop costs (CPU per byte, per
    /// setup, and the echo's extra round trip).
    pub fn has_reference(self) -> bool {
        matches!(
            self,
            Scenario::Throughput | Scenario::Churn | Scenario::Interactive
        )
    }

    pub const ALL: [Scenario; 5] = [
        Scenario::Idle,
        Scenario::Interactive,
        Scenario::Throughput,
        Scenario::Churn,
        Scenario::Soak,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Idle => "idle",
            Scenario::Interactive => "interactive",
            Scenario::Throughput => "throughput",
            Scenario::Churn => "churn",
            Scenario::Soak => "soak",
        }
    }
}

/// What soak mixes, all at once for its duration.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SoakMix {
    pub interactive: usize,
    #[serde(rename = "interval_s", serialize_with = "secs")]
    pub interval: Duration,
    pub churn_workers: usize,
    /// Sessions opened and closed per second (open loop, the same for both targets).
    pub churn_per_s: f64,
    pub floods: usize,
    /// Each flood session reads at most this fast, so the relay's back-pressure is exercised
    /// without starving the others.
    pub flood_mb_s: f64,
}

/// Sizes of one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub scenario: Scenario,
    /// Sessions held (idle, interactive, throughput) or opened in all (churn).
    pub sessions: usize,
    /// Hold (idle), typing (interactive) or mix (soak) duration; churn stops at it too.
    #[serde(rename = "duration_s", serialize_with = "secs")]
    pub duration: Duration,
    /// Between two keystrokes of one interactive session.
    #[serde(rename = "interval_s", serialize_with = "secs")]
    pub interval: Duration,
    /// Bytes each throughput session reads.
    pub flood_bytes: u64,
    /// Churn workers; also how many sessions are being opened at once elsewhere.
    pub concurrency: usize,
    /// Churn: sessions per second (open loop); `None` opens as fast as the workers go.
    pub rate: Option<f64>,
    pub soak: SoakMix,
    /// One session's setup may take this long before it counts as an error.
    #[serde(rename = "open_timeout_s", serialize_with = "secs")]
    pub open_timeout: Duration,
    /// The whole scenario against one target is cut off after this.
    #[serde(rename = "timeout_s", serialize_with = "secs")]
    pub timeout: Duration,
    /// Why the plan is smaller than asked, if it is (e.g. the fd limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clamped: Option<String>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The pods sessions go to.
#[derive(Clone, Debug)]
pub struct Pods {
    pub namespace: String,
    pub echo_pod: String,
    pub flood_pod: String,
    pub container: Option<String>,
}

impl Pods {
    pub fn echo(&self) -> Exec {
        Exec {
            namespace: self.namespace.clone(),
            pod: self.echo_pod.clone(),
            container: self.container.clone(),
            command: vec!["cat".into()],
        }
    }

    /// builtin:flood writes as many bytes as its command's first number says.
    pub fn flood(&self, bytes: u64) -> Exec {
        Exec {
            namespace: self.namespace.clone(),
            pod: self.flood_pod.clone(),
            container: self.container.clone(),
            command: vec![bytes.to_string()],
        }
    }
}

/// Processes to watch while a target is loaded: the one serving the sessions (podgate, or
/// the cluster when direct) and, through podgate, the cluster behind it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Watch {
    pub main: Option<u32>,
    pub upstream: Option<u32>,
}

/// A process before, at its peak during, and after a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ProcReport {
    pub pid: u32,
    pub before: Sample,
    pub peak: Sample,
    pub after: Sample,
    /// CPU use over the whole scenario, percent of one core.
    pub cpu_percent: f64,
}

/// The figures of one scenario against one target. Fields that a scenario does not measure
/// are `null`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetResult {
    /// Sessions that opened successfully.
    pub sessions: usize,
    /// Failed opens, sessions that ended badly, lost keystrokes.
    pub errors: usize,
    /// RSS growth of the serving process per open session (idle: with all sessions held).
    pub rss_per_session_bytes: Option<f64>,
    /// The same for the cluster behind podgate (gateway runs only).
    pub upstream_rss_per_session_bytes: Option<f64>,
    pub echo_p50_ms: Option<f64>,
    pub echo_p95_ms: Option<f64>,
    pub echo_p99_ms: Option<f64>,
    pub echo_max_ms: Option<f64>,
    pub echo_samples: usize,
    /// Aggregate stdout bytes per second, MB = 10^6 bytes.
    pub throughput_mb_s: Option<f64>,
    pub per_session_mb_s: Option<Spread>,
    pub setup_p50_ms: Option<f64>,
    pub setup_p95_ms: Option<f64>,
    pub setup_p99_ms: Option<f64>,
    pub setup_max_ms: Option<f64>,
    /// Completed open-and-close cycles per second (churn, soak), or opens per second while
    /// ramping up (idle, interactive).
    pub sessions_per_s: Option<f64>,
    /// CPU time of the serving process per session opened and closed (churn): what one
    /// session's setup and teardown cost it, independent of how busy the machine is.
    pub cpu_ms_per_session: Option<f64>,
    /// CPU time of the serving process per GB of stdout relayed (throughput).
    pub cpu_s_per_gb: Option<f64>,
    /// Stdout bytes received in all.
    pub stdout_bytes: u64,
    /// CPU of the serving process while all idle sessions are held, percent of one core.
    pub cpu_idle_percent: Option<f64>,
    /// Idle, gateway: how the process gives memory back once every session closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<Release>,
    pub duration_s: f64,
    /// CPU of podgate-load itself, percent of one core: when the clients starve, latencies
    /// measure the load generator, not the target.
    pub client_cpu_percent: Option<f64>,
    /// How busy the whole machine was, percent of all cores. Near 100 the figures are
    /// bounded by the machine (client, gateway and cluster share it), not by the target.
    pub machine_busy_percent: Option<f64>,
    /// CPU the hypervisor took from this (virtual) machine, percent of all cores (part of
    /// `machine_busy_percent`). Well above zero, latency figures measure the host's other
    /// tenants too.
    pub machine_steal_percent: Option<f64>,
    pub process: Option<ProcReport>,
    pub upstream_process: Option<ProcReport>,
    /// Gateway only: fds and threads above the pre-scenario baseline once the scenario is
    /// over and the bounded wait for them to go has ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaked_fds: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaked_threads: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leak_check: Option<procfs::LeakCheck>,
    /// The first few distinct error messages.
    pub error_samples: Vec<String>,
}

/// RSS before the sessions opened, with them open, and after they all closed: sampled every
/// 250 ms for up to [`RELEASE_WINDOW`], until it is back within [`RELEASE_FACTOR`] of the
/// baseline.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Release {
    pub baseline_rss_bytes: u64,
    pub open_rss_bytes: u64,
    /// The last sample: the first within the factor, or the one at the window's end.
    pub after_rss_bytes: u64,
    /// after / baseline.
    pub after_over_baseline: f64,
    /// Seconds from the last close until within the factor; `None`: not within the window.
    pub within_factor_s: Option<f64>,
    /// RSS in MiB once a second from the last close: how it came down.
    pub curve_mib: Vec<f64>,
}

/// How long the memory release is watched after the last session closed.
pub const RELEASE_WINDOW: Duration = Duration::from_secs(30);
/// What "back to the baseline" means: at most this times the RSS before the load.
pub const RELEASE_FACTOR: f64 = 1.25;

/// Samples `pid` until its RSS is within [`RELEASE_FACTOR`] of `baseline`, at most
/// [`RELEASE_WINDOW`].
async fn watch_release(pid: u32, baseline: Sample, open: Sample) -> Option<Release> {
    let started = Instant::now();
    let bound = baseline.rss_bytes as f64 * RELEASE_FACTOR;
    let mut curve_mib = Vec::new();
    loop {
        let now = procfs::sample(pid).ok()?;
        let within = now.rss_bytes as f64 <= bound;
        if started.elapsed().as_secs() as usize >= curve_mib.len() {
            curve_mib.push((now.rss_bytes as f64 / 1048576.0 * 10.0).round() / 10.0);
        }
        if within || started.elapsed() >= RELEASE_WINDOW {
            return Some(Release {
                baseline_rss_bytes: baseline.rss_bytes,
                open_rss_bytes: open.rss_bytes,
                after_rss_bytes: now.rss_bytes,
                after_over_baseline: now.rss_bytes as f64 / baseline.rss_bytes.max(1) as f64,
                within_factor_s: within.then(|| started.elapsed().as_secs_f64()),
                curve_mib,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Errors of a run: counted, and the first few distinct messages kept to explain them.
#[derive(Default)]
pub struct Errors {
    count: AtomicUsize,
    samples: Mutex<Vec<String>>,
}

impl Errors {
    pub fn record(&self, e: impl std::fmt::Display) {
        self.add(1, e);
    }

    pub fn add(&self, n: usize, e: impl std::fmt::Display) {
        if n == 0 {
            return;
        }
        self.count.fetch_add(n, Relaxed);
        let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if s.len() < 8 {
            let text = format!("{e:#}");
            if !s.contains(&text) {
                s.push(text);
            }
        }
    }

    pub fn count(&self) -> usize {
        self.count.load(Relaxed)
    }

    fn samples(&self) -> Vec<String> {
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn sample_of(pid: Option<u32>) -> Option<Sample> {
    pid.and_then(|p| procfs::sample(p).ok())
}

fn rss_delta_per(before: Option<Sample>, after: Option<Sample>, n: usize) -> Option<f64> {
    match (before, after) {
        (Some(b), Some(a)) if n > 0 => Some((a.rss_bytes as f64 - b.rss_bytes as f64) / n as f64),
        _ => None,
    }
}

/// Everything measured by the parts of a scenario.
#[derive(Default)]
struct Part {
    opened: usize,
    setup: Samples,
    echo: Samples,
    /// Open-and-close cycles completed, and over how long.
    cycles: usize,
    cycle_time: Duration,
    /// Opens, and how long the opening phase took.
    open_time: Duration,
    bytes: u64,
    bytes_time: Duration,
    per_session_mb_s: Vec<f64>,
}

impl Part {
    fn merge(&mut self, other: Part) {
        self.opened += other.opened;
        self.setup.extend(other.setup);
        self.echo.extend(other.echo);
        self.cycles += other.cycles;
        self.cycle_time = self.cycle_time.max(other.cycle_time);
        self.open_time = self.open_time.max(other.open_time);
        self.bytes += other.bytes;
        self.bytes_time = self.bytes_time.max(other.bytes_time);
        self.per_session_mb_s.extend(other.per_session_mb_s);
    }
}

/// Runs one scenario against one target.
pub async fn run(plan: &Plan, target: Arc<Target>, pods: &Pods, watch: Watch) -> TargetResult {
    let errors = Arc::new(Errors::default());
    let main_before = sample_of(watch.main);
    let up_before = sample_of(watch.upstream);
    let main_peak = watch
        .main
        .map(|p| Peak::start(p, Duration::from_millis(250)));
    let up_peak = watch
        .upstream
        .map(|p| Peak::start(p, Duration::from_millis(250)));
    let me_before = procfs::sample(std::process::id()).ok();
    let machine_before = procfs::machine_cpu();
    let started = Instant::now();
    let mut result = TargetResult::default();
    let work = async {
        match plan.scenario {
            Scenario::Idle => idle(plan, &target, pods, watch, &errors, &mut result).await,
            Scenario::Interactive => {
                interactive(
                    &target,
                    &pods.echo(),
                    plan.sessions,
                    plan.interval,
                    plan.duration,
                    plan,
                    &errors,
                )
                .await
            }
            Scenario::Throughput => {
                flood(
                    &target,
                    pods,
                    plan.sessions,
                    plan.flood_bytes,
                    None,
                    None,
                    plan,
                    &errors,
                )
                .await
            }
            Scenario::Churn => {
                churn(
                    &target,
                    &pods.echo(),
                    plan.concurrency,
                    Some(plan.sessions),
                    plan.rate,
                    plan.duration,
                    plan,
                    &errors,
                )
                .await
            }
            Scenario::Soak => soak(plan, &target, pods, &errors).await,
        }
    };
    let part = match tokio::time::timeout(plan.timeout, work).await {
        Ok(p) => p,
        Err(_) => {
            errors.record(format!(
                "the scenario did not finish within its time bound of {:?}; its sessions were dropped",
                plan.timeout
            ));
            Part::default()
        }
    };
    result.duration_s = started.elapsed().as_secs_f64();
    finish(&mut result, part, plan.scenario);
    let elapsed = started.elapsed();
    if let (Some(b), Ok(a)) = (me_before, procfs::sample(std::process::id())) {
        result.client_cpu_percent = Some(procfs::cpu_percent(&b, &a, elapsed));
    }
    if let (Some(b), Some(a)) = (machine_before, procfs::machine_cpu()) {
        result.machine_busy_percent = Some(procfs::machine_busy_percent(b, a));
        result.machine_steal_percent = Some(procfs::machine_steal_percent(b, a));
    }
    result.process = report(watch.main, main_before, main_peak, elapsed).await;
    if let Some(p) = &result.process {
        let cpu_s = p.after.cpu_ticks.saturating_sub(p.before.cpu_ticks) as f64
            / procfs::ticks_per_second() as f64;
        match plan.scenario {
            Scenario::Churn if result.sessions > 0 => {
                result.cpu_ms_per_session = Some(cpu_s * 1000.0 / result.sessions as f64);
            }
            Scenario::Throughput if result.stdout_bytes > 0 => {
                result.cpu_s_per_gb = Some(cpu_s / (result.stdout_bytes as f64 / 1e9));
            }
            _ => {}
        }
    }
    result.upstream_process = report(watch.upstream, up_before, up_peak, elapsed).await;
    result.errors = errors.count();
    result.error_samples = errors.samples();
    result
}

async fn report(
    pid: Option<u32>,
    before: Option<Sample>,
    peak: Option<Peak>,
    elapsed: Duration,
) -> Option<ProcReport> {
    let peak = peak?.finish().await?;
    let (pid, before) = (pid?, before?);
    let after = procfs::sample(pid).ok()?;
    Some(ProcReport {
        pid,
        before,
        peak,
        after,
        cpu_percent: procfs::cpu_percent(&before, &after, elapsed),
    })
}

fn finish(r: &mut TargetResult, mut p: Part, scenario: Scenario) {
    r.sessions = p.opened;
    r.stdout_bytes = p.bytes;
    if let Some(s) = p.setup.summary() {
        r.setup_p50_ms = Some(s.p50_ms);
        r.setup_p95_ms = Some(s.p95_ms);
        r.setup_p99_ms = Some(s.p99_ms);
        r.setup_max_ms = Some(s.max_ms);
    }
    r.echo_samples = p.echo.len();
    if let Some(s) = p.echo.summary() {
        r.echo_p50_ms = Some(s.p50_ms);
        r.echo_p95_ms = Some(s.p95_ms);
        r.echo_p99_ms = Some(s.p99_ms);
        r.echo_max_ms = Some(s.max_ms);
    }
    if p.bytes_time > Duration::ZERO && p.bytes > 0 {
        r.throughput_mb_s = Some(p.bytes as f64 / 1e6 / p.bytes_time.as_secs_f64());
        r.per_session_mb_s = stats::spread(&p.per_session_mb_s);
    }
    r.sessions_per_s = match scenario {
        Scenario::Churn | Scenario::Soak if p.cycle_time > Duration::ZERO => {
            Some(p.cycles as f64 / p.cycle_time.as_secs_f64())
        }
        Scenario::Idle | Scenario::Interactive if p.open_time > Duration::ZERO => {
            Some(p.opened as f64 / p.open_time.as_secs_f64())
        }
        _ => None,
    };
}

/// Opens `n` sessions with at most `plan.concurrency` setups in flight; hands each open
/// session to `hold`, which runs in its own task until it returns.
async fn open_many<F, Fut>(
    target: &Arc<Target>,
    exec: &Exec,
    n: usize,
    plan: &Plan,
    errors: &Arc<Errors>,
    hold: F,
) -> (Part, JoinSet<()>)
where
    F: Fn(usize, Ws) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut part = Part::default();
    let mut opening = JoinSet::new();
    let mut holding = JoinSet::new();
    let started = Instant::now();
    let mut next = 0usize;
    let mut results = Vec::with_capacity(n);
    while next < n || !opening.is_empty() {
        while next < n && opening.len() < plan.concurrency.max(1) {
            let (t, e, timeout, i) = (target.clone(), exec.clone(), plan.open_timeout, next);
            opening.spawn(async move { (i, client::open(&t, &e, timeout).await) });
            next += 1;
        }
        match opening.join_next().await {
            Some(Ok(r)) => results.push(r),
            Some(Err(e)) => errors.record(format!("open task: {e}")),
            None => break,
        }
        // Start holding right away, so pings are answered while the rest open.
        for (i, r) in results.drain(..) {
            match r {
                Ok(o) => {
                    part.opened += 1;
                    part.setup.push(o.setup);
                    holding.spawn(hold(i, o.ws));
                }
                Err(e) => errors.record(e),
            }
        }
    }
    part.open_time = started.elapsed();
    (part, holding)
}

/// Waits for every holder, cutting them off at `deadline`.
async fn join_all(mut set: JoinSet<()>, deadline: Instant, errors: &Errors, what: &str) {
    loop {
        match tokio::time::timeout_at(deadline, set.join_next()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => errors.record(format!("{what} task: {e}")),
            Ok(None) => return,
            Err(_) => {
                errors.add(
                    set.len(),
                    format!("{what}: sessions still open at the time bound were dropped"),
                );
                set.abort_all();
                return;
            }
        }
    }
}

async fn idle(
    plan: &Plan,
    target: &Arc<Target>,
    pods: &Pods,
    watch: Watch,
    errors: &Arc<Errors>,
    result: &mut TargetResult,
) -> Part {
    let main_before = sample_of(watch.main);
    let up_before = sample_of(watch.upstream);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let errs = errors.clone();
    let (part, holders) = open_many(
        target,
        &pods.echo(),
        plan.sessions,
        plan,
        errors,
        |_, ws| {
            let (stop, errors) = (stop_rx.clone(), errs.clone());
            async move {
                if let Err(e) = hold(ws, stop).await {
                    errors.record(e);
                }
            }
        },
    )
    .await;
    // Let the allocator and the relay settle before reading memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let main_open = sample_of(watch.main);
    let up_open = sample_of(watch.upstream);
    result.rss_per_session_bytes = rss_delta_per(main_before, main_open, part.opened);
    result.upstream_rss_per_session_bytes = rss_delta_per(up_before, up_open, part.opened);
    let rest_started = Instant::now();
    tokio::time::sleep(plan.duration).await;
    if let (Some(b), Some(a)) = (main_open, sample_of(watch.main)) {
        result.cpu_idle_percent = Some(procfs::cpu_percent(&b, &a, rest_started.elapsed()));
    }
    let _ = stop_tx.send(true);
    join_all(
        holders,
        Instant::now() + plan.open_timeout * 3,
        errors,
        "idle",
    )
    .await;
    if target.kind == crate::target::Kind::Gateway
        && let (Some(pid), Some(before), Some(open)) = (watch.main, main_before, main_open)
    {
        result.release = watch_release(pid, before, open).await;
    }
    part
}

/// Holds a session without traffic (answering pings) until `stop`, then ends it cleanly.
async fn hold(ws: Ws, mut stop: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<()> {
    let (mut rd, wr) = ws.split(tokio::io::split);
    let wr = SharedWr::new(wr);
    let stopped = stop.clone();
    let closer = async {
        let _ = stop.wait_for(|s| *s).await;
        client::send(&wr, client::close_stdin()).await
    };
    let reader = async {
        let mut exit = Err("closed without an exit status".to_string());
        loop {
            let f = client::read(&mut rd, &wr).await?;
            match client::event(&f) {
                Event::Exit(e) => exit = e,
                Event::Close => break,
                _ => {}
            }
        }
        if !*stopped.borrow() {
            anyhow::bail!("the session ended while idle");
        }
        exit.map_err(|m| anyhow::anyhow!("exit: {m}"))
    };
    let (_, r) = tokio::join!(closer, reader);
    r
}

#[allow(clippy::too_many_arguments)]
async fn interactive(
    target: &Arc<Target>,
    exec: &Exec,
    n: usize,
    interval: Duration,
    duration: Duration,
    plan: &Plan,
    errors: &Arc<Errors>,
) -> Part {
    let (start_tx, start_rx) = tokio::sync::watch::channel(None::<Instant>);
    let samples = Arc::new(Mutex::new(Samples::default()));
    let (errs, samp) = (errors.clone(), samples.clone());
    let (mut part, typists) = open_many(target, exec, n, plan, errors, |i, ws| {
        let (mut start, errors, samples) = (start_rx.clone(), errs.clone(), samp.clone());
        async move {
            let Ok(t0) = start
                .wait_for(Option::is_some)
                .await
                .map(|t| t.unwrap_or_else(Instant::now))
            else {
                return;
            };
            // Spread the sessions' keystrokes evenly over one interval.
            let offset = interval.mul_f64(i as f64 / n.max(1) as f64);
            match typist(ws, t0 + offset, interval, t0 + duration).await {
                Ok((s, lost)) => {
                    errors.add(lost, "keystrokes sent but never echoed");
                    samples.lock().unwrap_or_else(|p| p.into_inner()).extend(s);
                }
                Err(e) => errors.record(e),
            }
        }
    })
    .await;
    let t0 = Instant::now() + Duration::from_millis(100);
    let _ = start_tx.send(Some(t0));
    join_all(
        typists,
        t0 + duration + plan.open_timeout * 3,
        errors,
        "interactive",
    )
    .await;
    part.echo = std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()));
    part
}

/// Types one byte every `interval` from `first` until `end`, timing each echo; then closes
/// stdin. Returns the round trips and how many keystrokes never came back.
async fn typist(
    ws: Ws,
    first: Instant,
    interval: Duration,
    end: Instant,
) -> anyhow::Result<(Samples, usize)> {
    let (mut rd, wr) = ws.split(tokio::io::split);
    let wr = SharedWr::new(wr);
    let pending = Mutex::new(VecDeque::<std::time::Instant>::new());
    let sent = AtomicUsize::new(0);
    let writer = async {
        let mut tick = tokio::time::interval_at(first, interval);
        // A late typist skips keystrokes rather than bursting to catch up.
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            let at = tick.tick().await;
            if at >= end {
                break;
            }
            pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push_back(std::time::Instant::now());
            sent.fetch_add(1, Relaxed);
            client::send(&wr, client::stdin(b"x")).await?;
        }
        client::send(&wr, client::close_stdin()).await?;
        anyhow::Ok(())
    };
    let reader = async {
        let mut samples = Samples::default();
        let mut exit = Err("closed without an exit status".to_string());
        loop {
            let f = client::read(&mut rd, &wr).await?;
            match client::event(&f) {
                Event::Stdout(k) => {
                    let mut p = pending.lock().unwrap_or_else(|p| p.into_inner());
                    for _ in 0..k {
                        if let Some(t) = p.pop_front() {
                            samples.push(t.elapsed());
                        }
                    }
                }
                Event::Exit(e) => exit = e,
                Event::Close => break,
                Event::Other => {}
            }
        }
        exit.map_err(|m| anyhow::anyhow!("exit: {m}"))?;
        anyhow::Ok(samples)
    };
    let (w, r) = tokio::join!(writer, reader);
    w?;
    let samples = r?;
    let lost = sent.load(Relaxed).saturating_sub(samples.len());
    Ok((samples, lost))
}

/// `n` sessions reading builtin:flood. `rate_mb_s` throttles each reader; `until` drops the
/// sessions abruptly at that point (soak), else each reads its `bytes` to the exit status.
#[allow(clippy::too_many_arguments)]
async fn flood(
    target: &Arc<Target>,
    pods: &Pods,
    n: usize,
    bytes: u64,
    rate_mb_s: Option<f64>,
    until: Option<Duration>,
    plan: &Plan,
    errors: &Arc<Errors>,
) -> Part {
    let (start_tx, start_rx) = tokio::sync::watch::channel(None::<Instant>);
    let totals = Arc::new(Mutex::new(Vec::<(u64, Duration)>::new()));
    let (errs, tot) = (errors.clone(), totals.clone());
    let (mut part, readers) = open_many(target, &pods.flood(bytes), n, plan, errors, |_, ws| {
        let (mut start, errors, totals) = (start_rx.clone(), errs.clone(), tot.clone());
        async move {
            let Ok(t0) = start
                .wait_for(Option::is_some)
                .await
                .map(|t| t.unwrap_or_else(Instant::now))
            else {
                return;
            };
            let count = AtomicU64::new(0);
            let read = reader(ws, &count, rate_mb_s, t0);
            let r = match until {
                Some(d) => match tokio::time::timeout_at(t0 + d, read).await {
                    // Dropped mid-stream on purpose: the gateway must clean up after a client
                    // that vanishes.
                    Err(_) => Ok(()),
                    Ok(r) => r,
                },
                None => read.await,
            };
            if let Err(e) = r {
                errors.record(e);
            }
            totals
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((count.load(Relaxed), t0.elapsed()));
        }
    })
    .await;
    let t0 = Instant::now();
    let _ = start_tx.send(Some(t0));
    let bound = until.unwrap_or(plan.timeout) + plan.open_timeout;
    join_all(readers, t0 + bound, errors, "flood").await;
    for (b, d) in totals.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        part.bytes += b;
        part.bytes_time = part.bytes_time.max(*d);
        if *d > Duration::ZERO {
            part.per_session_mb_s
                .push(*b as f64 / 1e6 / d.as_secs_f64());
        }
    }
    part
}

async fn reader(
    mut ws: Ws,
    count: &AtomicU64,
    rate_mb_s: Option<f64>,
    t0: Instant,
) -> anyhow::Result<()> {
    let mut exit = Err("closed without an exit status".to_string());
    loop {
        let f = ws.read_frame().await?;
        match client::event(&f) {
            Event::Stdout(k) => {
                let total = count.fetch_add(k as u64, Relaxed) + k as u64;
                if let Some(rate) = rate_mb_s {
                    let due = t0 + Duration::from_secs_f64(total as f64 / (rate * 1e6));
                    tokio::time::sleep_until(due).await;
                }
            }
            Event::Exit(e) => exit = e,
            Event::Close => break,
            Event::Other => {}
        }
    }
    exit.map_err(|m| anyhow::anyhow!("exit: {m}"))
}

/// `workers` loops opening a session, closing its stdin and waiting for its exit, until
/// `total` sessions (if given) or `duration` is reached.
#[allow(clippy::too_many_arguments)]
async fn churn(
    target: &Arc<Target>,
    exec: &Exec,
    workers: usize,
    total: Option<usize>,
    rate: Option<f64>,
    duration: Duration,
    plan: &Plan,
    errors: &Arc<Errors>,
) -> Part {
    let rate = rate.filter(|r| r.is_finite() && *r > 0.0);
    let left = Arc::new(AtomicUsize::new(total.unwrap_or(usize::MAX)));
    let ticket = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let setup = Arc::new(Mutex::new(Samples::default()));
    let done = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for _ in 0..workers {
        let (t, e, left, setup, done, errors, ticket) = (
            target.clone(),
            exec.clone(),
            left.clone(),
            setup.clone(),
            done.clone(),
            errors.clone(),
            ticket.clone(),
        );
        let timeout = plan.open_timeout;
        set.spawn(async move {
            let mut mine = Samples::default();
            while Instant::now() < deadline
                && left
                    .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
                    .is_ok()
            {
                if let Some(rate) = rate {
                    // Open loop: session k starts at k / rate, however the target keeps up.
                    let k = ticket.fetch_add(1, Relaxed);
                    let at = started + Duration::from_secs_f64(k as f64 / rate);
                    if at >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(at).await;
                }
                match client::open(&t, &e, timeout).await {
                    Ok(mut o) => {
                        mine.push(o.setup);
                        match tokio::time::timeout(timeout, client::finish(&mut o.ws)).await {
                            Ok(Ok(())) => {
                                done.fetch_add(1, Relaxed);
                            }
                            Ok(Err(err)) => errors.record(err),
                            Err(_) => errors.record("closing the session timed out"),
                        }
                    }
                    Err(err) => {
                        errors.record(err);
                        // Do not spin on a refusing target.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            setup.lock().unwrap_or_else(|p| p.into_inner()).extend(mine);
        });
    }
    join_all(set, deadline + plan.open_timeout * 2, errors, "churn").await;
    let cycles = done.load(Relaxed);
    Part {
        opened: cycles,
        setup: std::mem::take(&mut *setup.lock().unwrap_or_else(|p| p.into_inner())),
        cycles,
        cycle_time: started.elapsed(),
        ..Part::default()
    }
}

async fn soak(plan: &Plan, target: &Arc<Target>, pods: &Pods, errors: &Arc<Errors>) -> Part {
    let mix = plan.soak;
    let d = plan.duration;
    // Enough bytes that a throttled flood never runs dry before the end.
    let flood_bytes = (mix.flood_mb_s * 1e6 * (d.as_secs_f64() + 60.0) * 2.0) as u64;
    let echo = pods.echo();
    let (mut a, b, c) = tokio::join!(
        interactive(
            target,
            &echo,
            mix.interactive,
            mix.interval,
            d,
            plan,
            errors,
        ),
        churn(
            target,
            &echo,
            if mix.churn_per_s > 0.0 {
                mix.churn_workers
            } else {
                0
            },
            None,
            Some(mix.churn_per_s),
            d,
            plan,
            errors
        ),
        flood(
            target,
            pods,
            mix.floods,
            flood_bytes,
            Some(mix.flood_mb_s),
            Some(d),
            plan,
            errors
        ),
    );
    // Interactive's opens are not cycles: keep churn's rate alone.
    a.open_time = Duration::ZERO;
    a.merge(b);
    a.merge(c);
    a
}
