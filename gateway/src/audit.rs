//! Audit lines: one JSON object per session start and end, and per proxied mutating request.
//!
//! Lines go through a bounded queue to one writer task, so a slow disk never slows a shell;
//! if the queue is full, the line is dropped and counted (and logged), never blocking.

use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;

const QUEUE: usize = 4096;

#[derive(Clone)]
pub struct Audit {
    tx: Option<mpsc::Sender<Vec<u8>>>,
    dropped: Arc<AtomicU64>,
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
    pub close_reason: &'static str,
}

#[derive(Serialize)]
pub struct RequestRecord<'a> {
    pub user: &'a str,
    pub groups: &'a [String],
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
        }
    }

    /// `stdout`, `off`, or a file path (appended to). The writer task ends when every
    /// `Audit` handle is dropped, after writing what was queued.
    pub async fn open(output: &str) -> Result<Audit, AuditError> {
        let mut out: Box<dyn tokio::io::AsyncWrite + Send + Unpin> = match output {
            "off" => return Ok(Audit::off()),
            "stdout" => Box::new(tokio::io::stdout()),
            path => Box::new(
                tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await
                    .map_err(|source| AuditError {
                        path: path.into(),
                        source,
                    })?,
            ),
        };
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                if let Err(e) = out.write_all(&line).await {
                    tracing::error!("audit write failed: {e}");
                }
                if rx.is_empty() {
                    let _ = out.flush().await;
                }
            }
            let _ = out.flush().await;
        });
        Ok(Audit {
            tx: Some(tx),
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    fn emit(&self, event: &str, record: &impl Serialize) {
        let Some(tx) = &self.tx else { return };
        let mut value = serde_json::to_value(record).unwrap_or_default();
        value["event"] = serde_json::Value::from(event);
        let mut line = serde_json::to_vec(&value).unwrap_or_default();
        line.push(b'\n');
        if tx.try_send(line).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(
                dropped_total = n,
                "audit queue full: an audit line was dropped"
            );
        }
    }

    pub fn session_start(&self, s: &SessionRecord) {
        self.emit("session_start", s);
    }

    pub fn session_end(&self, e: &SessionEnd<'_>) {
        self.emit("session_end", e);
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
