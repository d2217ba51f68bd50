//! Sub-protocol names and negotiation (`Sec-WebSocket-Protocol`).

use base64::Engine as _;

/// Prefix of the `Sec-WebSocket-Protocol` entry that carries a bearer token for clients that
/// cannot set headers (browsers). kube-apiserver accepts it; the server must never echo it.
pub const BEARER_PREFIX: &str = "base64url.bearer.authorization.k8s.io.";

/// A remote-command sub-protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `channel.k8s.io`, and also what a client gets when it offers no protocol at all.
    V1,
    /// `v2.channel.k8s.io`.
    V2,
    /// `v3.channel.k8s.io`: adds the resize stream.
    V3,
    /// `v4.channel.k8s.io`: exit status as `metav1.Status` JSON.
    V4,
    /// `v5.channel.k8s.io`: adds the `[255, id]` stream close signal.
    V5,
    /// `base64.channel.k8s.io`: text frames, ASCII stream digit then base64.
    Base64,
    /// `v4.base64.channel.k8s.io`.
    V4Base64,
}

impl Protocol {
    /// Every protocol, in the order a server prefers them when it has to choose.
    pub const ALL: [Protocol; 7] = [
        Protocol::V5,
        Protocol::V4,
        Protocol::V4Base64,
        Protocol::V3,
        Protocol::V2,
        Protocol::V1,
        Protocol::Base64,
    ];

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V1 => "channel.k8s.io",
            Protocol::V2 => "v2.channel.k8s.io",
            Protocol::V3 => "v3.channel.k8s.io",
            Protocol::V4 => "v4.channel.k8s.io",
            Protocol::V5 => "v5.channel.k8s.io",
            Protocol::Base64 => "base64.channel.k8s.io",
            Protocol::V4Base64 => "v4.base64.channel.k8s.io",
        }
    }

    /// Parses a wire name (exact, as kube-apiserver compares them).
    pub fn from_name(name: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Text frames carrying a stream digit and base64, instead of binary frames.
    pub fn is_base64(self) -> bool {
        matches!(self, Protocol::Base64 | Protocol::V4Base64)
    }

    /// Whether stream 4 (resize) exists. The base64 variants carry it too: kube-apiserver
    /// registers the resize channel for `v4.base64` and, in practice, for `base64`.
    pub fn has_resize(self) -> bool {
        !matches!(self, Protocol::V1 | Protocol::V2)
    }

    /// Whether stream 3 carries a `metav1.Status` JSON (v4 and later) rather than a bare
    /// error string.
    pub fn has_status_json(self) -> bool {
        matches!(self, Protocol::V4 | Protocol::V5 | Protocol::V4Base64)
    }

    /// Whether the `[255, id]` close signal exists.
    pub fn has_close_signal(self) -> bool {
        self == Protocol::V5
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The result of reading a client's `Sec-WebSocket-Protocol` header(s).
#[derive(Debug, PartialEq, Eq)]
pub struct Negotiation {
    /// The protocol the server speaks: the first one the client offered that the server
    /// supports; `V1` when the client offered nothing usable only if it offered nothing at all.
    pub protocol: Option<Protocol>,
    /// Whether the response must carry a `Sec-WebSocket-Protocol` header (not when the client
    /// offered no protocol).
    pub echo: bool,
    /// Every known protocol the client offered, in its order, without repeats (what a relay
    /// offers the next hop).
    pub offered: Vec<Protocol>,
    /// A bearer token smuggled in a `base64url.bearer.authorization.k8s.io.` entry, decoded.
    pub bearer: Option<String>,
    /// The entry held a token that was not valid base64url or UTF-8.
    pub bearer_malformed: bool,
}

/// Reads the offered protocols (the values of every `Sec-WebSocket-Protocol` header, each a
/// comma-separated list) and picks the first one in `supported`.
pub fn negotiate<'a>(
    header_values: impl IntoIterator<Item = &'a str>,
    supported: &[Protocol],
) -> Negotiation {
    let mut offered_any = false;
    let mut protocol = None;
    let mut bearer = None;
    let mut bearer_malformed = false;
    let mut offered = Vec::new();
    for entry in header_values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        if let Some(encoded) = entry.strip_prefix(BEARER_PREFIX) {
            match decode_bearer(encoded) {
                Some(token) => bearer = Some(token),
                None => bearer_malformed = true,
            }
            continue;
        }
        offered_any = true;
        if let Some(p) = Protocol::from_name(entry).filter(|p| !offered.contains(p)) {
            offered.push(p);
        }
        if protocol.is_none() {
            protocol = Protocol::from_name(entry).filter(|p| supported.contains(p));
        }
    }
    if !offered_any && supported.contains(&Protocol::V1) {
        protocol = Some(Protocol::V1);
    }
    Negotiation {
        protocol,
        echo: offered_any,
        offered,
        bearer,
        bearer_malformed,
    }
}

