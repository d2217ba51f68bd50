//! One session's recording while it runs: the [`Recorder`] the relay feeds (a [`Tap`]: it
//! copies the event into the session's [`Queue`] and returns), and the writer task that turns
//! events into asciicast lines, writes them to the sink, and hands them to live observers.
//!
//! The writer is the one owner of the file. It ends when the session's end reaches it (or the
//! recorder is dropped without one: a cancelled session), after writing the end marker, and
//! counts the recording `written`, `truncated` or `failed`. When a `required` recording
//! fails, it ends the session through the `stop` it was given, with the reason.

use super::asciicast::{self, Code, Header, Meta, Utf8Carry};
use super::key::Key;
use super::queue::{Event, Overflow, Pushed, Queue};
use super::sink::{Reader, Sink, SinkWriter};
use crate::tap::{Ended, Stream, Tap};
use bytes::Bytes;
use podgate_config::RecordingMode;
use podgate_metrics::{Outcome, RecordingMetrics, RecordingResult};
use podgate_protocol::TerminalSize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

/// How often written lines are flushed to the file when more keep coming.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Lines are gathered this far before they go to the file in one write (one trip to the
/// blocking pool instead of one per line); the buffer is let go when output pauses.
const WRITE_CHUNK: usize = 128 << 10;
/// What one observer may have waiting before it counts as fallen behind.
const OBSERVER_BACKLOG: usize = 4 << 20;
/// Default terminal size, for sessions without one (or that never said).
const DEFAULT_SIZE: (u16, u16) = (80, 24);

/// The settings one recording runs with.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub mode: RecordingMode,
    pub input: bool,
    pub max_bytes: u64,
    pub budget: usize,
    pub size_wait: Duration,
}

/// A recording whose file exists and whose session has not started yet.
pub struct Prepared {
    pub(super) key: Key,
    pub(super) meta: Meta,
    pub(super) started_unix: u64,
    pub(super) file: Box<dyn SinkWriter>,
    pub(super) sink: Arc<dyn Sink>,
    pub(super) settings: Settings,
    pub(super) metrics: RecordingMetrics,
}

/// What the live session keeps of its recording: its id, and the way in for observers.
pub struct Handle {
    pub key: Key,
    pub mode: RecordingMode,
    observers: Arc<AtomicUsize>,
    joins: mpsc::Sender<oneshot::Sender<Option<Joined>>>,
    metrics: RecordingMetrics,
}

/// An observer, joined: the recording so far, then every line after it.
pub struct Joined {
    /// The file from its start, and how many of its bytes precede `lines`.
    pub so_far: (Reader, u64),
    pub lines: ObserverLines,
}

impl Handle {
    /// People watching right now.
    pub fn observers(&self) -> usize {
        self.observers.load(Ordering::Relaxed)
    }

    /// Joins the recording as an observer; `None` when it is over or stopped.
    pub async fn observe(&self) -> Option<Joined> {
        let (tx, rx) = oneshot::channel();
        self.joins.send(tx).await.ok()?;
        let mut joined = rx.await.ok().flatten()?;
        self.observers.fetch_add(1, Ordering::Relaxed);
        self.metrics.observer_joined();
        joined.lines.count = Some((self.observers.clone(), self.metrics.clone()));
        Some(joined)
    }
}

/// One observer's lines, in order; bounded by [`OBSERVER_BACKLOG`] bytes, past which the
/// observer is let go (the writer never waits for an observer).
pub struct ObserverLines {
    rx: mpsc::UnboundedReceiver<Bytes>,
    backlog: Arc<AtomicUsize>,
    count: Option<(Arc<AtomicUsize>, RecordingMetrics)>,
}

impl ObserverLines {
    /// The next line (newline included); `None` at the end of the recording, or when this
    /// observer fell behind ([`fell_behind`](Self::fell_behind) tells).
    pub async fn next(&mut self) -> Option<Bytes> {
        let line = self.rx.recv().await?;
        self.backlog.fetch_sub(line.len(), Ordering::Relaxed);
        Some(line)
    }

    pub fn fell_behind(&self) -> bool {
        self.backlog.load(Ordering::Relaxed) == usize::MAX
    }
}

impl Drop for ObserverLines {
    fn drop(&mut self) {
        if let Some((n, metrics)) = self.count.take() {
            n.fetch_sub(1, Ordering::Relaxed);
            metrics.observer_left();
        }
    }
}

struct Observer {
    tx: mpsc::UnboundedSender<Bytes>,
    backlog: Arc<AtomicUsize>,
}

