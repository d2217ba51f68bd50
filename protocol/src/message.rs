//! Assembling WebSocket messages from data frames, bounded.
//!
//! RFC 6455 lets a message arrive in fragments: a text or binary frame with FIN clear, then
//! continuation frames until one has FIN set. A reader that only bounds each frame (as
//! fastwebsockets' `FragmentCollector` does) lets a peer grow one message without end: a FIN=0
//! binary frame followed by endless 1 MiB continuations. [`Assembler`] bounds the message: it
//! never holds more than its limit, checks before it stores, and forgets everything on error.
//!
//! Pure: the caller reads frames with whatever WebSocket library it uses, passes data frames
//! (never control frames) to [`Assembler::push`], and closes with [`AssembleError::close_code`]
//! when told to.

/// The opcode of a data frame as read off the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    Text,
    Binary,
    Continuation,
}

/// What a complete message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Binary,
}

/// What a frame did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The frame is a whole message by itself (FIN set, nothing pending): use its payload as is
    /// (no copy).
    Whole(Kind),
    /// A fragment was stored; the message is not complete yet.
    Pending,
    /// This continuation completed a fragmented message: the assembled bytes.
    Assembled(Kind, Vec<u8>),
}

/// Why a message was refused. After any of these the connection is to be failed (RFC 6455 §7.1.7)
/// with [`AssembleError::close_code`]; the assembler holds nothing any more.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AssembleError {
    /// The message (one frame, or the running total of its fragments) is over the limit: close 1009.
    #[error("a WebSocket message exceeded the {limit} byte limit")]
    TooBig { limit: usize },
    /// A continuation frame without a started message: close 1002.
    #[error("a WebSocket continuation frame arrived without a fragmented message to continue")]
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is pending: close 1002.
    #[error(
        "a new WebSocket data frame arrived before the fragmented message before it was finished"
    )]
    Interleaved,
    /// An assembled text message that is not UTF-8: close 1007.
    #[error("a fragmented WebSocket text message is not valid UTF-8")]
    InvalidUtf8,
}

/// RFC 6455 §7.4.1 status codes.
const PROTOCOL_ERROR: u16 = 1002;
const INVALID_PAYLOAD: u16 = 1007;
const MESSAGE_TOO_BIG: u16 = 1009;

impl AssembleError {
    /// The close status to fail the connection with (RFC 6455 §7.4.1).
    pub fn close_code(&self) -> u16 {
        match self {
            AssembleError::TooBig { .. } => MESSAGE_TOO_BIG,
            AssembleError::UnexpectedContinuation | AssembleError::Interleaved => PROTOCOL_ERROR,
            AssembleError::InvalidUtf8 => INVALID_PAYLOAD,
        }
    }
}

/// Collects the fragments of one message at a time, never holding more than `limit` bytes.
#[derive(Debug)]
pub struct Assembler {
    limit: usize,
    pending: Option<(Kind, Vec<u8>)>,
}

