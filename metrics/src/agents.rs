//! Agent tunnels (clusters reached through a `podgate agent` that dials out).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `podgate_agent_tunnels` | gauge | cluster |
//! | `podgate_agent_tunnel_attempts_total` | counter | result ([`TunnelResult`]) |
//!
//! Attempts carry no cluster label: a refused attempt names whatever cluster its sender
//! chose, and labels from the network would let anyone grow the series without bound.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

/// How an agent's request for a tunnel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelResult {
    Connected,
    /// No `Authorization: Bearer`, or not a tunnel request.
    BadRequest,
    /// The cluster id is not one served through agents.
    UnknownCluster,
    /// The token is not this cluster's.
    WrongToken,
    /// The upgrade or the HTTP/2 handshake over it failed.
    Failed,
}

impl TunnelResult {
    pub const ALL: [TunnelResult; 5] = [
        TunnelResult::Connected,
        TunnelResult::BadRequest,
        TunnelResult::UnknownCluster,
        TunnelResult::WrongToken,
        TunnelResult::Failed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            TunnelResult::Connected => "connected",
            TunnelResult::BadRequest => "bad_request",
            TunnelResult::UnknownCluster => "unknown_cluster",
            TunnelResult::WrongToken => "wrong_token",
            TunnelResult::Failed => "failed",
        }
    }
}

/// The agent tunnel series; clones share them.
#[derive(Clone)]
pub struct AgentMetrics {
    tunnels: IntGaugeVec,
    attempts: IntCounterVec,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        AgentMetrics::new()
    }
}

impl AgentMetrics {
    pub fn new() -> AgentMetrics {
        let m = AgentMetrics {
            tunnels: IntGaugeVec::new(
                Opts::new(
                    "podgate_agent_tunnels",
                    "Agent tunnels connected now, by cluster.",
                ),
                &["cluster"],
            )
            .expect("valid metric"),
            attempts: IntCounterVec::new(
                Opts::new(
                    "podgate_agent_tunnel_attempts_total",
                    "Agents' requests for a tunnel, by result.",
                ),
                &["result"],
            )
            .expect("valid metric"),
        };
        for r in TunnelResult::ALL {
            m.attempts.with_label_values(&[r.as_str()]);
        }
        m
    }

    /// Adds the series to `registry` (the gateway's, for `/metrics`).
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.tunnels.clone()))?;
        registry.register(Box::new(self.attempts.clone()))
    }

    pub fn attempt(&self, result: TunnelResult) {
        self.attempts.with_label_values(&[result.as_str()]).inc();
    }

    /// `cluster` (a configured id, never one from the network) has `n` tunnels now.
    pub fn set_tunnels(&self, cluster: &str, n: usize) {
        self.tunnels
            .with_label_values(&[cluster])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// `podgate_agent_tunnel_attempts_total{result}` now (tests).
    pub fn attempts(&self, result: TunnelResult) -> u64 {
        self.attempts.with_label_values(&[result.as_str()]).get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_start_at_zero_and_tunnels_follow_their_cluster() {
        let m = AgentMetrics::new();
        let r = Registry::new();
        m.register(&r).expect("registers");
        let text = || crate::exposition(&r);
        assert!(text().contains(r#"podgate_agent_tunnel_attempts_total{result="wrong_token"} 0"#));
        m.attempt(TunnelResult::WrongToken);
        m.set_tunnels("edge", 2);
        let after = text();
        assert!(after.contains(r#"podgate_agent_tunnel_attempts_total{result="wrong_token"} 1"#));
        assert!(after.contains(r#"podgate_agent_tunnels{cluster="edge"} 2"#));
        assert_eq!(m.attempts(TunnelResult::WrongToken), 1);
    }
}
