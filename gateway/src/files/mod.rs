//! File upload and download for one container, done as `kubectl cp` does: tar over exec.
//!
//! `GET /podgate/clusters/{id}/namespaces/{ns}/pods/{pod}/file?container=c&path=/abs/file`
//! runs `tar cf - -C /abs ./file` in the container and streams the one regular file out of
//! the archive (`Content-Length` is the file's size, known from its tar header before a byte
//! is sent); `PUT` on the same URL with the file as body runs `tar -xmf - -C /abs` and feeds
//! it a one-file archive. Both are an exec of the person's own, through the cluster's client
//! and identity like a shell, judged by podgate's edge policy as `pods/exec` on that pod, so the
//! cluster's RBAC decides as it would for `kubectl cp`.
//!
//! Sizes are bounded here (`files.max_upload`, `files.max_download`): an upload's
//! `Content-Length` is checked before anything runs; a download's size is read from tar's
//! header and refused (413) before its content is sent, the exec stopped. The last bytes of
//! a download are held until tar's exit status says it succeeded, so a client never receives
//! a whole file from a tar that failed (the body breaks instead). Failures of tar become a
//! `Status` with a message to act on (see [`errors`]).

pub mod errors;
pub mod exec;
pub mod tar;

use crate::http::{Body, json, status};
use crate::session::audit::{Audit, timestamp};
use crate::session::limits::SessionPermit;
use crate::upstream::Cluster;
use bytes::Bytes;
use errors::{Problem, Transfer};
use exec::{Event, Exec, OpenError};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use podgate_auth::Identity;
use podgate_auth::policy;
use podgate_metrics::{FileDirection, FileMetrics, FileResult, Metrics};
use podgate_protocol::{ApiPath, ExecOptions, Status};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The most of tar's stderr kept for the message.
const MAX_STDERR: usize = 16 << 10;

/// The bounds of `files` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    pub max_upload: u64,
    pub max_download: u64,
    /// How long the container may stay silent (no output, no exit status), or the client
    /// send or read nothing, during a transfer: a stalled transfer gives its exec back.
    pub idle: Duration,
}

impl FileLimits {
    pub fn from_config(c: &podgate_config::FilesConfig) -> FileLimits {
        FileLimits {
            max_upload: c.max_upload.0,
            max_download: c.max_download.0,
            idle: c.idle_timeout.get(),
        }
    }
}

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits::from_config(&Default::default())
    }
}

/// What file transfers use of the gateway.
pub struct Files {
    pub limits: FileLimits,
    pub metrics: FileMetrics,
    pub upstream_metrics: Metrics,
    pub audit: Audit,
    /// Owns every download's streaming task, so shutdown waits for them.
    pub tasks: tokio_util::task::TaskTracker,
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The session limits: a transfer is an exec like a shell and holds a slot while it
    /// runs, so transfers cannot be used to exceed `limits.*` (one permit, given back
    /// however the transfer ends).
    pub session_limits: Arc<crate::session::limits::Limits>,
}

/// `GET /podgate/files`: the limits, for the page to check before it sends.
pub fn limits(files: &Files) -> Response<Body> {
    json(
        StatusCode::OK,
        &serde_json::json!({
            "max_upload": files.limits.max_upload,
            "max_download": files.limits.max_download,
        }),
    )
}

/// One transfer's target, as asked.
pub struct Target<'a> {
    pub cluster: Arc<Cluster>,
    pub namespace: &'a str,
    pub pod: &'a str,
    pub identity: &'a Identity,
    pub source: Option<SocketAddr>,
}

/// The query of a transfer: `container` and `path`.
#[derive(Debug, PartialEq, Eq)]
pub struct Query {
    pub container: Option<String>,
    pub path: String,
    pub dir: String,
    pub name: String,
}

