//! `pods/{pod}/portforward`: its path, its `ports` query, its sub-protocols and the channel
//! layout of the WebSocket variant. Pure. The SPDY frames it tunnels are [`crate::spdy`].
//!
//! Two protocols reach the same path (docs/protocol.md, "Port-forward"):
//! - kubectl 1.31+ offers only `SPDY/3.1+portforward.k8s.io`: SPDY/3.1 frames carried in
//!   binary WebSocket messages (kube-apiserver's `TunnelingHandler`); its URL has no ports,
//!   they travel in each stream's `SYN_STREAM` headers;
//! - the kubelet's own WebSocket protocol (`""`, `v4.channel.k8s.io`,
//!   `v4.base64.channel.k8s.io`; the official Python client offers `v5.channel.k8s.io,
//!   v4.channel.k8s.io` and gets v4): ports from the query, for the i-th port channel 2i
//!   carries data and 2i+1 errors, and the server's first frame on each starts with the port
//!   as little-endian `u16`.

use crate::Protocol;

/// The tunnel sub-protocol kubectl offers: the SPDY protocol's name behind `SPDY/3.1+`.
pub const SPDY_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";
/// The SPDY protocol itself (`X-Stream-Protocol-Version` of a plain SPDY upgrade).
pub const SPDY_PROTOCOL: &str = "portforward.k8s.io";

/// The pod of a port-forward path (`/api/v1/namespaces/{ns}/pods/{pod}/portforward`), given
/// its decoded segments.
pub fn pod<'a>(segments: &[&'a str]) -> Option<(&'a str, &'a str)> {
    match segments {
        ["api", "v1", "namespaces", ns, "pods", pod, "portforward"] => Some((ns, pod)),
        _ => None,
    }
}

/// A port-forward sub-protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tunnel {
    /// `SPDY/3.1+portforward.k8s.io`.
    Spdy,
    /// The channel protocol: [`Protocol::V1`] for the empty protocol (binary),
    /// [`Protocol::V4`] or [`Protocol::V4Base64`].
    Channels(Protocol),
}

impl Tunnel {
    /// Every one the kubelet and kube-apiserver accept, in their order.
    pub const ALL: [Tunnel; 3] = [
        Tunnel::Spdy,
        Tunnel::Channels(Protocol::V4),
        Tunnel::Channels(Protocol::V4Base64),
    ];

    /// The wire name (`""` for the empty protocol).
    pub fn name(self) -> &'static str {
        match self {
            Tunnel::Spdy => SPDY_TUNNEL,
            Tunnel::Channels(Protocol::V1) => "",
            Tunnel::Channels(p) => p.name(),
        }
    }

    pub fn from_name(name: &str) -> Option<Tunnel> {
        match name {
            SPDY_TUNNEL => Some(Tunnel::Spdy),
            "v4.channel.k8s.io" => Some(Tunnel::Channels(Protocol::V4)),
            "v4.base64.channel.k8s.io" => Some(Tunnel::Channels(Protocol::V4Base64)),
            _ => None,
        }
    }
}

/// What a client's `Sec-WebSocket-Protocol` offers for port-forward.
#[derive(Debug, PartialEq, Eq)]
pub struct Offer {
    /// The port-forward protocols offered, in the client's order, without repeats; the
    /// empty protocol when nothing was offered at all.
    pub tunnels: Vec<Tunnel>,
    /// Whether the client offered any protocol (so the answer must name one).
    pub echo: bool,
}

/// Reads the offered protocols (every header value, comma-separated lists), skipping the
/// browser's bearer-token entry, as [`crate::subprotocol::negotiate`] does for exec.
pub fn offer<'a>(header_values: impl IntoIterator<Item = &'a str>) -> Offer {
    let mut tunnels = Vec::new();
    let mut echo = false;
    for entry in header_values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.starts_with(crate::subprotocol::BEARER_PREFIX))
    {
        echo = true;
        if let Some(t) = Tunnel::from_name(entry).filter(|t| !tunnels.contains(t)) {
            tunnels.push(t);
        }
    }
    if !echo {
        tunnels.push(Tunnel::Channels(Protocol::V1));
    }
    Offer { tunnels, echo }
}

