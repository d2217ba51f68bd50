//! `podgate-resume [--sessions N] [--concurrency C] --out FILE`: what session resume
//! (`podgate.resume.v1`, docs/protocol.md "Resume") costs, with N sessions dropped and
//! resumed at once (BENCHMARKS.md, "Resume"; issue 14).
//!
//! It spawns a devcluster and `podgate serve` (as `podgate-load --spawn` does; the spawned
//! config keeps podgate's resume defaults: on, window 2m, 256 KiB buffer, 256 MiB in all) and,
//! against `load/echo-0` (builtin:echo, stdin back on stdout):
//!
//! 1. opens N resumable sessions and reads each `hello`: gateway RSS per attached session;
//! 2. sends `ping-<i>\n` on each and drops the connection without a close before reading the
//!    echo, so the echo waits in podgate's buffer; once `podgate_resume_waiting_sessions`
//!    says N: RSS per waiting session;
//! 3. resumes all N (C upgrades in flight): latency from the start of the new TCP connect
//!    (the moment a client has detected the drop) to the first replayed output byte, and each
//!    session must get exactly its own `ping-<i>\n`, then nothing more before its exit;
//! 4. for comparison in the same run, N plain sessions (`v5.channel.k8s.io` only) at once:
//!    setup latency to the ready frame, so resume shows as a ratio to a fresh session.
//!
//! Exit status: 0 when every session behaved, 1 when any failed or got wrong bytes, 2 when
//! the run could not start.

use anyhow::{Context as _, bail};
use clap::Parser;
use fastwebsockets::{Frame, OpCode, Payload};
use podgate_benches::client::{self, Exec, Opened, Ready, Ws};
use podgate_benches::procfs;
use podgate_benches::spawn::{self, Spawned};
use podgate_benches::stats::{Samples, Summary};
use podgate_benches::target::{SourceAddrs, Target, TlsOptions};
use podgate_protocol::frame;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The subprotocol that opts a session into resume.
const OPT_IN: &str = "podgate.resume.v1";
/// The in-band control channel of resumable sessions.
const CONTROL: u8 = 128;
/// Bound on any one step of one session (connect to hello, a resume to its echo, a finish):
/// far above what a healthy gateway takes even at 1,000 at once, so only a hang trips it.
const STEP: Duration = Duration::from_secs(30);
/// Error messages kept in the JSON (all are counted).
const KEEP_ERRORS: usize = 20;

#[derive(Parser)]
#[command(version)]
struct Args {
    /// Where `podgate` and `devcluster` are (default: next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Sessions opened, dropped and resumed at once. At most 1024: the spawned gateway keeps
    /// the default `resume_buffer_total` (256 MiB) of 256 KiB buffers, and a session beyond
    /// that budget runs without resume.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1024))]
    sessions: u32,
    /// Upgrades (session setups or resumes) in flight at once, as podgate-load ramps up.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,
    /// Client source addresses, from 127.1.0.1 up (as podgate-load spreads them).
    #[arg(long, default_value_t = 1024)]
    source_addrs: usize,
    /// How long to wait for the gateway to count every dropped session as waiting.
    #[arg(long, value_parser = duration, default_value = "60s")]
    wait_timeout: Duration,
    /// The whole measurement stops (and fails) after this, whatever it is doing.
    #[arg(long, value_parser = duration, default_value = "10m")]
    time_limit: Duration,
    /// Files and logs of the spawned processes (default: a fresh directory under the
    /// system's temporary directory, removed after a successful run).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Write the JSON results here.
    #[arg(long)]
    out: PathBuf,
}

