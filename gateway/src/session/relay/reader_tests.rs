//! The reader against fastwebsockets' own on the same bytes (random streams, valid and broken,
//! delivered in random pieces), and what it holds while idle.

use super::*;
use futures_util::FutureExt as _;
use std::cell::RefCell;
use std::io;
use tokio::io::{AsyncWriteExt, DuplexStream};

/// What a reader did with a stream, in order: frames handed over, frames it was obliged to
/// send, and the error it stopped with.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    Frame(bool, u8, Vec<u8>),
    Sent(u8, Vec<u8>),
    Error(String),
}

fn frame_event(f: &Frame<'_>) -> Event {
    Event::Frame(f.fin, f.opcode as u8, f.payload.to_vec())
}

/// A small deterministic generator, so a failing case can be replayed by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Serves `data` in pieces of random size, now and then answering `Pending` first (and waking
/// itself), as a TLS stream does.
struct Pieces {
    data: Vec<u8>,
    at: usize,
    rng: Rng,
}

impl AsyncRead for Pieces {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.rng.below(4) == 0 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let left = self.data.len() - self.at;
        let piece = (1 + self.rng.below(300) as usize)
            .min(left)
            .min(buf.remaining());
        let at = self.at;
        buf.put_slice(&self.data[at..at + piece]);
        self.at += piece;
        Poll::Ready(Ok(()))
    }
}

/// One frame's bytes: any opcode (some invalid), reserved bits now and then, each length
/// encoding, masked or not, payloads that are and are not UTF-8, close frames of every shape.
/// A `clean` frame is one a well-behaved peer sends, so that streams get past their first
/// frames often enough to compare what comes after.
fn random_frame(rng: &mut Rng, out: &mut Vec<u8>, clean: bool) {
    let opcode = match rng.below(if clean { 12 } else { 20 }) {
        0..=5 => 0x1,
        6..=10 => 0x2,
        11..=12 => 0x0,
        13 => 0x8,
        14 => 0x9,
        15 => 0xA,
        _ => rng.below(16) as u8,
    };
    let opcode = if clean && opcode == 0x0 { 0x9 } else { opcode };
    let fin = clean || rng.below(4) != 0;
    let rsv = if !clean && rng.below(40) == 0 {
        0x40
    } else {
        0
    };
    let mut payload = match opcode {
        0x8 => match rng.below(5) {
            0 => vec![],
            1 => vec![3],
            2 => {
                let mut p = 1000u16.to_be_bytes().to_vec();
                p.extend_from_slice(b"bye");
                p
            }
            3 => {
                let mut p = (rng.below(5000) as u16).to_be_bytes().to_vec();
                p.extend_from_slice(&[0xff, 0xfe]);
                p
            }
            _ => (rng.below(5000) as u16).to_be_bytes().to_vec(),
        },
        _ => {
            let len = match rng.below(if clean { 8 } else { 10 }) {
                0..=5 => rng.below(126),
                6..=7 => 126 + rng.below(2000),
                8 => 65_530 + rng.below(12),
                _ => 70_000 + rng.below(30_000),
            } as usize;
            if clean || rng.below(2) == 0 {
                (0..len).map(|i| b'a' + (i % 26) as u8).collect()
            } else {
                rng.bytes(len)
            }
        }
    };
    if clean && opcode == 0x9 {
        payload.truncate(125);
    }
    out.push(if fin { 0x80 } else { 0 } | rsv | opcode);
    let masked = rng.below(3) != 0;
    let m = if masked { 0x80 } else { 0 };
    // Now and then a longer length encoding than needed, as the RFC allows.
    match (payload.len(), rng.below(8)) {
        (n, 0) => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
        (n, _) if n < 126 => out.push(m | n as u8),
        (n, _) if n <= 0xFFFF => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        (n, _) => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let mask = [rng.next() as u8, rng.next() as u8, 7, 9];
        out.extend_from_slice(&mask);
        fastwebsockets::unmask(&mut payload, mask);
    }
    out.extend_from_slice(&payload);
}

