//! A TCP proxy on `127.0.0.1:0` in front of one target, for putting faults between the gateway
//! and a cluster (through [`crate::gateway::Builder::dial`]): each new connection can be held
//! back a while before it is connected through, and the live ones can be cut on command, the
//! way networks and crashing servers cut them: a reset, a bare end of stream without TLS's
//! close_notify, or garbage in the stream.

use crate::gateway::Dial;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// How many random bytes [`Link::inject_garbage`] writes.
const GARBAGE: usize = 512;

/// The proxy. Dropping it ends every connection through it.
pub struct Link {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone, Copy, Debug)]
enum Cut {
    Reset,
    Eof,
    Garbage,
}

/// A cut for one connection, and where it says it is done.
type Order = (Cut, oneshot::Sender<()>);

#[derive(Default)]
struct Shared {
    target: OnceLock<SocketAddr>,
    delay: Duration,
    live: AtomicUsize,
    accepted: AtomicU64,
    /// The live connections, by number: where to send a cut.
    conns: Mutex<HashMap<u64, oneshot::Sender<Order>>>,
}

impl Shared {
    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Order>>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Link {
    /// A link with no target yet: [`Link::dialer`] or [`Link::set_target`] gives it one.
    /// Connections made before are closed at once.
    pub async fn start() -> Link {
        Link::with_delay(Duration::ZERO).await
    }

    /// A link that holds each new connection for `delay` before connecting it through: every
    /// connection to the target (each session's upgrade, each health probe) takes that much
    /// longer. The injected fault, not a synchronisation.
    pub async fn with_delay(delay: Duration) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("the link's address");
        let shared = Arc::new(Shared {
            delay,
            ..Shared::default()
        });
        let task = tokio::spawn(accept(listener, shared.clone()));
        Link { addr, shared, task }
    }