fn duration(s: &str) -> Result<Duration, String> {
    s.parse::<podgate_config::Duration>()
        .map(|d| d.get())
        .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    podgate_devcluster::install_crypto_provider();
    let nofile = procfs::raise_nofile_limit();
    // Sized explicitly, so TOKIO_WORKER_THREADS set for the spawned podgate does not apply here.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("podgate-resume: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(main_async(args, nofile)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("podgate-resume: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn main_async(args: Args, nofile: u64) -> anyhow::Result<bool> {
    let n = args.sessions as usize;
    // Each session holds one client socket, and phases 3 and 4 can hold two generations
    // briefly while the gateway closes the old ones; keep a margin for everything else.
    if nofile < (n as u64) * 2 + 256 {
        bail!("the open-files limit is {nofile}, too low for {n} sessions");
    }
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the binary has a directory")?
            .to_path_buf(),
    };
    let (work, temporary) = match &args.work_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("podgate-resume-{}", std::process::id())),
            true,
        ),
    };
    // Resume is about the relay, not the recorder: recording off, as podgate-portforward.
    let spawned = spawn::start(&bin_dir, &work, "off").await?;
    eprintln!(
        "podgate-resume: devcluster pid {}, podgate pid {} at {} (logs in {})",
        spawned.devcluster.pid(),
        spawned.gateway.pid(),
        spawned.gateway_url,
        spawned.work_dir.display()
    );
    let measured = tokio::time::timeout(args.time_limit, measure(&args, &spawned)).await;
    let gateway_stop = spawned.gateway.stop(Duration::from_secs(10)).await;
    let devcluster_stop = spawned.devcluster.stop(Duration::from_secs(10)).await;
    eprintln!("podgate-resume: {gateway_stop}; {devcluster_stop}");
    let mut report = match measured {
        Ok(r) => r?,
        Err(_) => bail!(
            "the run did not finish within --time-limit {:?}; logs in {}",
            args.time_limit,
            work.display()
        ),
    };
    report.stopped = vec![gateway_stop, devcluster_stop];
    let ok = report.errors.count == 0;
    if let Some(dir) = args.out.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(&args.out, &json)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("{json}");
    if ok && temporary {
        let _ = std::fs::remove_dir_all(&work);
    } else if !ok {
        eprintln!(
            "podgate-resume: {} errors; logs kept in {}",
            report.errors.count,
            work.display()
        );
    }
    Ok(ok)
}

#[derive(serde::Serialize)]
struct Report {
    sessions: usize,
    concurrency: usize,
    /// Gateway RSS (KiB): before any session (after one warm-up of each kind), with N
    /// attached, with N waiting, after everything closed.
    rss_kib: Rss,
    /// (attached − baseline) / N.
    kib_per_attached_session: f64,
    /// (waiting − baseline) / N: what a dropped shell costs while podgate keeps it.
    kib_per_waiting_session: f64,
    /// Connect to `hello`, N resumable sessions at once.
    resumable_setup: Option<Summary>,
    /// From the last drop to `podgate_resume_waiting_sessions` = N.
    drops_noticed_ms: f64,
    /// Connect of the resume to the first replayed output byte, N at once.
    resume_to_first_byte: Option<Summary>,
    /// Connect to the ready frame, N plain sessions at once (same run, after the resumes).
    plain_setup: Option<Summary>,
    /// resume_to_first_byte / plain_setup, at p50 and p99.
    ratio_resume_over_plain: Ratios,
    /// `podgate_resumes_total{result="succeeded"}` after phase 3 minus before: N when all
    /// resumed (a mismatch with the clients' count is an error).
    resumes_succeeded_delta: f64,
    /// `podgate_resume_replayed_bytes_total` delta: the echoes' length, summed, when all
    /// resumed (a mismatch is an error).
    replayed_bytes_delta: f64,
    replayed_bytes_expected: usize,
    errors: Errors,
    machine: Machine,
    stopped: Vec<String>,
}

#[derive(serde::Serialize, Default)]
struct Rss {
    baseline: u64,
    attached: u64,
    waiting: u64,
    end: u64,
}

#[derive(serde::Serialize)]
struct Ratios {
    p50: Option<f64>,
    p99: Option<f64>,
}

#[derive(serde::Serialize, Default)]
struct Errors {
    count: usize,
    /// The first few, with the phase and session index.
    first: Vec<String>,
}

impl Errors {
    fn add(&mut self, phase: &str, i: usize, e: &anyhow::Error) {
        self.count += 1;
        if self.first.len() < KEEP_ERRORS {
            self.first.push(format!("{phase} #{i}: {e:#}"));
        }
    }
}

#[derive(serde::Serialize)]
struct Machine {
    cpus: usize,
    /// Whole machine over the measurement, % of all CPUs (other work on it shows here).
    busy_percent: Option<f64>,
    /// Share of the CPU time the hypervisor gave to others: a noisy-neighbour gauge.
    steal_percent: Option<f64>,
}

/// A resumable session as a page holds it.
struct Attached {
    index: usize,
    ws: Ws,
    session: String,
    credential: String,
}

/// What the next meaningful frame from the server is.
enum Got {
    Control(serde_json::Value),
    Output(Vec<u8>),
    Status(Vec<u8>),
    Closed,
}

