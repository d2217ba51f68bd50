//! Agent tunnels: how the gateway reaches a cluster it has no network path to.
//!
//! A `podgate agent` in the cluster dials out to the gateway (TLS, verifying the gateway's
//! certificate), asks `GET /podgate/agent/{cluster}` with `Upgrade: podgate-tunnel` and its
//! cluster's token, and on `101` the connection becomes one HTTP/2 connection with the roles
//! turned round: the gateway is the HTTP/2 client, the agent the server, so the gateway sends
//! people's requests down a connection the agent opened. Upgrades (exec, attach,
//! port-forward) travel as extended CONNECT (RFC 8441) streams; everything else as ordinary
//! HTTP/2 requests with bodies streamed both ways.
//!
//! - [`wire`]: what crosses the tunnel, translated both ways (pure, unit-tested);
//! - [`links`]: one cluster's connected tunnels, and who may still join them;
//! - [`service`]: the upstream path of an agent cluster, a tower service over its links;
//! - [`accept`]: the gateway's end of the tunnel request;
//! - [`token`]: an agent's token, held as its SHA-256 only;
//! - [`cut`]: a tunnel's connection that a reload or a stop can cut at once.

pub mod accept;
pub mod cut;
pub mod links;
pub mod service;
pub mod token;
pub mod wire;

use std::time::Duration;

/// The path under which an agent asks for its tunnel (`{PATH_PREFIX}{cluster}`).
pub const PATH_PREFIX: &str = "/podgate/agent/";
/// The `Upgrade` token of the tunnel request.
pub const UPGRADE: &str = "podgate-tunnel";

/// HTTP/2 settings both ends of a tunnel use. The windows are what either end may have to
/// hold for the other: a stream's window bounds what one slow reader (a terminal that stops
/// reading) pins, and the connection's window is large enough for every stream to be stuck at
/// once, so one slow reader never stalls the other streams of the tunnel. The worst case a
/// tunnel can make an end hold is `MAX_STREAMS × STREAM_WINDOW` (250 MiB), and only while
/// that many streams are stuck; more sessions than `MAX_STREAMS` on one tunnel wait for a
/// stream.
pub mod h2 {
    /// 256 KiB: 5 MB/s per stream over a 50 ms round trip.
    pub const STREAM_WINDOW: u32 = 256 << 10;
    pub const MAX_STREAMS: u32 = 1_000;
    pub const CONNECTION_WINDOW: u32 = STREAM_WINDOW * MAX_STREAMS;
    /// Frames at most this large (HTTP/2's default is 16 KiB, the TLS record size).
    pub const MAX_FRAME: u32 = 16 << 10;
    /// What one stream may queue to send before its writer waits.
    pub const MAX_SEND_BUFFER: usize = 256 << 10;
    /// The largest header block either end takes: requests carry a person's groups as
    /// `Impersonate-Group` headers, answers are the apiserver's (a few hundred bytes).
    pub const MAX_REQUEST_HEADERS: u32 = 1 << 20;
    pub const MAX_RESPONSE_HEADERS: u32 = 256 << 10;
}

/// Tunnels one cluster may hold at once (on one gateway replica): a Deployment's agents, with
/// room for rollouts; a token holder cannot make the gateway hold more.
pub const MAX_TUNNELS_PER_CLUSTER: usize = 64;

/// How often an idle tunnel is pinged, and how long a ping may go unanswered before the
/// tunnel counts as dead: a cut link is noticed within `KEEPALIVE + KEEPALIVE_TIMEOUT`.
pub const KEEPALIVE: Duration = Duration::from_secs(10);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
