//! `podgate serve` as an operator runs it, as a process: its files (a config file, a static
//! tokens file, TLS files, a kubeconfig per devcluster) written as config management writes
//! them (aside, then renamed, so a reload never reads half a file); the process started and
//! its address read from stdout; its log (stderr) kept line by line, to wait on and inspect;
//! its admin listener's address learnt from that log; signals; a kill when dropped. And
//! `kubectl exec -i` sessions held open through it ([`Held`]).
//!
//! The binary is the caller's: `env!("CARGO_BIN_EXE_podgate")` exists only in the gateway
//! package's own tests.

use crate::kubectl::{self, Kubectl};
use crate::tls::Endpoint;
use crate::wait::{read_until, wait_for};
use podgate_devcluster::{DevCluster, Options};
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// How long `podgate serve` may take to say where it listens.
const START: Duration = Duration::from_secs(30);
/// How long after a file changed a reload must have been logged: podgate looks at the files'
/// stamps every 2 s.
const RELOAD: Duration = Duration::from_secs(15);

/// `find()` once it is `Some`, within `limit` (asked every 20 ms).
pub(crate) async fn until_some<T>(
    limit: Duration,
    mut find: impl FnMut() -> Option<T>,
) -> Option<T> {
    let mut found = None;
    wait_for(limit, || {
        found = find();
        found.is_some()
    })
    .await;
    found
}

/// Someone in the static tokens file.
#[derive(Clone, Copy, Debug)]
pub struct Person {
    pub token: &'static str,
    pub user: &'static str,
    pub groups: &'static [&'static str],
}

/// May do anything (`system:masters` on the devclusters).
pub const ADMIN: Person = Person {
    token: "serve-test-admin-token",
    user: "admin",
    groups: &["system:masters"],
};
/// Group `dev`: may exec in `default` on the devclusters.
pub const ALICE: Person = Person {
    token: "serve-test-alice-token",
    user: "alice",
    groups: &["dev"],
};
/// No groups: may list pods on the devclusters, not exec.
pub const BOB: Person = Person {
    token: "serve-test-bob-token",
    user: "bob",
    groups: &[],
};
/// Who the tokens file holds at the start.
pub const PEOPLE: [Person; 3] = [ADMIN, ALICE, BOB];

/// A devcluster named `name` with the built-in topology.
pub async fn cluster(name: &str) -> DevCluster {
    podgate_devcluster::install_crypto_provider();
    DevCluster::start(Options {
        name: name.into(),
        ..Options::default()
    })
    .await
    .unwrap_or_else(|e| panic!("devcluster {name} starts: {e}"))
}

/// What the config file says: its clusters (each a devcluster, reached as the user `podgate`
/// who may only impersonate) and its top-level sections. Both listeners on `127.0.0.1:0`, the
/// kit's TLS files and tokens file, a 5 s keepalive, unless [`Config::set`] changes them.
#[derive(Clone)]
pub struct Config {
    clusters: Vec<Entry>,
    sections: Vec<(String, String)>,
}

#[derive(Clone)]
struct Entry {
    id: String,
    /// The kubeconfig's text; `None` for a cluster reached through agents, whose token file
    /// is `{id}.agent-token` (see [`Files::write_agent_token`]).
    kubeconfig: Option<String>,
    access: Option<String>,
}

