//! Reading SPDY frames out of a byte stream that arrives in arbitrary pieces.
//!
//! Over kubectl's WebSocket tunnel a WebSocket message is whatever one `Write` of the sender
//! held: spdystream writes a frame field by field (so a frame spans many messages, some of 2
//! bytes), and kube-apiserver's tunnel writes whatever it read. So frames are found in the
//! byte stream, never in messages. [`Scanner`] keeps only what it must: the 8-byte header in
//! progress and a control frame's payload (bounded); data payloads are handed on as they pass,
//! never held, so a relay that watches the stream holds no more than the message it relays.

use super::SpdyError;
use super::frame::{self, Control, FLAG_FIN, HEADER_LEN, Head};

/// What the byte stream said, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole control frame.
    Control(Control<'a>),
    /// Payload bytes of the data frame in progress (a frame's payload may come in several).
    Data { stream_id: u32, bytes: &'a [u8] },
    /// The data frame in progress is complete (also for an empty one: a bare FIN).
    DataEnd {
        stream_id: u32,
        fin: bool,
        length: usize,
    },
}

enum State {
    /// Reading a frame header: `head[..have]` so far.
    Head,
    Control {
        version: u16,
        kind: u16,
        flags: u8,
        length: usize,
    },
    Data {
        stream_id: u32,
        flags: u8,
        length: usize,
        left: usize,
    },
}

/// One direction of a SPDY connection, as frames.
pub struct Scanner {
    max_control: usize,
    state: State,
    head: [u8; HEADER_LEN],
    have: usize,
    control: Vec<u8>,
}

impl Scanner {
    /// A scanner refusing control frames with payloads over `max_control` bytes.
    pub fn new(max_control: usize) -> Scanner {
        Scanner {
            max_control,
            state: State::Head,
            head: [0; HEADER_LEN],
            have: 0,
            control: Vec::new(),
        }
    }

    /// Whether the bytes so far end exactly at a frame boundary (a frame could be written here).
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::Head) && self.have == 0
    }

    /// Reads `chunk`, reporting each event to `on`. After an error the stream cannot be read on.
    pub fn feed(
        &mut self,
        mut chunk: &[u8],
        on: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), SpdyError> {
        while !chunk.is_empty() || self.pending_empty_frame() {
            match &mut self.state {
                State::Head => {
                    let take = (HEADER_LEN - self.have).min(chunk.len());
                    self.head[self.have..self.have + take].copy_from_slice(&chunk[..take]);
                    self.have += take;
                    chunk = &chunk[take..];
                    if self.have < HEADER_LEN {
                        continue;
                    }
                    self.have = 0;
                    self.state = match Head::parse(self.head) {
                        Head::Control {
                            version,
                            kind,
                            flags,
                            length,
                        } => {
                            if length > self.max_control {
                                return Err(SpdyError::ControlTooLarge {
                                    length,
                                    limit: self.max_control,
                                });
                            }
                            self.control.clear();
                            State::Control {
                                version,
                                kind,
                                flags,
                                length,
                            }
                        }
                        Head::Data { stream_id: 0, .. } => return Err(SpdyError::ZeroStreamId),
                        Head::Data {
                            stream_id,
                            flags,
                            length,
                        } => State::Data {
                            stream_id,
                            flags,
                            length,
                            left: length,
                        },
                    };
                }
                State::Control {
                    version,
                    kind,
                    flags,
                    length,
                } => {
                    let (version, kind, flags, length) = (*version, *kind, *flags, *length);
                    let take = (length - self.control.len()).min(chunk.len());
                    self.control.extend_from_slice(&chunk[..take]);
                    chunk = &chunk[take..];
                    if self.control.len() < length {
                        continue;
                    }
                    self.state = State::Head;
                    let payload = std::mem::take(&mut self.control);
                    let parsed = frame::parse_control(version, kind, flags, &payload);
                    let result = parsed.map(|c| on(Event::Control(c)));
                    self.control = payload;
                    result?;
                }
                State::Data {
                    stream_id,
                    flags,
                    length,
                    left,
                } => {
                    let (stream_id, flags, length) = (*stream_id, *flags, *length);
                    let take = (*left).min(chunk.len());
                    *left -= take;
                    let done = *left == 0;
                    if take > 0 {
                        on(Event::Data {
                            stream_id,
                            bytes: &chunk[..take],
                        });
                        chunk = &chunk[take..];
                    }
                    if done {
                        self.state = State::Head;
                        on(Event::DataEnd {
                            stream_id,
                            fin: flags & FLAG_FIN != 0,
                            length,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// A frame with an empty payload completes without more input.
    fn pending_empty_frame(&self) -> bool {
        match &self.state {
            State::Control { length, .. } => self.control.len() == *length,
            State::Data { left, .. } => *left == 0,
            State::Head => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spdy::frame::{data, ping, rst_stream, syn_stream};

    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Ping(u32),
        Syn(u32, Vec<u8>),
        Rst(u32),
        Data(u32, Vec<u8>),
        End(u32, bool, usize),
    }

    fn scan(chunks: &[&[u8]], max: usize) -> Result<Vec<Seen>, SpdyError> {
        let mut s = Scanner::new(max);
        let mut seen = Vec::new();
        for c in chunks {
            s.feed(c, &mut |e| {
                seen.push(match e {
                    Event::Control(Control::Ping { id }) => Seen::Ping(id),
                    Event::Control(Control::SynStream {
                        stream_id,
                        header_block,
                        ..
                    }) => Seen::Syn(stream_id, header_block.to_vec()),
                    Event::Control(Control::RstStream { stream_id, .. }) => Seen::Rst(stream_id),
                    Event::Control(other) => panic!("unexpected {other:?}"),
                    Event::Data { stream_id, bytes } => Seen::Data(stream_id, bytes.to_vec()),
                    Event::DataEnd {
                        stream_id,
                        fin,
                        length,
                    } => Seen::End(stream_id, fin, length),
                });
            })?;
        }
        Ok(seen)
    }

    fn stream() -> Vec<u8> {
        [
            syn_stream(1, 0, b"hdr"),
            data(1, true, b"").unwrap(),
            ping(1),
            data(3, false, b"hello world").unwrap(),
            rst_stream(3, 5),
        ]
        .concat()
    }

    fn expected() -> Vec<Seen> {
        vec![
            Seen::Syn(1, b"hdr".to_vec()),
            Seen::End(1, true, 0),
            Seen::Ping(1),
            Seen::Data(3, b"hello world".to_vec()),
            Seen::End(3, false, 11),
            Seen::Rst(3),
        ]
    }

    /// Merges consecutive data events of one stream (how many there are depends on the chunks).
    fn merged(seen: Vec<Seen>) -> Vec<Seen> {
        let mut out: Vec<Seen> = Vec::new();
        for s in seen {
            match (out.last_mut(), s) {
                (Some(Seen::Data(a, bytes)), Seen::Data(b, more)) if *a == b => bytes.extend(more),
                (_, s) => out.push(s),
            }
        }
        out
    }

    #[test]
    fn frames_are_found_however_the_stream_is_cut() {
        let bytes = stream();
        assert_eq!(scan(&[&bytes], 1024).unwrap(), expected());
        // One byte at a time, as spdystream's field-by-field writes can arrive, and every
        // other cut.
        let ones: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(merged(scan(&ones, 1024).unwrap()), expected());
        for cut in 1..bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(
                merged(scan(&[a, b], 1024).unwrap()),
                expected(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn boundaries_are_known() {
        let mut s = Scanner::new(1024);
        assert!(s.at_boundary());
        let f = ping(1);
        s.feed(&f[..5], &mut |_| {}).unwrap();
        assert!(!s.at_boundary());
        s.feed(&f[5..], &mut |_| {}).unwrap();
        assert!(s.at_boundary());
    }

    #[test]
    fn oversized_control_frames_and_stream_zero_are_refused() {
        assert_eq!(
            scan(&[&syn_stream(1, 0, &[0; 100])], 50),
            Err(SpdyError::ControlTooLarge {
                length: 110,
                limit: 50
            })
        );
        assert_eq!(
            scan(&[&[0, 0, 0, 0, 0, 0, 0, 1, 9]], 50),
            Err(SpdyError::ZeroStreamId)
        );
        assert_eq!(
            scan(&[&[0x80, 3, 0, 5, 0, 0, 0, 0]], 50),
            Err(SpdyError::UnknownType(5))
        );
    }
}
