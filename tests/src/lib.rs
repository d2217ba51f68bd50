//! podgate's end-to-end tests live in `tests/`: each file starts devclusters and a gateway in
//! this process and drives them with real clients (kubectl, kube-rs, raw WebSocket). This
//! library is empty; the shared plumbing is `tests/common/mod.rs`.
#![forbid(unsafe_code)]