fn random_stream(seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    let clean = rng.below(3) == 0;
    for _ in 0..1 + rng.below(12) {
        random_frame(&mut rng, &mut out, clean);
    }
    // Some streams end in the middle of a frame.
    if rng.below(3) == 0 {
        let cut = rng.below(out.len() as u64) as usize;
        out.truncate(cut);
    }
    out
}

/// Reads frames with `reader` until its first error, recording what it hands over, what it
/// obliges the caller to send, and the error: the same loop for ours and fastwebsockets'.
macro_rules! events_of {
    ($reader:expr) => {{
        let events = RefCell::new(Vec::new());
        let mut send = |f: Frame<'_>| {
            events
                .borrow_mut()
                .push(Event::Sent(f.opcode as u8, f.payload.to_vec()));
            async { Ok::<(), io::Error>(()) }
        };
        loop {
            match $reader.read_frame(&mut send).await {
                Ok(f) => {
                    let e = frame_event(&f);
                    events.borrow_mut().push(e);
                }
                Err(e) => {
                    events.borrow_mut().push(Event::Error(format!("{e:?}")));
                    break;
                }
            }
        }
        events.into_inner()
    }};
}

async fn ours(data: Vec<u8>, seed: u64, role: Role, max: usize) -> Vec<Event> {
    let mut reader = FrameReader::new(
        Pieces {
            data,
            at: 0,
            rng: Rng(seed),
        },
        role,
    );
    reader.set_max_message_size(max);
    events_of!(reader)
}

async fn theirs(data: Vec<u8>, role: Role, max: usize) -> Vec<Event> {
    let (mut reader, _) = fastwebsockets::after_handshake_split(&data[..], tokio::io::sink(), role);
    reader.set_max_message_size(max);
    events_of!(reader)
}

/// The relay's endings depend on what the reader hands over and refuses: on any stream,
/// whatever pieces it arrives in, ours does exactly what fastwebsockets does.
#[tokio::test]
async fn does_what_fastwebsockets_does_on_any_stream() {
    let mut frames = 0;
    for seed in 1..=3000u64 {
        let data = random_stream(seed);
        let role = if seed % 2 == 0 {
            Role::Server
        } else {
            Role::Client
        };
        let max = if seed % 5 == 0 { 1000 } else { 1 << 20 };
        let want = theirs(data.clone(), role, max).await;
        let got = ours(data, seed, role, max).await;
        assert_eq!(got, want, "seed {seed}");
        frames += want.len();
    }
    // The streams are not all refused at their first frame.
    assert!(frames > 3000 * 2, "only {frames} events in 3000 streams");
}

fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    let mask = [1, 2, 3, 4];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    let mut p = payload.to_vec();
    fastwebsockets::unmask(&mut p, mask);
    out.extend_from_slice(&p);
    out
}

fn nothing(_: Frame<'static>) -> std::future::Ready<Result<(), io::Error>> {
    std::future::ready(Ok(()))
}

/// The point of this reader: between frames it holds nothing, whether the last frame was a
/// keystroke or a large burst; within a frame it holds what the frame needs.
#[tokio::test]
async fn an_idle_connection_holds_no_buffer() {
    let (mut peer, side): (DuplexStream, DuplexStream) = tokio::io::duplex(1 << 20);
    let mut reader = FrameReader::new(side, Role::Server);
    assert_eq!(reader.buffer_capacity(), 0);
    let mut send = nothing;

    for payload in [b"l".to_vec(), vec![b'x'; 40_000], b"s\r".to_vec()] {
        peer.write_all(&masked(0x2, &payload)).await.unwrap();
        let f = reader.read_frame(&mut send).await.unwrap();
        assert_eq!(&f.payload[..], &payload[..]);
        drop(f);
        // Nothing more has come: the read waits, and holds no allocation while it does.
        assert!(reader.read_frame(&mut send).now_or_never().is_none());
        assert_eq!(reader.buffer_capacity(), 0, "after {} bytes", payload.len());
    }

    // Half a frame is kept (it is needed), and the frame comes whole once the rest arrives,
    // even though the read that saw its first half was dropped.
    let frame = masked(0x1, &[b'y'; 3000]);
    peer.write_all(&frame[..1000]).await.unwrap();
    assert!(reader.read_frame(&mut send).now_or_never().is_none());
    assert!(reader.buffer_capacity() >= 1000);
    peer.write_all(&frame[1000..]).await.unwrap();
    let f = reader.read_frame(&mut send).await.unwrap();
    assert_eq!(&f.payload[..], &[b'y'; 3000][..]);
    assert_eq!(f.opcode, OpCode::Text);
}

