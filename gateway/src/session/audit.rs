//! Audit lines: one JSON object per session start and end, per refused session attempt, and
//! per proxied mutating request.
//!
//! Lines go through a bounded queue to one writer thread, so a slow disk never slows a shell;
//! if the queue is full, the line is dropped and counted (and logged), never blocking. A
//! plain thread rather than tokio's async stdout/file, which hop through the blocking pool on
//! every write and so keep pool threads alive.
//!
//! The writer wakes for the first line after a quiet spell, writes it at once, then lingers
//! [`LINGER`] and writes whatever came meanwhile as one batch: a sender wakes the thread only
//! when it waits in `recv`, so under load lines cost no wake-up and no system call of their
//! own. Waking it per line was three context switches and a `write` per line, the largest
//! share of what podgate's session setup cost above the reference relay's (BENCHMARKS.md,
//! "Audit lines in batches"). [`Audit::flush`] waits until every line before it is written:
//! a shutdown ends with it, so the last sessions' ends are on disk before the process exits.

use super::log_scope::session_log;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const QUEUE: usize = 4096;
/// How long the writer gathers lines after a write. Lines are on disk this much later at
/// most; a setup rate of 1,000/s makes 20 lines of a batch.
pub const LINGER: Duration = Duration::from_millis(10);
/// A batch's bound in bytes: the writer's one buffer holds no more than this (and one line).
const BATCH: usize = 256 * 1024;

/// What the writer thread takes: a line, or a flush to answer once the lines before it are
/// written.
enum Msg {
    Line(Vec<u8>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Audit {
    tx: Option<mpsc::SyncSender<Msg>>,
    dropped: Arc<AtomicU64>,
    /// Where write failures and dropped lines are counted, once the gateway's metrics exist
    /// (`podgate_audit_write_failures_total`, `podgate_audit_lines_dropped_total`).
    metrics: Arc<OnceLock<podgate_metrics::Metrics>>,
}

/// A session's identity and target, as audited at start and end.
#[derive(Clone, Serialize)]
pub struct SessionRecord {
    pub session_id: String,
    pub user: String,
    pub groups: Vec<String>,
    pub source: String,
    pub cluster: String,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub command: Vec<String>,
    pub tty: bool,
    pub protocol: String,
    pub start: String,
    /// The id of its recording (`GET /podgate/recordings/{id}`), when it is recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
}

#[derive(Serialize)]
pub struct SessionEnd<'a> {
    #[serde(flatten)]
    pub session: &'a SessionRecord,
    pub end: String,
    pub duration_seconds: f64,
    pub stdin_bytes: u64,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    pub exit_code: Option<i32>,
    /// The outcome, in the vocabulary of `podgate_sessions_total{outcome}`.
    pub close_reason: &'static str,
    /// Why, in words, when the gateway or the cluster said more than the outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'a str>,
    /// A port-forward's ports, as its connections named them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<&'a [u16]>,
    /// A port-forward's forwarded connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<u64>,
}

/// A session attempt that never started: refused at the edge, by a limit, by the cluster, or
/// because the request was not a valid exec/attach upgrade.
#[derive(Serialize)]
pub struct SessionRefused<'a> {
    #[serde(flatten)]
    pub session: &'a SessionRecord,
    /// The HTTP status the client was answered with (or would have been, for a browser told
    /// inside the socket).
    pub code: u16,
    /// The outcome, in the vocabulary of `podgate_sessions_total{outcome}`.
    pub close_reason: &'static str,
    pub message: &'a str,
}

#[derive(Serialize)]
pub struct RequestRecord<'a> {
    /// `user` and `groups`.
    #[serde(flatten)]
    pub identity: &'a podgate_auth::Identity,
    pub source: &'a str,
    pub cluster: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub code: u16,
    pub time: String,
}

#[derive(Debug, thiserror::Error)]
#[error("audit output {path}: {source}")]
pub struct AuditError {
    path: String,
    source: std::io::Error,
}

impl Audit {
    /// An audit log that writes nothing.
    pub fn off() -> Audit {
        Audit {
            tx: None,
            dropped: Arc::new(AtomicU64::new(0)),
            metrics: Arc::default(),
        }
    }

