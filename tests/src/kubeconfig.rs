//! Kubeconfigs for a gateway (one context per cluster id, all with one token), and kube-rs
//! clients from a kubeconfig file.

use podgate_devcluster::kubeconfig::{KubeCluster, KubeContext, KubeUser, Kubeconfig};
use std::path::{Path, PathBuf};

/// A kubeconfig for the gateway at `url` (whose certificate `ca_pem` signed): for each of
/// `clusters` a context of that name whose server is `{url}/clusters/{id}`, namespace
/// `default`, all as the one user with `token`; the first is the current context.
pub fn for_gateway(url: &str, ca_pem: &str, clusters: &[&str], token: &str) -> Kubeconfig {
    let user = "podgate-user";
    Kubeconfig {
        clusters: clusters
            .iter()
            .map(|id| KubeCluster {
                name: id.to_string(),
                server: format!("{url}/clusters/{id}"),
                ca_pem: ca_pem.to_string(),
            })
            .collect(),
        users: vec![KubeUser {
            name: user.into(),
            token: token.into(),
        }],
        contexts: clusters
            .iter()
            .map(|id| KubeContext {
                name: id.to_string(),
                cluster: id.to_string(),
                user: user.into(),
                namespace: Some("default".into()),
            })
            .collect(),
        current_context: clusters.first().map(|c| c.to_string()).unwrap_or_default(),
    }
}

/// Writes `kubeconfig` as `dir/<name>.kubeconfig` unless it is there already (kubectl may be
/// reading it), where the name is made from `token` (short and printable, whatever the token:
/// a JWT is too long for a file name).
pub fn write_for(kubeconfig: &Kubeconfig, dir: &Path, token: &str) -> PathBuf {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    token.hash(&mut hasher);
    let readable: String = token
        .chars()
        .take(24)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = format!("{readable}-{:016x}.kubeconfig", hasher.finish());
    let path = dir.join(&name);
    if !path.exists() {
        // Written aside, then renamed: a reader never sees half a file.
        let aside = dir.join(format!(".{name}.tmp"));
        kubeconfig
            .write(&aside)
            .and_then(|()| std::fs::rename(&aside, &path))
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
    path
}

/// A kube-rs client for the kubeconfig at `path`, in `context` (its current context when
/// `None`).
pub async fn client(path: &Path, context: Option<&str>) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &options)
        .await
        .expect("a kube config");
    kube::Client::try_from(config).expect("a kube client")
}
