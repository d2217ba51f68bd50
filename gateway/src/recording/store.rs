//! Listing recordings for `GET /podgate/recordings`: newest first, filtered, in pages.
//!
//! The sink is walked day by day from the newest (or from where the last page ended), so a
//! page costs the recordings it looks at, not the whole store: each one's header (who, where,
//! when) and last line (how it ended) are read. A page also ends after [`SCAN_LIMIT`] files
//! looked at, with a continue token, so a filter that matches little never makes one request
//! read everything.

use super::key::{Day, Key};
use super::sink::{Reader, Sink};
use serde::Serialize;
use std::io;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncSeekExt as _};

/// The most files one page looks at.
pub const SCAN_LIMIT: usize = 5000;
/// The longest header line read.
const HEADER_LIMIT: u64 = 64 << 10;
/// How much of a file's end is read for its last line.
const TAIL: u64 = 8 << 10;

/// What to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub user: Option<String>,
    /// Sessions that started at or after (Unix seconds).
    pub since: Option<u64>,
    /// Sessions that started before (Unix seconds).
    pub until: Option<u64>,
    pub limit: usize,
    /// Resume after this recording (the previous page's continue token).
    pub after: Option<Key>,
}

/// One recording, as listed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Entry {
    pub id: String,
    pub session_id: String,
    pub cluster: String,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub user: String,
    pub groups: Vec<String>,
    pub client: String,
    pub command: Vec<String>,
    pub tty: bool,
    pub input: bool,
    pub replica: String,
    /// RFC 3339.
    pub started: String,
    /// To its last event (so far, for a session still running).
    pub duration_seconds: f64,
    pub bytes: u64,
    /// From its end marker; `None` while the session runs (or if it never ended cleanly).
    pub outcome: Option<String>,
    pub exit_code: Option<i32>,
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Page {
    pub items: Vec<Entry>,
    /// Pass as `continue` for the next page; absent on the last.
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A page of recordings matching `q`.
pub async fn list(sink: &dyn Sink, q: &Query) -> io::Result<Page> {
    let limit = q.limit.max(1);
    let mut items = Vec::new();
    let mut scanned = 0;
    for day in sink.days().await? {
        if let Some(after) = &q.after
            && day > after.day
        {
            continue;
        }
        if q.until.is_some_and(|u| day.start_unix() >= u)
            || q.since.is_some_and(|s| day.start_unix() + 86_400 <= s)
        {
            continue;
        }
        let mut keys = sink.list(day, q.cluster.as_deref()).await?;
        keys.sort_unstable_by(|a, b| b.0.cmp(&a.0));
        for (key, size) in keys {
            if q.after.as_ref().is_some_and(|a| key >= *a) {
                continue;
            }
            if scanned == SCAN_LIMIT {
                return Ok(Page {
                    items,
                    next: Some(key_before(&key)),
                });
            }
            scanned += 1;
            let Some(entry) = read_entry(sink, &key, size).await else {
                continue;
            };
            if matches(q, &entry) {
                if items.len() == limit {
                    // A match past a full page: there is a next page, which starts after
                    // this page's last item (the last page never offers an empty one).
                    let next = items.last().map(|e: &Entry| e.id.clone());
                    return Ok(Page { items, next });
                }
                items.push(entry);
            }
        }
    }
    Ok(Page { items, next: None })
}

/// A continue token that resumes *at* `key` (it was not looked at yet).
fn key_before(key: &Key) -> String {
    // Resuming "after" the next key in order: `after` skips keys >= it, so a key one step
    // above this one; session ids are hex and '-', so appending a character above them works.
    format!("{key}~")
}

/// Parses a continue token.
pub fn parse_continue(token: &str) -> Option<Key> {
    match token.strip_suffix('~') {
        Some(k) => {
            let mut key = Key::parse(k)?;
            key.session.push('~');
            Some(key)
        }
        None => Key::parse(token),
    }
}

fn matches(q: &Query, e: &Entry) -> bool {
    let eq = |want: &Option<String>, got: &str| want.as_deref().is_none_or(|w| w == got);
    let started = parse_started(&e.started);
    eq(&q.cluster, &e.cluster)
        && eq(&q.namespace, &e.namespace)
        && eq(&q.pod, &e.pod)
        && eq(&q.user, &e.user)
        && q.since.is_none_or(|s| started >= s)
        && q.until.is_none_or(|u| started < u)
}

fn parse_started(rfc3339: &str) -> u64 {
    rfc3339
        .parse::<k8s_openapi::jiff::Timestamp>()
        .map_or(0, |t| t.as_second().max(0) as u64)
}

#[derive(serde::Deserialize)]
struct HeaderLine {
    timestamp: u64,
    podgate: MetaLine,
}

#[derive(serde::Deserialize)]
struct MetaLine {
    session_id: String,
    cluster: String,
    namespace: String,
    pod: String,
    container: String,
    user: String,
    #[serde(default)]
    groups: Vec<String>,
    client: String,
    #[serde(default)]
    command: Vec<String>,
    tty: bool,
    #[serde(default)]
    input: bool,
    #[serde(default)]
    replica: String,
}

/// The listing of one recording; `None` when it is not one podgate wrote (logged).
pub async fn read_entry(sink: &dyn Sink, key: &Key, size: u64) -> Option<Entry> {
    let (mut file, _) = match sink.open(key).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(recording = %key, "cannot read recording: {e}");
            return None;
        }
    };
    let header = read_header(&mut file).await?;
    let tail = read_tail(&mut file, size).await.unwrap_or_default();
    let started = k8s_openapi::jiff::Timestamp::from_second(header.timestamp as i64)
        .unwrap_or_default()
        .to_string();
    let m = header.podgate;
    Some(Entry {
        id: key.to_string(),
        session_id: m.session_id,
        cluster: m.cluster,
        namespace: m.namespace,
        pod: m.pod,
        container: m.container,
        user: m.user,
        groups: m.groups,
        client: m.client,
        command: m.command,
        tty: m.tty,
        input: m.input,
        replica: m.replica,
        started,
        duration_seconds: tail.last_at,
        bytes: size,
        outcome: tail.outcome,
        exit_code: tail.exit_code,
        truncated: tail.truncated,
    })
}