/// Reads `container` and `path` (absolute, a file's: not ending in `/`, no `.` or `..`
/// as its last part, no NUL).
pub fn parse_query(query: &str) -> Result<Query, String> {
    let (mut container, mut path) = (None, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "container" if !v.is_empty() => container = Some(v.into_owned()),
            "path" => path = Some(v.into_owned()),
            _ => {}
        }
    }
    if let Some(c) = &container
        && !is_name(c, 63)
    {
        return Err(format!("container {c:?} is not a valid container name"));
    }
    let path = path.ok_or("the path parameter is required: the file's absolute path")?;
    if !path.starts_with('/') {
        return Err(format!("path {path:?} must be absolute (start with /)"));
    }
    if path.contains('\0') || path.len() > 4096 {
        return Err("path must not contain NUL nor be longer than 4096 bytes".into());
    }
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("path {path:?} must name a file, not a directory"));
    }
    let dir = if dir.is_empty() { "/" } else { dir };
    Ok(Query {
        container,
        dir: dir.to_string(),
        name: name.to_string(),
        path,
    })
}

/// A Kubernetes object name: lower-case alphanumerics, `-` and `.`.
fn is_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// A file transfer, as audited (`"event": "file_transfer"`).
#[derive(Serialize)]
struct Record<'a> {
    #[serde(flatten)]
    identity: &'a Identity,
    source: String,
    cluster: &'a str,
    namespace: &'a str,
    pod: &'a str,
    container: &'a str,
    path: &'a str,
    direction: &'static str,
    /// The file's size, when known (the upload's Content-Length, the download's tar header).
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    /// Content bytes that crossed the gateway.
    bytes: u64,
    result: &'static str,
    code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    time: String,
}

/// How one transfer ended, for its metric and audit line.
struct Outcome {
    result: FileResult,
    size: Option<u64>,
    bytes: u64,
    code: u16,
    message: Option<String>,
}

/// Everything a transfer records at its end.
#[derive(Clone)]
struct Recorder {
    metrics: FileMetrics,
    audit: Audit,
    identity: Identity,
    source: String,
    cluster: String,
    namespace: String,
    pod: String,
    container: String,
    path: String,
    direction: FileDirection,
}

impl Recorder {
    fn finish(&self, o: Outcome) {
        self.metrics.transfer(self.direction, o.result, o.bytes);
        self.audit.event(
            "file_transfer",
            &Record {
                identity: &self.identity,
                source: self.source.clone(),
                cluster: &self.cluster,
                namespace: &self.namespace,
                pod: &self.pod,
                container: &self.container,
                path: &self.path,
                direction: self.direction.as_str(),
                size: o.size,
                bytes: o.bytes,
                result: o.result.as_str(),
                code: o.code,
                message: o.message.as_deref(),
                time: timestamp(std::time::SystemTime::now()),
            },
        );
        tracing::info!(
            user = %self.identity.user(),
            cluster = %self.cluster,
            namespace = %self.namespace,
            pod = %self.pod,
            container = %self.container,
            path = %self.path,
            direction = self.direction.as_str(),
            result = o.result.as_str(),
            bytes = o.bytes,
            "file transfer"
        );
    }

    /// Records `s` as the transfer's end with `result` and answers it.
    fn refuse(
        &self,
        result: FileResult,
        size: Option<u64>,
        bytes: u64,
        s: Status,
    ) -> Response<Body> {
        self.finish(Outcome {
            result,
            size,
            bytes,
            code: s.code.unwrap_or(500),
            message: s.message.clone(),
        });
        status(&s)
    }
}

