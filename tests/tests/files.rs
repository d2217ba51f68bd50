//! File upload and download through the gateway (tar over exec, as `kubectl cp` does), against
//! a devcluster whose containers are real processes: a binary file byte-exact both ways (every
//! byte value, a few MiB, a long name), the size bounds enforced by podgate itself (nothing
//! written, the exec stopped), and each failure as a `Status` to act on: no tar on the
//! container's PATH, a read-only and a full file system (tmpfs mounts the test makes), a user
//! who may not write or read, a missing file or directory, a directory; a person without
//! `pods/exec` is refused by the cluster, a namespace outside the cluster's access policy by
//! podgate's edge; and every transfer is counted and audited.

use podgate::files::FileLimits;
use podgate_config::AccessPolicy;
use podgate_devcluster::Topology;
use podgate_testkit::devcluster::builtin_with_pods;
use podgate_testkit::disks::Tmpfs;
use podgate_testkit::gateway::{ADMIN, ALICE, BOB, Builder, Cluster, Env};
use podgate_testkit::http::{self, Answer};
use podgate_testkit::metrics::sample;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

const CLUSTER: &str = "dev";
const LIMIT: u64 = 8 << 20;
/// One pod with one process container, beside the built-in topology's.
const ONE_POD: &str = r#"
namespaces:
  - name: default
    pods:
      - name: files-0
        containers:
          - name: main
            runtime: process
"#;

/// The places the test's containers write to, made by the test.
struct Places {
    _base: tempfile::TempDir,
    rw: PathBuf,
    /// A directory only root may write (the `nobody` container runs as 65534).
    locked: PathBuf,
    /// A PATH with `sh` and no `tar`.
    no_tar_bin: PathBuf,
    ro: Tmpfs,
    full: Tmpfs,
}

fn places() -> Option<Places> {
    let base = tempfile::tempdir().expect("a temp dir");
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let rw = base.path().join("rw");
    let locked = base.path().join("locked");
    let no_tar_bin = base.path().join("bin");
    for d in [&rw, &locked, &no_tar_bin] {
        std::fs::create_dir(d).expect("mkdir");
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::os::unix::fs::symlink("/bin/sh", no_tar_bin.join("sh")).expect("symlink sh");
    let ro = Tmpfs::mount("1m")?;
    std::fs::write(ro.path().join("existing"), b"read me").expect("write before ro");
    ro.read_only();
    let full = Tmpfs::mount("64k")?;
    Some(Places {
        _base: base,
        rw,
        locked,
        no_tar_bin,
        ro,
        full,
    })
}

fn topology(p: &Places) -> Topology {
    let yaml = format!(
        r#"
namespaces:
  - name: default
    pods:
      - name: files-0
        containers:
          - name: main
            runtime: process
          - name: notar
            runtime: process
            env: [{{name: PATH, value: "{bin}"}}]
          - name: ro
            runtime: process
            workingDir: "{ro}"
          - name: full
            runtime: process
            workingDir: "{full}"
          - name: nobody
            runtime: process
            workingDir: "{locked}"
            securityContext: {{runAsUser: 65534, runAsGroup: 65534}}
"#,
        bin = p.no_tar_bin.display(),
        ro = p.ro.path().display(),
        full = p.full.path().display(),
        locked = p.locked.display(),
    );
    builtin_with_pods(&yaml)
}

async fn gateway(p: &Places, audit: &Path) -> Env {
    Builder::new()
        .cluster(
            Cluster::new(CLUSTER)
                .topology(topology(p))
                // Everyone may use the cluster, in `default` only.
                .access(AccessPolicy {
                    users: vec![],
                    groups: vec![],
                    namespaces: vec!["default".into()],
                }),
        )
        .files(FileLimits {
            max_upload: LIMIT,
            max_download: LIMIT,
            ..FileLimits::default()
        })
        .audit_file(audit)
        .start()
        .await
}

fn url(namespace: &str, pod: &str, container: &str, path: &Path) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("container", container)
        .append_pair("path", path.to_str().expect("a UTF-8 path"))
        .finish();
    format!("/podgate/clusters/{CLUSTER}/namespaces/{namespace}/pods/{pod}/file?{q}")
}

