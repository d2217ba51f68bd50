//! Real kubectl: the binaries this machine has, and one way to run them (a private HOME and
//! cache so nothing of the machine's own kubectl set-up applies, stdin given or fed like
//! `yes`, a time limit; or under a pseudo-terminal).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;

/// The dispatcher, which picks a kubectl version by the server's.
pub const DEFAULT: &str = "/usr/bin/kubectl";

/// The pinned versions used besides the dispatcher, when the machine has them.
const PINNED: [&str; 2] = ["1.30", "1.33"];

/// `/usr/bin/kubectl` first, then the pinned 1.30 and 1.33 binaries that are installed.
pub fn binaries() -> Vec<PathBuf> {
    let dispatcher = PathBuf::from(DEFAULT);
    assert!(dispatcher.exists(), "kubectl is not installed at {DEFAULT}");
    std::iter::once(dispatcher)
        .chain(
            PINNED
                .iter()
                .map(|minor| {
                    PathBuf::from(format!("/usr/lib/google-cloud-sdk/bin/kubectl.{minor}"))
                })
                .filter(|p| p.exists()),
        )
        .collect()
}

/// Whether [`DEFAULT`] is installed; a skip note (a failure under `CI=true`) when not.
pub fn available() -> bool {
    crate::available(Path::new(DEFAULT).exists(), "kubectl at /usr/bin/kubectl")
}

/// What kubectl reads on stdin.
pub enum Input<'a> {
    /// These bytes, then end of file.
    Given(&'a [u8]),
    /// `y\n` after `y\n` for as long as kubectl reads (as `yes | kubectl ...`), until it exits.
    Yes,
}

impl<'a> From<&'a [u8]> for Input<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        Input::Given(bytes)
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Input<'a> {
    fn from(bytes: &'a [u8; N]) -> Self {
        Input::Given(bytes)
    }
}

impl<'a> From<&'a Vec<u8>> for Input<'a> {
    fn from(bytes: &'a Vec<u8>) -> Self {
        Input::Given(bytes)
    }
}

/// How a kubectl run ended.
#[derive(Debug)]
pub struct Output {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Checks that kubectl failed and its stderr says one of `any_of` (`what` names the run in
    /// failures).
    pub fn assert_fails_saying(&self, any_of: &[&str], what: &str) {
        assert_ne!(self.code, 0, "{what}: {}", self.text());
        assert!(
            any_of.iter().any(|s| self.stderr.contains(s)),
            "{what}: none of {any_of:?} in {}",
            self.stderr
        );
    }

    /// Checks a run of [`STREAMS`] (`what` names it in failures): exit code 3, each line on
    /// its own stream, and kubectl's note of the code after the command's stderr.
    pub fn assert_streams_apart(&self, what: &str) {
        assert_eq!(self.code, 3, "{what}: {}", self.stderr);
        assert_eq!(self.text(), "out\n", "{what}");
        assert!(
            self.stderr.starts_with("err\n"),
            "{what}: {:?}",
            self.stderr
        );
        assert!(
            self.stderr.contains("command terminated with exit code 3"),
            "{what}: {}",
            self.stderr
        );
    }

    /// Checks `kubectl get pods -A` of the devclusters' built-in topology: its columns, and
    /// every pod Running and ready.
    pub fn assert_lists_every_namespace(&self, what: &str) {
        assert_eq!(self.code, 0, "{what}: {}", self.stderr);
        let text = self.text();
        let header: Vec<&str> = text
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(
            header,
            ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            "{what}: {text}"
        );
        for (ns, pod, ready) in [
            ("default", "shell-0", "1/1"),
            ("default", "multi-0", "2/2"),
            ("load", "echo-0", "1/1"),
            ("load", "flood-0", "1/1"),
            ("shop", "web-0", "1/1"),
        ] {
            assert!(
                text.lines().any(|line| {
                    let c: Vec<&str> = line.split_whitespace().collect();
                    c.len() >= 4 && c[0] == ns && c[1] == pod && c[2] == ready && c[3] == "Running"
                }),
                "{what}: {ns}/{pod} missing in:\n{text}"
            );
        }
    }
}

/// A script for [`Output::assert_streams_apart`]: a line on stdout, one on stderr, exit 3.
/// `kubectl` arguments for a shell in `default/shell-0` that says it is up, then waits: the
/// session stays open until something ends it.
pub const WAITING: [&str; 9] = [
    "exec",
    "-i",
    "-n",
    "default",
    "shell-0",
    "--",
    "sh",
    "-c",
    "echo ready; exec sleep 600",
];

pub const STREAMS: &str = "echo out; echo err >&2; exit 3";

/// kubectl with a kubeconfig, a private HOME (and cache under it) and optionally a context.
#[derive(Clone, Debug)]
pub struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    home: PathBuf,
    context: Option<String>,
    limit: Duration,
}