impl Config {
    /// `clusters` as `(id, devcluster)`, in that order.
    pub fn new(clusters: &[(&str, &DevCluster)]) -> Config {
        let sections = [
            ("listen", "127.0.0.1:0"),
            ("admin", "{listen: 127.0.0.1:0}"),
            ("tls", "{cert_file: tls.crt, key_file: tls.key}"),
            ("auth", "{tokens_file: tokens.yaml}"),
            ("sessions", "{keepalive: 5s}"),
        ];
        Config {
            clusters: clusters
                .iter()
                .map(|(id, dc)| Entry {
                    id: id.to_string(),
                    kubeconfig: Some(dc.kubeconfig().to_yaml()),
                    access: None,
                })
                .collect(),
            sections: sections
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Adds cluster `id`, reached only through the tunnels of `podgate agent`s that show the
    /// token in `{id}.agent-token` (the gateway has no address for it).
    pub fn agent_cluster(mut self, id: &str) -> Config {
        self.clusters.push(Entry {
            id: id.into(),
            kubeconfig: None,
            access: None,
        });
        self
    }

    /// Without cluster `id`.
    pub fn without(mut self, id: &str) -> Config {
        self.clusters.retain(|c| c.id != id);
        self
    }

    /// Cluster `id`'s `access` policy, as YAML (`{users: [admin]}`).
    pub fn access(mut self, id: &str, policy: &str) -> Config {
        let entry = self
            .clusters
            .iter_mut()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no cluster {id} in the config"));
        entry.access = Some(policy.into());
        self
    }

    /// The top-level `section` as YAML (`{format: json}` for `log`), in place of the kit's.
    pub fn set(mut self, section: &str, yaml: &str) -> Config {
        match self.sections.iter_mut().find(|(k, _)| k == section) {
            Some((_, v)) => *v = yaml.into(),
            None => self.sections.push((section.into(), yaml.into())),
        }
        self
    }

    fn yaml(&self) -> String {
        let mut yaml: String = self
            .sections
            .iter()
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect();
        yaml.push_str("clusters:\n");
        for c in &self.clusters {
            let id = &c.id;
            yaml.push_str(&match &c.kubeconfig {
                Some(_) => {
                    format!("  - id: {id}\n    kubeconfig: {id}.kubeconfig\n    context: podgate\n")
                }
                None => format!("  - id: {id}\n    agent: {{token_file: {id}.agent-token}}\n"),
            });
            if let Some(access) = &c.access {
                yaml.push_str(&format!("    access: {access}\n"));
            }
        }
        yaml
    }
}

/// The files of one `podgate serve`, in a private directory (kubectl's HOME and cache too).
pub struct Files {
    pub dir: tempfile::TempDir,
    /// `podgate.yaml`.
    pub config: PathBuf,
    /// `tokens.yaml`, which the config names.
    pub tokens: PathBuf,
    /// The PEM of the CA that signed the gateway's certificate (for `127.0.0.1`).
    pub ca_pem: String,
}

/// A directory with a certificate for `127.0.0.1`, the tokens file of [`PEOPLE`] and
/// `config`.
pub fn setup(config: &Config) -> Files {
    setup_for(config, &["127.0.0.1"])
}

/// [`setup`] with a certificate for `names` (an address in a test's network namespace too).
pub fn setup_for(config: &Config, names: &[&str]) -> Files {
    let dir = tempfile::tempdir().expect("a temp dir");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let pem = podgate_devcluster::tls::generate_pem(&names).expect("a cert");
    let files = Files {
        config: dir.path().join("podgate.yaml"),
        tokens: dir.path().join("tokens.yaml"),
        ca_pem: pem.ca_pem,
        dir,
    };
    files.write("tls.crt", &pem.cert_pem);
    files.write("tls.key", &pem.key_pem);
    files.write_tokens(&PEOPLE);
    files.write_config(config);
    files
}

impl Files {
    /// `dir/name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `dir/name` aside, then renames it into place; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        let aside = self.path(&format!(".{name}.tmp"));
        std::fs::write(&aside, text)
            .and_then(|()| std::fs::rename(&aside, &path))
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// The config file as `config` says (a cluster's kubeconfig only when it changed, so an
    /// unchanged cluster is not rebuilt at the reload).
    pub fn write_config(&self, config: &Config) {
        for c in &config.clusters {
            let Some(kubeconfig) = &c.kubeconfig else {
                continue;
            };
            let name = format!("{}.kubeconfig", c.id);
            if std::fs::read_to_string(self.path(&name)).ok().as_deref() != Some(kubeconfig) {
                self.write(&name, kubeconfig);
            }
        }
        self.write("podgate.yaml", &config.yaml());
    }

    /// The agent token of cluster `id` (`{id}.agent-token`, which the config names).
    pub fn write_agent_token(&self, id: &str, token: &str) -> PathBuf {
        self.write(&format!("{id}.agent-token"), token)
    }

    /// The tokens file with `people` (and no one else).
    pub fn write_tokens(&self, people: &[Person]) {
        let yaml: String = people
            .iter()
            .map(|p| {
                format!(
                    "- token: {}\n  user: {}\n  groups: [{}]\n",
                    p.token,
                    p.user,
                    p.groups.join(", ")
                )
            })
            .collect();
        self.write("tokens.yaml", &yaml);
    }
}

/// A `podgate serve` of the binary at `bin` in front of one devcluster, `east`, with the kit's
/// config as `tune` changes it: what [`one_cluster`] starts.
pub struct OneCluster {
    /// Dropped first: the process is killed before its files and cluster go.
    pub gw: Serve,
    pub files: Files,
    /// The config it started with, to change for a reload.
    pub config: Config,
    pub east: DevCluster,
}

/// Starts devcluster `east` and `podgate serve` in front of it.
pub async fn one_cluster(bin: &Path, tune: impl FnOnce(Config) -> Config) -> OneCluster {
    let east = cluster("east").await;
    let config = tune(Config::new(&[("east", &east)]));
    let files = setup(&config);
    let gw = start(bin, &files).await;
    OneCluster {
        gw,
        files,
        config,
        east,
    }
}

/// `podgate check-config --config <config>` with the binary at `bin`, run to its end.
pub fn check_config(bin: &Path, config: &Path) -> std::process::Output {
    std::process::Command::new(bin)
        .args(["check-config", "--config"])
        .arg(config)
        .output()
        .unwrap_or_else(|e| panic!("{} check-config runs: {e}", bin.display()))
}

/// Lines read off a pipe so far, by a thread of their own.
#[derive(Clone, Default)]
pub(crate) struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    pub(crate) fn collect(
        &self,
        pipe: impl std::io::Read + Send + 'static,
    ) -> std::thread::JoinHandle<()> {
        let lines = self.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).split(b'\n') {
                let Ok(line) = line else { return };
                lines
                    .lock()
                    .push(String::from_utf8_lossy(&line).into_owned());
            }
        })
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self) -> Vec<String> {
        self.lock().clone()
    }
}

