//! Channel frames: one WebSocket message carries one stream id and its bytes.

use base64::Engine as _;
use std::borrow::Cow;

/// Stream ids (PROTOCOL.md, "Streams").
pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const STATUS: u8 = 3;
pub const RESIZE: u8 = 4;
/// v5: a binary frame `[255, id]` half-closes stream `id`.
pub const CLOSE_SIGNAL: u8 = 255;

use crate::Protocol;

/// A decoded channel message.
#[derive(Debug, PartialEq, Eq)]
pub enum ChannelFrame<'a> {
    /// Bytes on a stream. Empty data is legal (the "ready" frame at open).
    Data { stream: u8, data: Cow<'a, [u8]> },
    /// v5 close signal for a stream.
    Close { stream: u8 },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("empty WebSocket message: a channel frame needs at least a stream id")]
    Empty,
    #[error("a {0} message is not allowed with {1}: it uses {2} frames")]
    WrongFrameType(&'static str, Protocol, &'static str),
    #[error("stream id byte {0:#04x} is not an ASCII digit, as {1} requires")]
    BadDigit(u8, Protocol),
    #[error("the payload of a {0} frame is not valid base64")]
    BadBase64(Protocol),
    #[error("a close signal must be exactly [255, stream id], got {0} bytes")]
    BadCloseSignal(usize),
    #[error("close signals (stream 255) exist only in v5.channel.k8s.io, not {0}")]
    CloseSignalNotSupported(Protocol),
}

/// Decodes one WebSocket message (`is_text` tells whether it was a text frame).
pub fn decode<'a>(
    protocol: Protocol,
    is_text: bool,
    payload: &'a [u8],
) -> Result<ChannelFrame<'a>, FrameError> {
    let (&first, rest) = payload.split_first().ok_or(FrameError::Empty)?;
    if protocol.is_base64() {
        if !is_text {
            return Err(FrameError::WrongFrameType("binary", protocol, "text"));
        }
        let stream = first
            .checked_sub(b'0')
            .filter(|d| *d <= 9)
            .ok_or(FrameError::BadDigit(first, protocol))?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| FrameError::BadBase64(protocol))?;
        return Ok(ChannelFrame::Data {
            stream,
            data: Cow::Owned(data),
        });
    }
    if is_text {
        return Err(FrameError::WrongFrameType("text", protocol, "binary"));
    }
    if first == CLOSE_SIGNAL {
        if !protocol.has_close_signal() {
            return Err(FrameError::CloseSignalNotSupported(protocol));
        }
        return match rest {
            [stream] => Ok(ChannelFrame::Close { stream: *stream }),
            _ => Err(FrameError::BadCloseSignal(payload.len())),
        };
    }
    Ok(ChannelFrame::Data {
        stream: first,
        data: Cow::Borrowed(rest),
    })
}

/// An encoded message ready to be sent: whether it is a text frame, and its payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Encoded {
    pub text: bool,
    pub payload: Vec<u8>,
}

/// Encodes bytes on a stream in the wire form of `protocol`.
pub fn encode(protocol: Protocol, stream: u8, data: &[u8]) -> Encoded {
    if protocol.is_base64() {
        let engine = &base64::engine::general_purpose::STANDARD;
        let mut payload =
            Vec::with_capacity(1 + base64::encoded_len(data.len(), true).unwrap_or(0));
        payload.push(b'0' + stream);
        let mut text = String::new();
        engine.encode_string(data, &mut text);
        payload.extend_from_slice(text.as_bytes());
        Encoded {
            text: true,
            payload,
        }
    } else {
        let mut payload = Vec::with_capacity(1 + data.len());
        payload.push(stream);
        payload.extend_from_slice(data);
        Encoded {
            text: false,
            payload,
        }
    }
}

/// The v5 close signal for `stream`, or `None` where the protocol has no such signal.
pub fn close_signal(protocol: Protocol, stream: u8) -> Option<Encoded> {
    protocol.has_close_signal().then(|| Encoded {
        text: false,
        payload: vec![CLOSE_SIGNAL, stream],
    })
}

