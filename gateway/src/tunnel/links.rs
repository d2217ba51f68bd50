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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::BodyExt as _;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    /// A tunnel over an in-memory pipe to an HTTP/2 server that answers with `name`.
    async fn tunnel(name: &'static str) -> SendRequest<RequestBody> {
        let (client, server) = tokio::io::duplex(64 << 10);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_req| async move {
                Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                    Bytes::from(name),
                )))
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(server), service)
                .await;
        });
        let (send, conn) = super::super::accept::client_builder()
            .handshake(TokioIo::new(client))
            .await
            .expect("an HTTP/2 handshake");
        tokio::spawn(conn);
        send
    }

    async fn ask(links: &Links) -> String {
        let mut send = links.pick().expect("a tunnel");
        send.ready().await.expect("ready");
        let req = http::Request::get("http://podgate-agent/version")
            .body(crate::upstream::empty_body())
            .expect("a request");
        let resp = send.send_request(req).await.expect("an answer");
        let body = resp.into_body().collect().await.expect("a body").to_bytes();
        String::from_utf8_lossy(&body).into_owned()
    }

    #[tokio::test]
    async fn requests_take_turns_over_the_tunnels_and_close_cuts_them_all() {
        let links = Arc::new(Links::default());
        assert!(links.pick().is_none());
        assert!(links.status().disconnected_since.is_some());
        let (cut_a, cut_b) = (CancellationToken::new(), CancellationToken::new());
        let a = links
            .join(tunnel("a").await, None, cut_a.clone())
            .expect("joins");
        let b = links
            .join(tunnel("b").await, None, cut_b.clone())
            .expect("joins");
        assert_eq!(
            links.status(),
            AgentStatus {
                connected: 2,
                disconnected_since: None
            }
        );
        let mut answers = Vec::new();
        for _ in 0..4 {
            answers.push(ask(&links).await);
        }
        assert_eq!(
            answers.iter().filter(|a| *a == "a").count(),
            2,
            "{answers:?}"
        );
        assert_eq!(
            answers.iter().filter(|a| *a == "b").count(),
            2,
            "{answers:?}"
        );
        assert_ne!(answers[0], answers[1], "{answers:?}");

        // One leaves: every request goes to the other.
        drop(a);
        assert_eq!(links.status().connected, 1);
        for _ in 0..2 {
            assert_eq!(ask(&links).await, "b");
        }
        // Closed: the rest are cut, and no tunnel may join any more.
        links.close();
        assert!(cut_b.is_cancelled());
        assert!(!cut_a.is_cancelled(), "a had left before");
        assert!(
            links
                .join(tunnel("c").await, None, CancellationToken::new())
                .is_err()
        );
        drop(b);
        let status = links.status();
        assert_eq!(status.connected, 0);
        assert!(status.disconnected_since.is_some());
    }
}
