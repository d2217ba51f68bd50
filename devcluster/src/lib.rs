//! devcluster: a small Kubernetes API server that speaks the real wire protocols (discovery,
//! pods, `pods/exec` and `pods/attach` over WebSocket), so podgate's tests, benchmarks and
//! demo run against exactly what a production cluster would send, judged by real kubectl.
//!
//! Start one in-process with [`DevCluster::start`]; several can run in one process.
#![forbid(unsafe_code)]

pub mod access;
pub mod api;
mod configmaps;
mod ephemeral;
mod exec;
pub mod kubeconfig;
pub mod list;
mod logs;
mod portforward;
mod reviews;
mod routes;
pub mod runtime;
pub mod selector;
mod server;
mod state;
pub mod store;
pub mod tls;
pub mod topology;
pub mod watch;

use kubeconfig::{KubeCluster, KubeContext, KubeUser, Kubeconfig};
use state::State;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
pub use topology::Topology;

/// How to start a cluster.
pub struct Options {
    pub topology: Topology,
    /// Defaults to `127.0.0.1:0` (a free port).
    pub listen: SocketAddr,
    /// Containers' working directories; a fresh temporary directory when `None`.
    pub state_dir: Option<PathBuf>,
    /// The name the cluster gets in written kubeconfigs.
    pub name: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            topology: Topology::builtin(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state_dir: None,
            name: "devcluster".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot create the state directory {path}: {source}")]
    StateDir {
        path: String,
        source: std::io::Error,
    },
}

/// A running cluster. Dropping it without [`DevCluster::shutdown`] also stops it.
pub struct DevCluster {
    state: Arc<State>,
    addr: SocketAddr,
    ca_pem: String,
    name: String,
    /// A temporary state directory we created and remove at the end.
    temp_dir: Option<PathBuf>,
}

impl DevCluster {
    pub async fn start(opts: Options) -> Result<DevCluster, StartError> {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: opts.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: opts.listen,
            source,
        })?;
        let material = match &opts.topology.tls {
            Some(files) => tls::load(files)?,
            None => {
                let mut hosts = vec![
                    "127.0.0.1".to_string(),
                    "localhost".to_string(),
                    "::1".to_string(),
                ];
                if !addr.ip().is_unspecified() {
                    hosts.push(addr.ip().to_string());
                }
                hosts.dedup();
                tls::generate(&hosts)?
            }
        };
        let (state_dir, temp_dir) = match opts.state_dir {
            Some(d) => (d, None),
            None => {
                let d = std::env::temp_dir().join(format!(
                    "devcluster-{}-{}",
                    std::process::id(),
                    addr.port()
                ));
                (d.clone(), Some(d))
            }
        };
        std::fs::create_dir_all(&state_dir).map_err(|source| StartError::StateDir {
            path: state_dir.display().to_string(),
            source,
        })?;
        let state = Arc::new(State::new(opts.topology, state_dir));
        // Tracked, so `shutdown` returns only once the listening socket is closed too.
        state
            .tasks
            .spawn(server::serve(state.clone(), listener, material.server));
        Ok(DevCluster {
            state,
            addr,
            ca_pem: material.ca_pem,
            name: opts.name,
            temp_dir,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://HOST:PORT`, the server URL clients use.
    pub fn url(&self) -> String {
        let host = match self.addr.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        format!("https://{host}:{}", self.addr.port())
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn topology(&self) -> &Topology {
        &self.state.topology
    }

    /// The token of a configured user.
    pub fn token(&self, user: &str) -> Option<&str> {
        self.state
            .topology
            .users
            .iter()
            .find(|u| u.name == user)
            .map(|u| u.token.as_str())
    }

    /// Adds a pod to an existing namespace (as a controller would create one): lists show it
    /// and watches get its `ADDED` event. `Err` names why not (no such namespace, exists).
    pub fn create_pod(&self, namespace: &str, pod: topology::PodSpec) -> Result<(), String> {
        self.state.store.create_pod(namespace, pod).map(|_| ())
    }

    /// Removes a pod (watches get its `DELETED` event); whether there was one.
    pub fn delete_pod(&self, namespace: &str, name: &str) -> bool {
        self.state.store.delete_pod(namespace, name)
    }

    /// Sessions currently open (exec and attach).
    pub fn active_sessions(&self) -> usize {
        self.state.active_sessions.load(Ordering::Relaxed)
    }

    /// Sessions opened since start.
    pub fn total_sessions(&self) -> u64 {
        self.state.total_sessions.load(Ordering::Relaxed)
    }

    /// One context and user per configured token user; the admin (first user in
    /// `system:masters`, else the first user) is the current context.
    pub fn kubeconfig(&self) -> Kubeconfig {
        let users = &self.state.topology.users;
        let current = users
            .iter()
            .find(|u| u.groups.iter().any(|g| g == "system:masters"))
            .or(users.first())
            .map(|u| u.name.clone())
            .unwrap_or_default();
        Kubeconfig {
            clusters: vec![KubeCluster {
                name: self.name.clone(),
                server: self.url(),
                ca_pem: self.ca_pem.clone(),
            }],
            users: users
                .iter()
                .map(|u| KubeUser {
                    name: u.name.clone(),
                    token: u.token.clone(),
                })
                .collect(),
            contexts: users
                .iter()
                .map(|u| KubeContext {
                    name: u.name.clone(),
                    cluster: self.name.clone(),
                    user: u.name.clone(),
                    namespace: Some("default".into()),
                })
                .collect(),
            current_context: current,
        }
    }

    /// Stops accepting, ends every connection and session (killing their processes), and
    /// waits until all of them are gone.
    pub async fn shutdown(mut self) {
        self.stop();
        self.state.tasks.close();
        self.state.tasks.wait().await;
        self.remove_temp_dir();
    }

    fn stop(&self) {
        self.state.shutdown.cancel();
    }

    fn remove_temp_dir(&mut self) {
        if let Some(d) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        self.stop();
        self.remove_temp_dir();
    }
}

/// Installs ring as rustls's process-wide provider (idempotent): kube-rs and anything else
/// that builds a default config then agree with us.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
