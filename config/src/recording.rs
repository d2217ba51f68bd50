//! Session recording and the people who may watch, end and replay other people's sessions:
//! the `recording` and `operators` sections, and a cluster's `recording`/`record_input`.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use crate::duration::Duration;
use crate::error::Problems;
use crate::schema::Config;
use crate::size::ByteSize;

/// Whether a cluster's sessions are recorded, and what a failing recording does to them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingMode {
    /// Not recorded. The default.
    #[default]
    Off,
    /// Recorded when the recording keeps up: a slow disk drops events (counted, marked in the
    /// file), a failed or full one stops the recording; the shell never waits for it.
    BestEffort,
    /// Recorded, or not run: a session whose recording cannot start is refused, one whose
    /// recording fails (I/O error, disk full, size cap) is ended with the reason, and a slow
    /// disk slows the session (nothing is dropped).
    Required,
}

impl RecordingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingMode::Off => "off",
            RecordingMode::BestEffort => "best_effort",
            RecordingMode::Required => "required",
        }
    }
}

/// Recordings of exec/attach sessions as asciicast v2 files, one per session, under `dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingConfig {
    /// The mode of every cluster that sets no `recording` of its own. Default `off`.
    pub default: RecordingMode,
    /// Record what people type (stdin), for every cluster that sets no `record_input` of its
    /// own. Default `false`: people type passwords.
    pub input: bool,
    /// Where recordings go: `DIR/YYYY/MM/DD/CLUSTER/ID.cast`, directories 0700 and files 0600.
    /// Required when any cluster records; several replicas share one volume here. Relative to
    /// this file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// The largest recording of one session. At the cap a `best_effort` recording ends with a
    /// truncation marker and a `required` session is ended. Default `256MiB`.
    pub max_session_bytes: ByteSize,
    /// Events of one session waiting for the disk. Beyond it a `best_effort` recording drops
    /// events and a `required` session waits. Default `1MiB`.
    pub buffer_bytes: ByteSize,
    /// How long a terminal session's recording waits for the terminal's size (the client's
    /// first resize) before it writes its header with 80x24. Default `2s`.
    pub size_wait: Duration,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            default: RecordingMode::Off,
            input: false,
            dir: None,
            max_session_bytes: ByteSize(256 << 20),
            buffer_bytes: ByteSize(1 << 20),
            size_wait: Duration::from_secs(2),
        }
    }
}

/// Some people, by user name or group (as the cluster sees them, after any prefix).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Principals {
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

impl Principals {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }

    /// Whether `user`, in `groups`, is one of them. Nobody when both lists are empty.
    pub fn admit<'a>(&self, user: &str, mut groups: impl Iterator<Item = &'a str>) -> bool {
        self.users.iter().any(|u| u == user) || groups.any(|g| self.groups.iter().any(|x| x == g))
    }
}

/// Who may act on other people's sessions. Everyone sees, watches and ends their own
/// sessions; each right here extends to everyone's. Default: nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OperatorsConfig {
    /// See every live session (`GET /podgate/sessions`).
    pub sessions: Principals,
    /// Watch any live session, read-only (implies seeing it listed).
    pub observe: Principals,
    /// End any live session (`DELETE /podgate/sessions/{id}`; implies seeing it listed).
    pub terminate: Principals,
    /// List and replay recordings (`/podgate/recordings`). Nobody else may, not even the
    /// person recorded.
    pub replay: Principals,
}

impl Config {
    /// The recording mode of cluster `id` (its own, or the default).
    pub fn recording_mode(&self, id: &str) -> RecordingMode {
        self.clusters
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| c.recording)
            .unwrap_or(self.recording.default)
    }
}

pub(crate) fn validate(config: &Config, problems: &mut Problems<'_>) {
    let r = &config.recording;
    let records = r.default != RecordingMode::Off
        || config
            .clusters
            .iter()
            .any(|c| c.recording.is_some_and(|m| m != RecordingMode::Off));
    match &r.dir {
        None if records => problems.push(
            "recording.dir",
            "is required when a cluster records sessions (recording.default or a cluster's \
             recording is best_effort or required)",
        ),
        Some(dir) if dir.as_os_str().is_empty() => {
            problems.push("recording.dir", "must not be empty")
        }
        _ => {}
    }
    if r.max_session_bytes.0 < 4 << 10 {
        problems.push(
            "recording.max_session_bytes",
            format!("{} is too small (at least 4KiB)", r.max_session_bytes),
        );
    }
    if r.buffer_bytes.0 < 4 << 10 {
        problems.push(
            "recording.buffer_bytes",
            format!("{} is too small (at least 4KiB)", r.buffer_bytes),
        );
    }
    if r.size_wait.get() > std::time::Duration::from_secs(60) {
        problems.push("recording.size_wait", "must be at most 60s");
    }
    let o = &config.operators;
    for (field, p) in [
        ("operators.sessions", &o.sessions),
        ("operators.observe", &o.observe),
        ("operators.terminate", &o.terminate),
        ("operators.replay", &o.replay),
    ] {
        for (i, name) in p.users.iter().chain(&p.groups).enumerate() {
            if name.is_empty() || name.trim() != name || name.chars().any(char::is_control) {
                problems.push(
                    format!("{field}: entry {i}"),
                    format!("{name:?} is not a user or group name (empty, padded or with a control character)"),
                );
            }
        }
    }
}
