//! Where a registered cluster's memory goes, counted by dhat's allocator in this process:
//! live heap bytes per cluster for the registry as it is, and for the parts each cluster used
//! to build for itself (a `kube::Client` and a TLS configuration of its own), from the same
//! kubeconfigs. Also the cost of a lookup against the number of clusters.

use podgate::upstream::{ClusterSpec, Registry};
use podgate_config::ClusterConfig;
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Default, Serialize)]
pub struct Breakdown {
    pub clusters: usize,
    /// `Registry::apply` of the configs: clusters with shared TLS, their pools, health.
    pub registry_per_cluster: f64,
    /// After one probe of each (health state, TLS resumption tickets).
    pub probed_per_cluster: f64,
    /// The metrics' per-cluster series (`Metrics::new` with the ids).
    pub metrics_per_cluster: f64,
    /// What the registry built per cluster before: a `kube::Client` (its own TLS
    /// configuration, pool and buffer task)...
    pub old_kube_client_per_cluster: f64,
    /// ... and the streaming client's own TLS configuration (root store parsed again).
    pub old_tls_config_per_cluster: f64,
    /// Distinct shared TLS configurations (one per CA and identity).
    pub shared_tls_configs: usize,
}

fn live() -> f64 {
    dhat::HeapStats::get().curr_bytes as f64
}

fn configs(kubeconfigs: &[PathBuf], n: usize) -> Vec<ClusterConfig> {
    (0..n)
        .map(|i| ClusterConfig {
            id: super::serve::id(i),
            kubeconfig: Some(kubeconfigs[i % kubeconfigs.len()].clone()),
            context: Some("podgate".into()),
            in_cluster: false,
            agent: None,
            impersonate: true,
            access: Default::default(),
            display_name: None,
            environment: None,
            labels: Default::default(),
            recording: None,
            record_input: None,
        })
        .collect()
}

/// Needs dhat's profiler running (`main` starts it for `--heap`).
pub async fn breakdown(kubeconfigs: &[PathBuf], n: usize) -> anyhow::Result<Breakdown> {
    let upstream = podgate_config::UpstreamConfig::default();
    let cfgs = configs(kubeconfigs, n);
    let per = |before: f64, after: f64| (after - before) / n as f64;

    let b0 = live();
    let registry = Registry::new();
    let s = registry.apply(cfgs.clone(), &upstream).await;
    anyhow::ensure!(s.failed.is_empty(), "{:?}", s.failed);
    let b1 = live();
    for c in registry.snapshot().sorted() {
        let h = c.check_health(Duration::from_secs(10)).await;
        anyhow::ensure!(h.up, "{}: {:?}", c.id, h.error);
    }
    let b2 = live();
    let shared = podgate::upstream::tls::shared_configs();

    let ids: Vec<String> = cfgs.iter().map(|c| c.id.clone()).collect();
    let m0 = live();
    let metrics = podgate_metrics::Metrics::new(&ids, Default::default());
    let m1 = live();
    drop(metrics);

    // The old parts, from the same kube configs.
    let mut kube_configs = Vec::new();
    for c in &cfgs {
        let path = c.kubeconfig.as_deref().unwrap_or(std::path::Path::new(""));
        let kc = kube::config::Kubeconfig::read_from(path)?;
        let options = kube::config::KubeConfigOptions {
            context: c.context.clone(),
            ..Default::default()
        };
        kube_configs.push(kube::Config::from_custom_kubeconfig(kc, &options).await?);
    }
    // The TLS configurations first: dropping kube clients frees their buffer tasks' memory
    // later, on the runtime, which would be counted against whatever is measured next.
    let t0 = live();
    let mut tls = Vec::new();
    for c in &kube_configs {
        use kube::client::ConfigExt as _;
        tls.push(std::sync::Arc::new(c.rustls_client_config()?));
    }
    let t1 = live();
    drop(tls);
    let k0 = live();
    let mut clients = Vec::new();
    for c in &kube_configs {
        clients.push(kube::Client::try_from(c.clone())?);
    }
    let k1 = live();
    drop(clients);
    Ok(Breakdown {
        clusters: n,
        registry_per_cluster: per(b0, b1),
        probed_per_cluster: per(b0, b2),
        metrics_per_cluster: per(m0, m1),
        old_kube_client_per_cluster: per(k0, k1),
        old_tls_config_per_cluster: per(t0, t1),
        shared_tls_configs: shared,
    })
}

#[derive(Debug, Serialize)]
pub struct Lookup {
    pub clusters: usize,
    /// Any of the registry's ids, at random: the table outgrows the caches as it grows.
    pub ns_per_lookup: f64,
    /// The same 16 ids over and over: the lookup itself, with the caches warm.
    pub ns_per_lookup_warm: f64,
}

/// `Registry::get` of random ids, for registries of each size.
pub async fn lookups(kubeconfigs: &[PathBuf], sizes: &[usize]) -> anyhow::Result<Vec<Lookup>> {
    let upstream = podgate_config::UpstreamConfig::default();
    let mut out = Vec::new();
    for &n in sizes {
        let registry = Registry::new();
        let specs: Vec<ClusterSpec> = configs(kubeconfigs, n)
            .into_iter()
            .map(Into::into)
            .collect();
        registry.apply(specs, &upstream).await;
        let ids: Vec<String> = (0..n).map(super::serve::id).collect();
        let rounds = 2_000_000usize;
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut found = 0usize;
        let t = Instant::now();
        for _ in 0..rounds {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = &ids[(x % n as u64) as usize];
            found += usize::from(registry.get(id).is_some());
        }
        let ns = t.elapsed().as_nanos() as f64 / rounds as f64;
        let hot: Vec<&String> = ids.iter().step_by((n / 16).max(1)).take(16).collect();
        let t = Instant::now();
        for i in 0..rounds {
            found += usize::from(registry.get(hot[i % hot.len()]).is_some());
        }
        let warm = t.elapsed().as_nanos() as f64 / rounds as f64;
        anyhow::ensure!(found == 2 * rounds, "lookups missed");
        out.push(Lookup {
            clusters: n,
            ns_per_lookup: ns,
            ns_per_lookup_warm: warm,
        });
    }
    Ok(out)
}
