//! podgate: the front door between people and the pods of many Kubernetes clusters.
//!
//! The modules read top-down as a request travels, and none imports one above it:
//!
//! - [`app`]: assembling a running gateway from its parts or a config file (`serve`,
//!   `check-config`, reload, `demo`), and logging;
//! - [`edge`]: the public listener (TLS and its reload, connection limits), the fd limit, the
//!   admin listener;
//! - [`route`]: who is asking, which cluster, which handler; podgate's own pages;
//! - [`session`]: one exec/attach session from handshake to its last byte: limits, the relay,
//!   its outcome, the live registry, audit, refusals;
//! - [`recording`]: sessions on record: asciicast files written beside the relay, their
//!   store (a directory, behind a small trait), listing and replay;
//! - [`browser`]: the session cookie, login, the Origin rule, the embedded web UI;
//! - [`upstream`]: the clusters: registry, health, the per-cluster client, the streaming proxy
//!   and the rules for what goes upstream.
//!
//! - [`files`]: file upload and download for one container, tar over exec as `kubectl cp`
//!   does, bounded by `files.max_upload` / `files.max_download`.
//!
//! [`podindex`] keeps the pod search's watch-fed index of the clusters people search.
//!
//! [`http`] holds the response helpers every layer answers with, [`x509`] the one field podgate
//! reads from certificates, [`tap`] the point where a session's output is observed.
#![forbid(unsafe_code)]

pub mod agent;
pub mod app;
pub mod browser;
pub mod edge;
pub mod files;
pub mod http;
pub mod podindex;
pub mod recording;
pub mod route;
pub mod session;
pub mod tap;
pub mod tunnel;
pub mod upstream;
pub mod x509;
