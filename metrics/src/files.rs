//! File transfers into and out of containers (tar over exec, as `kubectl cp` does).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `podgate_file_transfers_total` | counter | direction (`upload`, `download`), result ([`FileResult`]) |
//! | `podgate_file_transfer_bytes_total` | counter | direction |
//!
//! Bytes count the file's content that crossed the gateway (not tar's framing), for
//! transfers that succeeded and failed alike.

use prometheus::{IntCounterVec, Opts, Registry};

/// Which way a file went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileDirection {
    Upload,
    Download,
}

impl FileDirection {
    pub const ALL: [FileDirection; 2] = [FileDirection::Upload, FileDirection::Download];

    pub const fn as_str(self) -> &'static str {
        match self {
            FileDirection::Upload => "upload",
            FileDirection::Download => "download",
        }
    }
}

/// How a transfer ended: the `result` of `podgate_file_transfers_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileResult {
    /// The whole file, and the container's tar exited 0.
    Succeeded,
    /// Refused before the container was asked: the edge policy, a bad request.
    Refused,
    /// The cluster said no (RBAC, no such pod or container).
    Denied,
    /// Larger than `files.max_upload` / `files.max_download`.
    TooLarge,
    /// The container's tar failed (no tar, permission, read-only, disk full, no such file).
    Failed,
    /// The cluster could not be reached, or the connection to it or to the client broke.
    Broken,
}

impl FileResult {
    pub const ALL: [FileResult; 6] = [
        FileResult::Succeeded,
        FileResult::Refused,
        FileResult::Denied,
        FileResult::TooLarge,
        FileResult::Failed,
        FileResult::Broken,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            FileResult::Succeeded => "succeeded",
            FileResult::Refused => "refused",
            FileResult::Denied => "denied",
            FileResult::TooLarge => "too_large",
            FileResult::Failed => "failed",
            FileResult::Broken => "broken",
        }
    }
}

/// The file transfer series; clones share them.
#[derive(Clone)]
pub struct FileMetrics {
    transfers: IntCounterVec,
    bytes: IntCounterVec,
}

impl Default for FileMetrics {
    fn default() -> Self {
        FileMetrics::new()
    }
}

impl FileMetrics {
    pub fn new() -> FileMetrics {
        let m = FileMetrics {
            transfers: IntCounterVec::new(
                Opts::new(
                    "podgate_file_transfers_total",
                    "File uploads and downloads, by direction and result.",
                ),
                &["direction", "result"],
            )
            .expect("valid metric"),
            bytes: IntCounterVec::new(
                Opts::new(
                    "podgate_file_transfer_bytes_total",
                    "File content bytes uploaded or downloaded through the gateway.",
                ),
                &["direction"],
            )
            .expect("valid metric"),
        };
        // Zeroed, so `rate()` sees the first of each.
        for d in FileDirection::ALL {
            m.bytes.with_label_values(&[d.as_str()]);
            for r in FileResult::ALL {
                m.transfers.with_label_values(&[d.as_str(), r.as_str()]);
            }
        }
        m
    }

    /// Adds the series to `registry` (the gateway's, for `/metrics`).
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.transfers.clone()))?;
        registry.register(Box::new(self.bytes.clone()))
    }

    /// One transfer ended with `result`, having moved `bytes` of the file's content.
    pub fn transfer(&self, direction: FileDirection, result: FileResult, bytes: u64) {
        self.transfers
            .with_label_values(&[direction.as_str(), result.as_str()])
            .inc();
        self.bytes
            .with_label_values(&[direction.as_str()])
            .inc_by(bytes);
    }

    /// `podgate_file_transfers_total{direction, result}` now (tests).
    pub fn transfers(&self, direction: FileDirection, result: FileResult) -> u64 {
        self.transfers
            .with_label_values(&[direction.as_str(), result.as_str()])
            .get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_starts_at_zero_and_counts() {
        let m = FileMetrics::new();
        let r = Registry::new();
        m.register(&r).expect("registers");
        let text = || crate::exposition(&r);
        let before = text();
        assert!(
            before.contains(
                r#"podgate_file_transfers_total{direction="upload",result="too_large"} 0"#
            )
        );
        m.transfer(FileDirection::Download, FileResult::Succeeded, 1234);
        let after = text();
        assert!(after.contains(
            r#"podgate_file_transfers_total{direction="download",result="succeeded"} 1"#
        ));
        assert!(after.contains(r#"podgate_file_transfer_bytes_total{direction="download"} 1234"#));
        assert_eq!(
            m.transfers(FileDirection::Download, FileResult::Succeeded),
            1
        );
    }
}
