//! The read side of a relayed WebSocket, holding no buffer while its connection is idle.
//!
//! Why not fastwebsockets' `WebSocketRead`: it keeps an 8 KiB `BytesMut` for a connection's
//! life, and a session has two of them, 16 of an idle session's 38 KiB (BENCHMARKS.md, "Where
//! an idle session's bytes are"). This reader waits for data with a small buffer on the poll's
//! stack (nothing is kept across `Pending`), allocates once bytes arrive, sized by the frame's
//! header, and lets the buffer go when it is empty at a frame boundary and the next read would
//! wait. While data flows the buffer is reused, so the relay's per-byte cost does not change.
//!
//! The framing rules are fastwebsockets 0.10's `read_frame` (reserved bits, control frames,
//! close codes, UTF-8 of a final text frame, pong and close echo through the caller's send) so
//! that every ending the relay tells stays the same; unlike it, a frame leaves the buffer only
//! whole, so a read that is dropped half-way loses nothing.

use bytes::{Buf, BytesMut};
use fastwebsockets::{CloseCode, Frame, OpCode, Payload, Role, WebSocketError};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, ReadBuf};

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// What an idle read waits with: enough for a header and a keystroke's payload.
const PROBE: usize = 64;

/// The least a flowing read reserves: a TLS record's plaintext, so a stream of frames is read
/// in records, not in slivers left over after the last payload.
const FLOWING: usize = 16 << 10;

/// fastwebsockets' default bound on a frame, until the caller sets its own.
const DEFAULT_MAX: usize = 64 << 20;

pub struct FrameReader<R> {
    stream: R,
    role: Role,
    max_message_size: usize,
    /// Bytes read and not yet taken as a frame; no allocation while idle.
    buf: BytesMut,
}

/// A frame header as read off the wire, before its payload.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    fin: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    header_len: usize,
    payload_len: usize,
}

/// What the bytes so far hold: a header, or how many bytes one needs at least.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Head(Head),
    Need(usize),
}

