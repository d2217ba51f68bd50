//! The static tokens file: a small authenticator's table for demos, CI and break-glass access
//! where running an OIDC provider is not worth it. Token values are secrets: they never appear
//! in errors or `Debug` output, and lookups take the same time whichever token matches.
//!
//! Identities here are written by the operator, so unlike OIDC claims they may name groups
//! Kubernetes reserves (`system:masters` for a break-glass admin); they must still be names
//! that reach the cluster exactly (see [`Identity`]).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use podgate_config::{ConfigError, Problems};
use ring::digest;
use serde::Deserialize;

use crate::identity::{Identity, Name, Part};

/// Shortest accepted token: rejects obvious placeholders and typos such as `test` or `x`.
/// It is a floor, not advice; real tokens should be long and random (`openssl rand -hex 32`).
pub const MIN_TOKEN_CHARS: usize = 8;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    token: String,
    user: String,
    #[serde(default)]
    groups: Vec<String>,
}

/// SHA-256 of a token: what a live session keeps to ask later whether its token is still in
/// the table, without holding the token itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> TokenDigest {
        let mut d = [0u8; 32];
        d.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        TokenDigest(d)
    }

    /// Lowercase hex, for sealing into a browser session cookie (never shown or logged).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The digest [`to_hex`](Self::to_hex) wrote; `None` for anything else.
    pub fn from_hex(text: &str) -> Option<TokenDigest> {
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut d = [0u8; 32];
        for (i, byte) in d.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(TokenDigest(d))
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(<redacted>)")
    }
}

struct TokenEntryBuilt {
    token: Box<[u8]>,
    digest: TokenDigest,
    identity: Identity,
}

/// Tokens and the identities they grant.
#[derive(Clone, Default)]
pub struct TokenTable {
    entries: std::sync::Arc<[TokenEntryBuilt]>,
}

impl TokenTable {
    /// Compares `token` with every entry, in time independent of which one (if any) matches,
    /// so response timing does not help guess a token.
    pub fn lookup(&self, token: &str) -> Option<&Identity> {
        self.find(|e| ct_eq(&e.token, token.as_bytes()))
    }

    /// The identity the token with this digest grants, if it is still in the table: how a
    /// reload tells a live session whether its token was revoked. Constant time, as [`lookup`].
    ///
    /// [`lookup`]: TokenTable::lookup
    pub fn lookup_digest(&self, digest: &TokenDigest) -> Option<&Identity> {
        self.find(|e| ct_eq(&e.digest.0, &digest.0))
    }

    fn find(&self, matches: impl Fn(&TokenEntryBuilt) -> bool) -> Option<&Identity> {
        let mut found = usize::MAX;
        for (i, entry) in self.entries.iter().enumerate() {
            let mask = usize::from(matches(entry)).wrapping_neg();
            found = (i & mask) | (found & !mask);
        }
        self.entries.get(found).map(|e| &e.identity)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Identities in file order, without their tokens: for logging what was loaded.
    pub fn identities(&self) -> impl Iterator<Item = &Identity> {
        self.entries.iter().map(|e| &e.identity)
    }
}

impl fmt::Debug for TokenTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted<'a>(&'a Identity);
        impl fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct("Entry")
                    .field("token", &"<redacted>")
                    .field("user", &self.0.user())
                    .field("groups", &self.0.groups())
                    .finish()
            }
        }
        f.debug_struct("TokenTable")
            .field(
                "entries",
                &self
                    .entries
                    .iter()
                    .map(|e| Redacted(&e.identity))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Equality whose running time depends only on the longer input's length, not on where the
/// inputs first differ. Different lengths compare unequal without an early exit.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// Parses and validates a tokens file; `path` is only used in messages.
pub fn parse_tokens(path: &Path, text: &str) -> Result<TokenTable, ConfigError> {
    // A file with only comments is an empty table, not an EOF error.
    let entries: Vec<TokenEntry> = if text.lines().all(is_blank_or_comment) {
        Vec::new()
    } else {
        serde_norway::from_str(text).map_err(|e| {
            let mut error = ConfigError::syntax(path, &e);
            if let ConfigError::Syntax { message, .. } = &mut error {
                // serde_norway writes the root sequence as `.[0]`; validation says `[0]`.
                let trimmed = message.strip_prefix(".[").map(|m| format!("[{m}"));
                *message = redact(trimmed.as_deref().unwrap_or(message));
            }
            error
        })?
    };

    let mut problems = Problems::new(path);
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut identities = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let token = entry.token.as_str();
        if token.chars().count() < MIN_TOKEN_CHARS {
            problems.push(
                format!("[{i}].token"),
                format!("is too short: use at least {MIN_TOKEN_CHARS} characters"),
            );
        } else if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            problems.push(
                format!("[{i}].token"),
                "contains whitespace or control characters, which an Authorization header \
                 cannot carry",
            );
        } else if let Some(first) = seen.get(token) {
            problems.push(
                format!("[{i}].token"),
                format!("is the same as [{first}].token; each token must be unique"),
            );
        } else {
            seen.insert(token, i);
        }
        let field = |part| match part {
            Part::User => format!("[{i}].user"),
            Part::Group(j) => format!("[{i}].groups[{j}]"),
        };
        match Identity::new(entry.user.as_str(), entry.groups.iter().map(String::as_str)) {
            Ok(identity) => identities.push(identity),
            Err(first) => {
                problems.push(field(first.part), first.problem.to_string());
                // Every bad name is reported, not just the first.
                let groups = entry.groups.iter().enumerate().skip(match first.part {
                    Part::User => 0,
                    Part::Group(j) => j + 1,
                });
                for (j, group) in groups {
                    if let Err(problem) = Name::new(group.as_str()) {
                        problems.push(field(Part::Group(j)), problem.to_string());
                    }
                }
            }
        }
    }
    problems.finish()?;

    Ok(TokenTable {
        entries: entries
            .into_iter()
            .zip(identities)
            .map(|(e, identity)| TokenEntryBuilt {
                digest: TokenDigest::of(&e.token),
                token: e.token.into_bytes().into_boxed_slice(),
                identity,
            })
            .collect(),
    })
}

