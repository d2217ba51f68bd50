//! A fleet for `podgate serve`: many cluster ids in front of a few devclusters (each its own
//! CA, so TLS sharing is real), the config file that lists them, a TCP proxy that counts the
//! connections the gateway opens to a cluster (peak concurrency exactly, and when each one
//! opened), and the gateway's open sockets to given ports, read from `/proc`.

use crate::serve::Files;
use podgate_devcluster::DevCluster;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tokio::net::{TcpListener, TcpStream};

/// One `clusters:` entry.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: String,
    /// A file in the config's directory (see [`write_kubeconfig`]).
    pub kubeconfig: String,
    /// Extra YAML lines of the entry, indented as entry fields (`display_name: X`).
    pub extra: Vec<String>,
}

impl Entry {
    pub fn new(id: &str, kubeconfig: &str) -> Entry {
        Entry {
            id: id.into(),
            kubeconfig: kubeconfig.into(),
            extra: Vec::new(),
        }
    }

    /// Adds `key: value` (YAML) to the entry.
    pub fn with(mut self, key: &str, yaml: &str) -> Entry {
        self.extra.push(format!("{key}: {yaml}"));
        self
    }
}

/// The config file of a fleet: the serve kit's listeners, TLS and tokens, `upstream` as
/// given, and `clusters` (context `podgate`, which may only impersonate).
pub fn config_yaml(upstream: &str, clusters: &[Entry]) -> String {
    let mut yaml = String::from(
        "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\n\
         tls: {cert_file: tls.crt, key_file: tls.key}\nauth: {tokens_file: tokens.yaml}\n",
    );
    yaml.push_str(&format!("upstream: {upstream}\nclusters:\n"));
    for c in clusters {
        yaml.push_str(&format!(
            "  - id: {}\n    kubeconfig: {}\n    context: podgate\n",
            c.id, c.kubeconfig
        ));
        for line in &c.extra {
            yaml.push_str(&format!("    {line}\n"));
        }
    }
    yaml
}

/// Writes `name` in the files' directory: `dc`'s kubeconfig, its server replaced by
/// `server` when given (a proxy in front of it).
pub fn write_kubeconfig(files: &Files, name: &str, dc: &DevCluster, server: Option<SocketAddr>) {
    let mut kc = dc.kubeconfig();
    if let Some(addr) = server {
        for c in &mut kc.clusters {
            c.server = format!("https://{addr}");
        }
    }
    files.write(name, &kc.to_yaml());
}

/// A TCP proxy on `127.0.0.1:0` to one target that counts what goes through: connections
/// live now, the most ever live at once (exact: counted at accept), and when each opened.
pub struct Counting {
    addr: SocketAddr,
    shared: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Counts {
    live: AtomicUsize,
    peak: AtomicUsize,
    opened: Mutex<Vec<Instant>>,
}

impl Counting {
    pub async fn to(target: SocketAddr) -> Counting {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Counts::default());
        let counts = shared.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let live = counts.live.fetch_add(1, Ordering::SeqCst) + 1;
                counts.peak.fetch_max(live, Ordering::SeqCst);
                counts
                    .opened
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Instant::now());
                let counts = counts.clone();
                conns.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                    counts.live.fetch_sub(1, Ordering::SeqCst);
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Counting { addr, shared, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn live(&self) -> usize {
        self.shared.live.load(Ordering::SeqCst)
    }

    /// The most connections that were open at once.
    pub fn peak(&self) -> usize {
        self.shared.peak.load(Ordering::SeqCst)
    }

    /// Forgets the peak so far (to measure a later phase); returns it.
    pub fn reset_peak(&self) -> usize {
        self.shared.peak.swap(self.live(), Ordering::SeqCst)
    }

    /// When each connection opened, in order.
    pub fn opened(&self) -> Vec<Instant> {
        self.shared
            .opened
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn accepted(&self) -> usize {
        self.shared
            .opened
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Established TCP connections of process `pid` to any of `ports` on loopback: its open
/// sockets (`/proc/PID/fd`) matched with the kernel's table (`/proc/PID/net/tcp`, `tcp6`).
pub fn established_to(pid: u32, ports: &[u16]) -> usize {
    let inodes: HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|target| {
                    let t = target.to_string_lossy().into_owned();
                    t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
                })
                .collect()
        })
        .unwrap_or_default();
    let mut n = 0;
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            let (Some(rem), Some(st), Some(inode)) = (f.get(2), f.get(3), f.get(9)) else {
                continue;
            };
            let port = rem
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            let inode: Option<u64> = inode.parse().ok();
            if *st == "01"
                && port.is_some_and(|p| ports.contains(&p))
                && inode.is_some_and(|i| inodes.contains(&i))
            {
                n += 1;
            }
        }
    }
    n
}

/// How many `podgate_cluster_up` series are 1 in a `/metrics` text.
pub fn clusters_up(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|l| l.starts_with("podgate_cluster_up{") && l.ends_with(" 1"))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_series_are_counted() {
        let text = "# HELP podgate_cluster_up x\npodgate_cluster_up{cluster=\"a\"} 1\n\
                    podgate_cluster_up{cluster=\"b\"} 0\npodgate_cluster_up{cluster=\"c\"} 1\n\
                    podgate_cluster_upper 1\n";
        assert_eq!(clusters_up(text), 2);
    }

    #[tokio::test]
    async fn sockets_of_this_process_are_found() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let pid = std::process::id();
        assert_eq!(established_to(pid, &[port]), 0);
        let a = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let (_b, _) = listener.accept().await.expect("accept");
        // Only the client side has the port as its remote end.
        assert_eq!(established_to(pid, &[port]), 1);
        drop(a);
    }
}
