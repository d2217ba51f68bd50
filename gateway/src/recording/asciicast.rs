//! The asciicast v2 format (asciinema's): a JSON header line, then one JSON array per event,
//! `[seconds, code, data]`. Pure.
//!
//! Event data is a JSON string, so output is decoded as UTF-8 per stream, carrying a character
//! split across two frames into the next event instead of mangling it; bytes that are not
//! UTF-8 at all become U+FFFD, as asciinema's own recorder writes them.

use serde::Serialize;
use std::time::Duration;

/// podgate's own fields in the header, under the key `podgate`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Meta {
    pub recording_id: String,
    pub session_id: String,
    pub cluster: String,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub user: String,
    pub groups: Vec<String>,
    /// `browser` or `kubectl` (any other API client).
    pub client: &'static str,
    pub command: Vec<String>,
    pub tty: bool,
    /// Whether `"i"` events (stdin) are in the file.
    pub input: bool,
    /// The gateway replica that recorded it.
    pub replica: String,
}

/// The first line of a recording.
#[derive(Debug, Clone, Serialize)]
pub struct Header<'a> {
    pub version: u8,
    pub width: u16,
    pub height: u16,
    /// Unix seconds of the session's start.
    pub timestamp: u64,
    pub command: String,
    pub title: String,
    pub env: serde_json::Map<String, serde_json::Value>,
    pub podgate: &'a Meta,
}

impl<'a> Header<'a> {
    pub fn new(meta: &'a Meta, width: u16, height: u16, timestamp: u64) -> Header<'a> {
        Header {
            version: 2,
            width,
            height,
            timestamp,
            command: meta.command.join(" "),
            title: format!(
                "{}@{}/{}/{}",
                meta.user, meta.cluster, meta.namespace, meta.pod
            ),
            env: serde_json::Map::new(),
            podgate: meta,
        }
    }

    /// The header as one line, newline included.
    pub fn line(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// The event codes podgate writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Output (stdout and stderr).
    Output,
    /// Input (stdin), when input is recorded.
    Input,
    /// A resize, data `COLSxROWS`.
    Resize,
    /// A marker: a notice, a gap, stderr's start in a session without a terminal, the end.
    Marker,
}

impl Code {
    fn as_str(self) -> &'static str {
        match self {
            Code::Output => "o",
            Code::Input => "i",
            Code::Resize => "r",
            Code::Marker => "m",
        }
    }
}

/// Appends `[t, code, data]` and a newline to `out`.
pub fn event(out: &mut Vec<u8>, at: Duration, code: Code, data: &str) {
    use std::io::Write as _;
    let _ = write!(
        out,
        "[{}.{:06}, \"{}\", ",
        at.as_secs(),
        at.subsec_micros(),
        code.as_str()
    );
    json_string(out, data);
    out.extend_from_slice(b"]\n");
}

/// What a byte becomes inside a JSON string: 0 for itself, `u` for `\u00XX`, else the letter
/// after the backslash (as serde_json writes them).
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b'u';
        b += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// `data` as a JSON string, appended to `out`. Output is escaped on the recording's path for
/// every byte a session prints, so this is a plain table scan that copies runs, without the
/// generic serializer's machinery (about twice as fast on terminal output).
pub fn json_string(out: &mut Vec<u8>, data: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = data.as_bytes();
    out.reserve(bytes.len() + bytes.len() / 8 + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let e = ESCAPE[b as usize];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if e == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.push(b'\\');
            out.push(e);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Decodes one stream's bytes as UTF-8 across frame boundaries.
#[derive(Debug, Default, Clone)]
pub struct Utf8Carry {
    /// The start of a character whose rest is in the next frame (at most 3 bytes).
    pending: Vec<u8>,
}

impl Utf8Carry {
    /// The text of `data`, after what was carried over; an incomplete character at its end is
    /// kept for the next call.
    pub fn decode(&mut self, data: &[u8]) -> String {
        let joined;
        let bytes = if self.pending.is_empty() {
            data
        } else {
            let mut j = std::mem::take(&mut self.pending);
            j.extend_from_slice(data);
            joined = j;
            &joined[..]
        };
        let mut out = String::with_capacity(bytes.len());
        let mut rest = bytes;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    return out;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    // Checked by from_utf8 up to here.
                    out.push_str(std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &bad[n..];
                        }
                        None => {
                            // A character cut at the end: wait for its rest.
                            self.pending = bad.to_vec();
                            return out;
                        }
                    }
                }
            }
        }
    }

    /// [`Utf8Carry::decode`] of bytes it may keep: valid UTF-8 with nothing carried over (what
    /// terminals mostly send) becomes the text without a copy.
    pub fn decode_owned(&mut self, data: Vec<u8>) -> String {
        if !self.pending.is_empty() {
            return self.decode(&data);
        }
        match String::from_utf8(data) {
            Ok(text) => text,
            Err(e) => self.decode(e.as_bytes()),
        }
    }

    /// What is left at the end of the stream: an incomplete character, as U+FFFD.
    pub fn finish(&mut self) -> String {
        if self.pending.is_empty() {
            String::new()
        } else {
            self.pending.clear();
            char::REPLACEMENT_CHARACTER.to_string()
        }
    }
}

