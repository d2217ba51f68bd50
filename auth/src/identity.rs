//! Who a request acts as, in a form that can only exist when every part of it can reach a
//! cluster byte for byte.
//!
//! An [`Identity`] becomes `Impersonate-User` and one `Impersonate-Group` per group on the way
//! to an impersonating cluster. A value that could not be encoded as a header would have to be
//! dropped, and a dropped `Impersonate-User` means the request runs as the gateway itself: so
//! each [`Name`] is checked and encoded once, when the identity is made, and an identity with
//! any part that cannot travel exactly is never made at all. Writing the headers then cannot
//! fail and cannot lose anything.
//!
//! What "exactly" excludes:
//! - control characters (C0, DEL, C1): HTTP refuses most of them outright, and the rest (tab)
//!   are invisible in every log and RBAC binding;
//! - leading or trailing whitespace: HTTP parsers on both sides (hyper here, Go's textproto in
//!   kube-apiserver) trim it, so `"admin "` would arrive as `admin`;
//! - the empty name.
//!
//! Any other UTF-8 is legitimate (`zoë`, `用户`): kube-apiserver reads header bytes as they
//! are (Go's HTTP server accepts obs-text), so it is sent as its UTF-8 bytes.

use std::fmt;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Serialize, Serializer};

/// Kubernetes reserves `system:` names for its own components (`system:masters`,
/// `system:serviceaccount:...`). Identities the gateway derives from tokens it does not control
/// (OIDC claims) must never carry one; operators may grant them on purpose in static tokens.
pub const RESERVED_PREFIX: &str = "system:";

const IMPERSONATE_USER: HeaderName = HeaderName::from_static("impersonate-user");
const IMPERSONATE_GROUP: HeaderName = HeaderName::from_static("impersonate-group");

/// Why a name cannot be part of an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("is empty")]
    Empty,
    #[error("contains a control character (U+{0:04X})")]
    ControlCharacter(u32),
    #[error("starts or ends with whitespace, which HTTP would strip on the way")]
    Padded,
    #[error("cannot be sent as an HTTP header value")]
    Unencodable,
}

/// A user or group name, checked and already encoded as the header value it travels as.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Name {
    text: Box<str>,
    header: HeaderValue,
}

impl Name {
    pub fn new(text: impl Into<String>) -> Result<Name, NameError> {
        let text: String = text.into();
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            return Err(NameError::ControlCharacter(u32::from(c)));
        }
        if text.starts_with(char::is_whitespace) || text.ends_with(char::is_whitespace) {
            return Err(NameError::Padded);
        }
        let header = HeaderValue::from_str(&text).map_err(|_| NameError::Unencodable)?;
        Ok(Name {
            text: text.into_boxed_str(),
            header,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is a name Kubernetes keeps for itself (see [`RESERVED_PREFIX`]), judged on
    /// exactly the bytes that will be sent.
    pub fn is_reserved(&self) -> bool {
        self.text.starts_with(RESERVED_PREFIX)
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        &*self.text == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        &*self.text == *other
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// Which part of an identity a [`NameError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    User,
    /// The group at this index, as given.
    Group(usize),
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::User => f.write_str("the user name"),
            Part::Group(i) => write!(f, "group {}", i + 1),
        }
    }
}

/// An identity that could not be made, naming the part and the problem (never the value: it
/// may come from a token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{part} {problem}")]
pub struct IdentityError {
    pub part: Part,
    pub problem: NameError,
}

/// Who a request acts as: a user and its groups, every one a valid [`Name`]. Groups keep their
/// order; repeats are folded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Identity {
    user: Name,
    groups: Vec<Name>,
}

impl Identity {
    pub fn new<G: Into<String>>(
        user: impl Into<String>,
        groups: impl IntoIterator<Item = G>,
    ) -> Result<Identity, IdentityError> {
        let user = Name::new(user).map_err(|problem| IdentityError {
            part: Part::User,
            problem,
        })?;
        let mut names: Vec<Name> = Vec::new();
        for (i, group) in groups.into_iter().enumerate() {
            let group = Name::new(group).map_err(|problem| IdentityError {
                part: Part::Group(i),
                problem,
            })?;
            if !names.contains(&group) {
                names.push(group);
            }
        }
        Ok(Identity {
            user,
            groups: names,
        })
    }

    pub fn user(&self) -> &Name {
        &self.user
    }