/// The next frame that is not a ping, pong or continuation, by `deadline`.
async fn next(ws: &mut Ws, deadline: tokio::time::Instant) -> anyhow::Result<Got> {
    loop {
        let f = tokio::time::timeout_at(deadline, ws.read_frame())
            .await
            .context("nothing from podgate in time")?
            .context("reading a frame")?;
        match f.opcode {
            OpCode::Close => return Ok(Got::Closed),
            OpCode::Binary => match f.payload.split_first() {
                Some((&CONTROL, json)) => {
                    let v = serde_json::from_slice(json).with_context(|| {
                        format!(
                            "control frame is not JSON: {:?}",
                            String::from_utf8_lossy(&json[..json.len().min(200)])
                        )
                    })?;
                    return Ok(Got::Control(v));
                }
                Some((&frame::STDOUT | &frame::STDERR, data)) => {
                    return Ok(Got::Output(data.to_vec()));
                }
                Some((&frame::STATUS, data)) => return Ok(Got::Status(data.to_vec())),
                _ => {}
            },
            _ => {}
        }
    }
}

fn control(v: &serde_json::Value) -> anyhow::Result<Frame<'static>> {
    let mut payload = vec![CONTROL];
    serde_json::to_writer(&mut payload, v)?;
    Ok(Frame::binary(Payload::Owned(payload)))
}

fn echo_line(i: usize) -> Vec<u8> {
    format!("ping-{i}\n").into_bytes()
}