/// Answers a transfer request on `target`.
pub async fn handle(
    files: &Files,
    req: Request<hyper::body::Incoming>,
    target: Target<'_>,
) -> Response<Body> {
    let direction = match *req.method() {
        Method::GET => FileDirection::Download,
        Method::PUT | Method::POST => FileDirection::Upload,
        _ => {
            return status(&Status::api_error(
                405,
                "MethodNotAllowed",
                "files are downloaded with GET and uploaded with PUT",
            ));
        }
    };
    let query = parse_query(req.uri().query().unwrap_or(""));
    let recorder = Recorder {
        metrics: files.metrics.clone(),
        audit: files.audit.clone(),
        identity: target.identity.clone(),
        source: target.source.map(|a| a.to_string()).unwrap_or_default(),
        cluster: target.cluster.id.clone(),
        namespace: target.namespace.to_string(),
        pod: target.pod.to_string(),
        container: query
            .as_ref()
            .ok()
            .and_then(|q| q.container.clone())
            .unwrap_or_default(),
        path: query.as_ref().map(|q| q.path.clone()).unwrap_or_default(),
        direction,
    };
    let query = match query {
        Ok(q) => q,
        Err(e) => {
            return recorder.refuse(FileResult::Refused, None, 0, Status::bad_request(e));
        }
    };
    if !is_name(target.namespace, 63) || !is_name(target.pod, 253) {
        return recorder.refuse(
            FileResult::Refused,
            None,
            0,
            Status::bad_request("namespace and pod must be Kubernetes object names"),
        );
    }
    // The edge judges the transfer as the exec it is.
    let exec_path = format!(
        "/api/v1/namespaces/{}/pods/{}/exec",
        target.namespace, target.pod
    );
    let denied = match ApiPath::parse(&exec_path) {
        Ok(api) => policy::check(
            &target.cluster.access,
            &target.cluster.id,
            target.identity,
            &api,
        )
        .err()
        .map(|d| d.to_string()),
        Err(e) => Some(e.to_string()),
    };
    if let Some(why) = denied {
        return recorder.refuse(
            FileResult::Refused,
            None,
            0,
            crate::session::told(
                Status::api_error(403, "Forbidden", why)
                    .with_details(&target.cluster.id, "clusters"),
                podgate_metrics::Outcome::Denied,
            ),
        );
    }
    let permit = match files
        .session_limits
        .acquire(target.identity.user(), &target.cluster.id)
    {
        Ok(p) => p,
        Err(e) => {
            return recorder.refuse(
                FileResult::Refused,
                None,
                0,
                crate::session::told(
                    Status::api_error(429, "TooManyRequests", e.to_string()),
                    podgate_metrics::Outcome::LimitReached,
                ),
            );
        }
    };
    let t = Transfer {
        upload: direction == FileDirection::Upload,
        path: &query.path,
        dir: &query.dir,
        container: query.container.as_deref().unwrap_or("(default)"),
    };
    match direction {
        FileDirection::Upload => {
            let answer = upload(files, req, &target, &query, &t, &recorder).await;
            drop(permit);
            answer
        }
        FileDirection::Download => download(files, &target, &query, &t, recorder, permit).await,
    }
}

fn options(query: &Query, command: &[&str], stdin: bool) -> ExecOptions {
    ExecOptions {
        command: command.iter().map(|s| s.to_string()).collect(),
        container: query.container.clone(),
        stdin,
        stdout: true,
        stderr: true,
        tty: false,
    }
}

async fn start(
    files: &Files,
    target: &Target<'_>,
    opts: &ExecOptions,
    recorder: &Recorder,
    size: Option<u64>,
) -> Result<Exec, Response<Body>> {
    match exec::open(
        &files.upstream_metrics,
        &target.cluster,
        target.identity,
        target.namespace,
        target.pod,
        opts,
    )
    .await
    {
        Ok(e) => Ok(e),
        Err(OpenError::Refused(s)) => Err(recorder.refuse(FileResult::Denied, size, 0, s)),
        Err(OpenError::Upstream(s)) => Err(recorder.refuse(FileResult::Broken, size, 0, s)),
    }
}

fn too_large(what: &str, size: u64, limit: u64) -> Status {
    let m = if limit == 0 {
        format!("podgate does not allow file {what}s here (files.max_{what} is 0)")
    } else {
        format!(
            "the file is {size} bytes, more than podgate allows for a {what} ({limit} bytes, \
             files.max_{what})"
        )
    };
    Problem::TooLarge.status(m)
}