    pub fn groups(&self) -> &[Name] {
        &self.groups
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// The first part of this identity that Kubernetes reserves, if any.
    pub fn reserved_part(&self) -> Option<Part> {
        if self.user.is_reserved() {
            return Some(Part::User);
        }
        self.groups
            .iter()
            .position(Name::is_reserved)
            .map(Part::Group)
    }

    /// Replaces any `Impersonate-*` header in `headers` with this identity: the user, then each
    /// group, exactly as authenticated. Cannot fail: every value was encoded when the identity
    /// was made.
    pub fn write_impersonation(&self, headers: &mut HeaderMap) {
        let stale: Vec<HeaderName> = headers
            .keys()
            .filter(|k| k.as_str().starts_with("impersonate-"))
            .cloned()
            .collect();
        for name in stale {
            headers.remove(name);
        }
        headers.insert(IMPERSONATE_USER, self.user.header.clone());
        for group in &self.groups {
            headers.append(IMPERSONATE_GROUP, group.header.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_cannot_travel_exactly_are_refused() {
        let cases: &[(&str, Result<(), NameError>)] = &[
            ("alice", Ok(())),
            ("alice@example.com", Ok(())),
            ("https://idp.example#1234", Ok(())),
            ("oidc:dev team", Ok(())),
            ("zoë", Ok(())),
            ("用户", Ok(())),
            ("a,b", Ok(())),
            ("", Err(NameError::Empty)),
            ("mallory\u{7}", Err(NameError::ControlCharacter(7))),
            ("mal\nlory", Err(NameError::ControlCharacter(10))),
            ("mal\rlory", Err(NameError::ControlCharacter(13))),
            ("a\tb", Err(NameError::ControlCharacter(9))),
            ("nul\0", Err(NameError::ControlCharacter(0))),
            ("del\u{7f}", Err(NameError::ControlCharacter(0x7f))),
            ("c1\u{85}", Err(NameError::ControlCharacter(0x85))),
            ("esc\u{1b}[31m", Err(NameError::ControlCharacter(0x1b))),
            ("admin ", Err(NameError::Padded)),
            (" system:masters", Err(NameError::Padded)),
            ("\u{a0}admin", Err(NameError::Padded)),
            ("admin\u{3000}", Err(NameError::Padded)),
            (" ", Err(NameError::Padded)),
        ];
        for (text, expected) in cases {
            assert_eq!(
                Name::new(*text).map(|_| ()),
                *expected,
                "{text:?} should be {expected:?}"
            );
        }
    }

    #[test]
    fn utf8_names_are_sent_as_their_bytes() {
        let id = Identity::new("zoë", ["équipe", "用户"]).expect("valid");
        let mut h = HeaderMap::new();
        id.write_impersonation(&mut h);
        assert_eq!(h["impersonate-user"].as_bytes(), "zoë".as_bytes());
        let groups: Vec<&[u8]> = h
            .get_all("impersonate-group")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        assert_eq!(groups, ["équipe".as_bytes(), "用户".as_bytes()]);
    }

    #[test]
    fn every_part_is_checked_and_named() {
        assert_eq!(
            Identity::new("mallory\u{7}", Vec::<String>::new()),
            Err(IdentityError {
                part: Part::User,
                problem: NameError::ControlCharacter(7)
            })
        );
        let e = Identity::new("bob", ["dev", " system:masters"]).unwrap_err();
        assert_eq!(e.part, Part::Group(1));
        assert_eq!(
            e.to_string(),
            "group 2 starts or ends with whitespace, which HTTP would strip on the way"
        );
        assert_eq!(
            Identity::new("", ["dev"]).unwrap_err().to_string(),
            "the user name is empty"
        );
    }

    #[test]
    fn impersonation_replaces_whatever_was_there() {
        let id = Identity::new("alice", ["dev", "ops", "dev"]).expect("valid");
        assert_eq!(id.groups(), ["dev", "ops"].map(|g| Name::new(g).unwrap()));
        let mut h = HeaderMap::new();
        h.insert("impersonate-user", HeaderValue::from_static("admin"));
        h.insert("impersonate-uid", HeaderValue::from_static("0"));
        h.append(
            "impersonate-group",
            HeaderValue::from_static("system:masters"),
        );
        h.insert("impersonate-extra-scopes", HeaderValue::from_static("x"));
        id.write_impersonation(&mut h);
        assert_eq!(h.len(), 3, "{h:?}");
        assert_eq!(h["impersonate-user"], "alice");
        let groups: Vec<_> = h.get_all("impersonate-group").iter().collect();
        assert_eq!(groups, ["dev", "ops"]);
        // No groups: the user header alone, never nothing.
        let mut h = HeaderMap::new();
        Identity::new("carol", Vec::<String>::new())
            .expect("valid")
            .write_impersonation(&mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h["impersonate-user"], "carol");
    }

    #[test]
    fn reserved_names_are_judged_on_what_is_sent() {
        let id = |u: &str, g: &[&str]| Identity::new(u, g.iter().copied()).expect("valid");
        assert_eq!(id("alice", &["dev"]).reserved_part(), None);
        assert_eq!(id("system:admin", &[]).reserved_part(), Some(Part::User));
        assert_eq!(
            id("alice", &["dev", "system:masters"]).reserved_part(),
            Some(Part::Group(1))
        );
        // Not reserved: Kubernetes compares exactly, and these are other names.
        assert_eq!(id("System:admin", &[]).reserved_part(), None);
        assert_eq!(id("oidc:system:masters", &[]).reserved_part(), None);
    }
}