/// A terminal size on the resize stream: `{"Width":80,"Height":24}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TerminalSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

impl TerminalSize {
    /// Parses a resize payload (without the stream id).
    pub fn parse(data: &[u8]) -> Result<TerminalSize, serde_json::Error> {
        serde_json::from_slice(data)
    }

    pub fn to_json(self) -> Vec<u8> {
        format!(r#"{{"Width":{},"Height":{}}}"#, self.width, self.height).into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_round_trip() {
        let e = encode(Protocol::V5, STDOUT, &[0, 255, 10]);
        assert_eq!(
            e,
            Encoded {
                text: false,
                payload: vec![1, 0, 255, 10]
            }
        );
        let d = decode(Protocol::V5, false, &e.payload).unwrap();
        assert_eq!(
            d,
            ChannelFrame::Data {
                stream: 1,
                data: Cow::Borrowed(&[0, 255, 10][..])
            }
        );
    }

    #[test]
    fn empty_ready_frame() {
        assert_eq!(
            decode(Protocol::V4, false, &[1]).unwrap(),
            ChannelFrame::Data {
                stream: 1,
                data: Cow::Borrowed(&[][..])
            }
        );
        assert_eq!(encode(Protocol::Base64, STDOUT, b"").payload, b"1");
        assert_eq!(decode(Protocol::V4, false, &[]), Err(FrameError::Empty));
    }

    #[test]
    fn base64_round_trip() {
        let e = encode(Protocol::V4Base64, STDERR, "héllo".as_bytes());
        assert!(e.text);
        assert_eq!(e.payload, b"2aMOpbGxv");
        let d = decode(Protocol::V4Base64, true, &e.payload).unwrap();
        assert_eq!(
            d,
            ChannelFrame::Data {
                stream: 2,
                data: Cow::Owned("héllo".as_bytes().to_vec())
            }
        );
    }

    #[test]
    fn base64_rejections() {
        assert_eq!(
            decode(Protocol::Base64, true, b"x"),
            Err(FrameError::BadDigit(b'x', Protocol::Base64))
        );
        assert_eq!(
            decode(Protocol::Base64, true, b"0%%%"),
            Err(FrameError::BadBase64(Protocol::Base64))
        );
        assert!(matches!(
            decode(Protocol::Base64, false, b"0"),
            Err(FrameError::WrongFrameType(..))
        ));
        assert!(matches!(
            decode(Protocol::V5, true, b"0"),
            Err(FrameError::WrongFrameType(..))
        ));
    }

    #[test]
    fn close_signal_only_in_v5() {
        assert_eq!(
            decode(Protocol::V5, false, &[255, 0]),
            Ok(ChannelFrame::Close { stream: 0 })
        );
        assert_eq!(
            decode(Protocol::V5, false, &[255]),
            Err(FrameError::BadCloseSignal(1))
        );
        assert_eq!(
            decode(Protocol::V5, false, &[255, 0, 0]),
            Err(FrameError::BadCloseSignal(3))
        );
        assert_eq!(
            decode(Protocol::V4, false, &[255, 0]),
            Err(FrameError::CloseSignalNotSupported(Protocol::V4))
        );
        assert_eq!(close_signal(Protocol::V5, 0).unwrap().payload, vec![255, 0]);
        assert!(close_signal(Protocol::V4, 0).is_none());
    }

    #[test]
    fn resize_json() {
        let s = TerminalSize::parse(br#"{"Width":132,"Height":43}"#).unwrap();
        assert_eq!(
            s,
            TerminalSize {
                width: 132,
                height: 43
            }
        );
        assert_eq!(TerminalSize::parse(&s.to_json()).unwrap(), s);
        assert!(TerminalSize::parse(b"{\"Width\":-1,\"Height\":2}").is_err());
        assert!(TerminalSize::parse(b"nope").is_err());
    }
}
