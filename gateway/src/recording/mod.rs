//! Sessions on record: every exec/attach session of a cluster that records is written as an
//! asciicast v2 file (asciinema's format, replayable by any of its tools) while it runs.
//!
//! - [`asciicast`]: the format, and UTF-8 across frame boundaries (pure);
//! - [`key`]: a recording's id and path (pure);
//! - [`queue`]: one session's events on their way to the disk, bounded;
//! - [`recorder`]: the tap the relay feeds, and the writer task that owns the file and feeds
//!   live observers;
//! - [`sink`]: where recordings are kept (a directory; a small trait for others);
//! - [`store`]: listing and reading recordings for replay.
//!
//! The relay never waits on the disk: it copies an event into the session's queue and goes on.
//! A `required` recording whose disk is behind makes the relay wait before it reads the next
//! message (back-pressure to the pod); a `best_effort` one drops and counts.
//!
//! This module uses nothing above it; the session handshake starts a recording and the route
//! layer serves replays and observers.

pub mod asciicast;
pub mod key;
pub mod queue;
pub mod recorder;
pub mod sink;
pub mod store;

pub use key::Key;
pub use recorder::{Handle, Prepared, Recorder, Settings};
pub use sink::{DirSink, Sink};

use podgate_config::{ClusterConfig, RecordingConfig, RecordingMode};
use podgate_metrics::RecordingMetrics;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// What podgate knows of a session when its recording starts.
pub struct SessionInfo<'a> {
    pub session_id: &'a str,
    pub cluster: &'a str,
    pub namespace: &'a str,
    pub pod: &'a str,
    pub container: &'a str,
    pub user: &'a str,
    pub groups: &'a [String],
    pub command: &'a [String],
    pub tty: bool,
    /// `browser` or `kubectl`.
    pub client: &'static str,
    pub started_unix: u64,
}

/// Why a recording could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "recording is required for cluster {cluster:?}, but podgate has no recording.dir (set \
         it and restart)"
    )]
    NoSink { cluster: String },
    #[error("the recording {id} could not be created: {source}")]
    Create {
        id: String,
        #[source]
        source: std::io::Error,
    },
}

/// The recording settings of every cluster, as the config file says now (reloadable).
#[derive(Debug, Clone, Default)]
struct Policy {
    default: RecordingMode,
    input: bool,
    clusters: HashMap<String, (Option<RecordingMode>, Option<bool>)>,
    max_bytes: u64,
    budget: usize,
    size_wait: std::time::Duration,
}

impl Policy {
    fn of(r: &RecordingConfig, clusters: &[ClusterConfig]) -> Policy {
        Policy {
            default: r.default,
            input: r.input,
            clusters: clusters
                .iter()
                .filter(|c| c.recording.is_some() || c.record_input.is_some())
                .map(|c| (c.id.clone(), (c.recording, c.record_input)))
                .collect(),
            max_bytes: r.max_session_bytes.0,
            budget: r.buffer_bytes.as_usize(),
            size_wait: r.size_wait.get(),
        }
    }

    fn settings(&self, cluster: &str) -> Settings {
        let (mode, input) = self.clusters.get(cluster).copied().unwrap_or_default();
        Settings {
            mode: mode.unwrap_or(self.default),
            input: input.unwrap_or(self.input),
            max_bytes: self.max_bytes,
            budget: self.budget,
            size_wait: self.size_wait,
        }
    }
}

/// Recording for the whole gateway: the sink, the per-cluster settings, the series.
pub struct Recording {
    sink: Option<Arc<dyn Sink>>,
    policy: RwLock<Policy>,
    metrics: RecordingMetrics,
    /// This process's name in recordings and the live session list.
    replica: String,
}

impl Recording {
    /// Recording as the config's `recording` section and its clusters say, into `sink` (none:
    /// nothing can be recorded).
    pub fn new(
        sink: Option<Arc<dyn Sink>>,
        config: &RecordingConfig,
        clusters: &[ClusterConfig],
        replica: String,
    ) -> Recording {
        let r = Recording {
            sink,
            policy: RwLock::new(Policy::default()),
            metrics: RecordingMetrics::new(),
            replica,
        };
        r.configure(config, clusters);
        r
    }

