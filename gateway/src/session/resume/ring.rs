//! A resumable session's output, addressed by byte offset. Pure.
//!
//! Output is kept as it was cut into pieces (each with its stream), from the oldest byte the
//! page may still need to the newest. What may be dropped to make room is the caller's call
//! ([`Ring::push`]'s `evictable`): below the page's acknowledged offset only (nothing lost),
//! or below what was sent (an `overwrite` buffer while attached), or anything (an `overwrite`
//! buffer nobody is attached to). A resume from an offset the ring no longer holds learns how
//! many bytes it skipped ([`Ring::replay_from`]).

use crate::tap::Stream;
use bytes::Bytes;
use std::collections::VecDeque;

/// The largest piece one push may carry: a message larger than this is pushed in pieces, so
/// any message fits a ring of at least this size however large the message limit is.
pub const PIECE: usize = 16 << 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub offset: u64,
    pub stream: Stream,
    pub data: Bytes,
}

impl Piece {
    fn end(&self) -> u64 {
        self.offset + self.data.len() as u64
    }
}

#[derive(Debug)]
pub struct Ring {
    capacity: usize,
    pieces: VecDeque<Piece>,
    held: usize,
    /// Offset after the newest byte: output produced so far.
    end: u64,
    /// What the page said it rendered.
    acked: u64,
    /// Bytes dropped before the page acknowledged them (an `overwrite` buffer).
    overwritten: u64,
}

/// No room: the push must wait until the page acknowledges output (or more becomes
/// evictable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// Where a resume from some offset continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resumption {
    /// The offset output continues from.
    pub from: u64,
    /// Bytes between the page's offset and `from` that are gone.
    pub gap: u64,
}