impl Assembler {
    /// An assembler for messages of at most `limit` bytes (a message of exactly `limit` passes).
    pub fn new(limit: usize) -> Self {
        Assembler {
            limit,
            pending: None,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Feeds one data frame; control frames never come here (they may sit between fragments and
    /// change nothing here).
    ///
    /// Whole text frames are left to the caller's UTF-8 check (a WebSocket library checks FIN
    /// text frames itself); an assembled text message is checked here when it completes.
    pub fn push(
        &mut self,
        opcode: Opcode,
        fin: bool,
        payload: &[u8],
    ) -> Result<Step, AssembleError> {
        // Taken, so that every error below leaves nothing behind.
        let pending = self.pending.take();
        let too_big = AssembleError::TooBig { limit: self.limit };
        match (opcode, pending) {
            (Opcode::Continuation, None) => Err(AssembleError::UnexpectedContinuation),
            (Opcode::Text | Opcode::Binary, Some(_)) => Err(AssembleError::Interleaved),
            (Opcode::Text | Opcode::Binary, None) => {
                let kind = if opcode == Opcode::Text {
                    Kind::Text
                } else {
                    Kind::Binary
                };
                if payload.len() > self.limit {
                    return Err(too_big);
                }
                if fin {
                    return Ok(Step::Whole(kind));
                }
                let mut buf = Vec::new();
                append(&mut buf, payload, self.limit);
                self.pending = Some((kind, buf));
                Ok(Step::Pending)
            }
            (Opcode::Continuation, Some((kind, mut buf))) => {
                // Checked before storing anything: the buffer never passes the limit.
                match buf.len().checked_add(payload.len()) {
                    Some(total) if total <= self.limit => {}
                    _ => return Err(too_big),
                }
                append(&mut buf, payload, self.limit);
                if !fin {
                    self.pending = Some((kind, buf));
                    return Ok(Step::Pending);
                }
                if kind == Kind::Text && std::str::from_utf8(&buf).is_err() {
                    return Err(AssembleError::InvalidUtf8);
                }
                Ok(Step::Assembled(kind, buf))
            }
        }
    }

    /// Bytes held for a pending message (for tests and memory accounting).
    pub fn pending_len(&self) -> usize {
        self.pending.as_ref().map_or(0, |(_, b)| b.len())
    }

    /// Bytes allocated for a pending message: never more than the limit, nor more than twice
    /// what is held (for tests and memory accounting).
    pub fn pending_capacity(&self) -> usize {
        self.pending.as_ref().map_or(0, |(_, b)| b.capacity())
    }

    /// Whether a fragmented message is in progress.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }
}

/// Appends `payload` (the caller checked `buf.len() + payload.len() <= limit`), growing the
/// buffer by doubling as `Vec` does, but never past `limit` and never ahead of what arrived by
/// more than what is already held: nothing is reserved for bytes a peer only announces.
fn append(buf: &mut Vec<u8>, payload: &[u8], limit: usize) {
    let needed = buf.len() + payload.len();
    if needed > buf.capacity() {
        let target = needed.max(buf.capacity().saturating_mul(2).min(limit));
        buf.reserve_exact(target - buf.len());
    }
    buf.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use Opcode::{Binary, Continuation, Text};

    const MIB: usize = 1 << 20;

    /// What one pushed frame must give.
    #[derive(Debug)]
    enum Want {
        Whole(Kind),
        Pending,
        Assembled(Kind, &'static [u8]),
        Err(AssembleError),
    }

    /// One frame fed in, and what it must give.
    type Push<'a> = (Opcode, bool, &'a [u8], Want);

    fn check(name: &str, limit: usize, frames: &[Push]) {
        let mut a = Assembler::new(limit);
        assert_eq!(a.limit(), limit);
        for (i, (op, fin, payload, want)) in frames.iter().enumerate() {
            let got = a.push(*op, *fin, payload);
            let ok = match (&got, want) {
                (Ok(Step::Whole(k)), Want::Whole(w)) => k == w,
                (Ok(Step::Pending), Want::Pending) => true,
                (Ok(Step::Assembled(k, b)), Want::Assembled(wk, wb)) => k == wk && b == wb,
                (Err(e), Want::Err(w)) => e == w,
                _ => false,
            };
            assert!(ok, "{name}: frame {i}: got {got:?}, want {want:?}");
            assert!(
                a.pending_len() <= limit,
                "{name}: frame {i}: over the limit"
            );
            assert!(
                a.pending_capacity() <= limit,
                "{name}: frame {i}: reserved past the limit"
            );
            if !matches!(got, Ok(Step::Pending)) {
                assert_eq!(a.pending_len(), 0, "{name}: frame {i}: still holds bytes");
                assert_eq!(
                    a.pending_capacity(),
                    0,
                    "{name}: frame {i}: still holds memory"
                );
                assert!(!a.is_pending(), "{name}: frame {i}");
            }
        }
    }

    #[test]
    fn table() {
        use Want::*;
        let too_big = |limit| Err(AssembleError::TooBig { limit });
        let cases: &[(&str, usize, &[Push])] = &[
            (
                "whole binary",
                8,
                &[(Binary, true, b"\x00abc", Whole(Kind::Binary))],
            ),
            (
                "whole text",
                8,
                &[(Text, true, b"\x00abc", Whole(Kind::Text))],
            ),
            (
                "empty whole",
                0,
                &[(Binary, true, b"", Whole(Kind::Binary))],
            ),
            (
                "whole exactly at the limit",
                4,
                &[(Binary, true, b"1234", Whole(Kind::Binary))],
            ),
            (
                "whole one over the limit",
                4,
                &[(Binary, true, b"12345", too_big(4))],
            ),
            (
                "two fragments",
                8,
                &[
                    (Binary, false, b"ab", Pending),
                    (Continuation, true, b"cd", Assembled(Kind::Binary, b"abcd")),
                ],
            ),
            (
                "many fragments, empty ones too",
                8,
                &[
                    (Text, false, b"", Pending),
                    (Continuation, false, b"a", Pending),
                    (Continuation, false, b"", Pending),
                    (Continuation, false, b"bc", Pending),
                    (Continuation, true, b"", Assembled(Kind::Text, b"abc")),
                ],
            ),
            (
                "fragments exactly at the limit",
                4,
                &[
                    (Binary, false, b"12", Pending),
                    (Continuation, false, b"3", Pending),
                    (Continuation, true, b"4", Assembled(Kind::Binary, b"1234")),
                ],
            ),
            (
                "fragments one over the limit",
                4,
                &[
                    (Binary, false, b"12", Pending),
                    (Continuation, false, b"3", Pending),
                    (Continuation, true, b"45", too_big(4)),
                ],
            ),
            (
                "a non-final fragment over the limit",
                4,
                &[
                    (Binary, false, b"12", Pending),
                    (Continuation, false, b"345", too_big(4)),
                ],
            ),
            (
                "a first fragment over the limit",
                4,
                &[(Text, false, b"12345", too_big(4))],
            ),
            (
                "continuation without a start",
                8,
                &[(
                    Continuation,
                    true,
                    b"x",
                    Err(AssembleError::UnexpectedContinuation),
                )],
            ),
            (
                "non-final continuation without a start",
                8,
                &[(
                    Continuation,
                    false,
                    b"x",
                    Err(AssembleError::UnexpectedContinuation),
                )],
            ),
            (
                "continuation after a whole message",
                8,
                &[
                    (Binary, true, b"x", Whole(Kind::Binary)),
                    (
                        Continuation,
                        true,
                        b"y",
                        Err(AssembleError::UnexpectedContinuation),
                    ),
                ],
            ),
            (
                "continuation after an assembled message",
                8,
                &[
                    (Binary, false, b"x", Pending),
                    (Continuation, true, b"y", Assembled(Kind::Binary, b"xy")),
                    (
                        Continuation,
                        true,
                        b"z",
                        Err(AssembleError::UnexpectedContinuation),
                    ),
                ],
            ),
            (
                "binary interleaved into a pending message",
                8,
                &[
                    (Binary, false, b"x", Pending),
                    (Binary, true, b"y", Err(AssembleError::Interleaved)),
                ],
            ),
            (
                "text interleaved into a pending binary message",
                8,
                &[
                    (Binary, false, b"x", Pending),
                    (Text, false, b"y", Err(AssembleError::Interleaved)),
                ],
            ),
            (
                "after an error a new message starts clean",
                8,
                &[
                    (Binary, false, b"x", Pending),
                    (Text, true, b"y", Err(AssembleError::Interleaved)),
                    (
                        Continuation,
                        true,
                        b"z",
                        Err(AssembleError::UnexpectedContinuation),
                    ),
                    (Text, true, b"ok", Whole(Kind::Text)),
                ],
            ),
            (
                "after too big a new message starts clean",
                2,
                &[
                    (Binary, false, b"xy", Pending),
                    (Continuation, false, b"z", too_big(2)),
                    (
                        Continuation,
                        true,
                        b"z",
                        Err(AssembleError::UnexpectedContinuation),
                    ),
                    (Binary, false, b"a", Pending),
                    (Continuation, true, b"b", Assembled(Kind::Binary, b"ab")),
                ],
            ),
            (
                "UTF-8 split across fragments",
                16,
                &[
                    // "zoë 用" with ë (c3 ab) and 用 (e7 94 a8) split between frames.
                    (Text, false, b"\x00zo\xc3", Pending),
                    (Continuation, false, b"\xab \xe7", Pending),
                    (Continuation, false, b"\x94", Pending),
                    (
                        Continuation,
                        true,
                        b"\xa8",
                        Assembled(Kind::Text, "\u{0}zoë 用".as_bytes()),
                    ),
                ],
            ),
            (
                "invalid UTF-8 in an assembled text message",
                16,
                &[
                    (Text, false, b"ab", Pending),
                    (Continuation, true, b"\xff", Err(AssembleError::InvalidUtf8)),
                ],
            ),
            (
                "a text message cut inside a character",
                16,
                &[
                    (Text, false, b"z\xc3", Pending),
                    (Continuation, true, b"", Err(AssembleError::InvalidUtf8)),
                ],
            ),
            (
                "binary is never checked for UTF-8",
                16,
                &[
                    (Binary, false, b"\xff", Pending),
                    (
                        Continuation,
                        true,
                        b"\xc3",
                        Assembled(Kind::Binary, b"\xff\xc3"),
                    ),
                ],
            ),
        ];
        for (name, limit, frames) in cases {
            check(name, *limit, frames);
        }
    }

    #[test]
    fn close_codes() {
        assert_eq!(AssembleError::TooBig { limit: 1 }.close_code(), 1009);
        assert_eq!(AssembleError::UnexpectedContinuation.close_code(), 1002);
        assert_eq!(AssembleError::Interleaved.close_code(), 1002);
        assert_eq!(AssembleError::InvalidUtf8.close_code(), 1007);
        assert_eq!(
            AssembleError::TooBig { limit: 4096 }.to_string(),
            "a WebSocket message exceeded the 4096 byte limit"
        );
    }

    /// The attack fastwebsockets' collectors let through: FIN=0, then endless 1 MiB
    /// continuations. With a 1 MiB limit the second fragment already fails, and nothing is
    /// ever held past the limit.
    #[test]
    fn endless_continuations_fail_as_soon_as_the_total_passes_the_limit() {
        let chunk = vec![7u8; MIB];
        for (limit, first) in [(MIB, MIB), (MIB, 1), (4 * MIB, MIB), (4 * MIB + 1, MIB)] {
            let mut a = Assembler::new(limit);
            assert_eq!(a.push(Binary, false, &chunk[..first]), Ok(Step::Pending));
            let mut total = first;
            let mut failed_at = None;
            for i in 0..10_000 {
                match a.push(Continuation, false, &chunk) {
                    Ok(Step::Pending) => total += MIB,
                    Err(e) => {
                        assert_eq!(e, AssembleError::TooBig { limit });
                        failed_at = Some(i);
                        break;
                    }
                    other => panic!("limit {limit}: continuation {i}: {other:?}"),
                }
                assert!(a.pending_len() <= limit);
                assert!(a.pending_capacity() <= limit);
                assert_eq!(a.pending_len(), total);
            }
            // It fails on the first continuation that would take the total past the limit.
            let fits = (limit - first) / MIB;
            assert_eq!(
                failed_at,
                Some(fits),
                "limit {limit}, first fragment {first}"
            );
            assert!(total <= limit && total + MIB > limit);
            assert_eq!(a.pending_len(), 0);
            assert_eq!(a.pending_capacity(), 0);
        }
    }

    #[test]
    fn exactly_the_limit_in_many_fragments() {
        let limit = MIB;
        let mut a = Assembler::new(limit);
        let piece = vec![1u8; 4096];
        assert_eq!(a.push(Binary, false, &piece), Ok(Step::Pending));
        for _ in 1..limit / 4096 - 1 {
            assert_eq!(a.push(Continuation, false, &piece), Ok(Step::Pending));
            // Growth by doubling, but never more than twice what is held, nor past the limit.
            assert!(a.pending_capacity() <= 2 * a.pending_len());
        }
        match a.push(Continuation, true, &piece) {
            Ok(Step::Assembled(Kind::Binary, b)) => {
                assert_eq!(b.len(), limit);
                assert!(b.capacity() <= limit);
            }
            other => panic!("{other:?}"),
        }
        // One more byte would not have been taken.
        let mut a = Assembler::new(limit);
        assert_eq!(a.push(Binary, false, &vec![0u8; limit]), Ok(Step::Pending));
        assert_eq!(
            a.push(Continuation, true, b"x"),
            Err(AssembleError::TooBig { limit })
        );
    }

    /// The first fragment is stored as it arrived, not in a buffer of the limit's size.
    #[test]
    fn nothing_is_reserved_ahead() {
        let mut a = Assembler::new(64 * MIB);
        assert_eq!(a.push(Binary, false, b"\x00a"), Ok(Step::Pending));
        assert!(a.pending_capacity() < 64, "{}", a.pending_capacity());
        assert_eq!(a.push(Continuation, false, &[0u8; 1000]), Ok(Step::Pending));
        assert!(a.pending_capacity() <= 2 * 1002, "{}", a.pending_capacity());
    }

    /// A limit as large as memory: growth still follows what arrives.
    #[test]
    fn a_huge_limit_reserves_nothing_ahead() {
        let mut a = Assembler::new(usize::MAX);
        assert_eq!(a.push(Binary, false, b"ab"), Ok(Step::Pending));
        assert!(a.pending_capacity() <= 8);
        assert_eq!(
            a.push(Continuation, true, b"c"),
            Ok(Step::Assembled(Kind::Binary, b"abc".to_vec()))
        );
    }
}
