//! Real child processes, on a pseudo-terminal (tty) or on pipes with stdout and stderr apart.
//!
//! Each child leads its own process group; when the session ends for any reason, the whole
//! group is killed and the child reaped, so no shell, background job or fd outlives it.

use super::{Exit, Input, Launch, Output};
use bytes::Bytes;
use podgate_protocol::{STDERR, STDOUT};
use std::os::unix::process::ExitStatusExt as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;

const READ_CHUNK: usize = 32 * 1024;

/// Owns a child that leads its own process group. Waiting kills the rest of the group once
/// the leader exits (its background jobs must not outlive the session). Dropping it before
/// that (the client went away) kills the whole group and hands the child to a short task that
/// reaps it, so no zombie is left: tokio's own orphan reaping is lazy.
struct GroupChild {
    child: Option<tokio::process::Child>,
    pgid: Option<rustix::process::Pid>,
}

impl GroupChild {
    fn new(child: tokio::process::Child) -> GroupChild {
        super::reaper::start();
        let pgid = child
            .id()
            .and_then(|p| rustix::process::Pid::from_raw(p as i32));
        if let Some(p) = pgid {
            super::reaper::track(p.as_raw_nonzero().get());
        }
        GroupChild {
            child: Some(child),
            pgid,
        }
    }

    fn kill_group(&mut self) {
        if let Some(pid) = self.pgid.take() {
            // ESRCH (already gone) is fine.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }

    async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        let Some(child) = self.child.as_mut() else {
            return Err(std::io::Error::other("the process was already reaped"));
        };
        let status = child.wait().await;
        self.child = None;
        self.kill_group();
        super::reaper::reap();
        status
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        self.kill_group();
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = child.wait().await;
                    super::reaper::reap();
                });
            }
        }
    }
}

pub async fn run(launch: Launch, input: mpsc::Receiver<Input>, out: Output) -> Exit {
    let Some((program, args)) = launch.command.split_first() else {
        return Exit::Failed("no command given".into());
    };
    if let Err(e) = std::fs::create_dir_all(&launch.workdir) {
        return Exit::Failed(format!(
            "cannot create the container's working directory {}: {e}",
            launch.workdir.display()
        ));
    }
    let result = if launch.tty {
        run_tty(program, args, &launch, input, out).await
    } else {
        run_pipes(program, args, &launch, input, out).await
    };
    match result {
        Ok(status) => exit_of(&launch.command, status),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Exit::Failed(format!(
            "OCI runtime exec failed: exec failed: unable to start container process: exec: {program:?}: executable file not found in $PATH: unknown"
        )),
        Err(e) => Exit::Failed(format!("cannot start {program:?}: {e}")),
    }
}

fn exit_of(command: &[String], status: std::process::ExitStatus) -> Exit {
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    Exit::Code(
        code,
        format!("error executing command {command:?}, exit code {code}"),
    )
}

/// The environment of a process in a pod: a container's, not the host user's. Only `PATH`
/// comes from the host, so its programs resolve; `HOME` is the pod's own directory, so shells
/// read none of the host's rc files (slow, and different on every machine) and write no history
/// into the host user's home.
fn pod_env(launch: &Launch) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> = vec![
        ("PATH".into(), path),
        ("HOME".into(), launch.workdir.clone().into_os_string()),
        ("HOSTNAME".into(), launch.hostname.clone().into()),
        ("LANG".into(), "C.UTF-8".into()),
    ];
    // The container's own `env` wins, as in a pod (a `PATH` here is the one programs are
    // looked up in: std searches the child's `PATH` when it is set).
    for (name, value) in &launch.env {
        env.retain(|(n, _)| n.as_os_str() != name.as_str());
        env.push((name.into(), value.into()));
    }
    env
}

/// How long a session without a tty waits before starting its process, unless the client sends
/// stdin first. kubectl 1.30–1.33 (client-go before kubernetes/kubernetes#131203) starts reading
/// the WebSocket before it has registered its streams and drops output that arrives in between
/// ("Unknown stream id 1, discarding message"). Behind a real kube-apiserver the kubelet and
/// the container runtime take milliseconds to start a process, which hides that race; a
/// devcluster that started at once lost `echo` output to kubectl on a busy machine.
const START_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// How long a tty session waits for the client's first resize before starting the process,
/// so the program's first `stty size` (or first screen) already sees the real window.
const FIRST_RESIZE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

