//! The resume control channel (docs/protocol.md, "Resume"): what podgate and a page that
//! opted in say to each other in-band, and how a resume presents itself. Pure.

use serde::{Deserialize, Serialize};

/// The channel id of control messages: a byte Kubernetes does not use for exec and attach.
pub const CHANNEL: u8 = 128;
/// The subprotocol entry by which a client opts in.
pub const OPT_IN: &str = "podgate.resume.v1";
/// Prefix of the subprotocol entry that carries the resume credential.
pub const CREDENTIAL_PREFIX: &str = "resume.podgate.io.";
/// Prefix of the subprotocol entry that carries the rendered output offset.
pub const OFFSET_PREFIX: &str = "offset.podgate.io.";

/// podgate → page.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToPage<'a> {
    Hello {
        session: &'a str,
        credential: &'a str,
        window_seconds: u64,
        heartbeat_seconds: u64,
        buffer_bytes: u64,
        /// The session's own limits, so a page can show them (null: none).
        limits: Limits,
    },
    Resumed {
        session: &'a str,
        offset: u64,
        gap: u64,
        credential: &'a str,
    },
    Refused {
        reason: &'static str,
        message: &'a str,
    },
    Heartbeat {
        offset: u64,
    },
    Notice {
        text: &'a str,
    },
}

impl ToPage<'_> {
    /// The frame payload: the channel byte, then the JSON.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![CHANNEL];
        // Serialising these plain structs into a Vec cannot fail.
        if serde_json::to_writer(&mut out, self).is_err() {
            out.truncate(1);
            out.extend_from_slice(b"{}");
        }
        out
    }
}

/// The limits a session runs under, in whole seconds (`null` when the config sets none).
#[derive(Debug, Serialize, Clone, Copy, Default)]
pub struct Limits {
    pub idle_timeout_seconds: Option<u64>,
    pub max_duration_seconds: Option<u64>,
}

/// page → podgate. Anything else is ignored, so pages and gateways can grow apart.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromPage {
    Ack {
        offset: u64,
    },
    #[serde(other)]
    Other,
}

impl FromPage {
    /// A control message's JSON (after the channel byte); `Other` for what is not readable.
    pub fn decode(json: &[u8]) -> FromPage {
        serde_json::from_slice(json).unwrap_or(FromPage::Other)
    }
}

/// What a resume upgrade presented in its subprotocol entries.
#[derive(Debug, PartialEq, Eq)]
pub struct ResumeOffer {
    pub credential: String,
    pub offset: u64,
}

/// Why a resume upgrade cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    #[error("a resume must offer the subprotocols v5.channel.k8s.io and {OPT_IN}")]
    NotOptedIn,
    #[error(
        "a resume must offer its credential as a subprotocol entry {CREDENTIAL_PREFIX}<credential>"
    )]
    NoCredential,
    #[error(
        "a resume must offer its output offset as a subprotocol entry {OFFSET_PREFIX}<decimal>"
    )]
    NoOffset,
}

/// The comma-separated entries of every `Sec-WebSocket-Protocol` value.
fn entries<'a>(values: impl IntoIterator<Item = &'a str>) -> impl Iterator<Item = &'a str> {
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
}

/// Whether a new session's client opted in to resume.
pub fn opted_in<'a>(values: impl IntoIterator<Item = &'a str>) -> bool {
    entries(values).any(|e| e == OPT_IN)
}

/// Reads a resume upgrade's entries.
pub fn offer<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<ResumeOffer, OfferError> {
    let (mut v5, mut opted, mut credential, mut offset) = (false, false, None, None);
    for e in entries(values) {
        if e == podgate_protocol::Protocol::V5.name() {
            v5 = true;
        } else if e == OPT_IN {
            opted = true;
        } else if let Some(c) = e.strip_prefix(CREDENTIAL_PREFIX) {
            credential = Some(c.to_string());
        } else if let Some(o) = e.strip_prefix(OFFSET_PREFIX) {
            // Digits only: `+1` or ` 1` is not what a page sends.
            if !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit()) {
                offset = o.parse::<u64>().ok();
            }
        }
    }
    if !(v5 && opted) {
        return Err(OfferError::NotOptedIn);
    }
    let credential = credential
        .filter(|c| !c.is_empty())
        .ok_or(OfferError::NoCredential)?;
    let offset = offset.ok_or(OfferError::NoOffset)?;
    Ok(ResumeOffer { credential, offset })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_on_the_wire() {
        let hello = ToPage::Hello {
            session: "s1",
            credential: "c",
            window_seconds: 120,
            heartbeat_seconds: 5,
            buffer_bytes: 262_144,
            limits: Limits {
                idle_timeout_seconds: Some(900),
                max_duration_seconds: None,
            },
        }
        .encode();
        assert_eq!(hello[0], CHANNEL);
        let v: serde_json::Value = serde_json::from_slice(&hello[1..]).expect("json");
        assert_eq!(v["type"], "hello");
        assert_eq!(v["window_seconds"], 120);
        assert_eq!(v["limits"]["idle_timeout_seconds"], 900);
        assert!(v["limits"]["max_duration_seconds"].is_null());
        let notice = ToPage::Notice {
            text: "a \"quote\"",
        }
        .encode();
        let v: serde_json::Value = serde_json::from_slice(&notice[1..]).expect("json");
        assert_eq!(v["text"], "a \"quote\"");
        assert_eq!(
            FromPage::decode(br#"{"type":"ack","offset":42,"extra":1}"#),
            FromPage::Ack { offset: 42 }
        );
        assert_eq!(FromPage::decode(br#"{"type":"later"}"#), FromPage::Other);
        assert_eq!(FromPage::decode(b"not json"), FromPage::Other);
        assert_eq!(
            FromPage::decode(br#"{"type":"ack","offset":-1}"#),
            FromPage::Other
        );
    }

    #[test]
    fn resume_offers() {
        let ok = offer([
            "v5.channel.k8s.io, podgate.resume.v1",
            "resume.podgate.io.abc_-, offset.podgate.io.1234",
        ]);
        assert_eq!(
            ok,
            Ok(ResumeOffer {
                credential: "abc_-".into(),
                offset: 1234
            })
        );
        assert_eq!(
            offer([
                "v5.channel.k8s.io",
                "resume.podgate.io.x",
                "offset.podgate.io.1"
            ]),
            Err(OfferError::NotOptedIn)
        );
        assert_eq!(
            offer([
                "v4.channel.k8s.io, podgate.resume.v1, resume.podgate.io.x, offset.podgate.io.1"
            ]),
            Err(OfferError::NotOptedIn)
        );
        assert_eq!(
            offer(["v5.channel.k8s.io, podgate.resume.v1, offset.podgate.io.1"]),
            Err(OfferError::NoCredential)
        );
        for bad in [
            "offset.podgate.io.",
            "offset.podgate.io.+1",
            "offset.podgate.io.99999999999999999999999",
        ] {
            assert_eq!(
                offer([
                    "v5.channel.k8s.io, podgate.resume.v1, resume.podgate.io.x",
                    bad
                ]),
                Err(OfferError::NoOffset),
                "{bad}"
            );
        }
        assert!(opted_in(["v5.channel.k8s.io, podgate.resume.v1"]));
        assert!(!opted_in(["v5.channel.k8s.io", "podgate.resume.v2"]));
    }
}
