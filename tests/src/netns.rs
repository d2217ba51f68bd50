//! A network namespace of the test's own, joined to this one by a veth pair: what lives
//! inside (a devcluster on the namespace's own loopback, processes started with
//! [`Netns::command`]) reaches this side at [`Netns::host_ip`], and nothing on this side can
//! reach the namespace's loopback. So a cluster behind NAT, reachable only by its agent.
//! Needs root (`ip netns`, veth); removed when dropped.

use podgate_devcluster::{DevCluster, Options};
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Netns {
    name: String,
    host_if: String,
    /// This side's end of the veth pair: where processes inside reach the host.
    pub host_ip: Ipv4Addr,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ip {args:?}: {e} (the test needs iproute2)"));
    assert!(
        out.status.success(),
        "ip {}: {} (the test needs root for network namespaces)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

impl Netns {
    /// A new namespace `pgN` with a /30 of its own in 10.201.0.0/16.
    pub fn create() -> Netns {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = (std::process::id() % 1000) * 16 + NEXT.fetch_add(1, Ordering::Relaxed) % 16;
        let name = format!("pg{n}");
        let (host_if, ns_if) = (format!("{name}h"), format!("{name}n"));
        // A /30 per namespace: 16,000 of them in the /16.
        let base = 4 * (n % 16_000);
        let octets = |last: u32| {
            let v = (10u32 << 24) | (201 << 16) | (base + last);
            Ipv4Addr::from(v)
        };
        let (host_ip, ns_ip) = (octets(1), octets(2));
        // A namespace left by a killed run of the same pid.
        let _ = Command::new("ip").args(["link", "del", &host_if]).output();
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let netns = Netns {
            name: name.clone(),
            host_if: host_if.clone(),
            host_ip,
        };
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ]);
        ip(&["link", "set", &ns_if, "netns", &name]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &name];
            all.extend_from_slice(args);
            ip(&all);
        };
        inside(&["ip", "addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if]);
        inside(&["ip", "link", "set", &ns_if, "up"]);
        inside(&["ip", "link", "set", "lo", "up"]);
        netns
    }

    /// `program` run inside the namespace (`ip netns exec`, which execs it: the child's pid
    /// is the program's).
    pub fn command(&self, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// A devcluster listening on the namespace's own loopback, served by a thread inside it.
    pub fn devcluster(&self, name: &str) -> Inside {
        let path = format!("/var/run/netns/{}", self.name);
        let name = name.to_string();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap_or_else(|e| panic!("setns into {path}: {e}"));
            // Every socket of this runtime is made on this thread, inside the namespace.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                podgate_devcluster::install_crypto_provider();
                let dc = DevCluster::start(Options {
                    name,
                    ..Options::default()
                })
                .await
                .expect("the devcluster starts inside the namespace");
                let _ = ready_tx.send((dc.kubeconfig().to_yaml(), dc.addr()));
                let _ = stop_rx.await;
            });
        });
        let (kubeconfig, addr) = ready_rx
            .recv()
            .expect("the devcluster in the namespace reports its address");
        Inside {
            kubeconfig,
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A devcluster inside a namespace; stopped when dropped.
pub struct Inside {
    /// Its kubeconfig (server `https://127.0.0.1:PORT`: the namespace's loopback).
    pub kubeconfig: String,
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Inside {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