    /// The sink the config's `recording.dir` names, if it does.
    pub fn dir_sink(config: &RecordingConfig) -> Option<Arc<dyn Sink>> {
        config
            .dir
            .as_ref()
            .map(|d| Arc::new(DirSink::new(d.clone())) as Arc<dyn Sink>)
    }

    /// Nothing recorded (tests, the parts of podgate that build no config).
    pub fn off() -> Recording {
        Recording {
            sink: None,
            policy: RwLock::new(Policy::default()),
            metrics: RecordingMetrics::new(),
            replica: replica_name(),
        }
    }

    /// Applies the file's settings (at start and at every reload) to sessions started from now.
    pub fn configure(&self, config: &RecordingConfig, clusters: &[ClusterConfig]) {
        let policy = Policy::of(config, clusters);
        for c in clusters {
            if policy.settings(&c.id).mode != RecordingMode::Off {
                self.metrics.cluster(&c.id);
            }
        }
        *self.policy.write().unwrap_or_else(|p| p.into_inner()) = policy;
    }

    pub fn metrics(&self) -> &RecordingMetrics {
        &self.metrics
    }

    pub fn sink(&self) -> Option<&Arc<dyn Sink>> {
        self.sink.as_ref()
    }

    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The settings a session on `cluster` starting now gets.
    pub fn settings(&self, cluster: &str) -> Settings {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .settings(cluster)
    }

    /// Creates the recording of a session about to start: `Ok(None)` when its cluster does
    /// not record, an error when the recording cannot start (which refuses a `required`
    /// session; a `best_effort` one goes on unrecorded, and is counted).
    pub async fn prepare(&self, s: &SessionInfo<'_>) -> Result<Option<Prepared>, StartError> {
        let settings = self.settings(s.cluster);
        if settings.mode == RecordingMode::Off {
            return Ok(None);
        }
        // Zeroed series from a cluster's first recording on (a reload may have turned it on).
        self.metrics.cluster(s.cluster);
        let result = self.create(s, settings).await;
        match result {
            Ok(p) => Ok(Some(p)),
            Err(e) => {
                self.metrics
                    .ended(s.cluster, podgate_metrics::RecordingResult::Failed);
                tracing::error!(cluster = %s.cluster, "{e}");
                match settings.mode {
                    RecordingMode::Required => Err(e),
                    _ => Ok(None),
                }
            }
        }
    }

    async fn create(
        &self,
        s: &SessionInfo<'_>,
        settings: Settings,
    ) -> Result<Prepared, StartError> {
        let Some(sink) = &self.sink else {
            return Err(StartError::NoSink {
                cluster: s.cluster.to_string(),
            });
        };
        let key = Key {
            day: key::Day::of_unix(s.started_unix),
            cluster: s.cluster.to_string(),
            session: s.session_id.to_string(),
        };
        let file = sink
            .create(&key)
            .await
            .map_err(|source| StartError::Create {
                id: key.to_string(),
                source,
            })?;
        let meta = asciicast::Meta {
            recording_id: key.to_string(),
            session_id: s.session_id.to_string(),
            cluster: s.cluster.to_string(),
            namespace: s.namespace.to_string(),
            pod: s.pod.to_string(),
            container: s.container.to_string(),
            user: s.user.to_string(),
            groups: s.groups.to_vec(),
            client: s.client,
            command: s.command.to_vec(),
            tty: s.tty,
            input: settings.input,
            replica: self.replica.clone(),
        };
        Ok(Prepared {
            key,
            meta,
            started_unix: s.started_unix,
            file,
            sink: sink.clone(),
            settings,
            metrics: self.metrics.clone(),
        })
    }
}

/// This process's name among replicas: `POD_NAME` (the Deployment sets it from the pod's
/// name), else the host name.
pub fn replica_name() -> String {
    std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|n| !n.is_empty() && !n.chars().any(char::is_control))
        .unwrap_or_else(|| "podgate".into())
}