    /// A link to `target`.
    pub async fn to(target: SocketAddr) -> Link {
        let link = Link::start().await;
        link.set_target(target);
        link
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connects everything through to `target` from now on (one target per link).
    pub fn set_target(&self, target: SocketAddr) {
        set_target(&self.shared, target);
    }

    /// A [`Dial`] for the gateway builder that sends the gateway through this link to
    /// `cluster` (and straight to every other cluster).
    pub fn dialer(&self, cluster: &str) -> Dial {
        let (cluster, shared, addr) = (cluster.to_string(), self.shared.clone(), self.addr);
        Box::new(move |id, target| {
            if id != cluster {
                return target;
            }
            set_target(&shared, target);
            addr
        })
    }

    /// Connections open through the link now.
    pub fn live(&self) -> usize {
        self.shared.live.load(Ordering::SeqCst)
    }

    /// Connections connected through since the start.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Resets every live connection on both sides (`SO_LINGER` 0, then close: a TCP RST), as
    /// a crashed host or a middlebox does. Returns once each is cut.
    pub async fn cut_reset(&self) {
        self.cut(Cut::Reset).await;
    }

    /// Ends every live connection on both sides with a plain end of stream: the TCP FIN of a
    /// process that exits, without the TLS close_notify a clean close sends.
    pub async fn cut_eof(&self) {
        self.cut(Cut::Eof).await;
    }

    /// Writes random bytes into the gateway-facing side of every live connection (so its TLS
    /// fails: a bad record), and relays nothing more on it.
    pub async fn inject_garbage(&self) {
        self.cut(Cut::Garbage).await;
    }

    async fn cut(&self, cut: Cut) {
        let conns: Vec<_> = self.shared.conns().drain().map(|(_, tx)| tx).collect();
        let mut done = Vec::new();
        for conn in conns {
            let (tx, rx) = oneshot::channel();
            // A connection that ended meanwhile needs no cut.
            if conn.send((cut, tx)).is_ok() {
                done.push(rx);
            }
        }
        for rx in done {
            let _ = rx.await;
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn set_target(shared: &Shared, target: SocketAddr) {
    let set = shared.target.get_or_init(|| target);
    assert_eq!(*set, target, "a link forwards to one target");
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    // Connections end with the link: dropping the set aborts them.
    let mut conns = tokio::task::JoinSet::new();
    let mut next = 0u64;
    while let Ok((client, _)) = listener.accept().await {
        while conns.try_join_next().is_some() {}
        conns.spawn(connection(shared.clone(), next, client));
        next += 1;
    }
}

/// Counts a connection as live until dropped.
struct Live<'a>(&'a Shared, u64);

impl Drop for Live<'_> {
    fn drop(&mut self) {
        self.0.conns().remove(&self.1);
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn connection(shared: Arc<Shared>, id: u64, client: TcpStream) {
    if !shared.delay.is_zero() {
        tokio::time::sleep(shared.delay).await;
    }
    let Some(&target) = shared.target.get() else {
        return;
    };
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let (tx, rx) = oneshot::channel();
    shared.conns().insert(id, tx);
    shared.live.fetch_add(1, Ordering::SeqCst);
    shared.accepted.fetch_add(1, Ordering::SeqCst);
    relay(client, server, rx, Live(&shared, id)).await;
}

/// Copies both ways (a half-close passes through) until both sides are done, or a cut comes.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    cut: oneshot::Receiver<Order>,
    live: Live<'_>,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let order = {
        let up = async {
            let _ = tokio::io::copy(&mut cr, &mut sw).await;
            let _ = sw.shutdown().await;
        };
        let down = async {
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
            let _ = cw.shutdown().await;
        };
        tokio::select! {
            _ = async { tokio::join!(up, down) } => None,
            order = cut => order.ok(),
        }
    };
    let Some((cut, done)) = order else {
        return;
    };
    let (Ok(mut client), Ok(mut server)) = (cr.reunite(cw), sr.reunite(sw)) else {
        unreachable!("the halves of one stream reunite");
    };
    match cut {
        Cut::Reset => {
            let _ = client.set_zero_linger();
            let _ = server.set_zero_linger();
            drop((client, server));
            drop(live);
            let _ = done.send(());
        }
        Cut::Eof => {
            let _ = client.shutdown().await;
            let _ = server.shutdown().await;
            drop(live);
            let _ = done.send(());
            // Read on until each peer closes too: closing with unread data would be a reset.
            tokio::join!(drain(&mut client), drain(&mut server));
        }
        Cut::Garbage => {
            let _ = client.write_all(&garbage()).await;
            drop(live);
            let _ = done.send(());
            // The gateway gives up on the broken stream and closes; then so does the cluster's
            // side.
            drain(&mut client).await;
            drop(server);
        }
    }
}

async fn drain(stream: &mut TcpStream) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = stream.read(&mut buf).await
        && n > 0
    {}
}

fn garbage() -> Vec<u8> {
    use ring::rand::SecureRandom as _;
    let mut bytes = vec![0u8; GARBAGE];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("random bytes");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const LIMIT: Duration = Duration::from_secs(10);

    /// A listener for the link to forward to.
    async fn target() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        (listener, addr)
    }

    /// A connection through `link` to `target`: the client's end and the target's end.
    async fn through(link: &Link, target: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(link.addr()).await.expect("connect");
        let (server, _) = tokio::time::timeout(LIMIT, target.accept())
            .await
            .expect("connected through in time")
            .expect("accept");
        (client, server)
    }

    async fn read(stream: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        tokio::time::timeout(LIMIT, stream.read_exact(&mut buf))
            .await
            .expect("read in time")
            .expect("read");
        buf
    }

    /// What the next read gives: bytes, an end of stream (empty), or the error.
    async fn next(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(LIMIT, stream.read(&mut buf))
            .await
            .expect("the read ends in time")?;
        buf.truncate(n);
        Ok(buf)
    }

    async fn live_is(link: &Link, n: usize) {
        assert!(
            crate::wait::wait_for(LIMIT, || link.live() == n).await,
            "{} live connections, not {n}",
            link.live()
        );
    }