async fn measure(args: &Args, spawned: &Spawned) -> anyhow::Result<Report> {
    let n = args.sessions as usize;
    let admin = spawned.admin_addr().await?;
    let pid = spawned.gateway.pid();
    let sources = Arc::new(SourceAddrs::new(args.source_addrs));
    let target = Arc::new(
        Target::gateway(
            &spawned.gateway_url,
            spawn::CLUSTER_ID,
            spawn::TOKEN,
            &spawned.gateway_ca_pem,
            TlsOptions { resumption: false },
            sources,
        )
        .await?,
    );
    let exec = Exec {
        namespace: "load".into(),
        pod: "echo-0".into(),
        container: None,
        command: vec!["cat".into()],
    };
    let exec_path: Arc<str> = format!("{}{}", target.prefix, exec.path()).into();
    let gate = Arc::new(Semaphore::new(args.concurrency as usize));
    let mut errors = Errors::default();
    let cpu_before = procfs::machine_cpu();

    // Warm-up, one of each kind, so the baseline already holds what the first session of a
    // kind allocates once (upstream connection pool, TLS state, the resume machinery).
    let mut warm = client::open(&target, &exec, STEP)
        .await
        .context("warm-up plain session")?;
    client::finish(&mut warm.ws)
        .await
        .context("warm-up plain session's end")?;
    let mut warm = open_resumable(&target, &exec_path, 0)
        .await
        .context("warm-up resumable session")?;
    client::finish(&mut warm.1.ws)
        .await
        .context("warm-up resumable session's end")?;
    wait_metric(
        admin,
        "podgate_sessions_active",
        0.0,
        Duration::from_secs(10),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut rss = Rss {
        baseline: rss_kib(pid)?,
        ..Rss::default()
    };

    // 1. N resumable sessions at once, each to its hello.
    let mut setups = Samples::default();
    let mut attached = Vec::with_capacity(n);
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let (target, path, gate) = (target.clone(), exec_path.clone(), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            anyhow::Ok((i, open_resumable(&target, &path, i).await))
        });
    }
    while let Some(r) = tasks.join_next().await {
        match r.context("a session task panicked")? {
            Ok((_, Ok((setup, a)))) => {
                setups.push(setup);
                attached.push(a);
            }
            Ok((i, Err(e))) => errors.add("open", i, &e),
            Err(e) => errors.add("open", usize::MAX, &e),
        }
    }
    if attached.is_empty() {
        bail!(
            "no resumable session opened: {:?}",
            errors.first.first().map(String::as_str).unwrap_or("")
        );
    }
    let held = attached.len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    rss.attached = rss_kib(pid)?;
    eprintln!("podgate-resume: {held} resumable sessions attached");

    // 2. A line of input on each, then the connection dropped (no close frame, no TLS
    // close_notify: a network that vanished) before the echo is read.
    let mut waiting = Vec::with_capacity(held);
    for mut a in attached {
        let line = echo_line(a.index);
        let sent = async {
            a.ws.write_frame(client::stdin(&line)).await?;
            a.ws.flush().await
        };
        match tokio::time::timeout(STEP, sent).await {
            Ok(Ok(())) => {
                let Attached {
                    index,
                    ws,
                    session,
                    credential,
                } = a;
                drop(ws);
                waiting.push((index, session, credential));
            }
            Ok(Err(e)) => errors.add("send", a.index, &anyhow::Error::new(e)),
            Err(_) => errors.add("send", a.index, &anyhow::anyhow!("stdin write timed out")),
        }
    }
    let dropped = Instant::now();
    let want = waiting.len() as f64;
    let seen = wait_metric(
        admin,
        "podgate_resume_waiting_sessions",
        want,
        args.wait_timeout,
    )
    .await;
    let drops_noticed_ms = dropped.elapsed().as_secs_f64() * 1e3;
    if seen != Some(want) {
        bail!(
            "podgate_resume_waiting_sessions never reached {want} within {:?} (last: {seen:?})",
            args.wait_timeout
        );
    }
    // The echoes reach podgate's buffers within milliseconds of the input; a second more
    // lets RSS settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    rss.waiting = rss_kib(pid)?;
    eprintln!(
        "podgate-resume: {} sessions waiting after {drops_noticed_ms:.0} ms",
        waiting.len()
    );

    // 3. All of them resume at once.
    let before = metrics(admin).await?;
    let mut latencies = Samples::default();
    let mut resumed = Vec::with_capacity(waiting.len());
    let mut resumed_lines = Vec::with_capacity(waiting.len());
    let mut tasks = JoinSet::new();
    for (index, session, credential) in waiting {
        let (target, gate) = (target.clone(), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let r = resume(&target, &session, &credential, &echo_line(index)).await;
            anyhow::Ok((index, r))
        });
    }
    while let Some(r) = tasks.join_next().await {
        match r.context("a resume task panicked")? {
            Ok((index, Ok((latency, ws)))) => {
                latencies.push(latency);
                resumed.push(ws);
                resumed_lines.push(echo_line(index).len());
            }
            Ok((index, Err(e))) => errors.add("resume", index, &e),
            Err(e) => errors.add("resume", usize::MAX, &e),
        }
    }
    let after = metrics(admin).await?;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sum_metric(&after, name, labels) - sum_metric(&before, name, labels)
    };
    let resumes_succeeded_delta = delta("podgate_resumes_total", &[("result", "succeeded")]);
    let replayed_bytes_delta = delta("podgate_resume_replayed_bytes_total", &[]);
    // podgate's own count must agree with what the clients saw.
    let replayed_bytes_expected: usize = resumed_lines.iter().sum();
    if resumes_succeeded_delta != resumed.len() as f64 {
        let e = anyhow::anyhow!(
            "podgate counted {resumes_succeeded_delta} successful resumes, the clients {}",
            resumed.len()
        );
        errors.add("metrics", 0, &e);
    }
    if replayed_bytes_delta != replayed_bytes_expected as f64 {
        let e = anyhow::anyhow!(
            "podgate counted {replayed_bytes_delta} replayed bytes, the clients got \
             {replayed_bytes_expected}"
        );
        errors.add("metrics", 0, &e);
    }
    eprintln!("podgate-resume: {} sessions resumed", resumed.len());
    // Each resumed session ends cleanly: stdin closed, nothing more on stdout, exit 0.
    finish_all(resumed, &gate, "finish resumed", &mut errors).await?;

    // 4. The same number of plain sessions at once, for the ratio.
    let mut plain = Samples::default();
    let mut opened = Vec::with_capacity(n);
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let (target, exec, gate) = (target.clone(), exec.clone(), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            anyhow::Ok((i, client::open(&target, &exec, STEP).await))
        });
    }
    while let Some(r) = tasks.join_next().await {
        match r.context("a session task panicked")? {
            Ok((_, Ok(Opened { ws, setup }))) => {
                plain.push(setup);
                opened.push(ws);
            }
            Ok((i, Err(e))) => errors.add("plain open", i, &e),
            Err(e) => errors.add("plain open", usize::MAX, &e),
        }
    }
    finish_all(opened, &gate, "finish plain", &mut errors).await?;
    wait_metric(
        admin,
        "podgate_sessions_active",
        0.0,
        Duration::from_secs(15),
    )
    .await;
    rss.end = rss_kib(pid)?;
    let cpu_after = procfs::machine_cpu();

    let per = |kib: u64| kib.saturating_sub(rss.baseline) as f64 / held as f64;
    let (resume_sum, plain_sum) = (latencies.summary(), plain.summary());
    let ratio = |f: fn(&Summary) -> f64| match (&resume_sum, &plain_sum) {
        (Some(r), Some(p)) if f(p) > 0.0 => Some(f(r) / f(p)),
        _ => None,
    };
    let (busy, steal) = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => (
            Some(procfs::machine_busy_percent(a, b)),
            Some(procfs::machine_steal_percent(a, b)),
        ),
        _ => (None, None),
    };
    Ok(Report {
        sessions: n,
        concurrency: args.concurrency as usize,
        kib_per_attached_session: per(rss.attached),
        kib_per_waiting_session: per(rss.waiting),
        rss_kib: rss,
        resumable_setup: setups.summary(),
        drops_noticed_ms,
        ratio_resume_over_plain: Ratios {
            p50: ratio(|s| s.p50_ms),
            p99: ratio(|s| s.p99_ms),
        },
        resume_to_first_byte: resume_sum,
        plain_setup: plain_sum,
        resumes_succeeded_delta,
        replayed_bytes_delta,
        replayed_bytes_expected,
        errors,
        machine: Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            busy_percent: busy,
            steal_percent: steal,
        },
        stopped: Vec::new(),
    })
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    Ok(procfs::sample(pid)
        .with_context(|| format!("reading /proc/{pid} (did podgate exit?)"))?
        .rss_bytes
        >> 10)
}

