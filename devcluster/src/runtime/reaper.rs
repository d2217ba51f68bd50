//! Reaping orphans of session process groups.
//!
//! A session's group is killed as a whole, so a shell and its jobs die together and the jobs
//! are orphaned. The process is made a child subreaper, so those orphans become its children
//! (not init's, which in containers often reaps nothing), and this module reaps them. It only
//! touches zombies whose process group belongs to a session and which are not a group's
//! leader: leaders are owned by tokio's `Child`, and so is every other child of the process
//! (kubectl run by a test, say), whose exit status must not be taken from it.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};

/// Session groups remembered; older ones have long been reaped.
const REMEMBERED: usize = 4096;

static GROUPS: Mutex<VecDeque<i32>> = Mutex::new(VecDeque::new());
static STARTED: OnceLock<()> = OnceLock::new();

/// Makes this process the subreaper of its descendants and starts the reaping task (once).
pub fn start() {
    STARTED.get_or_init(|| {
        if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
            tracing::warn!(
                "cannot become a child subreaper; orphaned session jobs go to init: {e}"
            );
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async {
            let Ok(mut sigchld) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())
            else {
                return;
            };
            while sigchld.recv().await.is_some() {
                reap();
            }
        });
    });
}

/// Remembers a session's process group (its leader's pid).
pub fn track(pgid: i32) {
    let mut g = GROUPS.lock().unwrap_or_else(|p| p.into_inner());
    if g.len() >= REMEMBERED {
        g.pop_front();
    }
    g.push_back(pgid);
}

/// Reaps zombie children that are members, not leaders, of a session group.
pub fn reap() {
    let groups: Vec<i32> = GROUPS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .copied()
        .collect();
    for pid in children() {
        let Some((state, pgid)) = stat(pid) else {
            continue;
        };
        if state == 'Z'
            && pgid != pid
            && groups.contains(&pgid)
            && let Some(p) = rustix::process::Pid::from_raw(pid)
        {
            let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG);
        }
    }
}

fn children() -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// State and process group of a process, from `/proc/PID/stat`.
fn stat(pid: i32) -> Option<(char, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = s.rsplit_once(") ")?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state: ppid, then pgrp.
    let pgid = fields.nth(1)?.parse().ok()?;
    Some((state, pgid))
}
