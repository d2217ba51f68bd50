//! The TLS client configuration of each cluster's connections, shared between clusters that
//! trust the same CA with the same client identity.
//!
//! A fleet registers many clusters from a few kubeconfigs (one per CA, often one per
//! provider): building a `rustls::ClientConfig` per cluster would parse the same root store
//! and client key again for each, and keep a copy each. Here the parts that cost memory (the
//! verifier with its root store, the client certificate resolver with its key, the crypto
//! provider) are built once per distinct [`TlsKey`] and shared by `Arc`; each cluster gets its
//! own small `ClientConfig` around them with its own resumption store, so TLS session
//! resumption keeps working per cluster instead of thousands of clusters thrashing one shared
//! 256-entry cache.
//!
//! The cache holds weak references: a shared configuration lives as long as a cluster uses it.

use rustls::ClientConfig;
use rustls::client::{ClientSessionMemoryCache, Resumption};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Server names one cluster's resumption store remembers: its apiserver's, and one more for
/// a `tls-server-name` override seen next to it.
const SERVER_NAMES_PER_CLUSTER: usize = 2;

/// What makes two clusters' TLS configurations interchangeable: the roots they trust, the
/// identity they present, whether verification is off. Exact bytes, not a digest: a
/// collision must never hand one cluster another's client identity.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct TlsKey {
    roots: Vec<Vec<u8>>,
    identity: Vec<u8>,
    accept_invalid: bool,
}

impl std::fmt::Debug for TlsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The identity holds a private key: never printed.
        f.debug_struct("TlsKey")
            .field("roots", &self.roots.len())
            .field("has_identity", &!self.identity.is_empty())
            .field("accept_invalid", &self.accept_invalid)
            .finish()
    }
}

impl TlsKey {
    /// The key of `config`, or `None` when its TLS cannot be shared: a CA file that is
    /// re-read while running (in-cluster), or an identity that an exec plugin produces.
    pub(crate) fn of(config: &kube::Config) -> Option<TlsKey> {
        use secrecy::ExposeSecret as _;
        if config.root_cert_file.is_some() || config.auth_info.exec.is_some() {
            return None;
        }
        let auth = &config.auth_info;
        let mut identity = Vec::new();
        for (data, file) in [
            (
                auth.client_certificate_data
                    .as_ref()
                    .map(|s| s.as_bytes().to_vec()),
                auth.client_certificate.as_deref(),
            ),
            (
                auth.client_key_data
                    .as_ref()
                    .map(|s| s.expose_secret().as_bytes().to_vec()),
                auth.client_key.as_deref(),
            ),
        ] {
            let bytes = match (data, file) {
                (Some(d), _) => d,
                // A file that cannot be read is kube's to report when it builds the config.
                (None, Some(f)) => std::fs::read(f).ok()?,
                (None, None) => Vec::new(),
            };
            identity.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            identity.extend_from_slice(&bytes);
        }
        Some(TlsKey {
            roots: config.root_cert.clone().unwrap_or_default(),
            identity,
            accept_invalid: config.accept_invalid_certs,
        })
    }
}

/// A shared configuration: the template clusters copy, kept alive by those that use it.
pub(crate) struct SharedTls {
    template: ClientConfig,
}

/// Shared configurations by key, across every registry of the process (a demo's prebuilt
/// clusters share as `serve`'s do).
static CACHE: Mutex<Option<HashMap<TlsKey, Weak<SharedTls>>>> = Mutex::new(None);

/// How many distinct shared configurations are alive (for tests and the fleet benchmark).
pub fn shared_configs() -> usize {
    let cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    cache
        .as_ref()
        .map_or(0, |m| m.values().filter(|w| w.strong_count() > 0).count())
}

/// One cluster's TLS: its own `ClientConfig` (own resumption store) around parts shared
/// with every cluster of the same key. Hold `keep` as long as the config is used.
pub(crate) struct ClusterTls {
    pub config: ClientConfig,
    pub keep: Option<Arc<SharedTls>>,
}

