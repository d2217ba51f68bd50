//! The health loop: probes clusters when [`super::schedule`] says, each probe a task owned by
//! the loop, and counts them (`podgate_cluster_probes_total`, `_in_flight`, the interval).

use super::registry::{Cluster, Registry};
use super::schedule::{Jitter, Policy, Schedule};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Probes every cluster's `/version` at once, then about every `interval` (longer with a
/// fleet larger than `upstream.health_max_rate` allows in it; with backoff for clusters that
/// are down), each probe bounded by `timeout`, until `shutdown`. The other `upstream.health_*`
/// settings are those of the registry's last `apply`. Clusters added or rebuilt by
/// [`Registry::apply`] are probed right away instead of waiting for their turn; removed ones
/// are no longer probed.
///
/// Every probe is a task of this loop: cancelling `shutdown` ends them with it.
pub fn spawn_health_checks(
    registry: Registry,
    interval: Duration,
    timeout: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let policy = Policy {
        interval,
        timeout,
        ..Policy::from_config(&registry.upstream_config())
    };
    tokio::spawn(run(registry, policy, shutdown))
}

async fn run(registry: Registry, policy: Policy, shutdown: CancellationToken) {
    let metrics = registry.probe_metrics().clone();
    let mut schedule: Schedule<String> = Schedule::new(policy, Jitter::from_entropy());
    let mut clusters: HashMap<String, Arc<Cluster>> = HashMap::new();
    let mut probes: JoinSet<(String, Arc<Cluster>, bool)> = JoinSet::new();
    // Which cluster each probe task is for, to free its slot should a task fail.
    let mut tasks: HashMap<tokio::task::Id, String> = HashMap::new();
    sync(&registry, &mut schedule, &mut clusters);
    metrics.set_interval(schedule.period());
    loop {
        let now = Instant::now();
        while let Some(id) = schedule.start_next(now) {
            let Some(cluster) = clusters.get(&id).cloned() else {
                // Cannot happen (the schedule knows only what `clusters` holds); never stall.
                schedule.finish(&id, false, now);
                continue;
            };
            let key = id.clone();
            let task = probes.spawn(async move {
                let up = cluster.check_health(policy.timeout).await.up;
                (id, cluster, up)
            });
            tasks.insert(task.id(), key);
        }
        metrics.set_in_flight(probes.len());
        let wake = schedule.next_wake();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            () = registry.changed().notified() => {
                sync(&registry, &mut schedule, &mut clusters);
                metrics.set_interval(schedule.period());
            }
            Some(done) = probes.join_next_with_id(), if !probes.is_empty() => {
                let now = Instant::now();
                match done {
                    Ok((task, (id, cluster, up))) => {
                        tasks.remove(&task);
                        metrics.probed(up);
                        // A probe of a cluster that was rebuilt meanwhile is the old one's.
                        if clusters.get(&id).is_some_and(|c| Arc::ptr_eq(c, &cluster)) {
                            schedule.finish(&id, up, now);
                        }
                    }
                    // A probe is not expected to panic on anything a cluster answers; if one
                    // did, the loop goes on and the cluster counts as down this time.
                    Err(e) => {
                        tracing::error!("health probe task failed: {e}");
                        if let Some(id) = tasks.remove(&e.id()) {
                            metrics.probed(false);
                            schedule.finish(&id, false, now);
                        }
                    }
                }
            }
            () = sleep_until(wake) => {}
        }
    }
}

/// Until `at`, or forever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Makes the schedule follow the registry: new and rebuilt clusters due now, removed ones
/// gone, unchanged ones keep their place.
fn sync(
    registry: &Registry,
    schedule: &mut Schedule<String>,
    clusters: &mut HashMap<String, Arc<Cluster>>,
) {
    let snapshot = registry.snapshot();
    let now = Instant::now();
    clusters.retain(|id, c| {
        let same = snapshot.get(id).is_some_and(|now| Arc::ptr_eq(now, c));
        if !same {
            schedule.remove(id);
        }
        same
    });
    for c in snapshot.sorted() {
        if !clusters.contains_key(&c.id) {
            schedule.add(c.id.clone(), Arc::from(c.server_address()), now);
            clusters.insert(c.id.clone(), c.clone());
        }
    }
}
