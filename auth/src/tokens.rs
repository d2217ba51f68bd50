//! Static bearer tokens: a small authenticator for demos, CI and break-glass access where
//! running an OIDC provider is not worth it. Token values are secrets: they never appear in
//! errors or `Debug` output, and lookups take the same time whichever token matches.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Problems};

/// Shortest accepted token: rejects obvious placeholders and typos such as `test` or `x`.
/// It is a floor, not advice; real tokens should be long and random (`openssl rand -hex 32`).
pub const MIN_TOKEN_CHARS: usize = 8;

/// Who a request acts as. It becomes `Impersonate-User` / `Impersonate-Group` upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity {
    pub user: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    token: String,
    user: String,
    #[serde(default)]
    groups: Vec<String>,
}

/// Tokens and the identities they grant.
#[derive(Clone, Default)]
pub struct TokenTable {
    entries: Vec<(Box<[u8]>, Identity)>,
}

impl TokenTable {
    /// Compares `token` with every entry, in time independent of which one (if any) matches,
    /// so response timing does not help guess a token.
    pub fn lookup(&self, token: &str) -> Option<&Identity> {
        let mut found = usize::MAX;
        for (i, (candidate, _)) in self.entries.iter().enumerate() {
            let mask = usize::from(ct_eq(candidate, token.as_bytes())).wrapping_neg();
            found = (i & mask) | (found & !mask);
        }
        self.entries.get(found).map(|(_, identity)| identity)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Identities in file order, without their tokens: for logging what was loaded.
    pub fn identities(&self) -> impl Iterator<Item = &Identity> {
        self.entries.iter().map(|(_, identity)| identity)
    }
}

impl fmt::Debug for TokenTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted<'a>(&'a Identity);
        impl fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct("Entry")
                    .field("token", &"<redacted>")
                    .field("user", &self.0.user)
                    .field("groups", &self.0.groups)
                    .finish()
            }
        }
        f.debug_struct("TokenTable")
            .field(
                "entries",
                &self
                    .entries
                    .iter()
                    .map(|(_, identity)| Redacted(identity))
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
        if entry.user.trim().is_empty() {
            problems.push(format!("[{i}].user"), "is empty");
        }
        for (j, group) in entry.groups.iter().enumerate() {
            if group.trim().is_empty() {
                problems.push(format!("[{i}].groups[{j}]"), "is empty");
            }
        }
    }
    problems.finish()?;

    Ok(TokenTable {
        entries: entries
            .into_iter()
            .map(|e| {
                (
                    e.token.into_bytes().into_boxed_slice(),
                    Identity {
                        user: e.user,
                        groups: e.groups,
                    },
                )
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
            Some(&Identity {
                user: "alice".into(),
                groups: vec!["dev".into(), "ops".into()],
            })
        );
        assert_eq!(
            table.lookup("s3cr3t-bob-token").map(|i| i.user.as_str()),
            Some("bob")
        );
        assert_eq!(
            table.lookup("s3cr3t-bob-token").map(|i| i.groups.len()),
            Some(0)
        );
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
