//! The TLS client configuration of each cluster's connections, shared between clusters that
//! trust the same CA with the same client identity.
//!
//! A fleet registers many clusters from a few kubeconfigs (one per CA, often one per
//! provider): building a `rustls::ClientConfig` per cluster would parse the same root store
//! and client key again for each, and keep a copy each. Here the parts that cost memory (the
//! verifier with its root store, the client certificate resolver with its key, the crypto
//! provider) are built once per distinct [`TlsKey`] and shared by `Arc`; each cluster gets its
//! own small `ClientConfig` around them with a resumption store for its apiserver, so TLS
//! session resumption keeps working per cluster instead of thousands of clusters thrashing one
//! shared 256-entry cache.
//!
//! Cluster ids that name the same apiserver address (and server name) with the same key are
//! one TLS peer, and share one resumption store: a ticket that apiserver issued to one of
//! them resumes for the others (what the server verified and what the client presented are
//! the same), so only the first connection to each apiserver is a full handshake, and the
//! tickets are kept once per apiserver rather than once per id. Clusters of different
//! apiservers never share a store.
//!
//! The caches hold weak references: a shared configuration or store lives as long as a
//! cluster uses it.

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

/// A shared configuration: the template clusters copy, kept alive by those that use it, and
/// the resumption stores of the apiservers its clusters name.
pub(crate) struct SharedTls {
    template: ClientConfig,
    stores: Mutex<HashMap<String, Weak<ClientSessionMemoryCache>>>,
}

/// A resumption store shared by the clusters that name one apiserver. Held by each of them
/// (the `ClientConfig` holds it as a trait object, which cannot be downgraded).
pub(crate) type Store = Arc<ClientSessionMemoryCache>;

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
    pub store: Store,
}

/// The TLS configuration for a cluster built from `config`.
pub(crate) fn for_cluster(config: &kube::Config) -> Result<ClusterTls, kube::Error> {
    use kube::client::ConfigExt as _;
    let new_store = || Arc::new(ClientSessionMemoryCache::new(SERVER_NAMES_PER_CLUSTER));
    let (mut tls, keep, store) = match TlsKey::of(config) {
        None => (config.rustls_client_config()?, None, new_store()),
        Some(key) => {
            let shared = shared(key, || config.rustls_client_config())?;
            let store = shared.store_for(&peer(config), new_store);
            (shared.template.clone(), Some(shared), store)
        }
    };
    tls.resumption = Resumption::store(store.clone());
    Ok(ClusterTls {
        config: tls,
        keep,
        store,
    })
}

/// What identifies the TLS peer of `config` besides its key: the apiserver's address and the
/// server name it is verified as.
fn peer(config: &kube::Config) -> String {
    let url = &config.cluster_url;
    format!(
        "{}://{}|{}",
        url.scheme_str().unwrap_or(""),
        url.authority().map_or("", |a| a.as_str()),
        config.tls_server_name.as_deref().unwrap_or("")
    )
}

impl SharedTls {
    /// The resumption store of the apiserver `peer`, made with `new` when no cluster holds one.
    fn store_for(&self, peer: &str, new: impl FnOnce() -> Store) -> Store {
        let mut stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(live) = stores.get(peer).and_then(Weak::upgrade) {
            return live;
        }
        let store = new();
        // Sweeping the dead only as the map doubles keeps building 10,000 clusters of
        // distinct apiservers linear.
        if stores.len().is_power_of_two() {
            stores.retain(|_, w| w.strong_count() > 0);
        }
        stores.insert(peer.to_string(), Arc::downgrade(&store));
        store
    }
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
    let shared = Arc::new(SharedTls {
        template: build()?,
        stores: Mutex::new(HashMap::new()),
    });
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
