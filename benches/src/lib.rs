//! `podgate-load`: many concurrent shells through podgate and, in the same run, directly
//! against the same cluster, so the gateway's cost shows as ratios that hold on a noisy
//! machine. See BENCHMARKS.md at the repository root.
//!
//! Sessions behave as real clients: TLS, a bearer token, a WebSocket exec upgrade with
//! `v5.channel.k8s.io`, stdin on stream 0, stdout and the exit status on streams 1 and 3.
#![forbid(unsafe_code)]

pub mod client;
pub mod launch;
pub mod procfs;
pub mod relay;
pub mod report;
pub mod run;
pub mod scenario;
pub mod spawn;
pub mod stats;
pub mod target;
