//! What a process costs, read from `/proc/PID`: resident memory, CPU time, open file
//! descriptors and threads. Also raises this process's own file-descriptor limit.

use serde::Serialize;
use std::time::{Duration, Instant};

/// One reading of a process.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Sample {
    pub rss_bytes: u64,
    /// User plus system CPU time, in clock ticks (see [`ticks_per_second`]).
    pub cpu_ticks: u64,
    pub fds: usize,
    pub threads: usize,
}

pub fn ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

pub fn sample(pid: u32) -> std::io::Result<Sample> {
    let base = format!("/proc/{pid}");
    let statm = std::fs::read_to_string(format!("{base}/statm"))?;
    let stat = std::fs::read_to_string(format!("{base}/stat"))?;
    let bad = |what: &str| std::io::Error::other(format!("{base}/{what}: unexpected format"));
    let rss_pages = parse_statm_resident(&statm).ok_or_else(|| bad("statm"))?;
    let cpu_ticks = parse_stat_cpu_ticks(&stat).ok_or_else(|| bad("stat"))?;
    let fds = std::fs::read_dir(format!("{base}/fd"))?.count();
    let threads = std::fs::read_dir(format!("{base}/task"))?.count();
    Ok(Sample {
        rss_bytes: rss_pages * page_size(),
        cpu_ticks,
        fds,
        threads,
    })
}

/// Second field of `/proc/PID/statm`: resident pages.
fn parse_statm_resident(statm: &str) -> Option<u64> {
    statm.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime (fields 14 and 15 of `/proc/PID/stat`). The command name in field 2 may
/// contain spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU use between two samples as a percentage of one core.
pub fn cpu_percent(before: &Sample, after: &Sample, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    let used = after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 / ticks_per_second() as f64;
    used / secs * 100.0
}

/// Busy, stolen and total jiffies of the whole machine, from the `cpu` line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineCpu {
    /// Everything but idle and iowait; includes `steal`.
    pub busy: u64,
    /// Time a virtual machine's vCPUs wanted to run but the hypervisor ran something else.
    pub steal: u64,
    pub total: u64,
}

pub fn machine_cpu() -> Option<MachineCpu> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

fn parse_proc_stat(text: &str) -> Option<MachineCpu> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some(MachineCpu {
        busy: total.saturating_sub(idle),
        steal: v.get(7).copied().unwrap_or(0),
        total,
    })
}

/// How much of the machine the hypervisor took between two readings, percent of all cores.
/// On a shared virtual machine this is CPU the processes wanted and did not get: latencies
/// then measure the host's other tenants as much as the gateway.
pub fn machine_steal_percent(before: MachineCpu, after: MachineCpu) -> f64 {
    let total = after.total.saturating_sub(before.total);
    if total == 0 {
        return 0.0;
    }
    after.steal.saturating_sub(before.steal) as f64 / total as f64 * 100.0
}

/// How busy all cores were between two readings, percent of the whole machine.
pub fn machine_busy_percent(before: MachineCpu, after: MachineCpu) -> f64 {
    let total = after.total.saturating_sub(before.total);
    if total == 0 {
        return 0.0;
    }
    after.busy.saturating_sub(before.busy) as f64 / total as f64 * 100.0
}

/// Result of waiting for a process to come back to its baseline after a scenario.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct LeakCheck {
    pub baseline_fds: usize,
    pub baseline_threads: usize,
    pub final_fds: usize,
    pub final_threads: usize,
    pub leaked_fds: usize,
    pub leaked_threads: usize,
    /// How long it took to return to baseline (or the whole timeout when it did not).
    pub waited_s: f64,
}

impl LeakCheck {
    pub fn passed(&self) -> bool {
        self.leaked_fds == 0 && self.leaked_threads == 0
    }
}

/// Polls `pid` until its fds and threads are back at (or below) `baseline`, for at most
/// `timeout`. Thread pools park idle threads for a while (tokio: 10 s) before they exit, and
/// sockets close asynchronously, hence polling rather than a single reading.
pub async fn wait_for_baseline(
    pid: u32,
    baseline: Sample,
    timeout: Duration,
) -> std::io::Result<LeakCheck> {
    let started = Instant::now();
    loop {
        let now = sample(pid)?;
        let back = now.fds <= baseline.fds && now.threads <= baseline.threads;
        if back || started.elapsed() >= timeout {
            return Ok(LeakCheck {
                baseline_fds: baseline.fds,
                baseline_threads: baseline.threads,
                final_fds: now.fds,
                final_threads: now.threads,
                leaked_fds: now.fds.saturating_sub(baseline.fds),
                leaked_threads: now.threads.saturating_sub(baseline.threads),
                waited_s: started.elapsed().as_secs_f64(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Raises this process's open-file limit as far as it goes (children inherit it): the hard
/// limit up to `fs.nr_open` when privileged, else the soft limit up to the hard one.
/// Returns the soft limit in force afterwards.
pub fn raise_nofile_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let raised = Rlimit {
        current: Some(nr_open),
        maximum: Some(nr_open),
    };
    if current.maximum.is_some_and(|m| m < nr_open) && setrlimit(Resource::Nofile, raised).is_ok() {
        return nr_open;
    }
    let hard = current.maximum;
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: hard,
            maximum: hard,
        },
    );
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The soft open-files limit of `pid`, from `/proc/PID/limits`.
pub fn nofile_limit(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    parse_limits_nofile(&text)
}

fn parse_limits_nofile(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// A background sampler: the largest RSS, fds and threads seen while it runs.
pub struct Peak {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Sample>,
}

impl Peak {
    pub fn start(pid: u32, every: Duration) -> Peak {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut peak = sample(pid).unwrap_or(Sample {
                rss_bytes: 0,
                cpu_ticks: 0,
                fds: 0,
                threads: 0,
            });
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(every) => {}
                }
                if let Ok(s) = sample(pid) {
                    peak.rss_bytes = peak.rss_bytes.max(s.rss_bytes);
                    peak.fds = peak.fds.max(s.fds);
                    peak.threads = peak.threads.max(s.threads);
                    peak.cpu_ticks = s.cpu_ticks;
                }
            }
            peak
        });
        Peak { stop, task }
    }

    pub async fn finish(self) -> Option<Sample> {
        let _ = self.stop.send(());
        self.task.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        assert_eq!(parse_statm_resident("1000 250 30 4 0 90 0\n"), Some(250));
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 2 0 99";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(10));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            20000                20000                files\n";
        assert_eq!(parse_limits_nofile(limits), Some(20000));
        let stat = "cpu  100 0 40 800 50 0 0 10 0 0\ncpu0 1 2 3\n";
        let m = parse_proc_stat(stat).unwrap();
        assert_eq!((m.busy, m.steal, m.total), (150, 10, 1000));
        let later = MachineCpu {
            busy: 250,
            steal: 60,
            total: 1200,
        };
        assert!((machine_busy_percent(m, later) - 50.0).abs() < 1e-9);
        assert!((machine_steal_percent(m, later) - 25.0).abs() < 1e-9);
        assert!(nofile_limit(std::process::id()).is_some());
    }

    #[test]
    fn reads_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_bytes > 0);
        assert!(s.fds >= 3);
        assert!(s.threads >= 1);
        let later = Sample {
            cpu_ticks: s.cpu_ticks + ticks_per_second(),
            ..s
        };
        let pct = cpu_percent(&s, &later, Duration::from_secs(2));
        assert!((pct - 50.0).abs() < 1e-9);
    }

    #[test]
    fn limit_is_at_least_what_it_was() {
        let before = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        assert!(raise_nofile_limit() >= before);
    }
}