impl Observer {
    /// Hands over `line`; false when the observer is gone or fell behind.
    fn send(&self, line: &Bytes) -> bool {
        let held = self.backlog.fetch_add(line.len(), Ordering::Relaxed) + line.len();
        if held > OBSERVER_BACKLOG {
            self.backlog.store(usize::MAX, Ordering::Relaxed);
            return false;
        }
        self.tx.send(line.clone()).is_ok()
    }
}

/// The tap the relay feeds.
pub struct Recorder {
    queue: Arc<Queue>,
    started: Instant,
    input: bool,
    cluster: String,
    metrics: RecordingMetrics,
    /// Set once the session's end was handed over.
    ended: Mutex<bool>,
}

impl Recorder {
    fn push(&self, event: Event) {
        if self.queue.push(event) == Pushed::Dropped {
            self.metrics.dropped(&self.cluster, 1);
        }
    }

    fn at(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Tap for Recorder {
    fn output(&self, stream: Stream, _offset: u64, data: &[u8]) {
        self.push(Event::Output {
            at: self.at(),
            stream,
            data: data.to_vec(),
        });
    }

    fn input(&self, data: &[u8]) {
        if self.input {
            self.push(Event::Input {
                at: self.at(),
                data: data.to_vec(),
            });
        }
    }

    fn resize(&self, size: TerminalSize) {
        self.push(Event::Resize {
            at: self.at(),
            cols: size.width,
            rows: size.height,
        });
    }

    fn notice(&self, text: &str) {
        self.push(Event::Marker {
            at: self.at(),
            text: text.to_string(),
        });
    }

    fn ended(&self, ended: &Ended) {
        *self.ended.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.push(Event::Ended {
            at: self.at(),
            outcome: ended.outcome,
            exit_code: ended.exit_code,
            message: ended.message.clone(),
        });
    }

    fn backlog(&self, for_input: bool) -> Option<&Notify> {
        if for_input && !self.input {
            return None;
        }
        self.queue.full().then(|| self.queue.drained())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // A session dropped mid-way (cancelled, panicked) still closes its recording.
        if !*self.ended.lock().unwrap_or_else(PoisonError::into_inner) {
            self.queue.push(Event::Ended {
                at: self.at(),
                outcome: Outcome::CLAMPED,
                exit_code: None,
                message: Some("podgate: the session ended unexpectedly".into()),
            });
        }
    }
}

impl Prepared {
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The session did not start after all: the file goes.
    pub async fn discard(self) {
        if let Err(e) = self.file.discard().await {
            tracing::warn!(recording = %self.key, "an unused recording could not be removed: {e}");
        }
    }

    /// Starts the writer on `tasks`; `stop` ends the session (a `required` recording failed).
    pub fn start(
        self,
        tasks: &tokio_util::task::TaskTracker,
        stop: Box<dyn Fn(String) + Send + Sync>,
    ) -> (Recorder, Handle) {
        let overflow = match self.settings.mode {
            RecordingMode::Required => Overflow::Wait,
            _ => Overflow::Drop,
        };
        let queue = Arc::new(Queue::new(self.settings.budget, overflow));
        let (joins_tx, joins) = mpsc::channel(16);
        let started = Instant::now();
        let recorder = Recorder {
            queue: queue.clone(),
            started,
            input: self.settings.input,
            cluster: self.meta.cluster.clone(),
            metrics: self.metrics.clone(),
            ended: Mutex::new(false),
        };
        let handle = Handle {
            key: self.key.clone(),
            mode: self.settings.mode,
            observers: Arc::default(),
            joins: joins_tx,
            metrics: self.metrics.clone(),
        };
        let writer = Writer {
            queue,
            file: Some(self.file),
            sink: self.sink,
            key: self.key,
            started,
            started_unix: self.started_unix,
            settings: self.settings,
            metrics: self.metrics,
            stop,
            written: 0,
            pending: Vec::new(),
            header: None,
            held: Vec::new(),
            last_stream: Stream::Stdout,
            carry: [
                Utf8Carry::default(),
                Utf8Carry::default(),
                Utf8Carry::default(),
            ],
            observers: Vec::new(),
            waiting: Vec::new(),
            result: None,
            meta: self.meta,
        };
        tasks.spawn(writer.run(joins));
        (recorder, handle)
    }
}

struct Writer {
    queue: Arc<Queue>,
    /// `None` once the recording failed or stopped.
    file: Option<Box<dyn SinkWriter>>,
    sink: Arc<dyn Sink>,
    key: Key,
    meta: Meta,
    started: Instant,
    started_unix: u64,
    settings: Settings,
    metrics: RecordingMetrics,
    stop: Box<dyn Fn(String) + Send + Sync>,
    /// Bytes in the recording: in the file, and in `pending` on their way to it.
    written: u64,
    /// Lines not yet handed to the file.
    pending: Vec<u8>,
    /// The terminal size the header was written with, once it was.
    header: Option<(u16, u16)>,
    /// Events that came before the header could be written (cost, event).
    held: Vec<Event>,
    last_stream: Stream,
    /// stdout, stderr, stdin.
    carry: [Utf8Carry; 3],
    observers: Vec<Observer>,
    /// Observers that asked before the header was written.
    waiting: Vec<oneshot::Sender<Option<Joined>>>,
    /// How the recording ended, once it did (truncated or failed before the session's end).
    result: Option<RecordingResult>,
}

impl Writer {
    async fn run(mut self, mut joins: mpsc::Receiver<oneshot::Sender<Option<Joined>>>) {
        let size_due = self.started + self.settings.size_wait;
        if !self.meta.tty {
            self.write_header(DEFAULT_SIZE).await;
        }
        let mut flush_due: Option<Instant> = None;
        let mut joins_open = true;
        loop {
            tokio::select! {
                events = self.queue.take() => {
                    let cost: usize = events.iter().map(Event::cost).sum();
                    let mut over = false;
                    for e in events {
                        over |= self.event(e).await;
                    }
                    self.queue.release(cost);
                    if over {
                        break;
                    }
                    if flush_due.is_none() && self.file.is_some() {
                        flush_due = Some(Instant::now() + FLUSH_EVERY);
                    }
                }
                join = joins.recv(), if joins_open => match join {
                    Some(reply) => self.join(reply).await,
                    None => joins_open = false,
                },
                () = sleep_until(flush_due) => {
                    flush_due = None;
                    self.flush().await;
                }
                () = sleep_until(Some(size_due)), if self.header.is_none() => {
                    self.write_header(DEFAULT_SIZE).await;
                }
            }
        }
        self.flush().await;
        let result = self.result.unwrap_or(if self.file.is_some() {
            RecordingResult::Written
        } else {
            RecordingResult::Failed
        });
        self.metrics.ended(&self.meta.cluster, result);
        // Observers read to here, then the end of their stream.
        self.observers.clear();
        for w in self.waiting.drain(..) {
            let _ = w.send(None);
        }
    }

    /// Handles one event; true once the session's end is written.
    async fn event(&mut self, e: Event) -> bool {
        if self.header.is_none() {
            match e {
                Event::Resize { cols, rows, .. } => {
                    self.write_header((cols, rows)).await;
                    return false;
                }
                Event::Ended { .. } => self.write_header(DEFAULT_SIZE).await,
                other => {
                    self.held.push(other);
                    return false;
                }
            }
        }
        self.record(e).await
    }

    /// Writes one event, the header being written.
    async fn record(&mut self, e: Event) -> bool {
        if self.file.is_none() {
            return matches!(e, Event::Ended { .. });
        }
        // Past the cap only the end is written: a few bytes that say how the session ended.
        if self.result == Some(RecordingResult::Truncated) && !matches!(e, Event::Ended { .. }) {
            return false;
        }
        let start = self.pending.len();
        let t = event_at(&e);
        let line = &mut self.pending;
        let end = match e {
            Event::Output { stream, data, .. } => {
                let text = self.carry[stream as usize].decode_owned(data);
                if !self.meta.tty && stream != self.last_stream {
                    self.last_stream = stream;
                    let name = match stream {
                        Stream::Stdout => "stdout",
                        Stream::Stderr => "stderr",
                    };
                    asciicast::event(line, t, Code::Marker, name);
                }
                if !text.is_empty() {
                    asciicast::event(line, t, Code::Output, &text);
                }
                false
            }
            Event::Input { data, .. } => {
                let text = self.carry[2].decode_owned(data);
                if !text.is_empty() {
                    asciicast::event(line, t, Code::Input, &text);
                }
                false
            }
            Event::Resize { cols, rows, .. } => {
                asciicast::event(line, t, Code::Resize, &asciicast::size(cols, rows));
                false
            }
            Event::Marker { text, .. } => {
                asciicast::event(line, t, Code::Marker, &text);
                false
            }
            Event::Ended {
                outcome,
                exit_code,
                message,
                ..
            } => {
                for carry in &mut self.carry[..2] {
                    let rest = carry.finish();
                    if !rest.is_empty() {
                        asciicast::event(line, t, Code::Output, &rest);
                    }
                }
                asciicast::event(
                    line,
                    t,
                    Code::Marker,
                    &end_marker(outcome, exit_code, message.as_deref()),
                );
                true
            }
        };
        // The end is written even past the cap: a few bytes that say how it ended.
        let len = self.pending.len() - start;
        if !end && self.written + len as u64 > self.settings.max_bytes {
            self.pending.truncate(start);
            self.truncate(t).await;
            return false;
        }
        self.commit(start).await;
        end
    }

    async fn write_header(&mut self, size: (u16, u16)) {
        self.header = Some(size);
        let line = Header::new(&self.meta, size.0, size.1, self.started_unix).line();
        self.write(line).await;
        // What came before the size (an end among them is handled where it arrives).
        for e in std::mem::take(&mut self.held) {
            self.record(e).await;
        }
        for w in std::mem::take(&mut self.waiting) {
            self.join(w).await;
        }
    }

    /// Writes `line` to the file and hands it to every observer.
    async fn write(&mut self, line: Vec<u8>) {
        if self.file.is_none() {
            return;
        }
        let start = self.pending.len();
        self.pending.extend_from_slice(&line);
        self.commit(start).await;
    }

    /// The lines in `pending` from `start` on are the recording's: counted, handed to every
    /// observer, and to the file once enough are gathered.
    async fn commit(&mut self, start: usize) {
        let len = self.pending.len() - start;
        self.written += len as u64;
        self.metrics.written(&self.meta.cluster, len as u64);
        if !self.observers.is_empty() {
            let lines = Bytes::copy_from_slice(&self.pending[start..]);
            self.observers.retain(|o| o.send(&lines));
        }
        if self.pending.len() >= WRITE_CHUNK {
            self.drain().await;
        }
    }

    /// Hands the gathered lines to the file.
    async fn drain(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let Some(file) = &mut self.file else {
            self.pending.clear();
            return;
        };
        match file.write(std::mem::take(&mut self.pending)).await {
            // The buffer comes back empty, its capacity kept for the next lines.
            Ok(buffer) => self.pending = buffer,
            Err(e) => self.fail(format!("writing it failed: {e}")),
        }
    }

    /// Makes everything recorded so far readable in the file, and lets the buffer go.
    async fn flush(&mut self) {
        self.drain().await;
        self.pending = Vec::new();
        if let Some(file) = &mut self.file
            && let Err(e) = file.flush().await
        {
            self.fail(format!("writing it failed: {e}"));
        }
    }

    /// The size cap is reached: a marker, then no more.
    async fn truncate(&mut self, at: Duration) {
        let cap = podgate_config::ByteSize(self.settings.max_bytes);
        let mut line = Vec::new();
        asciicast::event(
            &mut line,
            at,
            Code::Marker,
            &format!("podgate: recording truncated: it reached the size cap of {cap}"),
        );
        self.write(line).await;
        self.flush().await;
        self.queue.stop();
        self.observers.clear();
        if self.settings.mode == RecordingMode::Required {
            (self.stop)(format!(
                "podgate: session closed: its recording reached the size cap of {cap}, and this \
                 cluster records every session (recording: required)"
            ));
        }
        self.result = Some(RecordingResult::Truncated);
    }

    fn fail(&mut self, why: String) {
        tracing::error!(recording = %self.key, "recording failed: {why}");
        self.file = None;
        self.result.get_or_insert(RecordingResult::Failed);
        self.queue.stop();
        self.observers.clear();
        if self.settings.mode == RecordingMode::Required {
            (self.stop)(format!(
                "podgate: session closed: its recording failed ({why}), and this cluster \
                 records every session (recording: required)"
            ));
        }
    }

    async fn join(&mut self, reply: oneshot::Sender<Option<Joined>>) {
        if self.file.is_none() {
            let _ = reply.send(None);
            return;
        }
        if self.header.is_none() {
            self.waiting.push(reply);
            return;
        }
        self.flush().await;
        if self.file.is_none() {
            let _ = reply.send(None);
            return;
        }
        let reader = match self.sink.open(&self.key).await {
            Ok((r, _)) => r,
            Err(e) => {
                tracing::warn!(recording = %self.key, "an observer could not read the recording: {e}");
                let _ = reply.send(None);
                return;
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let backlog = Arc::new(AtomicUsize::new(0));
        self.observers.push(Observer {
            tx,
            backlog: backlog.clone(),
        });
        let _ = reply.send(Some(Joined {
            so_far: (reader, self.written),
            lines: ObserverLines {
                rx,
                backlog,
                count: None,
            },
        }));
    }
}

fn event_at(e: &Event) -> Duration {
    match e {
        Event::Output { at, .. }
        | Event::Input { at, .. }
        | Event::Resize { at, .. }
        | Event::Marker { at, .. }
        | Event::Ended { at, .. } => *at,
    }
}

/// The last marker of a recording: `end: OUTCOME[, exit code N][: MESSAGE]`.
pub fn end_marker(outcome: Outcome, exit_code: Option<i32>, message: Option<&str>) -> String {
    let mut s = format!("end: {}", outcome.as_str());
    if let Some(code) = exit_code {
        s.push_str(&format!(", exit code {code}"));
    }
    if let Some(m) = message {
        s.push_str(": ");
        s.push_str(m);
    }
    s
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
