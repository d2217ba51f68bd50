//! Container runtimes: what actually runs when a session execs or attaches.
//!
//! A runtime reads [`Input`] from a bounded channel and writes output through [`Output`],
//! whose sends wait when the client is slow: that is the backpressure path from a WebSocket
//! reader back to the process.

mod builtin;
pub mod ports;
mod process;
mod reaper;

use crate::topology::{ContainerSpec, Runtime};
use bytes::Bytes;
use podgate_protocol::TerminalSize;
use std::path::PathBuf;
use tokio::sync::mpsc;

/// What the client sends to the process.
#[derive(Debug)]
pub enum Input {
    Stdin(Bytes),
    /// v5 half-close of stdin.
    StdinClosed,
    Resize(TerminalSize),
}

/// Where the process's output goes: `(stream id, bytes)` into the session's writer.
#[derive(Clone)]
pub struct Output {
    tx: mpsc::Sender<(u8, Bytes)>,
}

/// The session's writer is gone (client disconnected).
#[derive(Debug)]
pub struct Closed;

impl Output {
    pub fn new(tx: mpsc::Sender<(u8, Bytes)>) -> Output {
        Output { tx }
    }

    pub async fn send(&self, stream: u8, data: Bytes) -> Result<(), Closed> {
        self.tx.send((stream, data)).await.map_err(|_| Closed)
    }
}

/// How a session's process ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Exited with this code; the string is the runtime's wording for a non-zero exit.
    Code(i32, String),
    /// Could not run at all (command not found, ...): sent as a plain Failure.
    Failed(String),
}

pub struct Launch {
    pub command: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub workdir: PathBuf,
    pub hostname: String,
    /// The container's `env` (over the pod defaults: `PATH` from the host, `HOME`, ...).
    pub env: Vec<(String, String)>,
    /// `securityContext.runAsUser` / `runAsGroup`.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Runs until the process ends. Dropping the future (client gone) kills the process group.
pub async fn run(
    spec: &ContainerSpec,
    launch: Launch,
    input: mpsc::Receiver<Input>,
    out: Output,
) -> Exit {
    match spec.runtime {
        Runtime::Process => process::run(launch, input, out).await,
        Runtime::Echo => builtin::echo(input, out).await,
        Runtime::Flood => {
            let bytes = launch
                .command
                .iter()
                .find_map(|a| a.parse().ok())
                .unwrap_or(spec.flood_bytes);
            builtin::flood(bytes, input, out).await
        }
    }
}