/// tar's stderr, kept bounded.
fn keep(stderr: &mut String, data: &[u8]) {
    if stderr.len() < MAX_STDERR {
        let room = MAX_STDERR - stderr.len();
        stderr.push_str(&String::from_utf8_lossy(&data[..data.len().min(room)]));
    }
}

/// The failure `exit` (with `stderr`) as the person's answer.
fn failed(t: &Transfer<'_>, exit: &Status, stderr: &str) -> Status {
    let problem = errors::classify(exit, stderr);
    problem.status(errors::message(problem, t, stderr, exit))
}

fn broken(t: &Transfer<'_>, why: &str) -> Status {
    Status::api_error(
        502,
        "InternalError",
        format!(
            "the copy of {} in container \"{}\" did not finish: {why}",
            t.path, t.container
        ),
    )
}

async fn upload(
    files: &Files,
    req: Request<hyper::body::Incoming>,
    target: &Target<'_>,
    query: &Query,
    t: &Transfer<'_>,
    recorder: &Recorder,
) -> Response<Body> {
    let Some(size) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return recorder.refuse(
            FileResult::Refused,
            None,
            0,
            Status::api_error(
                411,
                "LengthRequired",
                "an upload needs a Content-Length: tar's header names the size first",
            ),
        );
    };
    let limit = files.limits.max_upload;
    if size > limit || limit == 0 {
        return recorder.refuse(
            FileResult::TooLarge,
            Some(size),
            0,
            too_large("upload", size, limit),
        );
    }
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let header = match tar::file_header(&query.name, size, mtime) {
        Ok(h) => h,
        Err(e) => {
            return recorder.refuse(
                FileResult::Refused,
                Some(size),
                0,
                Status::bad_request(e.to_string()),
            );
        }
    };
    let opts = options(query, &["tar", "-xmf", "-", "-C", &query.dir], true);
    let mut exec = match start(files, target, &opts, recorder, Some(size)).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let mut body = req.into_body();
    let mut sent: u64 = 0;
    let mut stderr = String::new();
    let mut exit: Option<Status> = None;
    // Whether the container still takes stdin: once it stopped, the rest of the body is
    // read and dropped, so the client (a browser still sending) reads the answer.
    // The body's chunks are gathered into messages of up to `STDIN_CHUNK` (fewer, larger
    // frames to the cluster); `pending` holds what is not sent yet.
    let mut pending = bytes::BytesMut::from(&header[..]);
    let mut writing = true;
    let mut client_gone = None;
    loop {
        let Ok(frame) = tokio::time::timeout(files.limits.idle, body.frame()).await else {
            client_gone = Some(format!(
                "nothing arrived from the client for {} s",
                files.limits.idle.as_secs_f64()
            ));
            break;
        };
        match frame {
            None => break,
            Some(Err(e)) => {
                client_gone = Some(e.to_string());
                break;
            }
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if writing {
                    pending.extend_from_slice(&data);
                    sent += data.len() as u64;
                    if pending.len() >= exec::STDIN_CHUNK {
                        if exec.stdin(&pending).await.is_err() {
                            writing = false;
                        }
                        pending.clear();
                    }
                }
                // Anything the container already said (tar failing early) without waiting.
                while let Ok(e) = exec.events.try_recv() {
                    match e {
                        Event::Stderr(d) => keep(&mut stderr, &d),
                        Event::Status(s) => {
                            exit = Some(*s);
                            writing = false;
                        }
                        Event::Closed(_) => writing = false,
                        Event::Stdout(_) => {}
                    }
                }
            }
        }
    }
    if let Some(why) = client_gone {
        drop(exec);
        return recorder.refuse(
            FileResult::Broken,
            Some(size),
            sent,
            Status::bad_request(format!(
                "the upload ended before its {size} bytes arrived ({why}); a partial file may \
                 remain in the container"
            )),
        );
    }
    if writing {
        pending.extend_from_slice(&tar::trailer(header.len(), size));
        let _ = exec.stdin(&pending).await;
        let _ = exec.close_stdin().await;
    }
    let mut why = None;
    while exit.is_none() {
        match exec.next(files.limits.idle).await {
            Event::Stderr(d) => keep(&mut stderr, &d),
            Event::Stdout(_) => {}
            Event::Status(s) => exit = Some(*s),
            Event::Closed(w) => {
                why = Some(w.unwrap_or_else(|| {
                    "the container's connection closed without an exit status".into()
                }));
                break;
            }
        }
    }
    drop(exec);
    match exit {
        Some(s) if errors::succeeded(&s) && sent == size => {
            recorder.finish(Outcome {
                result: FileResult::Succeeded,
                size: Some(size),
                bytes: sent,
                code: 200,
                message: None,
            });
            let mut ok = Status::success();
            ok.kind = Some("Status".into());
            ok.api_version = Some("v1".into());
            ok.code = Some(200);
            ok.message = Some(format!(
                "uploaded {size} bytes to {} in container \"{}\"",
                t.path, t.container
            ));
            json(StatusCode::OK, &ok)
        }
        Some(s) if !errors::succeeded(&s) => {
            recorder.refuse(FileResult::Failed, Some(size), sent, failed(t, &s, &stderr))
        }
        Some(_) => recorder.refuse(
            FileResult::Broken,
            Some(size),
            sent,
            broken(t, "the container stopped taking the file before its end"),
        ),
        None => recorder.refuse(
            FileResult::Broken,
            Some(size),
            sent,
            broken(t, why.as_deref().unwrap_or("no exit status")),
        ),
    }
}

