//! Writing kubeconfig files that kubectl, kube-rs and the Python client use without flags.

use base64::Engine as _;
use serde_json::json;

pub struct KubeCluster {
    pub name: String,
    pub server: String,
    pub ca_pem: String,
}

pub struct KubeUser {
    pub name: String,
    pub token: String,
}

pub struct KubeContext {
    pub name: String,
    pub cluster: String,
    pub user: String,
    pub namespace: Option<String>,
}

pub struct Kubeconfig {
    pub clusters: Vec<KubeCluster>,
    pub users: Vec<KubeUser>,
    pub contexts: Vec<KubeContext>,
    pub current_context: String,
}

impl Kubeconfig {
    pub fn to_yaml(&self) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let doc = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": self.clusters.iter().map(|c| json!({
                "name": c.name,
                "cluster": {"server": c.server, "certificate-authority-data": b64(&c.ca_pem)},
            })).collect::<Vec<_>>(),
            "users": self.users.iter().map(|u| json!({
                "name": u.name, "user": {"token": u.token},
            })).collect::<Vec<_>>(),
            "contexts": self.contexts.iter().map(|c| {
                let mut ctx = json!({"cluster": c.cluster, "user": c.user});
                if let Some(ns) = &c.namespace { ctx["namespace"] = json!(ns); }
                json!({"name": c.name, "context": ctx})
            }).collect::<Vec<_>>(),
            "current-context": self.current_context,
        });
        // A JSON value of strings, lists and maps always serialises.
        serde_norway::to_string(&doc).unwrap_or_default()
    }

    /// Writes the file readable by its owner only: it holds tokens.
    pub fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(self.to_yaml().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_loadable_document() {
        let k = Kubeconfig {
            clusters: vec![KubeCluster {
                name: "c".into(),
                server: "https://127.0.0.1:1".into(),
                ca_pem: "PEM".into(),
            }],
            users: vec![KubeUser {
                name: "admin".into(),
                token: "t".into(),
            }],
            contexts: vec![KubeContext {
                name: "admin".into(),
                cluster: "c".into(),
                user: "admin".into(),
                namespace: None,
            }],
            current_context: "admin".into(),
        };
        let v: serde_json::Value = serde_norway::from_str(&k.to_yaml()).unwrap();
        assert_eq!(v["current-context"], "admin");
        assert_eq!(
            v["clusters"][0]["cluster"]["certificate-authority-data"],
            "UEVN"
        );
        assert_eq!(v["users"][0]["user"]["token"], "t");
    }
}
