//! The clusters behind the gateway and how requests reach them.
//!
//! - [`registry`]: one [`Cluster`] per configured cluster (its client, access policy and
//!   health), replaced on reload without disturbing sessions already running on it;
//! - [`client`]: the streaming HTTP client to one cluster's API server, whose connections
//!   close when nobody uses them (health probes do not count);
//! - [`tls`]: TLS configurations shared by clusters with the same CA and identity, each
//!   cluster keeping its own resumption store;
//! - [`schedule`] and `health`: when each cluster is probed (spread, paced, bounded, with
//!   backoff), and the loop that probes;
//! - [`proxy`]: every non-upgrade request, forwarded with its body streamed both ways;
//! - [`headers`]: what a client's request may carry upstream, and the identity it acts as.
//!
//! Path rules (what the cluster will act on) are [`podgate_protocol::ApiPath`], shared with
//! the devcluster. Nothing here knows about sessions, browsers or routing.

pub mod client;
pub mod headers;
mod health;
pub mod proxy;
pub mod registry;
pub mod schedule;
pub mod tls;

pub use client::{BoxError, RequestBody, Upstream, UpstreamError, UpstreamOptions, empty_body};
pub use registry::{
    ApplySummary, Cluster, ClusterError, ClusterMeta, ClusterSpec, Health, Registry, Snapshot,
};