async fn download(
    files: &Files,
    target: &Target<'_>,
    query: &Query,
    t: &Transfer<'_>,
    recorder: Recorder,
    permit: SessionPermit,
) -> Response<Body> {
    if files.limits.max_download == 0 {
        return recorder.refuse(FileResult::TooLarge, None, 0, too_large("download", 0, 0));
    }
    let name = format!("./{}", query.name);
    let opts = options(query, &["tar", "cf", "-", "-C", &query.dir, &name], false);
    let mut exec = match start(files, target, &opts, &recorder, None).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let mut reader = tar::FirstEntry::default();
    let mut stderr = String::new();
    let (entry, first) = loop {
        match exec.next(files.limits.idle).await {
            Event::Stdout(d) => match reader.push(&d) {
                Ok(tar::Step::More) => {}
                Ok(tar::Step::Entry(e, rest)) => break (e, rest),
                Ok(tar::Step::End) => {
                    // An empty archive: tar found nothing to copy, its exit status says why.
                    let exit = wait_exit(&mut exec, &mut stderr, files.limits.idle).await;
                    let s = match exit {
                        Some(s) if !errors::succeeded(&s) => failed(t, &s, &stderr),
                        _ => Problem::NotFound.status(errors::message(
                            Problem::NotFound,
                            t,
                            &stderr,
                            &Status::default(),
                        )),
                    };
                    return recorder.refuse(FileResult::Failed, None, 0, s);
                }
                Err(e) => {
                    return recorder.refuse(
                        FileResult::Broken,
                        None,
                        0,
                        broken(
                            t,
                            &format!("the container's tar wrote what podgate cannot read: {e}"),
                        ),
                    );
                }
            },
            Event::Stderr(d) => keep(&mut stderr, &d),
            Event::Status(s) if !errors::succeeded(&s) => {
                let _ = wait_exit(&mut exec, &mut stderr, files.limits.idle).await;
                return recorder.refuse(FileResult::Failed, None, 0, failed(t, &s, &stderr));
            }
            Event::Status(_) => {
                return recorder.refuse(
                    FileResult::Broken,
                    None,
                    0,
                    broken(t, "tar exited before writing the file"),
                );
            }
            Event::Closed(why) => {
                return recorder.refuse(
                    FileResult::Broken,
                    None,
                    0,
                    broken(t, why.as_deref().unwrap_or("the connection closed")),
                );
            }
        }
    };
    if entry.kind != tar::Kind::Regular {
        let what = match entry.kind {
            tar::Kind::Directory => "a directory".to_string(),
            tar::Kind::Symlink => format!("a symbolic link to {}", entry.link),
            tar::Kind::HardLink => format!("a hard link to {}", entry.link),
            _ => "a device, FIFO or socket".to_string(),
        };
        return recorder.refuse(
            FileResult::Failed,
            None,
            0,
            Problem::NotRegular.status(format!(
                "{} in container \"{}\" is {what}, not a regular file; podgate downloads one \
                 file at a time",
                t.path, t.container
            )),
        );
    }
    let size = entry.size;
    if size > files.limits.max_download {
        drop(exec);
        return recorder.refuse(
            FileResult::TooLarge,
            Some(size),
            0,
            too_large("download", size, files.limits.max_download),
        );
    }
    let (tx, rx) = mpsc::channel(4);
    let shutdown = files.shutdown.clone();
    let idle = files.limits.idle;
    let t_owned = (
        t.path.to_string(),
        t.dir.to_string(),
        t.container.to_string(),
    );
    files.tasks.spawn(async move {
        let t = Transfer {
            upload: false,
            path: &t_owned.0,
            dir: &t_owned.1,
            container: &t_owned.2,
        };
        let outcome = tokio::select! {
            o = stream(exec, size, first, stderr, tx.clone(), &t, idle) => o,
            _ = shutdown.cancelled() => {
                let _ = tx.send(Err(std::io::Error::other("podgate is shutting down"))).await;
                Outcome {
                    result: FileResult::Broken,
                    size: Some(size),
                    bytes: 0,
                    code: 503,
                    message: Some("podgate shut down during the download".into()),
                }
            }
        };
        recorder.finish(outcome);
        drop(permit);
    });
    let mut resp = Response::new(http_body_util::BodyExt::boxed(ChannelBody { rx, size }));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&query.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266).