    /// Counts write failures and dropped lines in `metrics` from now on (the first call wins).
    pub fn count_in(&self, metrics: &podgate_metrics::Metrics) {
        let _ = self.metrics.set(metrics.clone());
    }

    /// `stdout`, `off`, or a file path (appended to). The writer thread ends when every
    /// `Audit` handle is dropped, after writing what was queued.
    pub fn open(output: &str) -> Result<Audit, AuditError> {
        let mut out: Box<dyn std::io::Write + Send> = match output {
            "off" => return Ok(Audit::off()),
            "stdout" => Box::new(std::io::stdout()),
            path => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| AuditError {
                        path: path.into(),
                        source,
                    })?,
            ),
        };
        let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
        let metrics: Arc<OnceLock<podgate_metrics::Metrics>> = Arc::default();
        let counted = metrics.clone();
        let failed = move |e: std::io::Error, lines: u64| {
            tracing::error!("audit write failed, {lines} line(s) lost: {e}");
            if let Some(m) = counted.get() {
                m.audit_write_failures(lines);
            }
        };
        std::thread::Builder::new()
            .name("podgate-audit".into())
            .spawn(move || write_lines(&rx, &mut out, || std::thread::sleep(LINGER), failed))
            .map_err(|source| AuditError {
                path: output.into(),
                source,
            })?;
        Ok(Audit {
            tx: Some(tx),
            dropped: Arc::new(AtomicU64::new(0)),
            metrics,
        })
    }

    fn emit(&self, event: &str, record: &impl Serialize) {
        let Some(tx) = &self.tx else { return };
        let line = match audit_line(event, record) {
            Ok(line) => line,
            Err(e) => {
                // Not written is not silently thinned out: counted as a line that failed.
                session_log!(ERROR, event, "audit line not written: {e}");
                if let Some(m) = self.metrics.get() {
                    m.audit_write_failures(1);
                }
                return;
            }
        };
        if tx.try_send(Msg::Line(line)).is_err() {
            if let Some(m) = self.metrics.get() {
                m.audit_line_dropped();
            }
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            session_log!(
                WARN,
                dropped_total = n,
                "audit queue full: an audit line was dropped"
            );
        }
    }

    /// A line of another kind (an operator's action, a replay): `record` with `event`.
    pub fn event(&self, event: &str, record: &impl Serialize) {
        self.emit(event, record);
    }

    pub fn session_start(&self, s: &SessionRecord) {
        self.emit("session_start", s);
    }

    pub fn session_end(&self, e: &SessionEnd<'_>) {
        self.emit("session_end", e);
    }

    pub fn session_refused(&self, r: &SessionRefused<'_>) {
        self.emit("session_refused", r);
    }

    pub fn request(&self, r: &RequestRecord<'_>) {
        self.emit("request", r);
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every line queued before this call is written (or its write failed), for
    /// at most `limit`; false when the writer did not answer in time.
    pub async fn flush(&self, limit: Duration) -> bool {
        let Some(tx) = self.tx.clone() else {
            return true;
        };
        let (done, written) = tokio::sync::oneshot::channel();
        // `send` waits for room in a full queue: on a thread of the blocking pool.
        let asked = tokio::task::spawn_blocking(move || tx.send(Msg::Flush(done)).is_ok());
        tokio::time::timeout(limit, async {
            matches!(asked.await, Ok(true)) && written.await.is_ok()
        })
        .await
        .unwrap_or(false)
    }
}

/// One audit line: `{"event":EVENT,` then `record`'s fields, then a newline. Serialized
/// straight into the line (no `serde_json::Value` map built and sorted per line).
fn audit_line(event: &str, record: &impl Serialize) -> Result<Vec<u8>, serde_json::Error> {
    let mut line = Vec::with_capacity(512);
    line.extend_from_slice(b"{\"event\":");
    serde_json::to_writer(&mut line, event)?;
    let fields = line.len();
    serde_json::to_writer(&mut line, record)?;
    match line.get(fields..) {
        Some(b"{}") => {
            line.truncate(fields);
            line.push(b'}');
        }
        Some([b'{', ..]) => line[fields] = b',',
        _ => {
            return Err(serde::ser::Error::custom(
                "an audit record is not a JSON object",
            ));
        }
    }
    line.push(b'\n');
    Ok(line)
}

