//! The process's log: one event per line on standard error, as text or JSON (`log.format`),
//! filtered by `PODGATE_LOG` (default `info`).
//!
//! Much of what podgate logs comes from clients: user names from tokens, exec commands, paths,
//! container names, error texts that quote them. Whatever a field or a message holds, a text
//! line escapes its control characters (`\n` as the two characters `\n`, ESC as `\u{1b}`), so no
//! client can end a line and write a forged one after it, or send terminal escapes to whoever
//! reads the log. JSON lines are escaped by JSON itself. Escaping happens in the formatter, for
//! every field of every event and span, not at each call site.

use podgate_config::LogFormat;
use std::borrow::Cow;
use std::fmt;
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// Installs the global subscriber, writing to standard error.
pub fn init(format: LogFormat) {
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("PODGATE_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr);
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .fmt_fields(EscapedFields)
            .try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
}

/// Text fields (`key=value`, the message bare) with control characters escaped.
pub struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = EscapingVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapingVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl EscapingVisitor<'_> {
    fn write(&mut self, field: &Field, value: &str) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        self.result = if field.name() == "message" {
            write!(self.writer, "{separator}{}", escape(value))
        } else {
            write!(
                self.writer,
                "{separator}{}={}",
                field.name(),
                escape(&bare(value))
            )
        };
    }
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        // As tracing's default: a plain string field is shown quoted (Debug).
        self.write(field, &format!("{value:?}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` (Display) and `?value` (Debug) fields, and the message, arrive here.
        self.write(field, &format!("{value:?}"));
    }
}

/// A value shown as it is when it is one word, quoted otherwise: a `%value` from a client
/// (`command = %cmd`) with a space or `=` in it cannot add `key=value` pairs of its own.
fn bare(value: &str) -> Cow<'_, str> {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '=' || c == '"');
    if plain {
        Cow::Borrowed(value)
    } else if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') && is_quoted(value)
    {
        // Already a quoted string (`?text`, or a plain `&str` field).
        Cow::Borrowed(value)
    } else {
        Cow::Owned(format!("{value:?}"))
    }
}

/// Whether `value` is exactly one Debug-quoted string: no unescaped quote inside.
fn is_quoted(value: &str) -> bool {
    let inner = &value[1..value.len() - 1];
    let mut escaped = false;
    for c in inner.chars() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => return false,
            _ => {}
        }
    }
    !escaped
}

/// `text` with every control character written as an escape, so it stays on one line and
/// sends no terminal escapes.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        pub(crate) fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
        }
    }

    const FORGED: &str =
        "evil\n2026-12-01T00:00:00.000Z  INFO podgate: session ended outcome=completed";

    fn log_hostile_values() {
        let span = tracing::info_span!("session", user = %FORGED, command = FORGED);
        let _in = span.enter();
        tracing::info!(
            path = %"/api\r\nx",
            container = ?"c\u{1b}[2J",
            trick = %"a outcome=\"completed\"",
            plain = %"word",
            "refused: {FORGED}"
        );
    }

    #[test]
    fn text_lines_cannot_be_forged() {
        let out = Captured::default();
        let w = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .fmt_fields(EscapedFields)
            .finish();
        tracing::subscriber::with_default(subscriber, log_hostile_values);
        let text = out.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
        assert!(text.contains("refused: evil\\n2026-12-01"), "{text}");
        assert!(text.contains("user=\"evil\\n2026"), "{text}");
        // A client's value cannot add fields: it is quoted, its quotes escaped.
        assert!(
            text.contains("trick=\"a outcome=\\\"completed\\\"\""),
            "{text}"
        );
        assert!(text.contains("plain=word"), "{text}");
        assert!(text.contains("path=\"/api\\r\\nx\""), "{text}");
        // UTF-8 stays readable.
        assert_eq!(escape("zoë 用户"), "zoë 用户");
        assert_eq!(escape("a\tb\u{85}"), "a\\tb\\u{85}");
    }

    #[test]
    fn json_lines_are_one_object_each() {
        let out = Captured::default();
        let w = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .json()
            .with_current_span(true)
            .finish();
        tracing::subscriber::with_default(subscriber, log_hostile_values);
        let text = out.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON object");
        assert_eq!(line["fields"]["path"], "/api\r\nx");
        assert_eq!(line["span"]["user"], FORGED);
    }
}
