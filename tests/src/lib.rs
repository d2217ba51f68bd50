//! podgate's test kit, and (under `tests/`) its end-to-end tests.
//!
//! Every crate's integration tests use this one crate (as a dev-dependency) instead of copies of
//! their own; each module has one job:
//!
//! - [`gateway`]: a gateway in front of N devclusters, assembled in this process with what a
//!   test changes ([`gateway::Builder`]), or `podgate demo` itself ([`gateway::demo`]); the
//!   [`gateway::Env`] it returns;
//! - [`devcluster`]: a devcluster alone with its kubeconfig, for devcluster's own tests;
//! - [`kubeconfig`]: kubeconfigs for a gateway, and kube-rs clients from a kubeconfig file;
//! - [`kubectl`]: the kubectl binaries this machine has, and one runner for them (private HOME
//!   and cache, stdin given or fed like `yes`, a time limit, or a pseudo-terminal);
//! - [`tty`]: what a shell behind a terminal says its window size is;
//! - [`tls`]: a TLS connection to a server whose CA a test holds ([`tls::Endpoint`]);
//! - [`ws`]: a raw WebSocket client: token, protocols, extra headers, frames per protocol;
//! - [`http`]: raw HTTP/1.1 (over TLS or plain): requests, answers, `metav1.Status`;
//! - [`wait`]: waiting on a condition with a timeout, reading until something shows;
//! - [`process`]: fds, threads, children and memory of a process;
//! - [`metrics`]: samples out of the Prometheus text exposition;
//! - [`link`]: the loopback TCP proxy that puts a network's faults between two parties (the
//!   gateway and a cluster, a browser and the gateway): new connections delayed or refused,
//!   current ones reset, ended, fed garbage or gone silent, and restored; what it counts;
//! - [`link_control`]: a link's controls over plain HTTP, for a driver in another process
//!   (node's `resume.mjs`), with whatever else the test serves there (the gateway's metrics);
//! - [`oidc`]: signing keys, a real OpenID provider (panva's oidc-provider) and a scripted one;
//! - [`prometheus`]: deploy/'s manifests, alerts and dashboard as tests read them, and a real
//!   Prometheus server;
//! - [`python`]: the official Kubernetes Python client, as its users drive an exec;
//! - [`portforward`]: `kubectl port-forward` in the background, TCP clients through it, the
//!   Python client's `portforward`;
//! - [`browser`]: the web UI's Chromium driver (playwright-core, `gateway/web/tests/ui.mjs`);
//! - [`casts`]: session recordings into a test's own directory, their files by id, parsed,
//!   through `asciinema cat` and replayed in pyte;
//! - [`disks`]: the disks a recording meets: one that stalls or is slow, one that refuses a
//!   cluster, a tmpfs of the test's own to fill or make read-only;
//! - [`fleet`]: many cluster ids over a few devclusters for `podgate serve`, a proxy that
//!   counts the connections the gateway opens, its open sockets to a cluster from `/proc`;
//! - [`resume`]: a client of podgate's resume protocol (opt in, offsets, acks, drop, resume);
//! - [`serve`]: `podgate serve` as a process with its files (config, tokens, TLS, kubeconfigs):
//!   its log line by line, its admin listener, reloads by rewriting a file, signals.
//!
//! - [`netns`]: a network namespace of the test's own (veth to this side), a devcluster on its
//!   loopback that nothing outside can reach;
//! - [`agent`]: `podgate agent` as a process: a cluster's kubeconfig only it is given, its
//!   log, SIGKILL.
//!
//! Product crates export no fixtures: what only tests need lives here.
#![forbid(unsafe_code)]

pub mod agent;
pub mod browser;
pub mod casts;
pub mod devcluster;
pub mod disks;
pub mod fleet;
pub mod gateway;
pub mod http;
pub mod kubeconfig;
pub mod kubectl;
pub mod link;
pub mod link_control;
pub mod metrics;
pub mod netns;
pub mod oidc;
pub mod pod_fleet;
pub mod portforward;
pub mod process;
pub mod prometheus;
pub mod python;
pub mod resume;
pub mod serve;
pub mod tls;
pub mod tty;
pub mod wait;
pub mod ws;

use std::path::{Path, PathBuf};

/// For tests that need something the machine may lack: `true` to go on; `false` (after a loud
/// note saying what is missing) to skip. Under CI (`CI=true`) a missing piece fails the test
/// instead, so coverage cannot silently vanish there. (It lives with the signing keys, which
/// the auth crate's unit tests include on their own.)
pub use oidc::keys::available;

/// The workspace root (this crate is its `tests/` folder).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent: the workspace root")
        .to_path_buf()
}

/// A loopback port that was free a moment ago, for programs that cannot be told to pick one
/// (the OpenID provider, Prometheus).
///
/// Taken below the kernel's ephemeral range: a port from `bind(0)` is one the kernel also
/// hands out as the source port of any outgoing connection, so between our check and the
/// program's own bind another test's connection could take it (EADDRINUSE, seen in CI).
/// Below the range only another `free_port` competes, and each call tries a different port.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768)
        .clamp(2048, 65535);
    let base = 1024u32;
    let span = low - base;
    // Test processes run side by side: start each at its own place in the span.
    let start = (std::process::id().wrapping_mul(7919)) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = base + (start + n * 13) % span;
        let Ok(port) = u16::try_from(port) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}
