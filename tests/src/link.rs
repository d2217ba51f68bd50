//! A TCP proxy on `127.0.0.1:0` in front of one target, for putting the faults of a network
//! between two parties of a test: between the gateway and a cluster (through
//! [`crate::gateway::Builder::dial`] and [`Link::dialer`]), or between a browser and the
//! gateway (its controls served over HTTP by [`crate::link_control`] for a driver in another
//! process).
//!
//! Each new connection can be held back a while before it is connected through
//! ([`Link::with_delay`]). The current ones can be cut on command, the way networks and
//! crashing servers cut them: a reset ([`Link::cut_reset`]), a bare end of stream without
//! TLS's close_notify ([`Link::cut_eof`]), or garbage in the stream ([`Link::inject_garbage`]);
//! or made silent, kept open with nothing forwarded either way, as a dead Wi-Fi or a VPN that
//! dropped its route looks ([`Link::go_silent`]). While the link is broken
//! ([`Link::break_new`]) new connections are refused with a reset, until [`Link::restore`].
//! It counts what it connects through and what it refuses ([`Link::stats`]), so a test can
//! tell that a client really came back on a new connection.

use crate::gateway::Dial;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// How many random bytes [`Link::inject_garbage`] writes.
const GARBAGE: usize = 512;

/// The proxy. Dropping it ends every connection through it.
pub struct Link {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// Counts of a [`Link`], and its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Connections connected through since the start ([`Link::accepted`]).
    pub accepted: u64,
    /// Connections refused (reset at once) since the start, because the link was broken.
    pub refused: u64,
    /// Connections forwarding now ([`Link::live`]).
    pub live: usize,
    /// Connections kept open but silent now.
    pub silent: usize,
    /// Whether new connections are refused now.
    pub broken: bool,
}

/// What a current connection is told to do.
#[derive(Clone, Copy, Debug)]
enum Cut {
    Reset,
    Eof,
    Garbage,
    /// Stop forwarding, stay open, and wait for the next order.
    Silence,
}

/// An order for one connection, and where it says it is done.
type Order = (Cut, oneshot::Sender<()>);

/// A current connection: where its orders go, and whether it has gone silent.
struct Conn {
    orders: mpsc::UnboundedSender<Order>,
    silent: bool,
}

#[derive(Default)]
struct Shared {
    target: OnceLock<SocketAddr>,
    delay: Duration,
    broken: AtomicBool,
    accepted: AtomicU64,
    refused: AtomicU64,
    /// The current connections (connected through, not yet cut or ended), by number.
    conns: Mutex<HashMap<u64, Conn>>,
}

