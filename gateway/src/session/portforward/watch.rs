//! What the gateway reads of a port-forward tunnel as it relays it, one direction at a time.
//! Pure: fed message payloads, it says how many of their bytes are forwarded data (for the
//! byte counters and the idle timeout: SPDY pings, stream set-up and the port prefixes are
//! not activity) and keeps the ports the client's connections named, read where the cluster
//! reads them: kubectl's URL has none, each connection's `SYN_STREAM` headers (zlib with the
//! SPDY/3 dictionary) do. What cannot be read is refused: the cluster would act on bytes the
//! gateway could not audit.

use podgate_protocol::portforward::{Tunnel, port_of};
use podgate_protocol::spdy::{self, Control, Decompressor, Event, Scanner};
use podgate_protocol::{Protocol, frame};
use std::collections::{BTreeSet, HashMap};

/// The largest SPDY control frame read (kubectl's are under 100 bytes).
const MAX_CONTROL: usize = 64 << 10;
/// Streams open at once on one tunnel; past this the client is refused (kubectl opens two per
/// forwarded connection and ends them when the connection ends).
pub const MAX_STREAMS: usize = 4096;

/// What one message held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Bytes of forwarded connections' data.
    pub data: u64,
    /// Forwarded connections opened.
    pub opened: u64,
}

/// A stream of a forwarded connection, as kubectl's `SYN_STREAM` named it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Named {
    port: u16,
    data: bool,
    /// kubectl's `requestID`: pairs a connection's error and data streams.
    request: String,
}

/// The client → cluster direction.
pub struct FromClient {
    tunnel: Tunnel,
    scanner: Scanner,
    decompressor: Decompressor,
    streams: HashMap<u32, Named>,
    /// Ports from the query (the channel protocol), by index.
    query_ports: Vec<u16>,
    ports: BTreeSet<u16>,
}

/// Why the client's bytes are refused (a close 1002 with this, `podgate: ` before it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the port-forward tunnel carries binary messages only")]
    Text,
    #[error("unreadable SPDY from the client: {0}")]
    Spdy(#[from] spdy::SpdyError),
    #[error("a port-forward stream names no valid port ({0:?})")]
    Port(String),
    #[error("more than {MAX_STREAMS} port-forward streams are open at once")]
    TooManyStreams,
    #[error("{0}")]
    Channel(String),
}

impl FromClient {
    /// `query_ports`: the `ports` of the request (the channel protocol's; kubectl sends none).
    pub fn new(tunnel: Tunnel, query_ports: Vec<u16>) -> FromClient {
        FromClient {
            tunnel,
            scanner: Scanner::new(MAX_CONTROL),
            decompressor: Decompressor::new(),
            streams: HashMap::new(),
            ports: query_ports.iter().copied().collect(),
            query_ports,
        }
    }

    /// Every port asked for so far.
    pub fn ports(&self) -> Vec<u16> {
        self.ports.iter().copied().collect()
    }

    pub fn feed(&mut self, text: bool, payload: &[u8]) -> Result<Seen, Refused> {
        match self.tunnel {
            Tunnel::Spdy if text => Err(Refused::Text),
            Tunnel::Spdy => self.spdy(payload),
            Tunnel::Channels(protocol) => {
                let (channel, data) = channel_frame(protocol, text, payload)?;
                let (index, error) = port_of(channel);
                // The client writes data channels only; the cluster ignores anything else.
                let counted = !error && index < self.query_ports.len();
                Ok(Seen {
                    data: if counted { data as u64 } else { 0 },
                    opened: 0,
                })
            }
        }
    }

    fn spdy(&mut self, payload: &[u8]) -> Result<Seen, Refused> {
        let mut seen = Seen::default();
        let mut failed: Option<Refused> = None;
        let (decompressor, streams, ports) =
            (&mut self.decompressor, &mut self.streams, &mut self.ports);
        self.scanner.feed(payload, &mut |e| {
            if failed.is_some() {
                return;
            }
            let result = on_client_event(e, decompressor, streams, ports, &mut seen);
            if let Err(r) = result {
                failed = Some(r);
            }
        })?;
        match failed {
            Some(r) => Err(r),
            None => Ok(seen),
        }
    }
}

