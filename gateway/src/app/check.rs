//! `podgate check-config`: everything `serve` would read, read and checked, nothing started.

use std::path::Path;

/// Validates a config file and everything it names; returns a one-line summary.
pub async fn check(path: &Path) -> anyhow::Result<String> {
    let loaded = super::config::load(path)?;
    let config = &loaded.config;
    crate::edge::tls::ReloadingCert::load(&config.tls.cert_file, &config.tls.key_file)?;
    let tokens = match &config.auth.tokens_file {
        Some(f) => podgate_auth::load_tokens(f)?.len(),
        None => 0,
    };
    // Also reads the browser login's client secret file, so a missing one shows here.
    let issuers =
        super::authn::oidc(path, loaded.oidc.as_ref())?.map_or(0, |(o, _)| o.issuers().len());
    // Build each cluster as `serve` would (kubeconfig, context, client); the in-cluster
    // service account exists only inside a pod, so those are left to `serve`.
    for c in config.clusters.iter().filter(|c| !c.in_cluster) {
        crate::upstream::Cluster::from_config(c, &config.upstream).await?;
    }
    let mut summary = format!(
        "{}: ok ({} clusters, {} static tokens, {} OIDC issuers, listening on {})",
        path.display(),
        config.clusters.len(),
        tokens,
        issuers,
        config.listen
    );
    for ignored in config.ignored_settings() {
        summary.push_str(&format!("\nwarning: {}: {ignored}", path.display()));
    }
    Ok(summary)
}