/// The head of an upload of `length` bytes to `target` as `token`.
fn put_head(env: &Env, token: &str, target: &str, length: u64) -> Vec<u8> {
    format!(
        "PUT {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n",
        env.addr(),
    )
    .into_bytes()
}

async fn put(env: &Env, token: &str, target: &str, body: &[u8]) -> Answer {
    let mut raw = put_head(env, token, target, body.len() as u64);
    raw.extend_from_slice(body);
    http::send(env, &raw).await
}

/// A PUT that says it carries `length` bytes and sends none: what podgate answers from the
/// head alone.
async fn put_claiming(env: &Env, token: &str, target: &str, length: u64) -> Answer {
    http::send(env, &put_head(env, token, target, length)).await
}

/// `podgate_file_transfers_total{direction, result}` now.
fn transfers(env: &Env, direction: &str, result: &str) -> Option<f64> {
    sample(
        &env.gateway.metrics().render(),
        "podgate_file_transfers_total",
        &[("direction", direction), ("result", result)],
    )
}

async fn get(env: &Env, token: &str, target: &str) -> Answer {
    http::get(env, target, token).await
}

/// A `Status` of `code` whose `podgate.io/file-error` cause is `cause` and whose message
/// contains `says`.
fn assert_problem(a: &Answer, code: u16, cause: &str, says: &str) {
    let v = http::assert_status(a.code, &a.body, code);
    let causes = v["details"]["causes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        causes
            .iter()
            .any(|c| c["reason"] == "podgate.io/file-error" && c["message"] == cause),
        "cause {cause}: {}",
        a.body
    );
    let message = v["message"].as_str().unwrap_or("");
    assert!(message.contains(says), "{says:?} in {message:?}");
}

