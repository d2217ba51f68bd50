//! Audit lines: one JSON object per session start and end, per refused session attempt, and
//! per proxied mutating request.
//!
//! Lines go through a bounded queue to one writer thread, so a slow disk never slows a shell;
//! if the queue is full, the line is dropped and counted (and logged), never blocking. A
//! plain thread rather than tokio's async stdout/file, which hop through the blocking pool on
//! every write and so keep pool threads alive.

use super::log_scope::session_log;
use serde::Serialize;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

const QUEUE: usize = 4096;

#[derive(Clone)]
pub struct Audit {
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
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
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(QUEUE);
        let metrics: Arc<OnceLock<podgate_metrics::Metrics>> = Arc::default();
        let counted = metrics.clone();
        let failed = move |e: std::io::Error| {
            tracing::error!("audit write failed: {e}");
            if let Some(m) = counted.get() {
                m.audit_write_failure();
            }
        };
        std::thread::Builder::new()
            .name("podgate-audit".into())
            .spawn(move || {
                while let Ok(line) = rx.recv() {
                    if let Err(e) = out.write_all(&line) {
                        failed(e);
                    }
                    // Flush when the queue is drained: batches under load, prompt when quiet.
                    if let Ok(more) = rx.try_recv() {
                        if let Err(e) = out.write_all(&more) {
                            failed(e);
                        }
                        continue;
                    }
                    if let Err(e) = out.flush() {
                        failed(e);
                    }
                }
                if let Err(e) = out.flush() {
                    failed(e);
                }
            })
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
        let mut value = serde_json::to_value(record).unwrap_or_default();
        value["event"] = serde_json::Value::from(event);
        let mut line = serde_json::to_vec(&value).unwrap_or_default();
        line.push(b'\n');
        if tx.try_send(line).is_err() {
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