/// A running `podgate serve`, killed when dropped (its log is printed then if the test is
/// failing).
pub struct Serve {
    child: Child,
    /// `https://127.0.0.1:PORT`, as it printed.
    pub url: String,
    pub addr: SocketAddr,
    /// The admin listener (`/metrics`, `/readyz`, ...), as it logged.
    pub admin: SocketAddr,
    pub(crate) ca_pem: String,
    /// The files' directory: kubeconfigs for kubectl, its HOME and cache.
    dir: PathBuf,
    stderr: Lines,
    stdout: Lines,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Starts `bin serve --config` with `files` (`PODGATE_LOG=info`), and waits until it says
/// where it listens and where its admin listener is.
///
/// From then on podgate acts on signals and file changes (it notes its files' stamps before
/// reading them, and catches its signals before printing its address).
pub async fn start(bin: &Path, files: &Files) -> Serve {
    let mut child = std::process::Command::new(bin)
        .args(["serve", "--config"])
        .arg(&files.config)
        .env("PODGATE_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} serve starts: {e}", bin.display()));
    let (stdout, stderr) = (Lines::default(), Lines::default());
    let readers = vec![
        stdout.collect(child.stdout.take().expect("stdout is piped")),
        stderr.collect(child.stderr.take().expect("stderr is piped")),
    ];
    let mut exited = None;
    let up = wait_for(START, || {
        exited = child.try_wait().ok().flatten();
        exited.is_some() || !stdout.lock().is_empty()
    })
    .await;
    let first = stdout.lock().first().cloned();
    let url = first
        .as_deref()
        .and_then(|l| l.strip_prefix("listening on "))
        .unwrap_or_else(|| {
            panic!(
                "podgate serve did not say where it listens (up: {up}, exited: {exited:?}, \
                 stdout: {first:?}); its log:\n{}",
                stderr.get().join("\n")
            )
        })
        .to_string();
    let addr = url
        .strip_prefix("https://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("not https://ADDR: {url}"));
    // Logged before the address is printed; the reader may still be a line behind.
    let admin = until_some(Duration::from_secs(5), || {
        stderr.lock().iter().find_map(|l| admin_addr(l))
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "no `admin listener:` line with admin=ADDR in its log:\n{}",
            stderr.get().join("\n")
        )
    });
    Serve {
        child,
        url,
        addr,
        admin,
        ca_pem: files.ca_pem.clone(),
        dir: files.dir.path().to_path_buf(),
        stderr,
        stdout,
        readers,
    }
}