/// Every byte value, then a pattern that is not periodic in any small block size.
fn binary(len: usize) -> Vec<u8> {
    let mut out: Vec<u8> = (0..=255u8).collect();
    let mut x: u32 = 0x9e37_79b9;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.push((x >> 24) as u8);
    }
    out.truncate(len);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_go_both_ways_byte_exact_bounded_and_fail_clearly() {
    let Some(p) = places() else {
        return;
    };
    let audit_dir = tempfile::tempdir().expect("a temp dir");
    let audit = audit_dir.path().join("audit.log");
    let env = gateway(&p, &audit).await;

    // A binary file of a few MiB up and down, byte-exact; the download says its size and name.
    let data = binary((3 << 20) + 12_345);
    let file = p.rw.join("data.bin");
    let target = url("default", "files-0", "main", &file);
    let up = put(&env, ADMIN, &target, &data).await;
    assert_eq!(up.code, 200, "{}", up.body);
    assert_eq!(up.json()["status"], "Success", "{}", up.body);
    assert!(
        std::fs::read(&file).expect("the uploaded file") == data,
        "uploaded bytes differ"
    );
    let down = get(&env, ADMIN, &target).await;
    assert_eq!(down.code, 200, "{}", down.head);
    assert_eq!(
        down.header("content-length"),
        Some(data.len().to_string().as_str())
    );
    assert_eq!(
        down.header("content-type"),
        Some("application/octet-stream")
    );
    assert!(
        down.header("content-disposition")
            .is_some_and(|d| d.contains("filename=\"data.bin\"")),
        "{}",
        down.head
    );
    assert_eq!(down.bytes.len(), data.len());
    assert!(down.bytes == data, "downloaded bytes differ");

    // An empty file, and a name longer than ustar's 100 bytes (a pax record), with spaces.
    let long = p.rw.join(format!("{} é.bin", "n".repeat(140)));
    let target = url("default", "files-0", "main", &long);
    let up = put(&env, ADMIN, &target, b"").await;
    assert_eq!(up.code, 200, "{}", up.body);
    assert_eq!(std::fs::read(&long).expect("the long-named file"), b"");
    std::fs::write(&long, b"\x00\xff tail").expect("write");
    let down = get(&env, ADMIN, &target).await;
    assert_eq!(down.code, 200, "{}", down.head);
    assert_eq!(down.bytes, b"\x00\xff tail");

    // Over the limit: refused by podgate from the head alone, nothing runs or is written.
    let big = p.rw.join("big.bin");
    let target = url("default", "files-0", "main", &big);
    assert!(
        env.sessions_end(Duration::from_secs(10)).await,
        "the downloads' execs end"
    );
    let refused = put_claiming(&env, ADMIN, &target, LIMIT + 1).await;
    assert_problem(&refused, 413, "too_large", "files.max_upload");
    assert!(!big.exists(), "nothing is written");
    assert_eq!(
        env.cluster(CLUSTER).active_sessions(),
        0,
        "no exec for a refused upload"
    );
    // A download over the limit is refused once tar names its size, and its exec stops.
    std::fs::write(&big, vec![7u8; (LIMIT + 1) as usize]).expect("a big file");
    let refused = get(&env, ADMIN, &target).await;
    assert_problem(&refused, 413, "too_large", "files.max_download");

    // No tar on the container's PATH: said so, both ways.
    let target = url("default", "files-0", "notar", &p.rw.join("x"));
    assert_problem(
        &get(&env, ADMIN, &target).await,
        422,
        "no_tar",
        "has no tar",
    );
    assert_problem(
        &put(&env, ADMIN, &target, b"abc").await,
        422,
        "no_tar",
        "has no tar",
    );
    assert!(!p.rw.join("x").exists());

    // A read-only file system: the upload fails, and says where to write instead.
    let target = url("default", "files-0", "ro", &p.ro.path().join("new.bin"));
    let a = put(&env, ADMIN, &target, &data[..4096]).await;
    assert_problem(&a, 409, "read_only", "read-only file system");
    // Reading from it still works.
    let a = get(
        &env,
        ADMIN,
        &url("default", "files-0", "ro", &p.ro.path().join("existing")),
    )
    .await;
    assert_eq!(
        (a.code, a.bytes.as_slice()),
        (200, &b"read me"[..]),
        "{}",
        a.body
    );

    // A full file system (a 64 KiB tmpfs) and a 256 KiB file.
    let target = url("default", "files-0", "full", &p.full.path().join("big.bin"));
    let a = put(&env, ADMIN, &target, &data[..256 << 10]).await;
    assert_problem(&a, 507, "disk_full", "no space left");

    // A user who may not write there, or read that file.
    let target = url("default", "files-0", "nobody", &p.locked.join("mine.bin"));
    let a = put(&env, ADMIN, &target, b"abc").await;
    assert_problem(&a, 403, "permission_denied", "may not write");
    assert!(!p.locked.join("mine.bin").exists());
    let secret = p.locked.join("secret");
    std::fs::write(&secret, b"root only").expect("write");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let a = get(&env, ADMIN, &url("default", "files-0", "nobody", &secret)).await;
    assert_problem(&a, 403, "permission_denied", "may not read");

    // Missing file, missing directory, a directory.
    let a = get(
        &env,
        ADMIN,
        &url("default", "files-0", "main", &p.rw.join("nope")),
    )
    .await;
    assert_problem(&a, 404, "not_found", "there is no file");
    let a = put(
        &env,
        ADMIN,
        &url("default", "files-0", "main", &p.rw.join("no/such")),
        b"x",
    )
    .await;
    assert_problem(&a, 404, "not_found", "does not exist");
    let a = get(&env, ADMIN, &url("default", "files-0", "main", &p.rw)).await;
    assert_problem(&a, 400, "not_regular", "a directory");

    // Bob may list pods but not exec: the cluster says no, and nothing is written.
    let target = url("default", "files-0", "main", &p.rw.join("bob.bin"));
    let a = put(&env, BOB, &target, b"bob").await;
    let v = http::assert_status(a.code, &a.body, 403);
    assert!(
        v["message"].as_str().unwrap_or("").contains("pods/exec"),
        "the cluster's own refusal: {}",
        a.body
    );
    assert!(!p.rw.join("bob.bin").exists());
    assert_eq!(
        get(&env, BOB, &url("default", "files-0", "main", &file))
            .await
            .code,
        403
    );
    // Alice may exec in default: she reads the file (as the cluster decides)...
    let a = get(&env, ALICE, &url("default", "files-0", "main", &file)).await;
    assert_eq!(a.code, 200, "{}", a.body);
    // ...but shop is outside the cluster's access policy: podgate's edge refuses, as it would
    // the exec.
    let a = get(&env, ADMIN, &url("shop", "web-0", "web", &file)).await;
    let v = http::assert_status(a.code, &a.body, 403);
    assert!(
        v["message"].as_str().unwrap_or("").contains("shop"),
        "{}",
        a.body
    );
    // No credential at all.
    assert_eq!(
        get(&env, "", &url("default", "files-0", "main", &file))
            .await
            .code,
        401
    );
    // A path that is not absolute.
    let a = get(
        &env,
        ADMIN,
        &format!("/podgate/clusters/{CLUSTER}/namespaces/default/pods/files-0/file?path=rel"),
    )
    .await;
    http::assert_status(a.code, &a.body, 400);
    // The limits, for the page.
    let limits = get(&env, ADMIN, "/podgate/files").await.json();
    assert_eq!(limits["max_upload"], LIMIT);

    // Every exec ended.
    assert!(
        env.sessions_end(Duration::from_secs(10)).await,
        "the transfers' execs end"
    );

    // Counted...
    let text = env.gateway.metrics().render();
    let count = |direction: &str, result: &str| transfers(&env, direction, result).unwrap_or(-1.0);
    assert_eq!(count("upload", "succeeded"), 2.0, "{text}");
    assert_eq!(count("download", "succeeded"), 4.0);
    assert_eq!(count("upload", "too_large"), 1.0);
    assert_eq!(count("download", "too_large"), 1.0);
    assert_eq!(count("upload", "failed"), 5.0);
    assert_eq!(count("download", "failed"), 4.0);
    assert_eq!(count("upload", "denied"), 1.0);
    assert_eq!(count("download", "denied"), 1.0);
    let bytes = sample(
        &text,
        "podgate_file_transfer_bytes_total",
        &[("direction", "download")],
    )
    .unwrap_or(0.0);
    assert!(bytes >= (2 * data.len()) as f64, "{bytes}");

    // ...and audited.
    env.shutdown().await;
    let lines = std::fs::read_to_string(&audit).expect("the audit log");
    let transfers: Vec<serde_json::Value> = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "file_transfer")
        .collect();
    let first = transfers.first().expect("an audited transfer");
    assert_eq!(first["user"], "admin");
    assert_eq!(first["direction"], "upload");
    assert_eq!(first["result"], "succeeded");
    assert_eq!(first["bytes"], data.len());
    assert_eq!(first["path"], file.to_str().expect("utf-8"));
    assert!(
        transfers
            .iter()
            .any(|t| t["result"] == "too_large" && t["code"] == 413),
        "{lines}"
    );
    assert!(
        transfers
            .iter()
            .any(|t| t["user"] == "bob" && t["result"] == "denied")
    );
}

