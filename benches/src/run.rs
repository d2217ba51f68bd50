//! A whole run: for each scenario, directly then through podgate against the same cluster,
//! then the gateway's leak check.

use crate::procfs;
use crate::report::{ScenarioReport, Scenarios};
use crate::scenario::{self, Plan, Pods, Scenario, SoakMix, Watch};

use crate::target::Target;
use std::sync::Arc;
use std::time::Duration;

/// Sizes of the quick (`make bench`) or full (`make bench-full`) run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    Quick,
    Full,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Quick => "quick",
            Profile::Full => "full",
        }
    }

    /// The default plan of `scenario` in this profile.
    pub fn plan(self, scenario: Scenario) -> Plan {
        let quick = self == Profile::Quick;
        let s = Duration::from_secs;
        let pick = |q: u64, f: u64| if quick { q } else { f };
        let base = Plan {
            scenario,
            sessions: 0,
            duration: s(0),
            interval: Duration::from_millis(100),
            flood_bytes: 0,
            concurrency: pick(32, 64) as usize,
            rate: None,
            soak: SoakMix {
                interactive: pick(50, 500) as usize,
                interval: Duration::from_millis(pick(200, 100)),
                churn_workers: pick(8, 16) as usize,
                churn_per_s: pick(50, 100) as f64,
                floods: pick(2, 4) as usize,
                flood_mb_s: 20.0,
            },
            open_timeout: s(pick(10, 20)),
            timeout: s(pick(120, 1200)),
            clamped: None,
        };
        match scenario {
            Scenario::Idle => Plan {
                sessions: pick(1000, 10_000) as usize,
                duration: s(pick(5, 30)),
                ..base
            },
            Scenario::Interactive => Plan {
                sessions: pick(200, 1000) as usize,
                duration: s(pick(10, 60)),
                ..base
            },
            Scenario::Throughput => Plan {
                sessions: pick(4, 16) as usize,
                flood_bytes: pick(768, 1024) << 20,
                ..base
            },
            Scenario::Churn => Plan {
                sessions: pick(5000, 100_000) as usize,
                duration: s(pick(60, 900)),
                ..base
            },
            Scenario::Soak => Plan {
                sessions: 0,
                duration: s(pick(15, 300)),
                ..base
            },
        }
    }
}

impl Plan {
    /// Sessions open at the same time at the peak of this plan.
    pub fn concurrent_sessions(&self) -> usize {
        match self.scenario {
            Scenario::Idle | Scenario::Interactive | Scenario::Throughput => self.sessions,
            Scenario::Churn => self.concurrency,
            Scenario::Soak => self.soak.interactive + self.soak.floods + self.soak.churn_workers,
        }
    }

    /// Shrinks the plan so that a process with `limit` open files, of which `in_use` are
    /// taken, can hold `fds_per_session` per session (podgate: 2, a client and an upstream
    /// socket). Records why in `clamped`.
    pub fn fit_fd_limit(&mut self, who: &str, limit: u64, in_use: u64, fds_per_session: u64) {
        let headroom = 64;
        let fit = limit.saturating_sub(in_use + headroom) / fds_per_session.max(1);
        let fit = usize::try_from(fit).unwrap_or(usize::MAX);
        let want = self.concurrent_sessions();
        if want <= fit {
            return;
        }
        let note = format!(
            "{want} concurrent sessions need {} fds in {who}, above its open-files limit of {limit}; \
             running {fit}",
            want as u64 * fds_per_session + in_use
        );
        match self.scenario {
            Scenario::Idle | Scenario::Interactive | Scenario::Throughput => self.sessions = fit,
            Scenario::Churn => self.concurrency = fit,
            Scenario::Soak => {
                self.soak.interactive =
                    fit.saturating_sub(self.soak.floods + self.soak.churn_workers)
            }
        }
        self.clamped = Some(note);
    }
}

/// Where the run sends load and which processes it watches.
pub struct Setup {
    pub gateway: Option<Arc<Target>>,
    pub direct: Option<Arc<Target>>,
    /// The reference relay in front of the cluster: throughput, churn and interactive run
    /// through it too ([`Scenario::has_reference`]), for the floor of a second TLS hop.
    pub reference: Option<Arc<Target>>,
    /// The reference relay's process (measured like podgate's).
    pub reference_pid: Option<u32>,
    /// The podgate process: measured, and leak-checked after each scenario.
    pub gateway_pid: Option<u32>,
    /// The cluster's process (measured; the cluster end of direct sessions).
    pub cluster_pid: Option<u32>,
    pub pods: Pods,
    /// How long the leak check waits for podgate to return to its baseline.
    pub leak_timeout: Duration,
}

