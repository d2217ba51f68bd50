//! One port-forward session's messages, both ways, in a single task: relayed message for
//! message as they came (at most one per direction in the gateway's hands, never larger than
//! `max_message`, so a side that stops reading stops the other side's reader and TCP pushes
//! back), each read by the [`watch`](super::watch) for its ports, data bytes and activity.
//!
//! The session's clock is exec's: keepalive pings to the client (a client that stops answering
//! them and taking data is gone), the idle timeout (counted on forwarded data only: SPDY pings
//! and stream set-up are not activity), the maximum duration, the credential's expiry,
//! shutdown and a stop from outside (revocation, an operator). When podgate ends a SPDY
//! tunnel it says why on the error stream of every connection still open (kubectl prints it as
//! the connection's error), then closes; a channel tunnel gets the reason in the close frame.

use super::watch::{FromClient, FromCluster};
use crate::session::SessionSettings;
use crate::session::log_scope::session_log;
use crate::session::registry::{Clock, LiveSession};
use crate::session::relay::deadlines::{self, Next, Now, Words, close_reason};
use crate::session::relay::io::{
    ClientWriteError, Io, Liveness, ReadError, Reader, Writer, keepalive, next_message, split,
    to_client,
};
use crate::session::relay::{CLOSE_GRACE, Ending};
use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocket, WebSocketError};
use podgate_metrics::Direction;
use podgate_protocol::message::Assembler;
use podgate_protocol::portforward::Tunnel;
use podgate_protocol::spdy::frame as spdy_frame;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How a port-forward names itself in its endings.
const TUNNEL_WORDS: Words = Words {
    closed: "podgate: port-forward closed",
    idle: "without forwarded data",
    after_shutdown: "start it again",
};

/// How long a close frame to the cluster may take; the session ends either way.
const UPSTREAM_CLOSE: Duration = Duration::from_secs(1);
/// How long kubectl is given to read why its connections end and close the tunnel itself.
const NOTICE_WAIT: Duration = Duration::from_secs(2);

pub struct Params<'a> {
    pub tunnel: Tunnel,
    /// The request's `ports` (the channel protocol's; kubectl's tunnel has none).
    pub query_ports: Vec<u16>,
    pub settings: &'a SessionSettings,
    pub session: &'a LiveSession,
    pub shutdown: &'a CancellationToken,
    pub cluster: &'a str,
}

/// How the session ended, and what it forwarded.
pub struct Ended {
    pub ending: Ending,
    pub ports: Vec<u16>,
    pub connections: u64,
}

struct Watch {
    client: FromClient,
    cluster: FromCluster,
    connections: u64,
}

struct Relay<'a, C: Io, U: Io> {
    client: Writer<C>,
    upstream: Writer<U>,
    live: Liveness,
    started: Instant,
    watch: Mutex<Watch>,
    p: Params<'a>,
}

/// Runs a port-forward session until it ends.
pub async fn run<C: Io, U: Io>(
    client: WebSocket<C>,
    upstream: WebSocket<U>,
    p: Params<'_>,
) -> Ended {
    let (mut c_read, c_write) = split(client, Role::Server);
    let (mut u_read, u_write) = split(upstream, Role::Client);
    // fastwebsockets refuses a frame of `max` bytes or more; the assembler bounds messages.
    c_read.set_max_message_size(p.settings.max_message.saturating_add(1));
    u_read.set_max_message_size(p.settings.max_message.saturating_add(1));
    let started = Instant::now();
    let relay = Relay {
        client: Writer::new(c_write),
        upstream: Writer::new(u_write),
        live: Liveness {
            alive: Clock::new(started),
            keepalive: p.settings.keepalive,
        },
        started,
        watch: Mutex::new(Watch {
            client: FromClient::new(p.tunnel, p.query_ports.clone()),
            cluster: FromCluster::new(p.tunnel),
            connections: 0,
        }),
        p,
    };
    let ending = relay.drive(&mut c_read, u_read).await;
    let w = relay.watch.lock().unwrap_or_else(PoisonError::into_inner);
    Ended {
        ending,
        ports: w.client.ports(),
        connections: w.connections,
    }
}

