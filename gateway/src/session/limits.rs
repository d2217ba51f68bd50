//! Session limits: global, per user and per cluster. Counting is lock-free on the global
//! count and takes one short lock for the per-key maps; a [`SessionPermit`] gives its slots
//! back when the session ends, however it ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug)]
pub struct SessionLimits {
    pub global: usize,
    pub per_user: usize,
    pub per_cluster: usize,
}

/// Which limit refused a session (shown to the client and used as a metric label).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("podgate is at its limit of {0} concurrent sessions; try again later")]
    Global(usize),
    #[error(
        "user {user:?} already has {limit} open sessions, the most allowed; close one and try again"
    )]
    User { user: String, limit: usize },
    #[error(
        "cluster {cluster:?} already has {limit} open sessions through podgate, the most allowed; try again later"
    )]
    Cluster { cluster: String, limit: usize },
}

#[derive(Default)]
struct Counts {
    users: HashMap<String, usize>,
    clusters: HashMap<String, usize>,
}

pub struct Limits {
    limits: SessionLimits,
    active: AtomicUsize,
    counts: Mutex<Counts>,
}

impl Limits {
    pub fn new(limits: SessionLimits) -> Arc<Limits> {
        Arc::new(Limits {
            limits,
            active: AtomicUsize::new(0),
            counts: Mutex::new(Counts::default()),
        })
    }

    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Reserves a slot for `user` on `cluster`, or says which limit is reached.
    pub fn acquire(
        self: &Arc<Self>,
        user: &str,
        cluster: &str,
    ) -> Result<SessionPermit, LimitError> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if self.active.load(Ordering::Relaxed) >= self.limits.global {
            return Err(LimitError::Global(self.limits.global));
        }
        if counts.users.get(user).copied().unwrap_or(0) >= self.limits.per_user {
            return Err(LimitError::User {
                user: user.into(),
                limit: self.limits.per_user,
            });
        }
        if counts.clusters.get(cluster).copied().unwrap_or(0) >= self.limits.per_cluster {
            return Err(LimitError::Cluster {
                cluster: cluster.into(),
                limit: self.limits.per_cluster,
            });
        }
        *counts.users.entry(user.into()).or_default() += 1;
        *counts.clusters.entry(cluster.into()).or_default() += 1;
        self.active.fetch_add(1, Ordering::Relaxed);
        Ok(SessionPermit {
            limits: self.clone(),
            user: user.into(),
            cluster: cluster.into(),
        })
    }
}

pub struct SessionPermit {
    limits: Arc<Limits>,
    user: String,
    cluster: String,
}

impl Drop for SessionPermit {
    fn drop(&mut self) {
        let mut counts = self.limits.counts.lock().unwrap_or_else(|p| p.into_inner());
        let Counts { users, clusters } = &mut *counts;
        for (map, key) in [(users, &self.user), (clusters, &self.cluster)] {
            if let Some(n) = map.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(key);
                }
            }
        }
        self.limits.active.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_refuses_and_permits_give_back() {
        let l = Limits::new(SessionLimits {
            global: 3,
            per_user: 2,
            per_cluster: 2,
        });
        let a1 = l.acquire("alice", "east").unwrap();
        let _a2 = l.acquire("alice", "west").unwrap();
        assert_eq!(
            l.acquire("alice", "west").err(),
            Some(LimitError::User {
                user: "alice".into(),
                limit: 2
            })
        );
        let _b1 = l.acquire("bob", "east").unwrap();
        assert_eq!(
            l.acquire("carol", "west").err(),
            Some(LimitError::Global(3))
        );
        drop(a1);
        let _c = l.acquire("carol", "east").expect("a slot came back");
        assert_eq!(l.active(), 3);
        let l = Limits::new(SessionLimits {
            global: 10,
            per_user: 10,
            per_cluster: 1,
        });
        let x = l.acquire("a", "east").unwrap();
        assert!(matches!(
            l.acquire("b", "east"),
            Err(LimitError::Cluster { .. })
        ));
        drop(x);
        assert!(l.acquire("b", "east").is_ok());
        assert_eq!(l.active(), 0);
        assert!(l.counts.lock().unwrap().users.is_empty());
    }
}