/// Why a `ports` query cannot be used, in the kubelet's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortsError {
    #[error("query parameter \"port\" is required")]
    Missing,
    #[error("query parameter \"port\" cannot be empty")]
    Empty,
    #[error("unable to parse {0:?} as a port")]
    NotAPort(String),
    #[error("port {0:?} must be > 0")]
    Zero(String),
}

/// The ports a query asks for (`ports=80&ports=8080` or `ports=80,8080`, as kube-apiserver
/// reads `PodPortForwardOptions`); empty when it names none (kubectl's SPDY tunnel).
pub fn ports(query: &str) -> Result<Vec<u16>, PortsError> {
    let mut out = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key != "ports" {
            continue;
        }
        if value.is_empty() {
            return Err(PortsError::Empty);
        }
        for p in value.split(',') {
            let port: u16 = p
                .parse()
                .map_err(|_| PortsError::NotAPort(value.to_string()))?;
            if port == 0 {
                return Err(PortsError::Zero(value.to_string()));
            }
            out.push(port);
        }
    }
    Ok(out)
}

/// The channel of the `index`-th port's data (`2i`) or errors (`2i + 1`), when it fits a byte.
pub fn channel(index: usize, error: bool) -> Option<u8> {
    u8::try_from(index.checked_mul(2)? + usize::from(error)).ok()
}

/// Which port (by index) and kind a channel is: `(index, is_error)`.
pub fn port_of(channel: u8) -> (usize, bool) {
    (usize::from(channel / 2), channel % 2 == 1)
}

/// The first payload of every server channel: the port, little-endian.
pub fn port_prefix(port: u16) -> [u8; 2] {
    port.to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_pod() {
        let p = crate::ApiPath::parse("/api/v1/namespaces/shop/pods/web-0/portforward").unwrap();
        assert_eq!(pod(&p.segments()), Some(("shop", "web-0")));
        let p = crate::ApiPath::parse("/api/v1/namespaces/shop/pods/web-0/exec").unwrap();
        assert_eq!(pod(&p.segments()), None);
    }

    #[test]
    fn offers_are_read_in_the_clients_order() {
        assert_eq!(
            offer([SPDY_TUNNEL]),
            Offer {
                tunnels: vec![Tunnel::Spdy],
                echo: true
            }
        );
        // The Python client: v5 is no port-forward protocol, v4 is.
        assert_eq!(
            offer(["v5.channel.k8s.io,v4.channel.k8s.io"]).tunnels,
            [Tunnel::Channels(Protocol::V4)]
        );
        assert_eq!(
            offer([]),
            Offer {
                tunnels: vec![Tunnel::Channels(Protocol::V1)],
                echo: false
            }
        );
        let bearer = crate::subprotocol::bearer_entry("t");
        assert_eq!(
            offer([format!("{bearer}, v4.base64.channel.k8s.io").as_str()]).tunnels,
            [Tunnel::Channels(Protocol::V4Base64)]
        );
        assert_eq!(offer(["chat"]).tunnels, []);
        for t in Tunnel::ALL {
            assert_eq!(Tunnel::from_name(t.name()), Some(t));
        }
    }

    #[test]
    fn ports_are_read_as_kube_apiserver_reads_them() {
        assert_eq!(ports("ports=80&ports=8080,9090"), Ok(vec![80, 8080, 9090]));
        assert_eq!(ports(""), Ok(vec![]));
        assert_eq!(ports("ports="), Err(PortsError::Empty));
        assert_eq!(
            ports("ports=http"),
            Err(PortsError::NotAPort("http".into()))
        );
        assert_eq!(
            ports("ports=70000"),
            Err(PortsError::NotAPort("70000".into()))
        );
        assert_eq!(ports("ports=0"), Err(PortsError::Zero("0".into())));
        assert_eq!(
            PortsError::Missing.to_string(),
            "query parameter \"port\" is required"
        );
    }

    #[test]
    fn channels_pair_up_per_port() {
        assert_eq!(channel(0, false), Some(0));
        assert_eq!(channel(1, true), Some(3));
        assert_eq!(channel(200, false), None);
        assert_eq!(port_of(3), (1, true));
        assert_eq!(port_prefix(8080), [0x90, 0x1f]);
    }
}