pub fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// After the archive's content: tar's exit status (and the rest of its stderr).
async fn wait_exit(exec: &mut Exec, stderr: &mut String, idle: Duration) -> Option<Status> {
    loop {
        match exec.next(idle).await {
            Event::Stdout(_) => {}
            Event::Stderr(d) => keep(stderr, &d),
            Event::Status(s) => return Some(*s),
            Event::Closed(_) => return None,
        }
    }
}

/// Sends the file's `size` bytes (`first` is what came with its header), the last chunk held
/// until tar's exit status says it succeeded.
async fn stream(
    mut exec: Exec,
    size: u64,
    first: Vec<u8>,
    mut stderr: String,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    t: &Transfer<'_>,
    idle: Duration,
) -> Outcome {
    let mut remaining = size;
    let mut sent: u64 = 0;
    let mut held: Option<Bytes> = None;
    let take = |data: Bytes, remaining: &mut u64| -> Bytes {
        let n = (*remaining).min(data.len() as u64) as usize;
        *remaining -= n as u64;
        data.slice(..n)
    };
    let first = take(Bytes::from(first), &mut remaining);
    if !first.is_empty() {
        held = Some(first);
    }
    let end = |result, code, message: String, sent| Outcome {
        result,
        size: Some(size),
        bytes: sent,
        code,
        message: Some(message),
    };
    let mut exit = None;
    let mut why = None;
    while exit.is_none() {
        match exec.next(idle).await {
            Event::Stdout(d) => {
                if remaining == 0 {
                    continue; // padding and the archive's end
                }
                let part = take(d, &mut remaining);
                if let Some(previous) = held.replace(part) {
                    let n = previous.len() as u64;
                    if let Err(why) = deliver(&tx, previous, idle).await {
                        return end(FileResult::Broken, 499, why, sent);
                    }
                    sent += n;
                }
            }
            Event::Stderr(d) => keep(&mut stderr, &d),
            Event::Status(s) => exit = Some(*s),
            Event::Closed(w) => {
                why = w;
                break;
            }
        }
    }
    drop(exec);
    match exit {
        Some(s) if errors::succeeded(&s) && remaining == 0 => {
            if let Some(last) = held {
                let n = last.len() as u64;
                if let Err(why) = deliver(&tx, last, idle).await {
                    return end(FileResult::Broken, 499, why, sent);
                }
                sent += n;
            }
            Outcome {
                result: FileResult::Succeeded,
                size: Some(size),
                bytes: sent,
                code: 200,
                message: None,
            }
        }
        Some(s) => {
            let status = if errors::succeeded(&s) {
                broken(t, "tar ended before the whole file")
            } else {
                failed(t, &s, &stderr)
            };
            let message = status.message.clone().unwrap_or_default();
            let _ = tx.send(Err(std::io::Error::other(message.clone()))).await;
            end(
                FileResult::Failed,
                status.code.unwrap_or(500),
                message,
                sent,
            )
        }
        None => {
            let message = why.unwrap_or_else(|| "no exit status from the container".into());
            let _ = tx.send(Err(std::io::Error::other(message.clone()))).await;
            end(FileResult::Broken, 502, message, sent)
        }
    }
}