/// Parses a frame header from the start of `buf`, refusing what fastwebsockets refuses in the
/// same order (reserved bits and opcode first, then fragmented control frames, large pings and
/// frames of `max` bytes or more), so a peer's fault is named the same way.
fn parse_head(buf: &[u8], max: usize) -> Result<Parsed, WebSocketError> {
    let [b0, b1, ..] = *buf else {
        return Ok(Parsed::Need(2));
    };
    if b0 & 0b0111_0000 != 0 {
        return Err(WebSocketError::ReservedBitsNotZero);
    }
    let fin = b0 & 0b1000_0000 != 0;
    let opcode = OpCode::try_from(b0 & 0b0000_1111)?;
    let masked = b1 & 0b1000_0000 != 0;
    let length_code = b1 & 0x7F;
    let extra = match length_code {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let header_len = 2 + extra + if masked { 4 } else { 0 };
    let Some(rest) = buf.get(2..header_len) else {
        return Ok(Parsed::Need(header_len));
    };
    let (len_bytes, mask_bytes) = rest.split_at(extra);
    let payload_len = match *len_bytes {
        [] => usize::from(length_code),
        [a, b] => usize::from(u16::from_be_bytes([a, b])),
        [a, b, c, d, e, f, g, h] => usize::try_from(u64::from_be_bytes([a, b, c, d, e, f, g, h]))
            .map_err(|_| WebSocketError::FrameTooLarge)?,
        _ => return Err(WebSocketError::InvalidValue),
    };
    let mask = match *mask_bytes {
        [a, b, c, d] => Some([a, b, c, d]),
        _ => None,
    };
    if is_control(opcode) && !fin {
        return Err(WebSocketError::ControlFrameFragmented);
    }
    if opcode == OpCode::Ping && payload_len > 125 {
        return Err(WebSocketError::PingFrameTooLarge);
    }
    if payload_len >= max {
        return Err(WebSocketError::FrameTooLarge);
    }
    Ok(Parsed::Head(Head {
        fin,
        opcode,
        mask,
        header_len,
        payload_len,
    }))
}

fn is_control(opcode: OpCode) -> bool {
    matches!(opcode, OpCode::Close | OpCode::Ping | OpCode::Pong)
}

/// What a frame read off the wire asks of the reader: hand it over, answer it (a pong), or
/// both (a close is echoed and handed over), or fail the connection (with a close to send).
struct Handled {
    frame: Option<Frame<'static>>,
    obligated: Option<Frame<'static>>,
    error: Option<WebSocketError>,
}

/// fastwebsockets' rules for a whole frame (its `read_frame_inner` with auto-close and
/// auto-pong on).
fn handle(frame: Frame<'static>) -> Handled {
    let ok = |frame, obligated| Handled {
        frame: Some(frame),
        obligated,
        error: None,
    };
    let fail = |error, obligated| Handled {
        frame: None,
        obligated,
        error: Some(error),
    };
    match frame.opcode {
        OpCode::Close => {
            if let [a, b, reason @ ..] = &frame.payload[..] {
                if std::str::from_utf8(reason).is_err() {
                    return fail(WebSocketError::InvalidUTF8, None);
                }
                if !CloseCode::from(u16::from_be_bytes([*a, *b])).is_allowed() {
                    return fail(
                        WebSocketError::InvalidCloseCode,
                        Some(Frame::close(1002, reason)),
                    );
                }
            } else if frame.payload.len() == 1 {
                return fail(WebSocketError::InvalidCloseFrame, None);
            }
            let echo = Frame::close_raw(Payload::Owned(frame.payload.to_vec()));
            ok(frame, Some(echo))
        }
        OpCode::Ping => Handled {
            frame: None,
            obligated: Some(Frame::pong(frame.payload)),
            error: None,
        },
        OpCode::Text if frame.fin && !frame.is_utf8() => fail(WebSocketError::InvalidUTF8, None),
        _ => ok(frame, None),
    }
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader for a stream whose WebSocket handshake is done (no bytes of it buffered
    /// elsewhere). `role` is this end's: a server unmasks what it reads.
    pub fn new(stream: R, role: Role) -> Self {
        FrameReader {
            stream,
            role,
            max_message_size: DEFAULT_MAX,
            buf: BytesMut::new(),
        }
    }

    /// Frames of `max` bytes or more are refused before their payload is read.
    pub fn set_max_message_size(&mut self, max: usize) {
        self.max_message_size = max;
    }

    /// The bytes this reader holds allocated (what an idle connection costs it: none).
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The next frame other than a ping. A ping's pong and a close's echo (or, for a close
    /// with a code that is not allowed, a 1002 close) go out through `send` before the frame
    /// is handed over or the error returned, as fastwebsockets obliges its callers.
    pub async fn read_frame<F, Fut, E>(
        &mut self,
        send: &mut F,
    ) -> Result<Frame<'static>, WebSocketError>
    where
        F: FnMut(Frame<'static>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    {
        loop {
            let handled = handle(self.next_frame().await?);
            if let Some(f) = handled.obligated {
                // Boxed: a pong or a close echo is rare, and the write it awaits is most of
                // this future's size, which every session would otherwise hold while idle.
                Box::pin(send(f))
                    .await
                    .map_err(|e| WebSocketError::SendError(e.into()))?;
            }
            if let Some(e) = handled.error {
                return Err(e);
            }
            if let Some(f) = handled.frame {
                return Ok(f);
            }
        }
    }

    /// The next whole frame, unmasked in the server role.
    async fn next_frame(&mut self) -> Result<Frame<'static>, WebSocketError> {
        loop {
            let need = match parse_head(&self.buf, self.max_message_size)? {
                Parsed::Head(h) if self.buf.len() >= h.header_len + h.payload_len => {
                    self.buf.advance(h.header_len);
                    let payload = self.buf.split_to(h.payload_len);
                    let mut frame = Frame::new(h.fin, h.opcode, h.mask, Payload::Bytes(payload));
                    if self.role == Role::Server {
                        frame.unmask();
                    }
                    return Ok(frame);
                }
                // Room for the next frame's header too, sparing a read for it.
                Parsed::Head(h) => h.header_len + h.payload_len + MAX_HEADER,
                Parsed::Need(n) => n,
            };
            std::future::poll_fn(|cx| self.poll_fill(cx, need)).await?;
        }
    }

    /// Reads once, growing the buffer to hold `need` bytes. With nothing buffered it waits
    /// with a stack buffer and holds no allocation.
    fn poll_fill(&mut self, cx: &mut Context<'_>, need: usize) -> Poll<Result<(), WebSocketError>> {
        if self.buf.is_empty() {
            // Data may still be flowing: read into the last frame's allocation (all of it, now
            // that its payload is gone) if a read completes at once, and let it go if not.
            if self.buf.try_reclaim(FLOWING) {
                let read =
                    tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.buf);
                if let Poll::Ready(r) = read {
                    return Poll::Ready(filled(r?));
                }
                self.buf = BytesMut::new();
                return Poll::Pending;
            }
            self.buf = BytesMut::new();
            let mut probe = [0u8; PROBE];
            let mut rb = ReadBuf::new(&mut probe);
            ready!(Pin::new(&mut self.stream).poll_read(cx, &mut rb))?;
            let got = rb.filled();
            let frame = match parse_head(got, self.max_message_size) {
                Ok(Parsed::Head(h)) => h.header_len + h.payload_len + MAX_HEADER,
                _ => 0,
            };
            self.buf = BytesMut::with_capacity(got.len().max(frame));
            self.buf.extend_from_slice(got);
            return Poll::Ready(filled(got.len()));
        }
        self.buf.reserve(need.saturating_sub(self.buf.len()));
        let n = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut self.stream),
            cx,
            &mut self.buf
        ))?;
        Poll::Ready(filled(n))
    }
}

/// A read of nothing is the end of the stream, in the middle of a frame or before one: the
/// peer left without a close.
fn filled(n: usize) -> Result<(), WebSocketError> {
    if n == 0 {
        Err(WebSocketError::UnexpectedEOF)
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