/// Opens and closes one session on each target, so lazily built state (connection pools,
/// caches) exists before baselines are read, and a misconfigured target fails fast.
pub async fn warm_up(setup: &Setup) -> anyhow::Result<()> {
    for t in [&setup.direct, &setup.gateway, &setup.reference]
        .into_iter()
        .flatten()
    {
        for _ in 0..3 {
            let mut o = crate::client::open(t, &setup.pods.echo(), Duration::from_secs(20))
                .await
                .map_err(|e| anyhow::anyhow!("warm-up session via {}: {e:#}", t.kind.name()))?;
            crate::client::finish(&mut o.ws)
                .await
                .map_err(|e| anyhow::anyhow!("warm-up session via {}: {e:#}", t.kind.name()))?;
        }
    }
    // Background machinery starts lazily (podgate's certificate watcher takes a blocking
    // thread at its first tick, 2 s after start); baselines are read once it has.
    for pid in [setup.gateway_pid, setup.cluster_pid, setup.reference_pid]
        .into_iter()
        .flatten()
    {
        settle(pid, Duration::from_secs(3), Duration::from_secs(20)).await;
    }
    Ok(())
}

/// Waits until `pid`'s fds and threads have not changed for `quiet`, at most `bound`.
async fn settle(pid: u32, quiet: Duration, bound: Duration) {
    let started = tokio::time::Instant::now();
    let key = |s: procfs::Sample| (s.fds, s.threads);
    let Ok(mut last) = procfs::sample(pid).map(key) else {
        return;
    };
    let mut since = started;
    while started.elapsed() < bound && since.elapsed() < quiet {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Ok(now) = procfs::sample(pid).map(key) else {
            return;
        };
        if now != last {
            last = now;
            since = tokio::time::Instant::now();
        }
    }
}

/// Runs each plan against the direct target, then the gateway, then waits for podgate to
/// give back its fds and threads. Progress goes to stderr.
pub async fn run_all(setup: &Setup, plans: &[Plan]) -> (Scenarios, Vec<String>) {
    let mut reports = Scenarios::default();
    let mut failures = Vec::new();
    for plan in plans {
        let name = plan.scenario.name();
        let direct = match &setup.direct {
            Some(t) => {
                eprintln!("podgate-load: {name}: direct ...");
                let watch = Watch {
                    main: setup.cluster_pid,
                    upstream: None,
                };
                Some(scenario::run(plan, t.clone(), &setup.pods, watch).await)
            }
            None => None,
        };
        let reference = match &setup.reference {
            Some(t) if plan.scenario.has_reference() => {
                eprintln!("podgate-load: {name}: reference relay ...");
                let watch = Watch {
                    main: setup.reference_pid,
                    upstream: setup.cluster_pid,
                };
                Some(scenario::run(plan, t.clone(), &setup.pods, watch).await)
            }
            _ => None,
        };
        let gateway = match &setup.gateway {
            Some(t) => {
                eprintln!("podgate-load: {name}: gateway ...");
                let baseline = setup.gateway_pid.and_then(|p| procfs::sample(p).ok());
                let watch = Watch {
                    main: setup.gateway_pid,
                    upstream: setup.cluster_pid,
                };
                let mut r = scenario::run(plan, t.clone(), &setup.pods, watch).await;
                if let (Some(pid), Some(base)) = (setup.gateway_pid, baseline) {
                    match procfs::wait_for_baseline(pid, base, setup.leak_timeout).await {
                        Ok(check) => {
                            if !check.passed() {
                                failures.push(format!(
                                    "{name}: podgate kept {} fds and {} threads above its baseline ({} fds, {} threads) {:.0} s after the scenario",
                                    check.leaked_fds,
                                    check.leaked_threads,
                                    check.baseline_fds,
                                    check.baseline_threads,
                                    check.waited_s
                                ));
                            }
                            r.leaked_fds = Some(check.leaked_fds);
                            r.leaked_threads = Some(check.leaked_threads);
                            r.leak_check = Some(check);
                        }
                        Err(e) => failures.push(format!(
                            "{name}: cannot read podgate's /proc after the scenario (did it exit?): {e}"
                        )),
                    }
                }
                Some(r)
            }
            None => None,
        };
        for (label, r) in [
            ("direct", &direct),
            ("gateway", &gateway),
            ("reference relay", &reference),
        ] {
            if let Some(r) = r
                && r.sessions == 0
            {
                failures.push(format!(
                    "{name} ({label}): no session succeeded ({} errors{})",
                    r.errors,
                    r.error_samples
                        .first()
                        .map(|e| format!(", first: {e}"))
                        .unwrap_or_default()
                ));
            }
        }
        let report = ScenarioReport::new(plan.clone(), gateway, direct).with_reference(reference);
        eprintln!(
            "podgate-load: {name}: done{}",
            if report.ratios.is_empty() {
                String::new()
            } else {
                format!(
                    " (ratios: {})",
                    report
                        .ratios
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        reports.0.push((name, report));
    }
    (reports, failures)
}
