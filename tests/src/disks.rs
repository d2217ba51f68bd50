//! The disks a recording meets, for tests of how podgate treats them:
//!
//! - [`GatedSink`]: a sink behind podgate's trait whose writes wait while the test holds a
//!   gate (a disk that stalls), counting writes waiting, or take a while each (a slow disk);
//! - [`failing_for`]: a sink that refuses one cluster's recordings;
//! - [`Tmpfs`]: a tmpfs of the test's own (as root), to fill or make read-only, unmounted
//!   when dropped.

use podgate::recording::key::Day;
use podgate::recording::sink::{BoxFuture, Reader, Sink, SinkWriter};
use podgate::recording::{DirSink, Key};
use std::io;
use std::path::Path;
use std::process::Command;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory sink whose writes wait while the gate is held.
pub struct GatedSink {
    dir: DirSink,
    gate: Arc<tokio::sync::RwLock<()>>,
    held: std::sync::Mutex<Option<tokio::sync::OwnedRwLockWriteGuard<()>>>,
    waiting: Arc<AtomicUsize>,
    /// How long every write takes (a slow disk).
    delay: std::time::Duration,
}

impl GatedSink {
    pub fn new(root: &Path) -> Arc<GatedSink> {
        GatedSink::slow(root, std::time::Duration::ZERO)
    }

    /// A disk on which every write takes `delay`.
    pub fn slow(root: &Path, delay: std::time::Duration) -> Arc<GatedSink> {
        Arc::new(GatedSink {
            dir: DirSink::new(root.to_path_buf()),
            gate: Arc::default(),
            held: Default::default(),
            waiting: Arc::default(),
            delay,
        })
    }

    /// From now, writes wait (until [`GatedSink::open`]).
    pub fn hold(&self) {
        let guard = self
            .gate
            .clone()
            .try_write_owned()
            .expect("the gate is free while no write runs");
        *self.held.lock().expect("gate") = Some(guard);
    }

    /// Lets waiting and later writes through.
    pub fn open(&self) {
        self.held.lock().expect("gate").take();
    }

    /// Writes waiting at the gate now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

struct GatedWriter {
    inner: Box<dyn SinkWriter>,
    gate: Arc<tokio::sync::RwLock<()>>,
    waiting: Arc<AtomicUsize>,
    delay: std::time::Duration,
}

impl SinkWriter for GatedWriter {
    fn write(&mut self, data: Vec<u8>) -> BoxFuture<'_, io::Result<Vec<u8>>> {
        Box::pin(async move {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let pass = self.gate.read().await;
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            drop(pass);
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            self.inner.write(data).await
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, io::Result<()>> {
        self.inner.flush()
    }

    fn discard(self: Box<Self>) -> BoxFuture<'static, io::Result<()>> {
        self.inner.discard()
    }
}

impl Sink for GatedSink {
    fn create<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, io::Result<Box<dyn SinkWriter>>> {
        Box::pin(async move {
            let inner = self.dir.create(key).await?;
            Ok(Box::new(GatedWriter {
                inner,
                gate: self.gate.clone(),
                waiting: self.waiting.clone(),
                delay: self.delay,
            }) as Box<dyn SinkWriter>)
        })
    }

    fn open<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, io::Result<(Reader, u64)>> {
        self.dir.open(key)
    }

    fn days(&self) -> BoxFuture<'_, io::Result<Vec<Day>>> {
        self.dir.days()
    }

    fn list<'a>(
        &'a self,
        day: Day,
        cluster: Option<&'a str>,
    ) -> BoxFuture<'a, io::Result<Vec<(Key, u64)>>> {
        self.dir.list(day, cluster)
    }
}

/// A directory sink on which every recording of `cluster` fails to start (as on a disk that
/// refuses its directory), and the others are written.
pub fn failing_for(root: &Path, cluster: &str) -> Arc<dyn Sink> {
    Arc::new(FailingFor {
        dir: DirSink::new(root.to_path_buf()),
        cluster: cluster.to_string(),
    })
}

struct FailingFor {
    dir: DirSink,
    cluster: String,
}

impl Sink for FailingFor {
    fn create<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, io::Result<Box<dyn SinkWriter>>> {
        if key.cluster == self.cluster {
            return Box::pin(async {
                Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "the test's disk refuses this cluster",
                ))
            });
        }
        self.dir.create(key)
    }

    fn open<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, io::Result<(Reader, u64)>> {
        self.dir.open(key)
    }

    fn days(&self) -> BoxFuture<'_, io::Result<Vec<Day>>> {
        self.dir.days()
    }

    fn list<'a>(
        &'a self,
        day: Day,
        cluster: Option<&'a str>,
    ) -> BoxFuture<'a, io::Result<Vec<(Key, u64)>>> {
        self.dir.list(day, cluster)
    }
}

/// A tmpfs of `size` mounted on a fresh directory (root only: `None`, after a loud note,
/// where mounting is not allowed, and in CI that fails the test).
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("a mount point");
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        crate::available(ok, "mounting a tmpfs needs root").then_some(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Makes it read-only from now (files open for writing keep writing: that is the kernel's
    /// rule for remounts, so only new recordings see it).
    pub fn read_only(&self) {
        let ok = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remounting {} read-only", self.dir.path().display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