/// A transfer is an exec like a shell: it holds one of the person's session slots while it
/// runs (so transfers cannot get round `limits.*`), answers the one past the limit with a 429
/// that names it, and gives the slot back when it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_holds_a_session_slot_until_it_ends() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let env = Builder::new()
        .cluster(Cluster::new(CLUSTER).topology(builtin_with_pods(ONE_POD)))
        .limits(|l| l.per_user = 1)
        .start()
        .await;
    let file = dir.path().join("slow.bin");
    let target = url("default", "files-0", "main", &file);
    let data = binary(64 << 10);

    // An upload whose body has only begun to arrive.
    let mut slow = podgate_testkit::tls::connect(&env).await;
    let head = put_head(&env, ADMIN, &target, data.len() as u64);
    use tokio::io::AsyncWriteExt as _;
    slow.write_all(&head).await.expect("write the head");
    slow.write_all(&data[..1024])
        .await
        .expect("write a first part");
    slow.flush().await.expect("flush");
    assert!(
        podgate_testkit::wait::wait_for(Duration::from_secs(10), || env
            .cluster(CLUSTER)
            .active_sessions()
            == 1)
        .await,
        "the upload's exec runs"
    );

    // The same person's next transfer, either way, is past the limit; nothing runs for it.
    let refused = get(&env, ADMIN, &target).await;
    let v = http::assert_status(refused.code, &refused.body, 429);
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("already has 1 open sessions"),
        "{}",
        refused.body
    );
    let refused = put(
        &env,
        ADMIN,
        &url("default", "files-0", "main", &dir.path().join("b")),
        b"b",
    )
    .await;
    http::assert_status(refused.code, &refused.body, 429);
    assert!(
        !dir.path().join("b").exists(),
        "nothing written past the limit"
    );
    assert_eq!(env.cluster(CLUSTER).active_sessions(), 1);
    // Another person is not held by it.
    let a = put(
        &env,
        ALICE,
        &url("default", "files-0", "main", &dir.path().join("a")),
        b"a",
    )
    .await;
    assert_eq!(a.code, 200, "{}", a.body);

    // The upload ends: its answer, its bytes, and the slot back.
    let answer = http::exchange(&mut slow, &data[1024..])
        .await
        .expect("the upload's answer");
    assert_eq!(answer.code, 200, "{}", answer.body);
    assert!(
        std::fs::read(&file).expect("the file") == data,
        "uploaded bytes differ"
    );
    assert!(
        env.sessions_end(Duration::from_secs(10)).await,
        "the exec ended"
    );
    let down = get(&env, ADMIN, &target).await;
    assert_eq!(down.code, 200, "the slot came back: {}", down.body);
    assert!(down.bytes == data);
    assert_eq!(transfers(&env, "download", "refused"), Some(1.0));
    env.shutdown().await;
}