fn decode_bearer(encoded: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .ok()?;
    String::from_utf8(bytes).ok().filter(|t| !t.is_empty())
}

/// Encodes a token as the subprotocol entry a browser sends.
pub fn bearer_entry(token: &str) -> String {
    format!(
        "{BEARER_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_offered_supported_wins() {
        let n = negotiate(["v5.channel.k8s.io, v4.channel.k8s.io"], &Protocol::ALL);
        assert_eq!(n.protocol, Some(Protocol::V5));
        let n = negotiate(
            [
                "v4.channel.k8s.io",
                "x, v5.channel.k8s.io, v4.channel.k8s.io",
            ],
            &Protocol::ALL,
        );
        assert_eq!(n.protocol, Some(Protocol::V4));
        assert_eq!(n.offered, [Protocol::V4, Protocol::V5]);
        let n = negotiate(["v5.channel.k8s.io, v4.channel.k8s.io"], &[Protocol::V4]);
        assert_eq!(n.protocol, Some(Protocol::V4));
        assert!(n.echo);
    }

    #[test]
    fn nothing_offered_means_channel_k8s_io_without_echo() {
        let n = negotiate([], &Protocol::ALL);
        assert_eq!(n.protocol, Some(Protocol::V1));
        assert!(!n.echo);
    }

    #[test]
    fn only_unknown_offered_is_refused() {
        let n = negotiate(["chat, superchat"], &Protocol::ALL);
        assert_eq!(n.protocol, None);
        assert!(n.echo);
    }

    #[test]
    fn bearer_entry_is_extracted_not_negotiated() {
        let entry = bearer_entry("tok.en-with/odd+chars");
        let header = format!("{entry}, v4.base64.channel.k8s.io");
        let n = negotiate([header.as_str()], &Protocol::ALL);
        assert_eq!(n.protocol, Some(Protocol::V4Base64));
        assert_eq!(n.bearer.as_deref(), Some("tok.en-with/odd+chars"));
        assert!(!n.bearer_malformed);
    }

    #[test]
    fn bearer_alone_is_not_an_offer() {
        let entry = bearer_entry("t");
        let n = negotiate([entry.as_str()], &Protocol::ALL);
        assert_eq!(n.protocol, Some(Protocol::V1));
        assert!(!n.echo);
    }

    #[test]
    fn malformed_bearer_is_flagged() {
        let n = negotiate(
            ["base64url.bearer.authorization.k8s.io.!!!, v5.channel.k8s.io"],
            &Protocol::ALL,
        );
        assert!(n.bearer_malformed);
        assert_eq!(n.bearer, None);
    }

    #[test]
    fn capabilities() {
        assert!(Protocol::V5.has_close_signal());
        assert!(!Protocol::V4.has_close_signal());
        assert!(Protocol::V4.has_status_json());
        assert!(!Protocol::V3.has_status_json());
        assert!(Protocol::V4Base64.is_base64());
        assert!(!Protocol::V2.has_resize());
        for p in Protocol::ALL {
            assert_eq!(Protocol::from_name(p.name()), Some(p));
        }
    }
}
