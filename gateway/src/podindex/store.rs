//! One cluster's pods, bounded: at most `max_pods` are kept, and past that the store says it
//! is `truncated` (until the next full list finds room again). Pure: no I/O, no clock.

use super::summary::PodSummary;
use std::collections::BTreeMap;

/// Where a cluster's index is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncState {
    /// Its first list is not complete (what is there so far is searched).
    Syncing,
    /// Listed, and following the watch.
    Ready,
    /// The list or watch failed; what it held before stays searchable, marked stale.
    Error(String),
}

impl SyncState {
    pub fn as_str(&self) -> &'static str {
        match self {
            SyncState::Syncing => "syncing",
            SyncState::Ready => "ready",
            SyncState::Error(_) => "error",
        }
    }
}

#[derive(Debug)]
pub struct PodStore {
    max: usize,
    pods: BTreeMap<(String, String), PodSummary>,
    /// Some pod was left out for want of room since the last full list.
    truncated: bool,
}

impl PodStore {
    pub fn new(max: usize) -> PodStore {
        PodStore {
            max,
            pods: BTreeMap::new(),
            truncated: false,
        }
    }

    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    pub fn truncated(&self) -> bool {
        self.truncated
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Adds or replaces a pod (`ADDED`, `MODIFIED`, a list item); a new pod past the bound
    /// is dropped and the store marked truncated.
    pub fn upsert(&mut self, pod: PodSummary) {
        let key = (pod.namespace.clone(), pod.name.clone());
        if let Some(slot) = self.pods.get_mut(&key) {
            *slot = pod;
        } else if self.pods.len() < self.max {
            self.pods.insert(key, pod);
        } else {
            self.truncated = true;
        }
    }

    /// `DELETED`.
    pub fn remove(&mut self, namespace: &str, name: &str) {
        self.pods.remove(&(namespace.to_string(), name.to_string()));
    }

    pub fn iter(&self) -> impl Iterator<Item = &PodSummary> {
        self.pods.values()
    }

    /// The namespaces that have pods, in order.
    pub fn namespaces(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (ns, _) in self.pods.keys() {
            if out.last() != Some(ns) {
                out.push(ns.clone());
            }
        }
        out
    }

    /// Rough bytes held (for the bound's documentation and tests).
    pub fn weight(&self) -> usize {
        self.pods.values().map(PodSummary::weight).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::podindex::summary::pod;

    #[test]
    fn the_bound_holds_and_says_so() {
        let mut s = PodStore::new(2);
        s.upsert(pod("a", "1", &[], "n"));
        s.upsert(pod("a", "2", &[], "n"));
        assert!(!s.truncated());
        s.upsert(pod("b", "3", &[], "n"));
        assert_eq!(s.len(), 2);
        assert!(s.truncated());
        // A known pod is still updated at the bound.
        let mut changed = pod("a", "2", &[], "other");
        changed.phase = "Failed".into();
        s.upsert(changed);
        assert_eq!(s.iter().nth(1).map(|p| p.phase.as_str()), Some("Failed"));
        s.remove("a", "1");
        s.remove("zz", "none");
        assert_eq!(s.len(), 1);
        assert_eq!(s.namespaces(), ["a"]);
        assert!(s.weight() > 0);
    }
}