/// The writer thread: until every sender is gone, waits for a line, writes it and what is
/// queued behind it, then gathers (`linger`: sleeps [`LINGER`]) before the next write.
fn write_lines(
    rx: &mpsc::Receiver<Msg>,
    out: &mut dyn std::io::Write,
    mut linger: impl FnMut(),
    failed: impl Fn(std::io::Error, u64),
) {
    let mut batch = Vec::new();
    let mut flushes = Vec::new();
    let take = |m: Msg, batch: &mut Vec<u8>, flushes: &mut Vec<_>| match m {
        Msg::Line(line) => batch.extend_from_slice(&line),
        Msg::Flush(done) => flushes.push(done),
    };
    let mut next = rx.recv().ok();
    while let Some(first) = next.take() {
        take(first, &mut batch, &mut flushes);
        let full = loop {
            if batch.len() >= BATCH {
                break true;
            }
            match rx.try_recv() {
                Ok(m) => take(m, &mut batch, &mut flushes),
                Err(_) => break false,
            }
        };
        if let Err((e, lost)) = write_batch(out, &batch) {
            failed(e, lost);
        }
        batch.clear();
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
        if !full {
            linger();
        }
        next = match rx.try_recv() {
            Ok(m) => Some(m),
            Err(TryRecvError::Empty) => rx.recv().ok(),
            Err(TryRecvError::Disconnected) => None,
        };
    }
}