/// The address in podgate's `admin listener: ...` line, text (`admin=ADDR`) or JSON
/// (`fields.admin`).
fn admin_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("admin listener:") {
        return None;
    }
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(line) {
        return json["fields"]["admin"].as_str()?.parse().ok();
    }
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("admin="))?
        .parse()
        .ok()
}

impl Endpoint for Serve {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

impl Serve {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every line it wrote on stderr (its log) so far.
    pub fn log(&self) -> Vec<String> {
        self.stderr.get()
    }

    /// Every line it wrote on stdout so far (the address; audit lines with `output: stdout`).
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.get()
    }

    /// How many log lines there are so far: [`Serve::line_after`] looks past them.
    pub fn mark(&self) -> usize {
        self.stderr.lock().len()
    }

    /// The first log line past `mark` for which `wanted` holds, within `limit`; a panic
    /// naming `what`, with the log, when none came.
    pub async fn line_after(
        &self,
        mark: usize,
        limit: Duration,
        what: &str,
        wanted: impl Fn(&str) -> bool,
    ) -> String {
        let found = until_some(limit, || {
            self.stderr
                .lock()
                .iter()
                .skip(mark)
                .find(|l| wanted(l))
                .cloned()
        })
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "no log line with {what} within {limit:?}; its log:\n{}",
                self.log().join("\n")
            )
        })
    }

    /// The line of the first reload past `mark` (`config reloaded: ...` or `config reload
    /// incomplete: ...`), within the time a change takes to be seen.
    pub async fn reload_after(&self, mark: usize) -> String {
        self.line_after(mark, RELOAD, "a reload", |l| {
            l.contains("config reloaded: ") || l.contains("config reload incomplete: ")
        })
        .await
    }

    /// Makes `change` (rewrites a file), then waits for the reload it causes: its line.
    pub async fn reload(&self, change: impl FnOnce()) -> String {
        let mark = self.mark();
        change();
        self.reload_after(mark).await
    }

    fn signal(&self, signal: rustix::process::Signal) {
        rustix::process::kill_process(rustix::process::Pid::from_child(&self.child), signal)
            .unwrap_or_else(|e| panic!("{signal:?} to podgate: {e}"));
    }

    /// SIGHUP: reload.
    pub fn sighup(&self) {
        self.signal(rustix::process::Signal::HUP);
    }

    /// SIGTERM: drain and exit.
    pub fn sigterm(&self) {
        self.signal(rustix::process::Signal::TERM);
    }

    /// How it exited, if it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("podgate's exit status")
    }

    /// Waits until it exited, within `limit`, and until its log is read to the end.
    pub async fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        let status = until_some(limit, || self.exited()).await;
        let status = status.unwrap_or_else(|| {
            panic!(
                "podgate still runs after {limit:?}; its log:\n{}",
                self.log().join("\n")
            )
        });
        let readers = &self.readers;
        assert!(
            wait_for(Duration::from_secs(5), || readers
                .iter()
                .all(|r| r.is_finished()))
            .await,
            "podgate exited but its pipes are still open"
        );
        status
    }

    /// `GET path` on the admin listener.
    pub async fn admin_get(&self, path: &str) -> crate::http::Answer {
        crate::http::plain(self.admin, "GET", path, &[], "")
            .await
            .unwrap_or_else(|e| panic!("the admin listener's {path}: {e}"))
    }

    /// kubectl on cluster `cluster` through this gateway with `token`, HOME and cache in the
    /// files' directory.
    pub fn kubectl(&self, cluster: &str, token: &str) -> Kubectl {
        let kc = crate::kubeconfig::for_gateway(&self.url, &self.ca_pem, &[cluster], token);
        // Named for the replica too: replicas of one installation share its directory.
        let name = format!("{cluster}-{token}-{}", self.addr.port());
        let path = crate::kubeconfig::write_for(&kc, &self.dir, &name);
        Kubectl::new(kubectl::DEFAULT, path, &self.dir)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("podgate serve's log:\n{}", self.log().join("\n"));
        }
    }
}

