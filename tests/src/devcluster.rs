//! A devcluster alone, with its kubeconfig written (one context per user of its topology),
//! for the devcluster's own tests.

use crate::kubectl::Kubectl;
use crate::tls::Endpoint;
use podgate_devcluster::{DevCluster, Options, Topology};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The devcluster's own users' tokens (its built-in topology).
pub const ADMIN: &str = "devcluster-admin-token";
pub const ALICE: &str = "devcluster-alice-token";
/// The gateway's identity on the cluster: may impersonate users and groups, nothing else.
pub const PODGATE: &str = "devcluster-podgate-token";

pub struct Env {
    pub cluster: DevCluster,
    /// Its state, its kubeconfig, kubectl's cache and HOME.
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Endpoint for Env {
    fn addr(&self) -> SocketAddr {
        self.cluster.addr()
    }

    fn ca_pem(&self) -> &str {
        self.cluster.ca_pem()
    }
}

/// The built-in topology (its people, rules and pods) with the pods of `yaml`, a topology's
/// `namespaces` text, added to namespace `default`: a test's own containers beside the rest.
pub fn builtin_with_pods(yaml: &str) -> Topology {
    let extra = Topology::parse("the test's pods", yaml).expect("the test's topology parses");
    let mut t = Topology::builtin();
    t.namespaces
        .iter_mut()
        .find(|n| n.name == "default")
        .expect("the built-in topology has a default namespace")
        .pods
        .extend(extra.namespaces.into_iter().flat_map(|n| n.pods));
    t
}

/// A devcluster with the built-in topology.
pub async fn start() -> Env {
    start_with(Topology::builtin()).await
}

/// A devcluster with `topology` (the built-in one changed, say).
pub async fn start_with(topology: Topology) -> Env {
    podgate_devcluster::install_crypto_provider();
    let dir = tempfile::tempdir().expect("a temp dir");
    let cluster = DevCluster::start(Options {
        topology,
        state_dir: Some(dir.path().join("state")),
        ..Options::default()
    })
    .await
    .expect("the devcluster starts");
    let kubeconfig = dir.path().join("kubeconfig");
    cluster
        .kubeconfig()
        .write(&kubeconfig)
        .expect("the kubeconfig is written");
    Env {
        cluster,
        dir,
        kubeconfig,
    }
}

impl Env {
    /// kubectl `bin` with the cluster's kubeconfig (its current context is the admin's).
    pub fn kubectl(&self, bin: &Path) -> Kubectl {
        Kubectl::new(bin, &self.kubeconfig, self.dir.path())
    }

    /// Waits until no session is open on the cluster (their processes gone); whether that
    /// happened within `limit`.
    pub async fn sessions_end(&self, limit: Duration) -> bool {
        crate::wait::wait_for(limit, || self.cluster.active_sessions() == 0).await
    }

    /// A kube-rs client in `context` (a user's name).
    pub async fn kube_client(&self, context: &str) -> kube::Client {
        crate::kubeconfig::client(&self.kubeconfig, Some(context)).await
    }
}
