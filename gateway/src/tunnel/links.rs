//! One agent cluster's tunnels: those connected now, round-robin among them, and whether any
//! may still join (a cluster removed from the config, or whose token changed, takes no more
//! and cuts the ones it had).

use crate::upstream::RequestBody;
use hyper::client::conn::http2::SendRequest;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;
use tokio_util::sync::CancellationToken;

/// One cluster's tunnels, shared by every `Cluster` built for the same id and token across
/// reloads (a change of display name keeps the tunnels; a new token does not).
pub struct Links {
    state: Mutex<State>,
    next: AtomicUsize,
}

struct State {
    open: Vec<Link>,
    /// No more links: the cluster is gone or its token changed.
    closed: bool,
    /// Tunnels made so far, to tell them apart in logs and when they leave.
    made: u64,
    /// When the last link left (or, before any came, when these links were made).
    empty_since: SystemTime,
}

struct Link {
    serial: u64,
    send: SendRequest<RequestBody>,
    cut: CancellationToken,
    peer: Option<SocketAddr>,
}

/// What `/podgate/clusters` and the logs say about a cluster's agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStatus {
    pub connected: usize,
    /// Since when none has been connected (`None` while one is).
    pub disconnected_since: Option<SystemTime>,
}

/// The links took no new tunnel: their cluster was removed or re-keyed meanwhile.
#[derive(Debug)]
pub struct Closed;

/// A tunnel's place among its cluster's links, given up when dropped (whatever ended it).
pub struct Membership {
    links: Arc<Links>,
    serial: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut state = self.links.lock();
        let before = state.open.len();
        state.open.retain(|l| l.serial != self.serial);
        if before > 0 && state.open.is_empty() {
            state.empty_since = SystemTime::now();
        }
    }
}

impl Default for Links {
    fn default() -> Self {
        Links {
            state: Mutex::new(State {
                open: Vec::new(),
                closed: false,
                made: 0,
                empty_since: SystemTime::now(),
            }),
            next: AtomicUsize::new(0),
        }
    }
}

impl Links {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a connected tunnel, which [`Links::close`] cuts with `cut`; its membership ends
    /// when the returned value is dropped.
    pub fn join(
        self: &Arc<Self>,
        send: SendRequest<RequestBody>,
        peer: Option<SocketAddr>,
        cut: CancellationToken,
    ) -> Result<Membership, Closed> {
        let mut state = self.lock();
        if state.closed {
            return Err(Closed);
        }
        state.made += 1;
        let serial = state.made;
        state.open.push(Link {
            serial,
            send,
            cut: cut.clone(),
            peer,
        });
        Ok(Membership {
            links: self.clone(),
            serial,
        })
    }

    /// A tunnel to send the next request on, round-robin over those still open, or `None`
    /// with none connected.
    pub fn pick(&self) -> Option<SendRequest<RequestBody>> {
        let state = self.lock();
        let open: Vec<&Link> = state.open.iter().filter(|l| !l.send.is_closed()).collect();
        if open.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % open.len();
        Some(open[i].send.clone())
    }

    /// Takes no more tunnels and cuts those connected.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        for link in &state.open {
            link.cut.cancel();
        }
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub fn status(&self) -> AgentStatus {
        let state = self.lock();
        let connected = state.open.iter().filter(|l| !l.send.is_closed()).count();
        AgentStatus {
            connected,
            disconnected_since: (connected == 0).then_some(state.empty_since),
        }
    }

    /// Where the connected agents are, for logs and `/podgate/clusters`.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.lock().open.iter().filter_map(|l| l.peer).collect()
    }
}