impl Kubectl {
    /// `bin` with `kubeconfig`, HOME `home` and its cache in `home/cache`; runs may take 60 s.
    pub fn new(
        bin: impl Into<PathBuf>,
        kubeconfig: impl Into<PathBuf>,
        home: impl Into<PathBuf>,
    ) -> Kubectl {
        Kubectl {
            bin: bin.into(),
            kubeconfig: kubeconfig.into(),
            home: home.into(),
            context: None,
            limit: Duration::from_secs(60),
        }
    }

    /// In `context` (`--context`).
    pub fn context(mut self, context: &str) -> Kubectl {
        self.context = Some(context.into());
        self
    }

    /// Runs must end within `limit`.
    pub fn within(mut self, limit: Duration) -> Kubectl {
        self.limit = limit;
        self
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The leading flags: the kubeconfig, the private cache, the context. Flags given later
    /// override them.
    pub fn flags(&self) -> Vec<OsString> {
        let mut flags: Vec<OsString> = vec![
            "--kubeconfig".into(),
            self.kubeconfig.clone().into(),
            "--cache-dir".into(),
            self.home.join("cache").into(),
        ];
        if let Some(c) = &self.context {
            flags.extend(["--context".into(), c.into()]);
        }
        flags
    }

    /// The command line for `args`, with stdin, stdout and stderr piped, killed when dropped.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(self.flags())
            .args(args)
            .env("HOME", &self.home)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs kubectl with `args` to completion, feeding it `stdin`; it must finish in time.
    pub async fn run<'a>(&self, args: &[&str], stdin: impl Into<Input<'a>>) -> Output {
        let mut child = self
            .command(args)
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", self.bin.display()));
        let mut input = child.stdin.take().expect("stdin is piped");
        let feed = match stdin.into() {
            Input::Given(bytes) => {
                let data = bytes.to_vec();
                tokio::spawn(async move {
                    let _ = input.write_all(&data).await;
                })
            }
            Input::Yes => tokio::spawn(async move {
                let ys = b"y\n".repeat(2048);
                // Ends when kubectl exits (EPIPE) or stops reading for good.
                while input.write_all(&ys).await.is_ok() {}
            }),
        };
        let out = tokio::time::timeout(self.limit, child.wait_with_output())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} {args:?} did not finish within {:?}",
                    self.bin.display(),
                    self.limit
                )
            })
            .expect("kubectl's output");
        feed.abort();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `kubectl exec shell-0 -- sh -c <script>` (the devclusters' shell pod), no stdin.
    pub async fn sh(&self, script: &str) -> Output {
        self.run(&["exec", "shell-0", "--", "sh", "-c", script], b"")
            .await
    }

    /// kubectl with `args` under a fresh pseudo-terminal of `rows` × `cols`.
    pub fn pty(&self, args: &[&str], rows: u16, cols: u16) -> Tty {
        let (pty, pts) = pty_process::open().expect("a pty");
        pty.resize(pty_process::Size::new(rows, cols))
            .expect("the pty's size");
        let child = pty_process::Command::new(&self.bin)
            .args(self.flags())
            .args(args)
            .env("HOME", &self.home)
            .env_remove("KUBECONFIG")
            .kill_on_drop(true)
            .spawn(pts)
            .unwrap_or_else(|e| panic!("{} under a pty: {e}", self.bin.display()));
        let (read, write) = pty.into_split();
        Tty { child, read, write }
    }
}

/// kubectl under a pseudo-terminal: what it shows, what it is typed, its window.
pub struct Tty {
    pub child: tokio::process::Child,
    pub read: pty_process::OwnedReadPty,
    /// Typing, and [`pty_process::OwnedWritePty::resize`] for the window.
    pub write: pty_process::OwnedWritePty,
}

impl Tty {
    /// kubectl's exit code, within `limit`.
    pub async fn exit_code(&mut self, limit: Duration) -> Option<i32> {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .expect("kubectl exits in time")
            .expect("kubectl's exit status")
            .code()
    }
}