/// The TLS configuration for a cluster built from `config`.
pub(crate) fn for_cluster(config: &kube::Config) -> Result<ClusterTls, kube::Error> {
    use kube::client::ConfigExt as _;
    let (mut config, keep) = match TlsKey::of(config) {
        None => (config.rustls_client_config()?, None),
        Some(key) => {
            let shared = shared(key, || config.rustls_client_config())?;
            (shared.template.clone(), Some(shared))
        }
    };
    config.resumption = Resumption::store(Arc::new(ClientSessionMemoryCache::new(
        SERVER_NAMES_PER_CLUSTER,
    )));
    Ok(ClusterTls { config, keep })
}

/// The shared configuration of `key`, built with `build` when no live one exists.
fn shared(
    key: TlsKey,
    build: impl FnOnce() -> Result<ClientConfig, kube::Error>,
) -> Result<Arc<SharedTls>, kube::Error> {
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    let map = cache.get_or_insert_with(HashMap::new);
    if let Some(live) = map.get(&key).and_then(Weak::upgrade) {
        return Ok(live);
    }
    // Built under the lock: two clusters of one key arriving together build it once. It is
    // parsing a few certificates, done once per key.
    let shared = Arc::new(SharedTls { template: build()? });
    map.retain(|_, w| w.strong_count() > 0);
    map.insert(key, Arc::downgrade(&shared));
    Ok(shared)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kube_config(ca: &str, token: &str) -> kube::Config {
        let mut c = kube::Config::new("https://127.0.0.1:1".parse().expect("url"));
        c.root_cert = Some(vec![ca.as_bytes().to_vec()]);
        c.auth_info.token = Some(token.to_string().into());
        c
    }

    #[test]
    fn keys_tell_cas_and_identities_apart_and_ignore_tokens() {
        let a = TlsKey::of(&kube_config("ca-1", "t1")).expect("shareable");
        // Bearer tokens travel in headers, not in TLS: same key.
        assert_eq!(
            a,
            TlsKey::of(&kube_config("ca-1", "t2")).expect("shareable")
        );
        assert_ne!(
            a,
            TlsKey::of(&kube_config("ca-2", "t1")).expect("shareable")
        );
        let mut with_cert = kube_config("ca-1", "t1");
        with_cert.auth_info.client_certificate_data = Some("cert".into());
        with_cert.auth_info.client_key_data = Some("key".to_string().into());
        let b = TlsKey::of(&with_cert).expect("shareable");
        assert_ne!(a, b);
        // Field boundaries count: cert "ab" + key "c" is not cert "a" + key "bc".
        let mut x = kube_config("ca-1", "t");
        x.auth_info.client_certificate_data = Some("ab".into());
        x.auth_info.client_key_data = Some("c".to_string().into());
        let mut y = kube_config("ca-1", "t");
        y.auth_info.client_certificate_data = Some("a".into());
        y.auth_info.client_key_data = Some("bc".to_string().into());
        assert_ne!(TlsKey::of(&x), TlsKey::of(&y));
        assert!(!format!("{b:?}").contains("key"), "{b:?}");
        let mut insecure = kube_config("ca-1", "t1");
        insecure.accept_invalid_certs = true;
        assert_ne!(a, TlsKey::of(&insecure).expect("shareable"));
        let mut reloading = kube_config("ca-1", "t1");
        reloading.root_cert_file = Some("/var/run/ca.crt".into());
        assert_eq!(TlsKey::of(&reloading), None);
    }

    #[test]
    fn one_shared_config_per_key_while_used() {
        podgate_devcluster::install_crypto_provider();
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("ca");
        let der = ca.cert.der().to_vec();
        let mut c = kube::Config::new("https://127.0.0.1:1".parse().expect("url"));
        c.root_cert = Some(vec![der]);
        let key = TlsKey::of(&c).expect("shareable");
        let a = for_cluster(&c).expect("tls");
        let b = for_cluster(&c).expect("tls");
        let (ka, kb) = (
            a.keep.as_ref().expect("shared"),
            b.keep.as_ref().expect("shared"),
        );
        assert!(Arc::ptr_eq(ka, kb), "built once for both");
        drop((a, b));
        let cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        let alive = cache
            .as_ref()
            .and_then(|m| m.get(&key))
            .is_some_and(|w| w.strong_count() > 0);
        assert!(!alive, "freed with its last cluster");
    }
}