/// An upload whose client stops sending ends after `files.idle_timeout`: answered with why,
/// counted as broken, its exec and session slot given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_ends_after_the_idle_timeout() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let env = Builder::new()
        .cluster(Cluster::new(CLUSTER).topology(builtin_with_pods(ONE_POD)))
        .files(FileLimits {
            idle: Duration::from_millis(500),
            ..FileLimits::default()
        })
        .start()
        .await;
    let target = url(
        "default",
        "files-0",
        "main",
        &dir.path().join("stalled.bin"),
    );
    let mut slow = podgate_testkit::tls::connect(&env).await;
    let mut raw = put_head(&env, ADMIN, &target, 4096);
    raw.extend_from_slice(&[1u8; 100]);
    // The rest of the body never comes: the gateway answers on its own.
    let answer = http::exchange(&mut slow, &raw)
        .await
        .expect("an answer without the rest of the body");
    let v = http::assert_status(answer.code, &answer.body, 400);
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("nothing arrived from the client"),
        "{}",
        answer.body
    );
    assert!(
        env.sessions_end(Duration::from_secs(10)).await,
        "the exec ended"
    );
    assert_eq!(
        env.sessions().limits.active(),
        0,
        "the session slot came back"
    );
    assert_eq!(transfers(&env, "upload", "broken"), Some(1.0));
    env.shutdown().await;
}