/// One batch of whole lines, written; on a failure the error and how many lines were not
/// written in full.
fn write_batch(out: &mut dyn std::io::Write, batch: &[u8]) -> Result<(), (std::io::Error, u64)> {
    let mut done = 0;
    let result = loop {
        if done == batch.len() {
            break out.flush();
        }
        match out.write(&batch[done..]) {
            Ok(0) => break Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    result.map_err(|e| {
        let lost = batch[done..].iter().filter(|&&b| b == b'\n').count() as u64;
        (e, lost)
    })
}

/// RFC 3339 UTC timestamp with milliseconds.
pub fn timestamp(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let ts =
        k8s_openapi::jiff::Timestamp::from_millisecond(d.as_millis() as i64).unwrap_or_default();
    format!("{ts:.3}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// An output that keeps what it was given and how many writes gave it.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<(Vec<u8>, usize)>>);

    impl std::io::Write for Kept {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut k = self.0.lock().unwrap_or_else(|p| p.into_inner());
            k.0.extend_from_slice(buf);
            k.1 += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Kept {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner()).0).into()
        }
        fn writes(&self) -> usize {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).1
        }
    }

    fn line(i: usize) -> Msg {
        Msg::Line(format!("{{\"n\":{i}}}\n").into_bytes())
    }

    fn lines(range: std::ops::RangeInclusive<usize>) -> String {
        range.map(|i| format!("{{\"n\":{i}}}\n")).collect()
    }

    #[test]
    fn what_is_queued_is_written_in_one_write_in_order_and_all_of_it_at_the_end() {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        for i in 1..=100 {
            tx.try_send(line(i)).expect("room in the queue");
        }
        drop(tx);
        let kept = Kept::default();
        write_lines(
            &rx,
            &mut kept.clone(),
            || {},
            |e, n| panic!("{n} lost: {e}"),
        );
        assert_eq!(kept.text(), lines(1..=100));
        assert_eq!(kept.writes(), 1, "one batch, one write");
    }

    #[test]
    fn lines_sent_while_the_writer_lingers_go_out_together_and_a_flush_waits_for_them() {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        // The linger, held by the test: the writer says it lingers and waits to be let go.
        let (lingering, lingers) = mpsc::channel::<()>();
        let (go, gone) = mpsc::channel::<()>();
        let kept = Kept::default();
        let mut out = kept.clone();
        let writer = std::thread::spawn(move || {
            let linger = || {
                let _ = lingering.send(());
                let _ = gone.recv();
            };
            write_lines(&rx, &mut out, linger, |e, n| panic!("{n} lost: {e}"));
        });
        let wait = Duration::from_secs(30);
        tx.try_send(line(1)).expect("room");
        lingers
            .recv_timeout(wait)
            .expect("the writer wrote the first line and lingers");
        // A quiet spell's first line is written at once, before any linger.
        assert_eq!((kept.text(), kept.writes()), (lines(1..=1), 1));
        for i in 2..=10 {
            tx.try_send(line(i)).expect("room");
        }
        let (done, flushed) = tokio::sync::oneshot::channel();
        tx.try_send(Msg::Flush(done)).expect("room");
        go.send(()).expect("the writer waits");
        flushed.blocking_recv().expect("the flush is answered");
        assert_eq!(
            kept.text(),
            lines(1..=10),
            "a flush answers after the lines before it"
        );
        assert_eq!(
            kept.writes(),
            2,
            "the nine lines sent during the linger: one write"
        );
        lingers.recv_timeout(wait).expect("it lingers again");
        drop(tx);
        go.send(()).expect("the writer waits");
        writer
            .join()
            .expect("the writer ends when the senders are gone");
    }

    /// Takes `room` bytes, then fails.
    struct Fails {
        room: usize,
    }

    impl std::io::Write for Fails {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::other("disk full"));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_is_the_event_then_the_record_s_fields_as_one_json_object() {
        let identity = podgate_auth::Identity::new("al\"ice", ["dev"]).expect("identity");
        let record = RequestRecord {
            identity: &identity,
            source: "127.0.0.1:1",
            cluster: "c",
            method: "POST",
            path: "/api/v1/namespaces/default/config\nmaps",
            code: 201,
            time: "2026-12-04T05:00:00.000Z".into(),
        };
        let text = audit_line("request", &record).expect("serializes");
        assert!(text.starts_with(b"{\"event\":\"request\",\"user\":"));
        assert_eq!(text.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        assert_eq!(text.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
        assert_eq!(v["user"], "al\"ice", "escaped, and read back as sent");
        assert_eq!(v["path"], "/api/v1/namespaces/default/config\nmaps");
        assert_eq!(v["groups"], serde_json::json!(["dev"]));
        assert_eq!(
            (v["code"].as_u64(), v["cluster"].as_str()),
            (Some(201), Some("c"))
        );
        // A record without fields is the event alone; one that is not an object is refused.
        #[derive(Serialize)]
        struct Nothing {}
        assert_eq!(
            audit_line("ping", &Nothing {}).expect("serializes"),
            b"{\"event\":\"ping\"}\n"
        );
        assert!(audit_line("odd", &5).is_err());
    }

    #[test]
    fn a_failed_write_counts_the_lines_not_written_in_full() {
        let batch = lines(1..=3); // 8 bytes a line
        let lost = |room| write_batch(&mut Fails { room }, batch.as_bytes()).map_err(|(_, n)| n);
        assert_eq!(lost(0), Err(3));
        assert_eq!(lost(12), Err(2), "the second line half written is lost");
        assert_eq!(lost(16), Err(1));
        assert_eq!(lost(24), Ok(()));
    }

    #[test]
    fn write_failures_are_counted() {
        // Every write to /dev/full fails (ENOSPC): a full disk.
        let audit = Audit::open("/dev/full").expect("/dev/full opens");
        let metrics = podgate_metrics::Metrics::new(["c"], Default::default());
        audit.count_in(&metrics);
        audit.request(&RequestRecord {
            identity: &podgate_auth::Identity::new("alice", ["dev"]).expect("identity"),
            source: "127.0.0.1:1",
            cluster: "c",
            method: "POST",
            path: "/api/v1/namespaces/default/configmaps",
            code: 201,
            time: timestamp(std::time::SystemTime::now()),
        });
        let failures = || {
            metrics
                .render()
                .lines()
                .find_map(|l| l.strip_prefix("podgate_audit_write_failures_total "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while failures() == 0 && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(failures() >= 1, "{}", metrics.render());
    }
}