/// `COLSxROWS`, as asciicast writes a resize.
pub fn size(cols: u16, rows: u16) -> String {
    format!("{cols}x{rows}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            recording_id: "20261201.east.x".into(),
            session_id: "x".into(),
            cluster: "east".into(),
            namespace: "default".into(),
            pod: "shell-0".into(),
            container: "main".into(),
            user: "zoë".into(),
            groups: vec!["dev".into()],
            client: "kubectl",
            command: vec!["sh".into(), "-c".into(), "echo \"hi\"".into()],
            tty: true,
            input: false,
            replica: "podgate-0".into(),
        }
    }

    #[test]
    fn header_is_asciicast_v2_with_podgate_fields() {
        let m = meta();
        let line = Header::new(&m, 120, 40, 1_700_000_000).line();
        assert_eq!(line.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&line).expect("JSON");
        assert_eq!(v["version"], 2);
        assert_eq!(
            (v["width"].as_u64(), v["height"].as_u64()),
            (Some(120), Some(40))
        );
        assert_eq!(v["timestamp"], 1_700_000_000u64);
        assert_eq!(v["command"], "sh -c echo \"hi\"");
        assert_eq!(v["title"], "zoë@east/default/shell-0");
        assert!(v["env"].is_object());
        assert_eq!(v["podgate"]["user"], "zoë");
        assert_eq!(v["podgate"]["client"], "kubectl");
        assert_eq!(v["podgate"]["command"][2], "echo \"hi\"");
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut every: String = (0u8..128).map(char::from).collect();
        every.push_str("zoë 用户 🎉 \u{7f}\u{80}\u{2028}");
        for s in [every.as_str(), "", "plain", "\"", "\\", "a\r\nb"] {
            let mut ours = Vec::new();
            json_string(&mut ours, s);
            let theirs = serde_json::to_vec(s).expect("a string serialises");
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
        }
    }

    #[test]
    fn events_are_json_arrays_with_escaped_data() {
        let mut out = Vec::new();
        event(
            &mut out,
            Duration::from_micros(1_500_042),
            Code::Output,
            "a\"b\\c\r\n\u{1b}[0m",
        );
        event(&mut out, Duration::ZERO, Code::Resize, &size(80, 24));
        let text = String::from_utf8(out).expect("UTF-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], r#"[1.500042, "o", "a\"b\\c\r\n\u001b[0m"]"#);
        let v: serde_json::Value = serde_json::from_str(lines[0]).expect("JSON");
        assert_eq!(v[2], "a\"b\\c\r\n\u{1b}[0m");
        assert_eq!(lines[1], r#"[0.000000, "r", "80x24"]"#);
    }

    #[test]
    fn utf8_split_across_frames_is_joined() {
        let text = "zoë 用户 🙂";
        let bytes = text.as_bytes();
        // Every split point, including inside each multi-byte character.
        for cut in 0..=bytes.len() {
            let mut c = Utf8Carry::default();
            let mut got = c.decode(&bytes[..cut]);
            got.push_str(&c.decode(&bytes[cut..]));
            got.push_str(&c.finish());
            assert_eq!(got, text, "cut at {cut}");
        }
        // One byte at a time.
        let mut c = Utf8Carry::default();
        let got: String = bytes.iter().map(|b| c.decode(&[*b])).collect();
        assert_eq!(got, text);
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut c = Utf8Carry::default();
        assert_eq!(c.decode(b"a\xffb\xc3"), "a\u{fffd}b");
        // The carried start of a character that turns out not to be one.
        assert_eq!(c.decode(b"(z"), "\u{fffd}(z");
        assert_eq!(c.decode(b"\xe7\x94"), "");
        assert_eq!(c.finish(), "\u{fffd}");
        assert_eq!(c.decode(b"ok"), "ok");
    }
}