    #[tokio::test]
    async fn bytes_pass_both_ways_and_half_closes_too() {
        let (target, addr) = target().await;
        let link = Link::to(addr).await;
        let (mut client, mut server) = through(&link, &target).await;
        client.write_all(b"to the cluster").await.expect("write");
        assert_eq!(read(&mut server, 14).await, b"to the cluster");
        server.write_all(b"to the gateway").await.expect("write");
        assert_eq!(read(&mut client, 14).await, b"to the gateway");
        live_is(&link, 1).await;
        assert_eq!(link.accepted(), 1);
        client.shutdown().await.expect("half-close");
        assert_eq!(next(&mut server).await.expect("EOF"), b"");
        server
            .write_all(b"after")
            .await
            .expect("write after the half-close");
        assert_eq!(read(&mut client, 5).await, b"after");
        drop(server);
        assert_eq!(next(&mut client).await.expect("EOF"), b"");
        live_is(&link, 0).await;
    }

    #[tokio::test]
    async fn a_reset_is_seen_as_a_reset_on_both_sides() {
        let (target, addr) = target().await;
        let link = Link::to(addr).await;
        let (mut client, mut server) = through(&link, &target).await;
        client.write_all(b"x").await.expect("write");
        assert_eq!(read(&mut server, 1).await, b"x");
        link.cut_reset().await;
        assert_eq!(link.live(), 0);
        for side in [&mut client, &mut server] {
            let err = next(side).await.expect_err("a reset, not an end of stream");
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
        }
        // New connections go through as before.
        let (mut client, mut server) = through(&link, &target).await;
        client.write_all(b"again").await.expect("write");
        assert_eq!(read(&mut server, 5).await, b"again");
        assert_eq!(link.accepted(), 2);
    }

    #[tokio::test]
    async fn an_eof_cut_is_seen_as_an_end_of_stream_on_both_sides() {
        let (target, addr) = target().await;
        let link = Link::to(addr).await;
        let (mut client, mut server) = through(&link, &target).await;
        server.write_all(b"y").await.expect("write");
        assert_eq!(read(&mut client, 1).await, b"y");
        link.cut_eof().await;
        assert_eq!(link.live(), 0);
        assert_eq!(next(&mut client).await.expect("EOF, not an error"), b"");
        assert_eq!(next(&mut server).await.expect("EOF, not an error"), b"");
    }

    #[tokio::test]
    async fn garbage_reaches_the_gateway_side_and_nothing_more_is_relayed() {
        let (target, addr) = target().await;
        let link = Link::to(addr).await;
        let (mut client, mut server) = through(&link, &target).await;
        server.write_all(b"hello").await.expect("write");
        assert_eq!(read(&mut client, 5).await, b"hello");
        link.inject_garbage().await;
        assert_eq!(link.live(), 0);
        let _ = server.write_all(b"not relayed").await;
        let mut got = Vec::new();
        while got.len() < GARBAGE {
            let more = next(&mut client).await.expect("garbage");
            assert!(
                !more.is_empty(),
                "the stream ended after {} bytes",
                got.len()
            );
            got.extend_from_slice(&more);
        }
        assert_eq!(got.len(), GARBAGE, "only the garbage arrives");
        assert!(
            !got.windows(5).any(|w| w == b"not r"),
            "the cluster's bytes were relayed after the garbage"
        );
        // The gateway side gives up; then the cluster side is closed too.
        drop(client);
        assert_eq!(next(&mut server).await.unwrap_or_default(), b"");
    }

    #[tokio::test]
    async fn a_delayed_link_connects_through_only_after_its_delay() {
        let (target, addr) = target().await;
        let delay = Duration::from_millis(300);
        let link = Link::with_delay(delay).await;
        link.set_target(addr);
        let started = Instant::now();
        let (mut client, mut server) = through(&link, &target).await;
        assert!(
            started.elapsed() >= delay,
            "connected after {:?}",
            started.elapsed()
        );
        client.write_all(b"late").await.expect("write");
        assert_eq!(read(&mut server, 4).await, b"late");
    }

    #[tokio::test]
    async fn the_dialer_sends_one_cluster_through_the_link() {
        let (target, addr) = target().await;
        let link = Link::start().await;
        let mut dial = link.dialer("west");
        let east: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        assert_eq!(dial("east", east), east);
        assert_eq!(dial("west", addr), link.addr());
        let (mut client, mut server) = through(&link, &target).await;
        client.write_all(b"w").await.expect("write");
        assert_eq!(read(&mut server, 1).await, b"w");
    }
}
