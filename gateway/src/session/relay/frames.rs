//! Translating one message between sub-protocols, or passing it through. Pure.
//!
//! Frames pass without re-encoding when both sides speak the same sub-protocol; otherwise
//! each is decoded and re-encoded ([`podgate_protocol::frame`]). Either way the frame goes out
//! with the frame type its protocol uses: kube-apiserver reads a message's bytes whatever its
//! type (the official Python client sends stdin and resizes as text frames on the binary
//! protocols), and the next hop should not have to be as lenient.

use crate::session::log_scope::session_log;
use fastwebsockets::{Frame, OpCode, Payload};
use podgate_protocol::Protocol;
use podgate_protocol::frame::{self, ChannelFrame};

/// What one reader makes of a data message.
pub enum Forward {
    /// The message to write to the other side.
    Frame(Frame<'static>),
    /// A v5 close signal for stdin towards a v4 cluster: the only way left is closing its
    /// socket (as a v4 client would).
    CloseUpstream,
    /// Nothing to forward: an empty or malformed message (logged), as kube-apiserver skips
    /// them.
    Drop,
}

/// The frame for bytes on `stream` in `protocol`'s wire form.
pub fn encoded(protocol: Protocol, stream: u8, data: &[u8]) -> Frame<'static> {
    let e = frame::encode(protocol, stream, data);
    let opcode = if e.text { OpCode::Text } else { OpCode::Binary };
    Frame::new(true, opcode, None, Payload::Owned(e.payload))
}

fn opcode_of(protocol: Protocol) -> OpCode {
    if protocol.is_base64() {
        OpCode::Text
    } else {
        OpCode::Binary
    }
}

/// Translates a whole message (`f`, already owned) from `from` to `to` and reports its stream
/// and payload to `seen` (close signals as stream 255 with the closed stream id).
pub fn relay_frame(
    f: Frame<'static>,
    from: Protocol,
    to: Protocol,
    seen: &mut impl FnMut(u8, &[u8]),
) -> Forward {
    let decoded = match frame::decode(from, f.opcode == OpCode::Text, &f.payload) {
        Ok(d) => d,
        Err(frame::FrameError::Empty) => return Forward::Drop,
        Err(e) => {
            session_log!(DEBUG, "dropping a malformed channel frame: {e}");
            return Forward::Drop;
        }
    };
    match &decoded {
        ChannelFrame::Data { stream, data } => seen(*stream, data),
        ChannelFrame::Close { stream } => seen(frame::CLOSE_SIGNAL, &[*stream]),
    }
    if from == to {
        drop(decoded);
        return Forward::Frame(Frame::new(true, opcode_of(to), None, f.payload));
    }
    match decoded {
        ChannelFrame::Data { stream, data } => Forward::Frame(encoded(to, stream, &data)),
        ChannelFrame::Close { stream } => match frame::close_signal(to, stream) {
            Some(e) => Forward::Frame(Frame::new(
                true,
                OpCode::Binary,
                None,
                Payload::Owned(e.payload),
            )),
            None if stream == frame::STDIN => Forward::CloseUpstream,
            None => Forward::Drop,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(p: &[u8]) -> Frame<'static> {
        Frame::new(true, OpCode::Binary, None, Payload::Owned(p.to_vec()))
    }

    fn text(p: &[u8]) -> Frame<'static> {
        Frame::new(true, OpCode::Text, None, Payload::Owned(p.to_vec()))
    }

    fn forwarded(out: Forward) -> Frame<'static> {
        match out {
            Forward::Frame(f) => f,
            Forward::CloseUpstream => panic!("expected a frame, got CloseUpstream"),
            Forward::Drop => panic!("expected a frame, got Drop"),
        }
    }

    #[test]
    fn same_protocol_passes_through_and_counts() {
        let mut seen = Vec::new();
        let f = forwarded(relay_frame(
            bin(&[1, b'h', b'i']),
            Protocol::V5,
            Protocol::V5,
            &mut |s, d: &[u8]| seen.push((s, d.len())),
        ));
        assert_eq!(&*f.payload, &[1, b'h', b'i']);
        assert_eq!(f.opcode, OpCode::Binary);
        assert_eq!(seen, [(1, 2)]);
    }

    #[test]
    fn text_messages_on_binary_protocols_are_channel_frames() {
        // The Python client's write_stdin("ls\n") and a str resize, on v4 and v5.
        for (from, to) in [
            (Protocol::V5, Protocol::V5),
            (Protocol::V4, Protocol::V4),
            (Protocol::V5, Protocol::V4),
        ] {
            let mut seen = Vec::new();
            let f = forwarded(relay_frame(
                text(b"\x00ls\n"),
                from,
                to,
                &mut |s, d: &[u8]| seen.push((s, d.to_vec())),
            ));
            assert_eq!(f.opcode, OpCode::Binary, "{from} -> {to}");
            assert_eq!(&*f.payload, b"\x00ls\n");
            assert_eq!(seen, [(0, b"ls\n".to_vec())]);
            let f = forwarded(relay_frame(
                text(b"\x04{\"Width\": 100, \"Height\": 33}"),
                from,
                to,
                &mut |_, _: &[u8]| {},
            ));
            assert_eq!(f.opcode, OpCode::Binary);
            assert_eq!(f.payload[0], 4);
        }
    }

    #[test]
    fn binary_to_base64_and_back() {
        let f = forwarded(relay_frame(
            bin(&[1, 0xff, 0]),
            Protocol::V4,
            Protocol::V4Base64,
            &mut |_, _: &[u8]| {},
        ));
        assert_eq!(f.opcode, OpCode::Text);
        assert_eq!(&*f.payload, b"1/wA=");
        let f = forwarded(relay_frame(
            text(b"0aGk="),
            Protocol::V4Base64,
            Protocol::V5,
            &mut |_, _: &[u8]| {},
        ));
        assert_eq!(&*f.payload, &[0, b'h', b'i']);
        assert_eq!(f.opcode, OpCode::Binary);
    }

    #[test]
    fn v5_stdin_close_to_v4_closes_the_upstream() {
        let none = &mut |_, _: &[u8]| {};
        assert!(matches!(
            relay_frame(bin(&[255, 0]), Protocol::V5, Protocol::V4, none),
            Forward::CloseUpstream
        ));
        assert!(matches!(
            relay_frame(bin(&[255, 0]), Protocol::V5, Protocol::V5, none),
            Forward::Frame(_)
        ));
        assert!(matches!(
            relay_frame(bin(&[]), Protocol::V5, Protocol::V5, none),
            Forward::Drop
        ));
        assert!(matches!(
            relay_frame(bin(&[255, 0, 0]), Protocol::V5, Protocol::V5, none),
            Forward::Drop
        ));
    }
}