/// Opens `path` offering resume and reads the `hello`: the time from the connect to it, and
/// the session.
async fn open_resumable(
    target: &Target,
    path: &str,
    index: usize,
) -> anyhow::Result<(Duration, Attached)> {
    let started = Instant::now();
    let Opened { mut ws, .. } =
        client::open_upgrade(target, path, &[client::PROTOCOL, OPT_IN], Ready::Skip, STEP).await?;
    let deadline = tokio::time::Instant::from_std(started + STEP);
    let hello = match next(&mut ws, deadline).await? {
        Got::Control(v) if v["type"] == "hello" => v,
        Got::Output(o) => bail!(
            "output ({} bytes) before any hello: podgate did not make the session resumable \
             (resume off, or its buffer budget taken)",
            o.len()
        ),
        Got::Control(v) => bail!("expected hello, got {v}"),
        Got::Status(s) => bail!("exit status before hello: {}", String::from_utf8_lossy(&s)),
        Got::Closed => bail!("closed before hello"),
    };
    let setup = started.elapsed();
    let field = |name: &str| {
        hello[name]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("hello without {name}: {hello}"))
    };
    Ok((
        setup,
        Attached {
            index,
            session: field("session")?,
            credential: field("credential")?,
            ws,
        },
    ))
}

/// Resumes `session` from offset 0 (nothing was read before the drop): the time from the
/// start of the connect to the first replayed output byte, and the connection once exactly
/// `expected` came and was acknowledged.
async fn resume(
    target: &Target,
    session: &str,
    credential: &str,
    expected: &[u8],
) -> anyhow::Result<(Duration, Ws)> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::from_std(started + STEP);
    let path = format!("/podgate/sessions/{session}/resume");
    let c = format!("resume.podgate.io.{credential}");
    let Opened { mut ws, .. } = client::open_upgrade(
        target,
        &path,
        &[client::PROTOCOL, OPT_IN, &c, "offset.podgate.io.0"],
        Ready::Skip,
        STEP,
    )
    .await?;
    match next(&mut ws, deadline).await? {
        Got::Control(v) if v["type"] == "resumed" => {
            if v["offset"] != 0 || v["gap"] != 0 {
                bail!("resumed at the wrong place: {v}");
            }
        }
        Got::Control(v) if v["type"] == "refused" => bail!("refused: {v}"),
        Got::Control(v) => bail!("expected resumed, got {v}"),
        Got::Output(o) => bail!(
            "output before resumed: {:?}",
            String::from_utf8_lossy(&o[..o.len().min(200)])
        ),
        Got::Status(s) => bail!(
            "exit status before resumed: {}",
            String::from_utf8_lossy(&s)
        ),
        Got::Closed => bail!("closed before resumed"),
    }
    let mut got = Vec::with_capacity(expected.len());
    let mut first = None;
    while got.len() < expected.len() {
        match next(&mut ws, deadline).await? {
            Got::Output(o) => {
                if first.is_none() && !o.is_empty() {
                    first = Some(started.elapsed());
                }
                got.extend_from_slice(&o);
            }
            Got::Control(v) if v["type"] == "heartbeat" || v["type"] == "notice" => {}
            Got::Control(v) => bail!("unexpected control message after resumed: {v}"),
            Got::Status(s) => bail!(
                "exit status after {:?} of the echo: {}",
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&s)
            ),
            Got::Closed => bail!(
                "closed after {:?} of the echo",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    if got != expected {
        bail!(
            "replayed {:?}, expected {:?}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected)
        );
    }
    let first = first.context("no output byte")?;
    let ack = control(&serde_json::json!({"type": "ack", "offset": got.len()}))?;
    ws.write_frame(ack).await.context("sending the ack")?;
    ws.flush().await.context("sending the ack")?;
    Ok((first, ws))
}

/// Closes stdin of every session (`concurrency` at once) and checks each ends with exit 0 and
/// no further stdout.
async fn finish_all(
    sessions: Vec<Ws>,
    gate: &Arc<Semaphore>,
    phase: &str,
    errors: &mut Errors,
) -> anyhow::Result<()> {
    let mut tasks = JoinSet::new();
    for (i, mut ws) in sessions.into_iter().enumerate() {
        let gate = gate.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let r = tokio::time::timeout(STEP, async {
                ws.write_frame(client::close_stdin()).await?;
                ws.flush().await?;
                let (stdout, exit) = client::drain(&mut ws).await?;
                if stdout > 0 {
                    bail!("{stdout} more stdout bytes after the echo");
                }
                exit.map_err(|m| anyhow::anyhow!("exit: {m}"))
            })
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no clean end within {STEP:?}")));
            anyhow::Ok((i, r))
        });
    }
    while let Some(r) = tasks.join_next().await {
        match r.context("a finish task panicked")? {
            Ok((_, Ok(()))) => {}
            Ok((i, Err(e))) => errors.add(phase, i, &e),
            Err(e) => errors.add(phase, usize::MAX, &e),
        }
    }
    Ok(())
}