/// Every line of the JSON-lines file at `path` (an audit file) written in full so far, parsed.
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: not a JSON line ({e}): {l}", path.display()))
        })
        .collect()
}

/// The first line of the JSON-lines file at `path` for which `wanted` holds, once written
/// (within `limit`); a panic naming `what`, with the file, when none was.
pub async fn json_line(
    path: &Path,
    limit: Duration,
    what: &str,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    until_some(limit, || json_lines(path).into_iter().find(|l| wanted(l)))
        .await
        .unwrap_or_else(|| {
            panic!(
                "no line of {} is {what}: {:#?}",
                path.display(),
                json_lines(path)
            )
        })
}

/// `kubectl exec -i` held open: its script said `ready`, then runs `then` (`sleep 600`, or
/// `cat` to echo stdin), until something ends the session. Its stdin stays open meanwhile.
pub struct Held {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::process::ChildStdout,
    seen: Vec<u8>,
    what: String,
}

impl Held {
    /// `kubectl exec -i -n <namespace> <pod> -- sh -c 'echo ready; exec <then>'`, once it
    /// said `ready`.
    pub async fn open(kubectl: &Kubectl, namespace: &str, pod: &str, then: &str) -> Held {
        let script = format!("echo ready; exec {then}");
        let what = format!("exec in {namespace}/{pod} of {then:?}");
        let mut child = kubectl
            .command(&[
                "exec", "-i", "-n", namespace, pod, "--", "sh", "-c", &script,
            ])
            .spawn()
            .unwrap_or_else(|e| panic!("kubectl {what} starts: {e}"));
        let stdin = child.stdin.take().expect("stdin is piped");
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut seen = Vec::new();
        read_until(&mut stdout, &mut seen, START, &what, |s| {
            s.contains("ready\n")
        })
        .await;
        seen.clear();
        Held {
            child,
            stdin,
            stdout,
            seen,
            what,
        }
    }

    /// Whether kubectl still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `line` and reads it back (a session running `cat`): proof that it still relays.
    pub async fn echoes(&mut self, line: &str) {
        assert!(self.running(), "{}: kubectl has exited", self.what);
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{}: stdin: {e}", self.what));
        let want = format!("{line}\n");
        let what = format!("{} echoing {line:?}", self.what);
        read_until(
            &mut self.stdout,
            &mut self.seen,
            Duration::from_secs(10),
            &what,
            |s| s.contains(&want),
        )
        .await;
        self.seen.clear();
    }

    /// Sends `line` and says whether it came back within 10 s (false: the session ended or
    /// went quiet instead; [`Held::ended`] tells how).
    pub async fn try_echo(&mut self, line: &str) -> bool {
        use tokio::io::AsyncReadExt as _;
        if self
            .stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .is_err()
        {
            return false;
        }
        let want = format!("{line}\n");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        loop {
            if String::from_utf8_lossy(&self.seen).contains(&want) {
                self.seen.clear();
                return true;
            }
            match tokio::time::timeout_at(deadline, self.stdout.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => self.seen.extend_from_slice(&buf[..n]),
                _ => return false,
            }
        }
    }

    /// Waits for kubectl to exit, within `limit`, its stdin still open: how it ended.
    pub async fn ended(self, limit: Duration) -> kubectl::Output {
        let Held {
            child,
            stdin,
            mut stdout,
            mut seen,
            what,
        } = self;
        let out = tokio::time::timeout(limit, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {what} still runs after {limit:?}"))
            .expect("kubectl's exit status");
        drop(stdin);
        let _ = tokio::time::timeout(Duration::from_secs(5), stdout.read_to_end(&mut seen)).await;
        kubectl::Output {
            code: out.status.code().unwrap_or(-1),
            stdout: seen,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
