//! Where recordings are kept. A small trait, so that an object store can follow the directory;
//! the recorder, the replay API and observers use nothing else.
//!
//! [`DirSink`] writes `DIR/YYYY/MM/DD/CLUSTER/SESSION.cast`, directories 0700 and files 0600
//! (recordings hold whatever was on people's screens), each file created new (never one
//! overwritten) and appended to as the session runs. Several replicas share one directory
//! (a shared volume): session ids carry a per-process random part, so names never collide.

use super::key::{Day, Key};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncSeek};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A recording, read from its start; seekable (the replay API reads its last line).
pub trait ReadSeek: AsyncRead + AsyncSeek + Send + Sync + Unpin {}
impl<T: AsyncRead + AsyncSeek + Send + Sync + Unpin> ReadSeek for T {}
pub type Reader = Box<dyn ReadSeek>;

pub trait Sink: Send + Sync + 'static {
    /// A new, empty recording under `key`; an existing one is an error.
    fn create<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, io::Result<Box<dyn SinkWriter>>>;
    /// The recording under `key` from its start, and its size now.
    fn open<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, io::Result<(Reader, u64)>>;
    /// The days that have recordings, newest first.
    fn days(&self) -> BoxFuture<'_, io::Result<Vec<Day>>>;
    /// The recordings of `day`, optionally of one cluster only, with their sizes.
    fn list<'a>(
        &'a self,
        day: Day,
        cluster: Option<&'a str>,
    ) -> BoxFuture<'a, io::Result<Vec<(Key, u64)>>>;
}

/// One recording being written.
pub trait SinkWriter: Send {
    /// Appends `data`, and gives the buffer back emptied (its capacity is reused: the
    /// recorder hands over large buffers, and an owned one needs no copy on its way to the
    /// disk).
    fn write(&mut self, data: Vec<u8>) -> BoxFuture<'_, io::Result<Vec<u8>>>;
    /// Makes what was written readable by others (an observer, the replay API).
    fn flush(&mut self) -> BoxFuture<'_, io::Result<()>>;
    /// Removes the recording: its session never started after all.
    fn discard(self: Box<Self>) -> BoxFuture<'static, io::Result<()>>;
}

/// Recordings in a directory.
pub struct DirSink {
    root: PathBuf,
}

impl DirSink {
    pub fn new(root: PathBuf) -> DirSink {
        DirSink { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether a recording can be created here now (start-up check): the directory exists or
    /// can be made, and takes a file.
    pub async fn check(&self) -> io::Result<()> {
        let root = self.root.clone();
        blocking(move || {
            make_dirs(&root)?;
            let probe = root.join(format!(".podgate-probe-{}", std::process::id()));
            std::fs::write(&probe, b"")?;
            std::fs::remove_file(&probe)
        })
        .await
    }
}

fn make_dirs(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}

/// The recorder gathers lines into large writes itself, so the file is written unbuffered.
struct DirWriter {
    path: PathBuf,
    file: std::sync::Arc<std::fs::File>,
}

impl SinkWriter for DirWriter {
    fn write(&mut self, mut data: Vec<u8>) -> BoxFuture<'_, io::Result<Vec<u8>>> {
        let file = self.file.clone();
        Box::pin(blocking(move || {
            use std::io::Write as _;
            (&*file).write_all(&data)?;
            data.clear();
            Ok(data)
        }))
    }

    fn flush(&mut self) -> BoxFuture<'_, io::Result<()>> {
        // Written straight to the file: what was written is readable already.
        Box::pin(async { Ok(()) })
    }

    fn discard(self: Box<Self>) -> BoxFuture<'static, io::Result<()>> {
        let path = self.path.clone();
        drop(self);
        Box::pin(tokio::fs::remove_file(path))
    }
}

