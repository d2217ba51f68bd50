//! The open-files limit (RLIMIT_NOFILE): raised at start, and checked against the limits.
//!
//! Every relayed session holds two sockets (the client's and the cluster's), so 10,000
//! shells need more than 20,000 descriptors. Most systems start processes with a soft limit
//! of 1,024 and a much higher hard limit (systemd: 524,288); the soft one may be raised to
//! the hard one without privileges, as Go programs (kube-apiserver, kubectl) do at start.
//! Past the limit `accept` fails with EMFILE and upstream connects fail: the gateway says so
//! at start rather than leaving people to find it in `accept failed` lines under load.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept aside for listeners, the runtime, log and certificate files.
pub const RESERVE: u64 = 64;

/// The soft limit to set, given the current soft and hard limits (`None` = unlimited) and the
/// kernel's ceiling (`/proc/sys/fs/nr_open`); `None` when the soft limit should stay.
///
/// An unlimited hard limit cannot be given to RLIMIT_NOFILE as the soft one (the kernel
/// refuses values above `nr_open`), so the ceiling is used instead.
pub fn raised_soft(soft: Option<u64>, hard: Option<u64>, nr_open: u64) -> Option<u64> {
    let target = match hard {
        Some(h) => h,
        None => nr_open,
    };
    match soft {
        None => None,
        Some(s) if s >= target => None,
        Some(_) => Some(target),
    }
}

/// Descriptors the configured limits may need: one per client connection, one per session's
/// upstream socket (each session is also a client connection), and [`RESERVE`].
pub fn needed(max_connections: usize, max_sessions: usize) -> u64 {
    (max_connections as u64)
        .saturating_add(max_sessions as u64)
        .saturating_add(RESERVE)
}

/// The warning to log when `limit` (`None` = unlimited) is below what the limits need.
pub fn shortfall(
    limit: Option<u64>,
    max_connections: usize,
    max_sessions: usize,
) -> Option<String> {
    let limit = limit?;
    let need = needed(max_connections, max_sessions);
    (limit < need).then(|| {
        format!(
            "the open-files limit ({limit}) is below the {need} descriptors that \
             limits.max_connections ({max_connections}) and limits.max_sessions \
             ({max_sessions}) may need (two per session); past it new connections fail: \
             raise the hard limit (systemd LimitNOFILE=, ulimit -Hn, the container runtime's \
             nofile ulimit) or lower the limits"
        )
    })
}

/// What [`raise`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// The soft limit now in force (`None` = unlimited).
    pub soft: Option<u64>,
    pub hard: Option<u64>,
    /// The soft limit before, when it was raised.
    pub raised_from: Option<u64>,
}

/// Raises the soft open-files limit to the hard one. Never fails: when the kernel refuses,
/// the limit in force is reported as it is.
pub fn raise() -> NofileLimit {
    let before = getrlimit(Resource::Nofile);
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let mut raised_from = None;
    if let Some(soft) = raised_soft(before.current, before.maximum, nr_open) {
        let wanted = Rlimit {
            current: Some(soft),
            maximum: before.maximum,
        };
        if setrlimit(Resource::Nofile, wanted).is_ok() {
            raised_from = before.current;
        }
    }
    let now = getrlimit(Resource::Nofile);
    NofileLimit {
        soft: now.current,
        hard: now.maximum,
        raised_from,
    }
}

/// Raises the limit and logs it; a warning when it is below what the limits may need.
pub fn raise_and_report(max_connections: usize, max_sessions: usize) -> NofileLimit {
    let limit = raise();
    let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
    match limit.raised_from {
        Some(from) => tracing::info!(
            soft = %show(limit.soft),
            hard = %show(limit.hard),
            "raised the open-files limit from {from}"
        ),
        None => tracing::debug!(
            soft = %show(limit.soft),
            hard = %show(limit.hard),
            "open-files limit"
        ),
    }
    if let Some(warning) = shortfall(limit.soft, max_connections, max_sessions) {
        tracing::warn!("{warning}");
    }
    limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_goes_up_to_hard() {
        assert_eq!(
            raised_soft(Some(1024), Some(524_288), 1 << 20),
            Some(524_288)
        );
        assert_eq!(raised_soft(Some(20_000), Some(20_000), 1 << 20), None);
    }

    #[test]
    fn unlimited_hard_means_the_kernel_ceiling() {
        assert_eq!(raised_soft(Some(1024), None, 1_048_576), Some(1_048_576));
        assert_eq!(raised_soft(Some(1_048_576), None, 1_048_576), None);
    }

    #[test]
    fn unlimited_soft_stays() {
        assert_eq!(raised_soft(None, None, 1 << 20), None);
    }

    #[test]
    fn never_lowers() {
        // A soft limit above the hard one cannot happen, but must not be "raised" down.
        assert_eq!(raised_soft(Some(4096), Some(1024), 1 << 20), None);
    }

    #[test]
    fn shortfall_names_the_figures() {
        let w = shortfall(Some(20_000), 40_000, 20_000).expect("a warning");
        assert!(w.contains("(20000)"), "{w}");
        assert!(w.contains("60064"), "{w}");
        assert!(w.contains("max_connections (40000)"), "{w}");
        assert_eq!(shortfall(Some(1 << 20), 40_000, 20_000), None);
        assert_eq!(shortfall(None, 40_000, 20_000), None);
        assert_eq!(needed(usize::MAX, usize::MAX), u64::MAX);
    }

    #[test]
    fn raise_never_lowers_the_limit() {
        let before = getrlimit(Resource::Nofile).current;
        let after = raise().soft;
        match (before, after) {
            (Some(b), Some(a)) => assert!(a >= b),
            (None, a) => assert_eq!(a, None),
            (Some(_), None) => {}
        }
    }
}