async fn run_tty(
    program: &str,
    args: &[String],
    launch: &Launch,
    mut input: mpsc::Receiver<Input>,
    out: Output,
) -> std::io::Result<std::process::ExitStatus> {
    let (pty, pts) = pty_process::open().map_err(std::io::Error::other)?;
    let mut early = None;
    match tokio::time::timeout(FIRST_RESIZE_WAIT, input.recv()).await {
        Ok(Some(Input::Resize(size))) => {
            let _ = pty.resize(pty_process::Size::new(size.height, size.width));
        }
        Ok(Some(other)) => early = Some(other),
        Ok(None) | Err(_) => {}
    }
    let mut command = pty_process::Command::new(program);
    if let Some(uid) = launch.uid {
        command = command.uid(uid);
    }
    if let Some(gid) = launch.gid {
        command = command.gid(gid);
    }
    let child = command
        .args(args)
        .current_dir(&launch.workdir)
        .env_clear()
        .envs(pod_env(launch))
        .env("TERM", "xterm-256color")
        .kill_on_drop(true)
        .spawn(pts)
        .map_err(|e| match e {
            pty_process::Error::Io(io) => io,
            other => std::io::Error::other(other),
        })?;
    let mut child = GroupChild::new(child);
    let (mut reader, writer) = pty.into_split();
    // A terminal has no half-close: stdin EOF on a tty session is ignored, as runtimes do.
    let stdin = pump_input(early, input, Some(writer), false, |w, size| {
        let _ = w.resize(pty_process::Size::new(size.height, size.width));
    });
    let main = async {
        let (status, ()) = tokio::join!(
            // When the shell is gone its jobs go too, which closes the pty so the reader ends.
            child.wait(),
            pump_output(&mut reader, STDOUT, &out),
        );
        status
    };
    tokio::select! {
        status = main => status,
        never = stdin => match never {},
    }
}

async fn run_pipes(
    program: &str,
    args: &[String],
    launch: &Launch,
    mut input: mpsc::Receiver<Input>,
    out: Output,
) -> std::io::Result<std::process::ExitStatus> {
    use std::process::Stdio;
    // Like a real runtime, take a moment to start: see START_WAIT. The client's first stdin
    // frame ends the wait early (it is sent only once the client's streams exist).
    let early = match tokio::time::timeout(START_WAIT, input.recv()).await {
        Ok(Some(first)) => Some(first),
        Ok(None) | Err(_) => None,
    };
    let piped = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    let mut command = tokio::process::Command::new(program);
    if let Some(uid) = launch.uid {
        command.uid(uid);
    }
    if let Some(gid) = launch.gid {
        command.gid(gid);
    }
    let mut child = command
        .args(args)
        .current_dir(&launch.workdir)
        .env_clear()
        .envs(pod_env(launch))
        .stdin(piped(launch.stdin))
        .stdout(piped(launch.stdout))
        .stderr(piped(launch.stderr))
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let (stdout, stderr, stdin) = (child.stdout.take(), child.stderr.take(), child.stdin.take());
    let mut child = GroupChild::new(child);
    let stdin = pump_input(early, input, stdin, true, |_, _| {});
    let main = async {
        let (status, (), ()) = tokio::join!(
            child.wait(),
            async {
                if let Some(mut s) = stdout {
                    pump_output(&mut s, STDOUT, &out).await
                }
            },
            async {
                if let Some(mut s) = stderr {
                    pump_output(&mut s, STDERR, &out).await
                }
            },
        );
        status
    };
    tokio::select! {
        status = main => status,
        never = stdin => match never {},
    }
}

/// Copies one output stream of the process to the client until EOF (EIO on a pty whose
/// other side closed) or until the client is gone.
async fn pump_output(reader: &mut (impl AsyncRead + Unpin), stream: u8, out: &Output) {
    loop {
        let mut buf = Vec::with_capacity(READ_CHUNK);
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if out.send(stream, Bytes::from(buf)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Feeds client input to the process forever (never returns, so it can sit in a `select!`
/// next to the process's lifetime): stdin bytes, half-close, and resizes through `resize`.
async fn pump_input<W: AsyncWrite + Unpin>(
    first: Option<Input>,
    mut input: mpsc::Receiver<Input>,
    mut stdin: Option<W>,
    honour_close: bool,
    resize: impl Fn(&W, podgate_protocol::TerminalSize),
) -> std::convert::Infallible {
    let mut first = first;
    loop {
        let msg = match first.take() {
            Some(m) => m,
            None => match input.recv().await {
                Some(m) => m,
                None => break,
            },
        };
        match msg {
            Input::Stdin(data) => {
                if let Some(w) = stdin.as_mut()
                    && w.write_all(&data).await.is_err()
                {
                    stdin = None;
                }
            }
            Input::StdinClosed if honour_close => {
                if let Some(mut w) = stdin.take() {
                    let _ = w.shutdown().await;
                }
            }
            Input::StdinClosed => {}
            Input::Resize(size) => {
                if let Some(w) = stdin.as_ref() {
                    resize(w, size);
                }
            }
        }
    }
    std::future::pending().await
}