impl Sink for DirSink {
    fn create<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, io::Result<Box<dyn SinkWriter>>> {
        let path = self.root.join(key.path());
        Box::pin(async move {
            let p = path.clone();
            let file = blocking(move || {
                use std::os::unix::fs::OpenOptionsExt as _;
                if let Some(dir) = p.parent() {
                    make_dirs(dir)?;
                }
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&p)
            })
            .await?;
            let file = std::sync::Arc::new(file);
            Ok(Box::new(DirWriter { path, file }) as Box<dyn SinkWriter>)
        })
    }

    fn open<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, io::Result<(Reader, u64)>> {
        let path = self.root.join(key.path());
        Box::pin(async move {
            let file = tokio::fs::File::open(&path).await?;
            let size = file.metadata().await?.len();
            Ok((Box::new(file) as Reader, size))
        })
    }

    fn days(&self) -> BoxFuture<'_, io::Result<Vec<Day>>> {
        let root = self.root.clone();
        Box::pin(blocking(move || {
            let mut days = Vec::new();
            for y in numbered(&root, 4)? {
                for m in numbered(&root.join(&y), 2)? {
                    for d in numbered(&root.join(&y).join(&m), 2)? {
                        if let Some(day) = Day::parse(&format!("{y}{m}{d}")) {
                            days.push(day);
                        }
                    }
                }
            }
            days.sort_unstable_by(|a, b| b.cmp(a));
            Ok(days)
        }))
    }

    fn list<'a>(
        &'a self,
        day: Day,
        cluster: Option<&'a str>,
    ) -> BoxFuture<'a, io::Result<Vec<(Key, u64)>>> {
        let dir = self.root.join(day.dir());
        let only = cluster.map(str::to_string);
        Box::pin(blocking(move || {
            let mut out = Vec::new();
            let clusters = match &only {
                Some(c) => vec![c.clone()],
                None => names(&dir)?,
            };
            for c in clusters {
                if !super::key::is_cluster(&c) {
                    continue;
                }
                for f in names(&dir.join(&c))? {
                    let Some(session) = f.strip_suffix(".cast") else {
                        continue;
                    };
                    if !super::key::is_session(session) {
                        continue;
                    }
                    let size = std::fs::metadata(dir.join(&c).join(&f)).map_or(0, |m| m.len());
                    out.push((
                        Key {
                            day,
                            cluster: c.clone(),
                            session: session.to_string(),
                        },
                        size,
                    ));
                }
            }
            Ok(out)
        }))
    }
}

/// The entries of `dir` (none when it does not exist).
fn names(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in entries {
        if let Some(name) = e?.file_name().to_str() {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

/// The entries of `dir` that are `digits` decimal digits.
fn numbered(dir: &Path, digits: usize) -> io::Result<Vec<String>> {
    Ok(names(dir)?
        .into_iter()
        .filter(|n| n.len() == digits && n.bytes().all(|b| b.is_ascii_digit()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    #[tokio::test]
    async fn a_directory_sink_writes_private_files_by_day_and_cluster() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let sink = DirSink::new(dir.path().join("rec"));
        sink.check().await.expect("the directory is writable");
        let key = Key::parse("20261201.east.abc-1").expect("an id");
        let mut w = sink.create(&key).await.expect("created");
        let back = w.write(b"line 1\n".to_vec()).await.expect("written");
        assert!(
            back.is_empty() && back.capacity() >= 7,
            "the buffer comes back, emptied"
        );
        w.flush().await.expect("flushed");
        assert!(sink.create(&key).await.is_err(), "never overwritten");

        let path = dir.path().join("rec/2026/12/01/east/abc-1.cast");
        let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("a parent")), 0o700);
        assert_eq!(mode(&dir.path().join("rec/2026")), 0o700);

        let (mut r, size) = sink.open(&key).await.expect("opened");
        let mut text = String::new();
        r.read_to_string(&mut text).await.expect("read");
        assert_eq!((text.as_str(), size), ("line 1\n", 7));
        assert_eq!(sink.days().await.expect("days"), vec![key.day]);
        assert_eq!(
            sink.list(key.day, None).await.expect("listed"),
            vec![(key.clone(), 7)]
        );
        assert!(
            sink.list(key.day, Some("west"))
                .await
                .expect("listed")
                .is_empty()
        );

        let other = Key::parse("20261201.east.abc-2").expect("an id");
        let w = sink.create(&other).await.expect("created");
        w.discard().await.expect("discarded");
        assert_eq!(sink.list(key.day, None).await.expect("listed").len(), 1);
    }
}
