//! Channel frames: one WebSocket message carries one stream id and its bytes.

use base64::Engine as _;
use std::borrow::Cow;

/// Stream ids (docs/protocol.md, "Streams").
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
    #[error("stream id byte {0:#04x} is not an ASCII digit, as {1} requires")]
    BadDigit(u8, Protocol),
    #[error("the payload of a {0} frame is not valid base64")]
    BadBase64(Protocol),
    #[error("a close signal must be exactly [255, stream id], got {0} bytes")]
    BadCloseSignal(usize),
    #[error("close signals (stream 255) exist only in v5.channel.k8s.io, not {0}")]
    CloseSignalNotSupported(Protocol),
}

/// Decodes one WebSocket message.
///
/// The WebSocket frame type does not matter, as it does not in kube-apiserver: its
/// `wsstream.Conn` (k8s.io/apimachinery/pkg/util/httpstream/wsstream/conn.go, `handle`) receives
/// every message with `websocket.Message.Receive(ws, &data)` into a `[]byte`, whatever its
/// opcode, takes `data[0]` as the channel (minus `'0'` for the base64 protocols) and base64-decodes
/// the rest for those. So a **text** message on `channel.k8s.io` … `v5.channel.k8s.io` is a channel
/// frame byte for byte (the official Python client sends `write_stdin("...")` and resizes given
/// as `str` that way, first character `chr(channel)`), and a binary message on a base64 protocol
/// is decoded like a text one. `_is_text` is accepted so callers can pass what they read; it is
/// deliberately not used.
pub fn decode<'a>(
    protocol: Protocol,
    _is_text: bool,
    payload: &'a [u8],
) -> Result<ChannelFrame<'a>, FrameError> {
    let (&first, rest) = payload.split_first().ok_or(FrameError::Empty)?;
    if protocol.is_base64() {
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
        // The same checks whatever the frame type.
        assert_eq!(
            decode(Protocol::V4Base64, false, b"x"),
            Err(FrameError::BadDigit(b'x', Protocol::V4Base64))
        );
        assert_eq!(
            decode(Protocol::Base64, false, b"0%%%"),
            Err(FrameError::BadBase64(Protocol::Base64))
        );
        assert_eq!(decode(Protocol::Base64, true, b""), Err(FrameError::Empty));
    }

    fn data(stream: u8, data: &[u8]) -> Result<ChannelFrame<'_>, FrameError> {
        Ok(ChannelFrame::Data {
            stream,
            data: Cow::Borrowed(data),
        })
    }

    /// kube-apiserver ignores the frame type: every case decodes the same as text and as binary.
    #[test]
    fn frame_type_does_not_matter() {
        type Case = (
            &'static str,
            Protocol,
            &'static [u8],
            Result<ChannelFrame<'static>, FrameError>,
        );
        let cases: &[Case] = &[
            // Python: resp.write_stdin("ls\n") on v5 is the text message "\x00ls\n".
            (
                "text stdin on v5",
                Protocol::V5,
                b"\x00ls\n",
                data(STDIN, b"ls\n"),
            ),
            (
                "text stdin with UTF-8 on v5",
                Protocol::V5,
                "\u{0}zoë".as_bytes(),
                data(STDIN, "zoë".as_bytes()),
            ),
            // Python: resp.write_channel(4, json.dumps(...)) on v4 is "\x04{...}" as text.
            (
                "text resize on v4",
                Protocol::V4,
                b"\x04{\"Width\": 100, \"Height\": 33}",
                data(RESIZE, b"{\"Width\": 100, \"Height\": 33}"),
            ),
            (
                "text on channel.k8s.io",
                Protocol::V1,
                b"\x00x",
                data(STDIN, b"x"),
            ),
            (
                "empty text frame on v5",
                Protocol::V5,
                b"\x01",
                data(STDOUT, b""),
            ),
            (
                "text close signal on v5",
                Protocol::V5,
                &[255, 0],
                Ok(ChannelFrame::Close { stream: STDIN }),
            ),
            (
                "close signal still refused on v4",
                Protocol::V4,
                &[255, 0],
                Err(FrameError::CloseSignalNotSupported(Protocol::V4)),
            ),
            (
                "bad close signal still refused",
                Protocol::V5,
                &[255, 0, 1],
                Err(FrameError::BadCloseSignal(3)),
            ),
            (
                "empty still refused",
                Protocol::V5,
                b"",
                Err(FrameError::Empty),
            ),
            (
                "base64 on base64.channel.k8s.io",
                Protocol::Base64,
                b"0aGk=",
                Ok(ChannelFrame::Data {
                    stream: STDIN,
                    data: Cow::Owned(b"hi".to_vec()),
                }),
            ),
            (
                "base64 resize on v4.base64",
                Protocol::V4Base64,
                b"4eyJXaWR0aCI6MSwiSGVpZ2h0IjoyfQ==",
                Ok(ChannelFrame::Data {
                    stream: RESIZE,
                    data: Cow::Owned(br#"{"Width":1,"Height":2}"#.to_vec()),
                }),
            ),
            (
                "base64 digit still checked",
                Protocol::V4Base64,
                b"\x000",
                Err(FrameError::BadDigit(0, Protocol::V4Base64)),
            ),
        ];
        for (name, protocol, payload, want) in cases {
            for is_text in [true, false] {
                assert_eq!(
                    &decode(*protocol, is_text, payload),
                    want,
                    "{name} (sent as {})",
                    if is_text { "text" } else { "binary" }
                );
            }
        }
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