async fn metrics(admin: SocketAddr) -> anyhow::Result<String> {
    spawn::admin_get(admin, "/metrics").await
}

/// Polls `name` (summed over its series) every 100 ms until it equals `want` or `timeout`
/// passes; the last value read.
async fn wait_metric(admin: SocketAddr, name: &str, want: f64, timeout: Duration) -> Option<f64> {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        if let Ok(text) = metrics(admin).await {
            let v = sum_metric(&text, name, &[]);
            last = Some(v);
            if v == want {
                return last;
            }
        }
        if Instant::now() > deadline {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The sum of the samples of `name` whose labels include all of `labels`, in Prometheus text
/// format (0 when there are none).
fn sum_metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (series, value) = rest.rsplit_once(' ')?;
            let series = series.trim();
            if !(series.is_empty() || series.starts_with('{')) {
                return None; // another metric whose name starts with `name`
            }
            let has = |(k, v): &(&str, &str)| series.contains(&format!("{k}=\"{v}\""));
            if !labels.iter().all(has) {
                return None;
            }
            value.parse::<f64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_matching_series() {
        let text = "# HELP podgate_resumes_total x\n\
                    podgate_resumes_total{result=\"succeeded\",reason=\"resumed\"} 7\n\
                    podgate_resumes_total{result=\"failed\",reason=\"expired\"} 2\n\
                    podgate_resumes_total_other 100\n\
                    podgate_resume_waiting_sessions 3\n";
        assert_eq!(
            sum_metric(text, "podgate_resumes_total", &[("result", "succeeded")]),
            7.0
        );
        assert_eq!(sum_metric(text, "podgate_resumes_total", &[]), 9.0);
        assert_eq!(
            sum_metric(text, "podgate_resume_waiting_sessions", &[]),
            3.0
        );
        assert_eq!(sum_metric(text, "podgate_nope", &[]), 0.0);
        assert_eq!(
            &*control(&serde_json::json!({"type": "ack"}))
                .unwrap()
                .payload,
            b"\x80{\"type\":\"ack\"}"
        );
        assert_eq!(echo_line(12), b"ping-12\n");
    }
}