/// A resume from an offset past what was produced: not a page that rendered this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeyondEnd {
    pub end: u64,
}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        Ring {
            capacity: capacity.max(PIECE),
            pieces: VecDeque::new(),
            held: 0,
            end: 0,
            acked: 0,
            overwritten: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Output produced so far (the next byte's offset).
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The oldest offset still held.
    pub fn start(&self) -> u64 {
        self.pieces.front().map_or(self.end, |p| p.offset)
    }

    pub fn held(&self) -> usize {
        self.held
    }

    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Bytes dropped before the page acknowledged them, so far.
    pub fn overwritten(&self) -> u64 {
        self.overwritten
    }

    /// Appends `data` (at most [`PIECE`] bytes), dropping the oldest bytes below `evictable`
    /// as far as needed. On `Full` nothing changed.
    pub fn push(&mut self, stream: Stream, data: &[u8], evictable: u64) -> Result<(), Full> {
        debug_assert!(data.len() <= PIECE, "push pieces of at most PIECE bytes");
        if data.is_empty() {
            return Ok(());
        }
        let need = (self.held + data.len()).saturating_sub(self.capacity);
        if need > 0 && self.evictable_bytes(evictable) < need {
            return Err(Full);
        }
        while self.held + data.len() > self.capacity {
            let Some(front) = self.pieces.front_mut() else {
                break;
            };
            // Whole pieces while they fit under the limit; the rest of the need from the
            // front of the next (a cheap slice).
            let excess = self.held + data.len() - self.capacity;
            let cut = excess.min(front.data.len());
            let lost_from = front.offset.max(self.acked);
            let lost_to = front.offset + cut as u64;
            self.overwritten += lost_to.saturating_sub(lost_from);
            if cut == front.data.len() {
                self.pieces.pop_front();
            } else {
                front.data = front.data.slice(cut..);
                front.offset += cut as u64;
            }
            self.held -= cut;
        }
        self.pieces.push_back(Piece {
            offset: self.end,
            stream,
            data: Bytes::copy_from_slice(data),
        });
        self.held += data.len();
        self.end += data.len() as u64;
        Ok(())
    }

    /// Bytes held below `limit`.
    fn evictable_bytes(&self, limit: u64) -> usize {
        let limit = limit.min(self.end);
        limit.saturating_sub(self.start()) as usize
    }

    /// The page rendered everything before `offset`: that output is released. Offsets move
    /// forward only and never past what was produced.
    pub fn ack(&mut self, offset: u64) {
        let offset = offset.min(self.end);
        if offset <= self.acked {
            return;
        }
        self.acked = offset;
        while let Some(front) = self.pieces.front_mut() {
            if front.end() <= offset {
                self.held -= front.data.len();
                self.pieces.pop_front();
            } else {
                if front.offset < offset {
                    let cut = (offset - front.offset) as usize;
                    front.data = front.data.slice(cut..);
                    front.offset = offset;
                    self.held -= cut;
                }
                break;
            }
        }
    }

    /// Where a page that rendered up to `offset` continues, and how much it missed.
    pub fn replay_from(&self, offset: u64) -> Result<Resumption, BeyondEnd> {
        if offset > self.end {
            return Err(BeyondEnd { end: self.end });
        }
        let start = self.start();
        Ok(if offset >= start {
            Resumption {
                from: offset,
                gap: 0,
            }
        } else {
            Resumption {
                from: start,
                gap: start - offset,
            }
        })
    }

    /// The held output from `offset` on, as a piece starting exactly there (or the next one
    /// held, should `offset` be gone), or `None` when nothing is held at or after it.
    pub fn next_from(&self, offset: u64) -> Option<Piece> {
        let i = self.pieces.partition_point(|p| p.end() <= offset);
        let p = self.pieces.get(i)?;
        if p.offset >= offset {
            return Some(p.clone());
        }
        let cut = (offset - p.offset) as usize;
        Some(Piece {
            offset,
            stream: p.stream,
            data: p.data.slice(cut..),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: &Ring, from: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = from;
        while let Some(p) = r.next_from(at) {
            assert_eq!(p.offset, at, "contiguous");
            out.extend_from_slice(&p.data);
            at = p.offset + p.data.len() as u64;
        }
        out
    }

    #[test]
    fn backpressure_keeps_everything_until_acknowledged() {
        let mut r = Ring::new(PIECE);
        let half = vec![b'a'; PIECE / 2];
        r.push(Stream::Stdout, &half, 0).expect("fits");
        r.push(Stream::Stdout, &half, 0).expect("fits");
        assert_eq!(r.push(Stream::Stdout, b"x", r.acked()), Err(Full));
        assert_eq!(r.end(), PIECE as u64, "a refused push changes nothing");
        r.ack(10);
        assert_eq!(r.held(), PIECE - 10);
        r.push(Stream::Stdout, b"xyz", r.acked())
            .expect("room after the ack");
        assert_eq!(r.overwritten(), 0, "nothing unacknowledged was dropped");
        assert_eq!(text(&r, 10).len(), PIECE - 10 + 3);
        assert_eq!(&text(&r, PIECE as u64)[..], b"xyz");
    }

    #[test]
    fn overwrite_drops_the_oldest_and_a_resume_learns_the_gap() {
        let mut r = Ring::new(PIECE);
        for i in 0..40u8 {
            let piece = vec![i; 1000];
            r.push(Stream::Stdout, &piece, u64::MAX).expect("evicts");
        }
        assert_eq!(r.held(), PIECE);
        assert_eq!(r.end(), 40_000);
        assert_eq!(r.start(), 40_000 - PIECE as u64);
        assert_eq!(r.overwritten(), 40_000 - PIECE as u64);
        let at = r.replay_from(100).expect("within what was produced");
        assert_eq!(at.from, r.start());
        assert_eq!(at.gap, r.start() - 100);
        // What is held is exactly the newest bytes.
        let tail = text(&r, at.from);
        assert_eq!(tail.len(), PIECE);
        assert_eq!(*tail.last().expect("bytes"), 39);
        assert_eq!(
            r.replay_from(40_000),
            Ok(Resumption {
                from: 40_000,
                gap: 0
            })
        );
        assert_eq!(r.replay_from(40_001), Err(BeyondEnd { end: 40_000 }));
    }

    #[test]
    fn eviction_stops_at_the_limit_given() {
        let mut r = Ring::new(PIECE);
        r.push(Stream::Stdout, &vec![1; PIECE], u64::MAX)
            .expect("fits");
        // Only 100 bytes were sent: the rest may not be dropped for an attached page.
        assert_eq!(r.push(Stream::Stdout, &[2; 200], 100), Err(Full));
        r.push(Stream::Stdout, &[2; 100], 100)
            .expect("exactly what may go");
        assert_eq!(r.start(), 100);
    }

    #[test]
    fn offsets_in_the_middle_of_pieces_and_both_streams() {
        let mut r = Ring::new(PIECE);
        r.push(Stream::Stdout, b"hello ", 0).expect("fits");
        r.push(Stream::Stderr, b"world", 0).expect("fits");
        let p = r.next_from(3).expect("held");
        assert_eq!(
            (p.offset, p.stream, &p.data[..]),
            (3, Stream::Stdout, &b"lo "[..])
        );
        let p = r.next_from(6).expect("held");
        assert_eq!((p.stream, &p.data[..]), (Stream::Stderr, &b"world"[..]));
        assert_eq!(r.next_from(11), None);
        // Acks are clamped and never go back.
        r.ack(100);
        assert_eq!(r.acked(), 11);
        r.ack(2);
        assert_eq!(r.acked(), 11);
        assert_eq!(r.held(), 0);
    }
}