async fn read_header(file: &mut Reader) -> Option<HeaderLine> {
    let mut line = Vec::new();
    let mut limited = tokio::io::BufReader::new(file.take(HEADER_LIMIT));
    limited.read_until(b'\n', &mut line).await.ok()?;
    serde_json::from_slice(&line).ok()
}

#[derive(Default)]
struct Tail {
    last_at: f64,
    outcome: Option<String>,
    exit_code: Option<i32>,
    truncated: bool,
}

async fn read_tail(file: &mut Reader, size: u64) -> io::Result<Tail> {
    let from = size.saturating_sub(TAIL);
    file.seek(io::SeekFrom::Start(from)).await?;
    let mut buf = Vec::new();
    file.take(TAIL).read_to_end(&mut buf).await?;
    Ok(tail_of(&buf))
}

/// What the last lines of a recording say: the time of the last event, and its end marker.
fn tail_of(buf: &[u8]) -> Tail {
    let mut tail = Tail::default();
    for line in buf.split(|b| *b == b'\n').rev() {
        let Ok(serde_json::Value::Array(ev)) = serde_json::from_slice::<serde_json::Value>(line)
        else {
            continue;
        };
        let (Some(at), Some(code), Some(data)) = (
            ev.first().and_then(|v| v.as_f64()),
            ev.get(1).and_then(|v| v.as_str()),
            ev.get(2).and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        if tail.last_at == 0.0 {
            tail.last_at = at;
        }
        if code == "m" && data.starts_with("podgate: recording truncated") {
            tail.truncated = true;
        }
        if code == "m"
            && tail.outcome.is_none()
            && let Some(end) = data.strip_prefix("end: ")
        {
            let head = end.split(':').next().unwrap_or(end);
            let mut parts = head.split(", exit code ");
            tail.outcome = parts.next().map(str::to_string);
            tail.exit_code = parts.next().and_then(|c| c.trim().parse().ok());
        }
    }
    tail
}

/// The day range a query looks at, for validation: `since` after `until` is an error.
pub fn valid_range(q: &Query) -> bool {
    match (q.since, q.until) {
        (Some(s), Some(u)) => s < u,
        _ => true,
    }
}

/// The first day a recording of Unix time `t` can be under.
pub fn day_of(t: u64) -> Day {
    Day::of_unix(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_says_how_a_recording_ended() {
        let t = tail_of(
            b"[1.5, \"o\", \"x\"]\n[2.25, \"m\", \"end: exit_nonzero, exit code 3: podgate: bye\"]\n",
        );
        assert_eq!(t.outcome.as_deref(), Some("exit_nonzero"));
        assert_eq!(t.exit_code, Some(3));
        assert_eq!(t.last_at, 2.25);
        let t = tail_of(b"ial line\n[4.0, \"m\", \"podgate: recording truncated: it reached\"]\n[4.5, \"m\", \"end: completed, exit code 0\"]\n");
        assert!(t.truncated);
        assert_eq!(t.outcome.as_deref(), Some("completed"));
        let t = tail_of(b"[1.0, \"o\", \"still running\"]\n");
        assert_eq!((t.outcome, t.last_at), (None, 1.0));
    }

    #[test]
    fn continue_tokens_round_trip() {
        let k = Key::parse("20261201.east.abc-1").expect("an id");
        assert_eq!(parse_continue(&k.to_string()), Some(k.clone()));
        let at = parse_continue(&key_before(&k)).expect("a token");
        assert!(at > k, "resumes at the key itself");
        assert_eq!(parse_continue("../x"), None);
        assert_eq!(parse_continue("20261201.east.abc~~"), None);
    }
}