/// Hands `data` to the response body; a client that reads nothing for `idle` is given up
/// on, so a stalled download does not hold its exec and session slot for ever.
async fn deliver(
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
    data: Bytes,
    idle: Duration,
) -> Result<(), String> {
    match tokio::time::timeout(idle, tx.send(Ok(data))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err("the client went away".into()),
        Err(_) => Err(format!(
            "the client read nothing for {} s",
            idle.as_secs_f64()
        )),
    }
}

/// A response body fed by a channel, of a known size.
struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
    size: u64,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|o| o.map(|r| r.map(hyper::body::Frame::data)))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_a_file_by_its_absolute_path() {
        let q = parse_query("container=main&path=%2Ftmp%2Fa%20b.bin").expect("valid");
        assert_eq!(q.container.as_deref(), Some("main"));
        assert_eq!((q.dir.as_str(), q.name.as_str()), ("/tmp", "a b.bin"));
        let q = parse_query("path=/f").expect("valid");
        assert_eq!((q.dir.as_str(), q.name.as_str()), ("/", "f"));
        assert_eq!(q.container, None);
        for bad in [
            "",
            "path=relative",
            "path=/tmp/",
            "path=/tmp/..",
            "path=/tmp/.",
            "path=/a%00b",
            "path=/a&container=Bad_Name",
        ] {
            assert!(parse_query(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_kubernetes_names() {
        assert!(is_name("shell-0", 63));
        assert!(is_name("a.b", 253));
        assert!(!is_name("", 63));
        assert!(!is_name("A", 63));
        assert!(!is_name("a/b", 63));
        assert!(!is_name(&"a".repeat(64), 63));
    }

    #[test]
    fn content_disposition_has_an_ascii_and_an_exact_name() {
        assert_eq!(
            content_disposition("a b.bin"),
            "attachment; filename=\"a b.bin\"; filename*=UTF-8''a%20b.bin"
        );
        assert_eq!(
            content_disposition("é\"x"),
            "attachment; filename=\"__x\"; filename*=UTF-8''%C3%A9%22x"
        );
    }

    #[test]
    fn over_the_limit_is_413_with_its_cause() {
        let s = too_large("upload", 10, 5);
        assert_eq!(s.code, Some(413));
        assert_eq!(s.cause(errors::FILE_ERROR_CAUSE), Some("too_large"));
        assert!(
            s.message
                .as_deref()
                .unwrap_or("")
                .contains("files.max_upload")
        );
        assert!(
            too_large("download", 0, 0)
                .message
                .as_deref()
                .unwrap_or("")
                .contains("does not allow")
        );
    }
}