fn on_client_event(
    e: Event<'_>,
    decompressor: &mut Decompressor,
    streams: &mut HashMap<u32, Named>,
    ports: &mut BTreeSet<u16>,
    seen: &mut Seen,
) -> Result<(), Refused> {
    match e {
        Event::Control(Control::SynStream {
            stream_id,
            header_block,
            ..
        }) => {
            // Every header block goes through the one decompressor, in order.
            let headers = decompressor.headers(header_block)?;
            let port = headers.get(spdy::PORT).unwrap_or("");
            let port: u16 = port
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| Refused::Port(port.to_string()))?;
            let data = headers.get(spdy::STREAM_TYPE) == Some(spdy::STREAM_TYPE_DATA);
            let request = headers.get(spdy::REQUEST_ID).unwrap_or("").to_string();
            if streams.len() >= MAX_STREAMS {
                return Err(Refused::TooManyStreams);
            }
            streams.insert(
                stream_id,
                Named {
                    port,
                    data,
                    request,
                },
            );
            if data {
                ports.insert(port);
                seen.opened += 1;
            }
        }
        Event::Control(c @ (Control::SynReply { .. } | Control::Headers { .. })) => {
            decompressor.decompress(c.header_block().unwrap_or_default())?;
        }
        Event::Control(Control::RstStream { stream_id, .. }) => {
            // kubectl resets the data stream when its connection is done: the connection,
            // error stream included, is over.
            if let Some(gone) = streams.remove(&stream_id)
                && gone.data
            {
                streams.retain(|_, s| s.data || s.request != gone.request);
            }
        }
        Event::Control(_) => {}
        Event::Data { stream_id, bytes } => {
            if streams.get(&stream_id).is_some_and(|s| s.data) {
                seen.data += bytes.len() as u64;
            }
        }
        Event::DataEnd { .. } => {}
    }
    Ok(())
}

/// The cluster → client direction.
pub struct FromCluster {
    tunnel: Tunnel,
    scanner: Scanner,
    /// Streams the cluster ended (FIN or RST), so their last bytes are known.
    ended: BTreeSet<u32>,
    /// Channels whose port prefix came already (the channel protocol).
    announced: BTreeSet<u8>,
}

impl FromCluster {
    pub fn new(tunnel: Tunnel) -> FromCluster {
        FromCluster {
            tunnel,
            scanner: Scanner::new(MAX_CONTROL),
            ended: BTreeSet::new(),
            announced: BTreeSet::new(),
        }
    }

    /// Whether a frame of the gateway's own could be written to the client here (SPDY: the
    /// bytes so far end at a frame boundary).
    pub fn at_boundary(&self) -> bool {
        match self.tunnel {
            Tunnel::Spdy => self.scanner.at_boundary(),
            Tunnel::Channels(_) => true,
        }
    }

    /// `Err` with a description when the cluster's bytes are not the protocol. A connection
    /// whose data stream the cluster ended (the kubelet ends its error stream first) is over:
    /// its streams are forgotten, so a long tunnel of many connections stays bounded.
    pub fn feed(
        &mut self,
        text: bool,
        payload: &[u8],
        client: &mut FromClient,
    ) -> Result<Seen, String> {
        match self.tunnel {
            Tunnel::Spdy => {
                if text {
                    return Err("a text message on the SPDY tunnel".into());
                }
                let mut seen = Seen::default();
                let ended = &mut self.ended;
                let streams = &mut client.streams;
                self.scanner
                    .feed(payload, &mut |e| match e {
                        Event::Data { stream_id, bytes }
                            if streams.get(&stream_id).is_some_and(|s| s.data) =>
                        {
                            seen.data += bytes.len() as u64;
                        }
                        Event::DataEnd {
                            stream_id,
                            fin: true,
                            ..
                        }
                        | Event::Control(Control::RstStream { stream_id, .. }) => {
                            if let Some(s) = streams.get(&stream_id).filter(|s| s.data) {
                                let request = s.request.clone();
                                streams.retain(|_, s| s.request != request);
                                ended.retain(|id| streams.contains_key(id));
                                return;
                            }
                            if ended.len() >= MAX_STREAMS {
                                // Only streams the client still has open are asked about.
                                ended.retain(|id| streams.contains_key(id));
                            }
                            ended.insert(stream_id);
                        }
                        _ => {}
                    })
                    .map_err(|e| e.to_string())?;
                Ok(seen)
            }
            Tunnel::Channels(protocol) => {
                let (channel, data) =
                    channel_frame(protocol, text, payload).map_err(|e| e.to_string())?;
                // The first frame on each channel is the port, not data.
                if self.announced.insert(channel) {
                    return Ok(Seen::default());
                }
                let (_, error) = port_of(channel);
                Ok(Seen {
                    data: if error { 0 } else { data as u64 },
                    opened: 0,
                })
            }
        }
    }