impl<C: Io, U: Io> Relay<'_, C, U> {
    fn watch(&self) -> std::sync::MutexGuard<'_, Watch> {
        self.watch.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn drive(&self, c_read: &mut Reader<C>, u_read: Reader<U>) -> Ending {
        let mut c2u = std::pin::pin!(self.client_to_upstream(c_read));
        let first = tokio::select! {
            e = &mut c2u => e,
            e = self.upstream_to_client(u_read) => e,
            e = self.timers() => e,
        };
        match &first {
            Ending::ClientError { code, reason, .. } => {
                let reason = close_reason(reason);
                let _ = tokio::time::timeout(
                    CLOSE_GRACE,
                    to_client(
                        &self.client,
                        Frame::close(*code, reason.as_bytes()),
                        &self.live,
                    ),
                )
                .await;
                self.close_upstream().await;
            }
            Ending::ClientClosed | Ending::ClientUnresponsive => self.close_upstream().await,
            _ => {
                // The cluster's side ended or podgate ends it: say why on the connections
                // still open, and give kubectl a moment to read it (client-go ends the tunnel
                // itself on a connection's error); then close both, and let the client's
                // reader run until its close reply.
                let (message, code) = match &first {
                    Ending::Policy { message, .. } => (Some(message.as_str()), 1000),
                    Ending::UpstreamLost(m) | Ending::UpstreamError(m) => (Some(m.as_str()), 1011),
                    _ => (None, 1000),
                };
                if let Some(message) = message
                    && self.tell_connections(message).await
                    && tokio::time::timeout(NOTICE_WAIT, &mut c2u).await.is_ok()
                {
                    self.close_upstream().await;
                    return first;
                }
                let reason = message.map(close_reason).unwrap_or_default();
                let close = Frame::close(code, reason.as_bytes());
                let _ =
                    tokio::time::timeout(CLOSE_GRACE, to_client(&self.client, close, &self.live))
                        .await;
                self.close_upstream().await;
                let _ = tokio::time::timeout(CLOSE_GRACE, &mut c2u).await;
            }
        }
        first
    }

    /// Writes `message` on the error stream of every SPDY connection still open (kubectl
    /// prints it as that connection's error); whether there was one to tell. Only where the
    /// cluster's bytes so far end at a frame boundary, so ours cannot cut one of its frames.
    async fn tell_connections(&self, message: &str) -> bool {
        let frames: Vec<Vec<u8>> = {
            let w = self.watch();
            if self.p.tunnel == Tunnel::Spdy && w.cluster.at_boundary() {
                // The kubelet's order: the error (its message, FIN), then the data stream's
                // FIN, on which client-go reads the error and ends the tunnel.
                let errors = w.cluster.open_streams(&w.client, false);
                let data = w.cluster.open_streams(&w.client, true);
                errors
                    .iter()
                    .filter_map(|id| spdy_frame::data(*id, true, message.as_bytes()).ok())
                    .chain(
                        data.iter()
                            .filter_map(|id| spdy_frame::data(*id, true, b"").ok()),
                    )
                    .collect()
            } else {
                Vec::new()
            }
        };
        let told = !frames.is_empty();
        // Whatever comes from the cluster after this is not relayed (its reader is done).
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            for f in frames {
                let f = Frame::binary(Payload::Owned(f));
                to_client(&self.client, f, &self.live).await?;
            }
            Ok::<(), ClientWriteError>(())
        })
        .await;
        told
    }

    async fn close_upstream(&self) {
        let _ =
            tokio::time::timeout(UPSTREAM_CLOSE, self.upstream.send(Frame::close(1000, b""))).await;
    }

    /// Client → cluster, until the client goes or breaks the protocol. A failed write to the
    /// cluster is not an ending: the cluster's reader tells how the session ends.
    async fn client_to_upstream(&self, reader: &mut Reader<C>) -> Ending {
        let mut assembler = Assembler::new(self.p.settings.max_message);
        let mut obligated = |f: Frame<'static>| async move {
            to_client(&self.client, f, &self.live)
                .await
                .map_err(|_| std::io::Error::other("writing to the client failed"))
        };
        loop {
            let f = match next_message(reader, &mut assembler, &mut obligated).await {
                Ok(f) => f,
                Err(ReadError::Message(e)) => {
                    return Ending::ClientError {
                        code: e.close_code(),
                        reason: format!("podgate: {e}"),
                        consumed: true,
                    };
                }
                Err(ReadError::Ws(WebSocketError::UnexpectedEOF))
                | Err(ReadError::Ws(WebSocketError::ConnectionClosed))
                | Err(ReadError::Ws(WebSocketError::IoError(_)))
                | Err(ReadError::Ws(WebSocketError::SendError(_))) => return Ending::ClientClosed,
                Err(ReadError::Ws(e)) => {
                    return Ending::ClientError {
                        code: 1002,
                        reason: format!("podgate: {e}"),
                        consumed: false,
                    };
                }
            };
            match f.opcode {
                OpCode::Close => return Ending::ClientClosed,
                OpCode::Pong => self.live.alive.touch(),
                OpCode::Text | OpCode::Binary => {
                    let text = f.opcode == OpCode::Text;
                    let seen = {
                        let mut w = self.watch();
                        let seen = w.client.feed(text, &f.payload);
                        if let Ok(s) = &seen {
                            w.connections += s.opened;
                        }
                        seen
                    };
                    match seen {
                        Ok(s) if s.data > 0 => {
                            self.p.session.activity.touch();
                            self.p.session.metrics.add(Direction::Stdin, s.data);
                        }
                        Ok(_) => {}
                        Err(refused) => {
                            return Ending::ClientError {
                                code: 1002,
                                reason: format!("podgate: {refused}"),
                                consumed: true,
                            };
                        }
                    }
                    if let Err(e) = self.upstream.send(f).await {
                        session_log!(DEBUG, "tunnel bytes to the cluster not delivered: {e}");
                        self.upstream.mark_closed().await;
                    }
                }
                _ => {}
            }
        }
    }

    /// Cluster → client, until the cluster's side ends.
    async fn upstream_to_client(&self, mut reader: Reader<U>) -> Ending {
        let mut assembler = Assembler::new(self.p.settings.max_message);
        let mut obligated = |f: Frame<'static>| async move {
            let _ = self.upstream.send(f).await;
            Ok::<(), std::io::Error>(())
        };
        loop {
            let f = match next_message(&mut reader, &mut assembler, &mut obligated).await {
                Ok(f) => f,
                Err(ReadError::Message(e)) => {
                    return Ending::UpstreamError(format!(
                        "podgate: the port-forward with cluster \"{}\" failed: the cluster broke the protocol ({e})",
                        self.p.cluster
                    ));
                }
                Err(ReadError::Ws(e)) => return self.upstream_read_error(&e),
            };
            match f.opcode {
                OpCode::Close => return Ending::UpstreamClosed,
                OpCode::Text | OpCode::Binary => {
                    let text = f.opcode == OpCode::Text;
                    let seen = {
                        let w = &mut *self.watch();
                        w.cluster.feed(text, &f.payload, &mut w.client)
                    };
                    match seen {
                        Ok(s) if s.data > 0 => {
                            self.p.session.activity.touch();
                            self.p.session.metrics.add(Direction::Stdout, s.data);
                        }
                        Ok(_) => {}
                        Err(why) => {
                            return Ending::UpstreamError(format!(
                                "podgate: the port-forward with cluster \"{}\" failed: the cluster broke the protocol ({why})",
                                self.p.cluster
                            ));
                        }
                    }
                    match to_client(&self.client, f, &self.live).await {
                        Ok(()) => self.live.alive.touch(),
                        Err(ClientWriteError::Unresponsive) => return Ending::ClientUnresponsive,
                        Err(ClientWriteError::Failed) => return Ending::ClientClosed,
                    }
                }
                _ => {}
            }
        }
    }

    fn upstream_read_error(&self, e: &WebSocketError) -> Ending {
        let message = format!(
            "podgate: lost the connection to cluster \"{}\" during the port-forward ({e})",
            self.p.cluster
        );
        session_log!(INFO, "{message}");
        match e {
            WebSocketError::UnexpectedEOF
            | WebSocketError::IoError(_)
            | WebSocketError::ConnectionClosed => Ending::UpstreamLost(message),
            _ => Ending::UpstreamError(message),
        }
    }

    /// Keepalive pings and the gateway's own reasons to end the session, as exec's relay has
    /// them (one timer for every deadline).
    async fn timers(&self) -> Ending {
        let settings = self.p.settings;
        let control = &self.p.session.control;
        let mut next_ping = self.started + settings.keepalive;
        let (policy, message) = loop {
            let now = Now {
                now: Instant::now(),
                started: self.started,
                activity: self.p.session.activity.get(),
                expires_at: control.expires_at(),
                unix: deadlines::unix_now(),
                next_ping,
            };
            match deadlines::next(settings, &now, &TUNNEL_WORDS) {
                Next::End(policy, message) => break (policy, message),
                Next::Ping => {
                    if let Err(e) = keepalive(&self.client, &self.live).await {
                        return e.ending();
                    }
                    next_ping = Instant::now().max(next_ping) + settings.keepalive;
                }
                Next::Sleep(wake) => tokio::select! {
                    _ = tokio::time::sleep_until(wake) => {}
                    _ = self.p.shutdown.cancelled() => break deadlines::shutdown(&TUNNEL_WORDS),
                    (stop, why) = control.stopped() => break (deadlines::stopped(stop), why),
                    // Notices are for terminals; a tunnel has none to show them in.
                    _ = control.next_notice() => {}
                },
            }
        };
        session_log!(INFO, "{message}");
        Ending::Policy { policy, message }
    }
}