/// Reads and parses a tokens file.
pub fn load_tokens(path: &Path) -> Result<TokenTable, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse_tokens(path, &text)
}

fn is_blank_or_comment(line: &str) -> bool {
    let line = line.trim();
    line.is_empty() || line.starts_with('#') || line == "---"
}

/// YAML errors can quote input, and in a tokens file any quoted scalar may be a token
/// (`invalid type: string "s3cr3t…"`, or `unknown field `s3cr3t…`` when someone writes
/// `- s3cr3t: alice`). Everything between quotes or backticks is dropped, except the field
/// names serde lists as expected, which are ours.
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(['"', '`']) {
        let quote = rest[start..].chars().next().unwrap_or('"');
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(len) = after.find(quote) else {
            out.push_str("<redacted>");
            return out;
        };
        let quoted = &after[..len];
        if quote == '`' && matches!(quoted, "token" | "user" | "groups") {
            out.push('`');
            out.push_str(quoted);
            out.push('`');
        } else {
            out.push_str("<redacted>");
        }
        rest = &after[len + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> &'static Path {
        Path::new("/etc/podgate/tokens.yaml")
    }

    fn err(text: &str) -> String {
        match parse_tokens(path(), text) {
            Ok(t) => panic!("expected an error, got {t:?}"),
            Err(e) => e.to_string(),
        }
    }

    const GOOD: &str = "\
- token: s3cr3t-alice
  user: alice
  groups: [dev, ops]
- token: s3cr3t-bob-token
  user: bob
";

    #[test]
    fn parses_and_looks_up() {
        let table = parse_tokens(path(), GOOD).expect("parses");
        assert_eq!(table.len(), 2);
        assert_eq!(
            table.lookup("s3cr3t-alice"),
            Some(&Identity::new("alice", ["dev", "ops"]).unwrap())
        );
        assert_eq!(
            table.lookup("s3cr3t-bob-token").map(|i| i.user().as_str()),
            Some("bob")
        );
        assert_eq!(
            table.lookup("s3cr3t-bob-token").map(|i| i.groups().len()),
            Some(0)
        );
        assert_eq!(
            table.lookup_digest(&TokenDigest::of("s3cr3t-alice")),
            table.lookup("s3cr3t-alice")
        );
        assert_eq!(table.lookup_digest(&TokenDigest::of("s3cr3t-alic")), None);
        let digest = TokenDigest::of("s3cr3t-alice");
        assert_eq!(TokenDigest::from_hex(&digest.to_hex()), Some(digest));
        assert_eq!(digest.to_hex().len(), 64);
        for bad in ["", "zz", &"g".repeat(64), &"a".repeat(63), &"é".repeat(32)] {
            assert_eq!(TokenDigest::from_hex(bad), None, "{bad:?}");
        }
        assert_eq!(table.lookup("s3cr3t-alic"), None);
        assert_eq!(table.lookup("s3cr3t-alice2"), None);
        assert_eq!(table.lookup(""), None);
    }

    #[test]
    fn empty_files_give_empty_tables() {
        for text in ["", "# nothing yet\n", "[]\n"] {
            let table = parse_tokens(path(), text).expect("parses");
            assert!(table.is_empty());
            assert_eq!(table.lookup("anything-at-all"), None);
        }
    }

    #[test]
    fn debug_redacts_tokens() {
        let table = parse_tokens(path(), GOOD).expect("parses");
        let shown = format!("{table:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert_eq!(
            shown,
            "TokenTable { entries: [Entry { token: \"<redacted>\", user: \"alice\", groups: \
             [\"dev\", \"ops\"] }, Entry { token: \"<redacted>\", user: \"bob\", groups: [] }] }"
        );
    }

    #[test]
    fn reports_every_problem_without_token_values() {
        let text = "\
- token: short
  user: alice
- token: s3cr3t-dup-value
  user: bob
- token: s3cr3t-dup-value
  user: ''
  groups: [dev, '']
- token: has space inside
  user: carol
";
        let message = err(text);
        assert_eq!(
            message,
            "/etc/podgate/tokens.yaml: [0].token: is too short: use at least 8 characters\n\
             /etc/podgate/tokens.yaml: [2].token: is the same as [1].token; each token must be \
             unique\n\
             /etc/podgate/tokens.yaml: [2].user: is empty\n\
             /etc/podgate/tokens.yaml: [2].groups[1]: is empty\n\
             /etc/podgate/tokens.yaml: [3].token: contains whitespace or control characters, \
             which an Authorization header cannot carry"
        );
        assert!(!message.contains("s3cr3t") && !message.contains("space inside"));
    }

    #[test]
    fn names_must_reach_the_cluster_exactly() {
        let text = "\
- token: s3cr3t-padded-user
  user: 'admin '
- token: s3cr3t-padded-group
  user: bob
  groups: [dev, ' system:masters', \"bell\\a\"]
- token: s3cr3t-control-user
  user: \"mallory\\a\"
- token: s3cr3t-newline-user
  user: \"ma\\nllory\"
";
        assert_eq!(
            err(text),
            "/etc/podgate/tokens.yaml: [0].user: starts or ends with whitespace, which HTTP would \
             strip on the way\n\
             /etc/podgate/tokens.yaml: [1].groups[1]: starts or ends with whitespace, which HTTP \
             would strip on the way\n\
             /etc/podgate/tokens.yaml: [1].groups[2]: contains a control character (U+0007)\n\
             /etc/podgate/tokens.yaml: [2].user: contains a control character (U+0007)\n\
             /etc/podgate/tokens.yaml: [3].user: contains a control character (U+000A)"
        );
    }

    #[test]
    fn operators_may_grant_reserved_groups_and_utf8_names() {
        let table = parse_tokens(
            path(),
            "- token: s3cr3t-break-glass\n  user: admin\n  groups: [system:masters]\n\
             - token: s3cr3t-zoe-token\n  user: zoë\n  groups: [équipe]\n",
        )
        .expect("parses");
        let admin = table.lookup("s3cr3t-break-glass").expect("admin");
        assert_eq!(admin.groups(), ["system:masters"]);
        assert!(admin.reserved_part().is_some());
        assert_eq!(
            table.lookup("s3cr3t-zoe-token").map(|i| i.user().as_str()),
            Some("zoë")
        );
    }

    #[test]
    fn example_tokens_parse() {
        let table = parse_tokens(
            Path::new("tokens.example.yaml"),
            include_str!("../../config/tokens.example.yaml"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(table.len(), 3);
        let bob = table.lookup("replace-with-a-long-random-value-3");
        assert_eq!(
            bob.map(|i| (i.user().as_str(), i.groups().len())),
            Some(("bob", 0))
        );
    }

    #[test]
    fn missing_file_names_it() {
        let message = load_tokens(Path::new("/nonexistent/podgate-tokens-test.yaml"))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("/nonexistent/podgate-tokens-test.yaml: cannot read: "),
            "{message}"
        );
    }

    #[test]
    fn syntax_errors_do_not_leak_tokens() {
        // A list of bare tokens instead of entries.
        let message = err("- s3cr3t-plain-token\n");
        assert!(!message.contains("s3cr3t"), "{message}");
        assert!(
            message.starts_with("/etc/podgate/tokens.yaml: "),
            "{message}"
        );
        assert!(message.contains("line 1"), "{message}");
        assert!(
            message.starts_with("/etc/podgate/tokens.yaml: [0]: invalid type: string <redacted>"),
            "{message}"
        );
        // A token written as a key.
        let message = err("- s3cr3t-as-key: alice\n");
        assert!(!message.contains("s3cr3t"), "{message}");
        assert!(message.contains("unknown field <redacted>"), "{message}");
        assert!(message.contains("`token`"), "{message}");
        // Missing user still names the field.
        let message = err("- token: s3cr3t-no-user\n");
        assert!(message.contains("missing field `user`"), "{message}");
    }

    #[test]
    fn redact_handles_unterminated_quotes() {
        assert_eq!(
            redact("a \"b\" c `token` `x"),
            "a <redacted> c `token` <redacted>"
        );
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(ct_eq(b"", b""));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(!ct_eq(b"ab", b"abc"));
        assert!(!ct_eq(b"abc\0", b"abc"));
    }
}