impl Shared {
    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Conn>> {
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

    /// Connections open through the link and forwarding now (silent ones not included).
    pub fn live(&self) -> usize {
        self.shared.conns().values().filter(|c| !c.silent).count()
    }

    /// Connections connected through since the start.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// The link's counts and state.
    pub fn stats(&self) -> Stats {
        let (live, silent) = {
            let conns = self.shared.conns();
            let silent = conns.values().filter(|c| c.silent).count();
            (conns.len() - silent, silent)
        };
        Stats {
            accepted: self.accepted(),
            refused: self.shared.refused.load(Ordering::SeqCst),
            live,
            silent,
            broken: self.shared.broken.load(Ordering::SeqCst),
        }
    }

    /// Resets every current connection on both sides (`SO_LINGER` 0, then close: a TCP RST),
    /// silent ones included, as a crashed host or a middlebox does. Returns once each is cut.
    /// New connections go through as before; one still held back or connecting when this is
    /// called is not current yet and goes through too, unless the link is broken
    /// ([`Link::break_new`]): then it is refused.
    pub async fn cut_reset(&self) {
        self.cut(Cut::Reset).await;
    }

    /// Ends every current connection (silent ones included) on both sides with a plain end
    /// of stream: the TCP FIN of a process that exits, without the TLS close_notify a clean
    /// close sends.
    pub async fn cut_eof(&self) {
        self.cut(Cut::Eof).await;
    }

    /// Writes random bytes into the gateway-facing (client) side of every current connection
    /// (so its TLS fails: a bad record), and relays nothing more on it.
    pub async fn inject_garbage(&self) {
        self.cut(Cut::Garbage).await;
    }

    /// New connections are accepted and reset at once (a link that is down), until
    /// [`Link::restore`]; so is one accepted before that has not been connected through yet.
    /// Current connections are not affected.
    pub fn break_new(&self) {
        self.shared.broken.store(true, Ordering::SeqCst);
    }

    /// Every current connection stops forwarding in both directions and stays open (nothing
    /// reaches either side, nothing is closed); new connections are refused as by
    /// [`Link::break_new`]. Returns once each has stopped. A silent connection stays so until
    /// a cut or the end of the link.
    pub async fn go_silent(&self) {
        self.break_new();
        let conns: Vec<_> = self
            .shared
            .conns()
            .values_mut()
            .map(|c| {
                c.silent = true;
                c.orders.clone()
            })
            .collect();
        order(conns, Cut::Silence).await;
    }

    /// New connections are connected through again; connections that went silent stay silent.
    pub fn restore(&self) {
        self.shared.broken.store(false, Ordering::SeqCst);
    }

    /// Gives every current connection `cut`, which ends it; returns once each has done so.
    async fn cut(&self, cut: Cut) {
        let conns: Vec<_> = self.shared.conns().drain().map(|(_, c)| c.orders).collect();
        order(conns, cut).await;
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sends `cut` to each of `conns` and waits until each has carried it out.
async fn order(conns: Vec<mpsc::UnboundedSender<Order>>, cut: Cut) {
    let mut done = Vec::new();
    for conn in conns {
        let (tx, rx) = oneshot::channel();
        // A connection that ended meanwhile needs no order.
        if conn.send((cut, tx)).is_ok() {
            done.push(rx);
        }
    }
    for rx in done {
        let _ = rx.await;
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
        if shared.broken.load(Ordering::SeqCst) {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            reset(client);
            continue;
        }
        conns.spawn(connection(shared.clone(), next, client));
        next += 1;
    }
}

/// Closes `stream` with a TCP RST.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Forgets a current connection when dropped (a cut forgets it first, when it is given).
struct Registered<'a>(&'a Shared, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.conns().remove(&self.1);
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
    let (tx, orders) = mpsc::unbounded_channel();
    shared.conns().insert(
        id,
        Conn {
            orders: tx,
            silent: false,
        },
    );
    let registered = Registered(&shared, id);
    // A break that came while this one was held back or connecting refuses it like a new
    // one. Looked at only once it is registered: a cut or a silence given after the break
    // then either found it registered or came after this look, which sees the break.
    if shared.broken.load(Ordering::SeqCst) {
        drop(registered);
        shared.refused.fetch_add(1, Ordering::SeqCst);
        reset(client);
        reset(server);
        return;
    }
    shared.accepted.fetch_add(1, Ordering::SeqCst);
    relay(client, server, orders, registered).await;
}

/// Copies both ways (a half-close passes through) until both sides are done, or an order
/// comes; then carries out the orders. The copies are cancelled by the order: bytes they held
/// are lost, as on a dead link.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    mut orders: mpsc::UnboundedReceiver<Order>,
    registered: Registered<'_>,
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
            Some(order) = orders.recv() => Some(order),
        }
    };
    let Some(mut order) = order else {
        return;
    };
    let (Ok(mut client), Ok(mut server)) = (cr.reunite(cw), sr.reunite(sw)) else {
        unreachable!("the halves of one stream reunite");
    };
    loop {
        let (cut, done) = order;
        match cut {
            Cut::Silence => {
                let _ = done.send(());
                // Nothing is read or written from now on; the sockets stay open until a cut
                // or the end of the link.
                let Some(next) = orders.recv().await else {
                    return;
                };
                order = next;
            }
            Cut::Reset => {
                reset(client);
                reset(server);
                drop(registered);
                let _ = done.send(());
                return;
            }
            Cut::Eof => {
                let _ = client.shutdown().await;
                let _ = server.shutdown().await;
                drop(registered);
                let _ = done.send(());
                // Read on until each peer closes too: closing with unread data would be a
                // reset.
                tokio::join!(drain(&mut client), drain(&mut server));
                return;
            }
            Cut::Garbage => {
                let _ = client.write_all(&garbage()).await;
                drop(registered);
                let _ = done.send(());
                // The gateway gives up on the broken stream and closes; then so does the
                // cluster's side.
                drain(&mut client).await;
                drop(server);
                return;
            }
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
    /// How long a silent connection is watched for bytes or an end that must not come: a
    /// negative has no event to wait on, so it is looked at for a bounded while.
    const QUIET: Duration = Duration::from_millis(300);

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

    /// The next read on `stream` fails with a reset.
    async fn is_reset(stream: &mut TcpStream) {
        let got = next(stream).await;
        assert!(
            matches!(&got, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "a reset, not {got:?}"
        );
    }

    /// Nothing arrives on `stream` (no bytes, no end) for [`QUIET`].
    async fn is_quiet(stream: &mut TcpStream) {
        let mut buf = [0u8; 8];
        let pending = tokio::time::timeout(QUIET, stream.read(&mut buf)).await;
        assert!(pending.is_err(), "a silent link delivered {pending:?}");
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
        assert_eq!(
            link.stats(),
            Stats {
                accepted: 1,
                refused: 0,
                live: 1,
                silent: 0,
                broken: false
            }
        );
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

    #[tokio::test]
    async fn broken_refuses_new_connections_until_restored() {
        let (target, addr) = target().await;
        let link = Link::to(addr).await;
        link.break_new();
        let mut client = TcpStream::connect(link.addr()).await.expect("connect");
        is_reset(&mut client).await;
        assert_eq!(link.accepted(), 0);
        assert!(link.stats().broken);
        link.restore();
        let (mut client, mut server) = through(&link, &target).await;
        client.write_all(b"x").await.expect("write");
        assert_eq!(read(&mut server, 1).await, b"x");
        let s = link.stats();
        assert_eq!((s.accepted, s.refused, s.broken), (1, 1, false));
    }

    #[tokio::test]
    async fn a_connection_held_back_when_the_link_breaks_is_refused_too() {
        let (_target, addr) = target().await;
        let link = Link::with_delay(Duration::from_millis(300)).await;
        link.set_target(addr);
        let mut client = TcpStream::connect(link.addr()).await.expect("connect");
        // Accepted and held back, or not yet accepted: refused either way.
        link.break_new();
        link.cut_reset().await;
        is_reset(&mut client).await;
        let s = link.stats();
        assert_eq!((s.accepted, s.refused, s.live), (0, 1, 0));
    }

    #[tokio::test]
    async fn silent_connections_stay_open_and_forward_nothing() {
        let (target, addr) = target().await;
        let link = Link::to(addr).await;
        let (mut client, mut server) = through(&link, &target).await;
        // A byte relayed: the connection is current (it is once connected through).
        client.write_all(b"x").await.expect("write");
        assert_eq!(read(&mut server, 1).await, b"x");
        link.go_silent().await;
        let s = link.stats();
        assert_eq!((s.live, s.silent, s.broken), (0, 1, true));
        client.write_all(b"lost").await.expect("write");
        server.write_all(b"lost").await.expect("write");
        // Neither side hears anything, nor an end.
        for side in [&mut client, &mut server] {
            is_quiet(side).await;
        }
        // Broken: a new connection is refused.
        let mut refused = TcpStream::connect(link.addr()).await.expect("connect");
        is_reset(&mut refused).await;
        // Restored: new connections go through, the silent one stays silent.
        link.restore();
        let (mut c2, mut s2) = through(&link, &target).await;
        c2.write_all(b"new").await.expect("write");
        assert_eq!(read(&mut s2, 3).await, b"new");
        is_quiet(&mut server).await;
        let s = link.stats();
        assert_eq!((s.accepted, s.refused, s.live, s.silent), (2, 1, 1, 1));
        // A reset ends silent ones too.
        link.cut_reset().await;
        is_reset(&mut client).await;
        is_reset(&mut server).await;
        assert_eq!((link.stats().live, link.stats().silent), (0, 0));
    }
}