/// Frames that arrive together are handed over one by one, and what is left stays buffered.
#[tokio::test]
async fn frames_that_arrive_together_are_read_one_by_one() {
    let (mut peer, side) = tokio::io::duplex(1 << 20);
    let mut reader = FrameReader::new(side, Role::Server);
    let mut bytes = Vec::new();
    for i in 0..50u8 {
        bytes.extend_from_slice(&masked(0x2, &vec![i; 10 + 997 * usize::from(i)]));
    }
    // More than the pipe holds: the peer writes while the reader reads.
    let writer = tokio::spawn(async move {
        peer.write_all(&bytes).await.unwrap();
        peer
    });
    let mut send = nothing;
    for i in 0..50u8 {
        let f = reader.read_frame(&mut send).await.unwrap();
        assert_eq!(f.payload.len(), 10 + 997 * usize::from(i));
        assert!(f.payload.iter().all(|b| *b == i));
    }
    drop(writer.await.unwrap());
    assert!(matches!(
        reader.read_frame(&mut send).await,
        Err(WebSocketError::UnexpectedEOF)
    ));
}

/// A frame of the limit or more is refused from its header: the reader never allocates for
/// a payload it will not take.
#[tokio::test]
async fn a_frame_over_the_limit_is_refused_before_its_payload() {
    let (mut peer, side) = tokio::io::duplex(1 << 16);
    let mut reader = FrameReader::new(side, Role::Client);
    reader.set_max_message_size(1 << 20);
    let mut header = vec![0x82, 127];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    peer.write_all(&header).await.unwrap();
    let r = reader.read_frame(&mut nothing).await.err();
    assert!(matches!(r, Some(WebSocketError::FrameTooLarge)), "{r:?}");
    assert!(reader.buffer_capacity() < 1 << 10);
}

#[test]
fn headers_parse_as_the_rfc_says() {
    let max = 1 << 20;
    assert_eq!(parse_head(&[], max).unwrap(), Parsed::Need(2));
    assert_eq!(parse_head(&[0x81], max).unwrap(), Parsed::Need(2));
    assert_eq!(parse_head(&[0x81, 0xFE, 0], max).unwrap(), Parsed::Need(8));
    assert_eq!(parse_head(&[0x82, 127], max).unwrap(), Parsed::Need(10));
    assert_eq!(
        parse_head(&[0x01, 0x85, 1, 2, 3, 4], max).unwrap(),
        Parsed::Head(Head {
            fin: false,
            opcode: OpCode::Text,
            mask: Some([1, 2, 3, 4]),
            header_len: 6,
            payload_len: 5,
        })
    );
    assert_eq!(
        parse_head(&[0x82, 126, 0x01, 0x00], max).unwrap(),
        Parsed::Head(Head {
            fin: true,
            opcode: OpCode::Binary,
            mask: None,
            header_len: 4,
            payload_len: 256,
        })
    );
    let err = |b: &[u8]| format!("{:?}", parse_head(b, max).unwrap_err());
    assert_eq!(err(&[0xC1, 0]), "ReservedBitsNotZero");
    assert_eq!(err(&[0x83, 0]), "InvalidValue");
    assert_eq!(err(&[0x09, 0]), "ControlFrameFragmented");
    assert_eq!(err(&[0x89, 126, 0, 126]), "PingFrameTooLarge");
    let mut huge = vec![0x82, 127];
    huge.extend_from_slice(&u64::MAX.to_be_bytes());
    assert_eq!(err(&huge), "FrameTooLarge");
}
