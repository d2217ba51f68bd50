//! What a process holds, read from `/proc`: open fds, threads, child processes, memory.

use std::path::PathBuf;

pub const MIB: u64 = 1 << 20;

/// A process, this one or another by pid.
pub struct Process {
    pid: u32,
}

impl Process {
    /// This test process.
    pub fn this() -> Process {
        Process::pid(std::process::id())
    }

    pub fn pid(pid: u32) -> Process {
        Process { pid }
    }

    fn dir(&self, entry: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/{entry}", self.pid))
    }

    fn count(&self, entry: &str) -> usize {
        std::fs::read_dir(self.dir(entry))
            .map(|d| d.count())
            .unwrap_or(usize::MAX)
    }

    /// Open file descriptors (`usize::MAX` when the process is gone).
    pub fn fds(&self) -> usize {
        self.count("fd")
    }

    /// Threads (`usize::MAX` when the process is gone).
    pub fn threads(&self) -> usize {
        self.count("task")
    }

    /// Processes whose parent this is.
    pub fn children(&self) -> usize {
        // Field 4 of /proc/N/stat is the parent pid (after the parenthesised command name).
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter(|stat| {
                stat.rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(self.pid)
            })
            .count()
    }

    /// A `/proc/N/status` field in KiB (`VmRSS`, `VmHWM`, ...).
    pub fn status_kib(&self, field: &str) -> u64 {
        std::fs::read_to_string(self.dir("status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(str::to_string))
            })
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid))
    }

    /// Resident memory, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        self.status_kib("VmRSS") * 1024
    }
}