    /// The error streams of connections still open (the client named them, the cluster has
    /// not ended them): where the gateway tells kubectl why it ends the tunnel.
    pub fn open_error_streams(&self, client: &FromClient) -> Vec<u32> {
        self.open_streams(client, false)
    }

    /// The data (`data`) or error streams the client named and the cluster has not ended.
    pub fn open_streams(&self, client: &FromClient, data: bool) -> Vec<u32> {
        let mut ids: Vec<u32> = client
            .streams
            .iter()
            .filter(|(id, s)| s.data == data && !self.ended.contains(id))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// A channel message's channel and payload length. The base64 protocol's channel digit may
/// pass 9 (a fifth port is channel 10, `':'`), as the kubelet writes it.
fn channel_frame(protocol: Protocol, text: bool, payload: &[u8]) -> Result<(u8, usize), Refused> {
    if protocol.is_base64() {
        let (&digit, rest) = payload
            .split_first()
            .ok_or_else(|| Refused::Channel("an empty channel message".into()))?;
        let channel = digit
            .checked_sub(b'0')
            .ok_or_else(|| Refused::Channel(format!("channel byte {digit:#04x} is no digit")))?;
        let len = base64_len(rest)
            .ok_or_else(|| Refused::Channel("a channel message is not base64".into()))?;
        return Ok((channel, len));
    }
    match frame::decode(protocol, text, payload) {
        Ok(frame::ChannelFrame::Data { stream, data }) => Ok((stream, data.len())),
        Ok(frame::ChannelFrame::Close { stream }) => Ok((stream, 0)),
        Err(e) => Err(Refused::Channel(e.to_string())),
    }
}

/// The decoded length of standard base64 text, checking only its shape.
fn base64_len(text: &[u8]) -> Option<usize> {
    let ok = text
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    if !ok || !text.len().is_multiple_of(4) {
        return None;
    }
    let pad = text.iter().rev().take_while(|b| **b == b'=').count();
    Some(text.len() / 4 * 3 - pad.min(2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use podgate_protocol::spdy::frame as sf;
    use podgate_protocol::spdy::{Compressor, Headers};

    /// What kubectl sends for one forwarded connection to `port` (request `id`): the error
    /// stream, its FIN, the data stream, `data`, then the FIN.
    fn kubectl_connection(c: &mut Compressor, id: u32, port: u16, data: &[u8]) -> Vec<u8> {
        let mut headers = |kind: &str| {
            c.compress(&Headers::from_pairs([
                ("streamType", kind),
                ("port", port.to_string().as_str()),
                ("requestID", id.to_string().as_str()),
            ]))
        };
        let (error_id, data_id) = (4 * id + 1, 4 * id + 3);
        let error = headers("error");
        let syn_data = headers("data");
        [
            sf::syn_stream(error_id, 0, &error),
            sf::data(error_id, true, b"").unwrap(),
            sf::syn_stream(data_id, 0, &syn_data),
            sf::data(data_id, false, data).unwrap(),
            sf::ping(1),
            sf::data(data_id, true, b"").unwrap(),
        ]
        .concat()
    }

    #[test]
    fn ports_come_from_syn_stream_headers_and_data_is_counted() {
        let mut c = Compressor::new();
        let mut w = FromClient::new(Tunnel::Spdy, vec![]);
        let bytes = [
            kubectl_connection(&mut c, 0, 80, b"GET / HTTP/1.1\r\n\r\n"),
            kubectl_connection(&mut c, 1, 8443, b"x"),
        ]
        .concat();
        // Cut into spdystream-sized pieces: a frame spans messages.
        let mut total = Seen::default();
        for piece in bytes.chunks(3) {
            let s = w.feed(false, piece).expect("readable");
            total.data += s.data;
            total.opened += s.opened;
        }
        assert_eq!(
            total,
            Seen {
                data: 19,
                opened: 2
            }
        );
        assert_eq!(w.ports(), [80, 8443]);
    }

    #[test]
    fn pings_and_set_up_are_not_activity() {
        let mut c = Compressor::new();
        let mut w = FromClient::new(Tunnel::Spdy, vec![]);
        let mut up = FromCluster::new(Tunnel::Spdy);
        assert_eq!(w.feed(false, &sf::ping(1)).unwrap(), Seen::default());
        let connection = kubectl_connection(&mut c, 0, 80, b"");
        assert_eq!(w.feed(false, &connection).unwrap().data, 0);
        let reply = [sf::syn_reply(1, false, b"x"), sf::ping(1)].concat();
        assert_eq!(up.feed(false, &reply, &mut w).unwrap(), Seen::default());
        assert_eq!(
            up.feed(false, &sf::data(3, false, b"hello").unwrap(), &mut w)
                .unwrap()
                .data,
            5
        );
        // The error stream of the connection is open until the cluster ends it.
        assert_eq!(up.open_error_streams(&w), [1]);
        assert_eq!(up.open_streams(&w, true), [3]);
        up.feed(false, &sf::data(1, true, b"").unwrap(), &mut w)
            .unwrap();
        assert_eq!(up.open_error_streams(&w), Vec::<u32>::new());
        assert!(up.at_boundary());
        // The cluster ends the data stream: the connection is over and forgotten.
        up.feed(false, &sf::data(3, true, b"").unwrap(), &mut w)
            .unwrap();
        assert!(w.streams.is_empty() && up.open_streams(&w, true).is_empty());
        up.feed(false, &sf::ping(1)[..3], &mut w).unwrap();
        assert!(!up.at_boundary());
    }

    #[test]
    fn what_cannot_be_read_is_refused() {
        let mut w = FromClient::new(Tunnel::Spdy, vec![]);
        assert_eq!(w.feed(true, b"x"), Err(Refused::Text));
        // A SYN_STREAM whose header block is not the zlib stream.
        let bad = sf::syn_stream(1, 0, b"not zlib");
        assert!(matches!(w.feed(false, &bad), Err(Refused::Spdy(_))));
        let mut c = Compressor::new();
        let mut w = FromClient::new(Tunnel::Spdy, vec![]);
        let no_port = c.compress(&Headers::from_pairs([("streamType", "data")]));
        assert_eq!(
            w.feed(false, &sf::syn_stream(1, 0, &no_port)),
            Err(Refused::Port(String::new()))
        );
    }

    #[test]
    fn channels_count_data_after_the_port_prefix() {
        let mut client = FromClient::new(Tunnel::Channels(Protocol::V4), vec![80, 7]);
        let mut w = FromClient::new(Tunnel::Channels(Protocol::V4), vec![80, 7]);
        assert_eq!(w.feed(false, b"\x02ping").unwrap().data, 4);
        // Text messages are channel frames too; the error channels carry nothing counted.
        assert_eq!(w.feed(true, b"\x00ab").unwrap().data, 2);
        assert_eq!(w.feed(false, b"\x01ab").unwrap().data, 0);
        let mut up = FromCluster::new(Tunnel::Channels(Protocol::V4));
        assert_eq!(up.feed(false, &[0, 80, 0], &mut client).unwrap().data, 0);
        assert_eq!(up.feed(false, &[1, 80, 0], &mut client).unwrap().data, 0);
        assert_eq!(up.feed(false, b"\x00hello", &mut client).unwrap().data, 5);
        assert_eq!(up.feed(false, b"\x01refused", &mut client).unwrap().data, 0);
        let mut b64 = FromCluster::new(Tunnel::Channels(Protocol::V4Base64));
        assert_eq!(b64.feed(true, b"0UAA=", &mut client).unwrap().data, 0);
        assert_eq!(b64.feed(true, b"0aGVsbG8=", &mut client).unwrap().data, 5);
        assert!(b64.feed(true, b"0!!", &mut client).is_err());
    }
}
