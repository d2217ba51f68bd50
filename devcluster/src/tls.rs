//! Server TLS: a CA generated at start (so every run has a fresh, trusted-by-kubeconfig
//! chain), or PEM files given in the topology.

use crate::topology::TlsFiles;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("generating the devcluster certificate authority: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {problem}")]
    File { path: String, problem: String },
    #[error("building the TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

pub struct TlsMaterial {
    pub server: Arc<rustls::ServerConfig>,
    /// PEM of the CA that clients must trust (goes into kubeconfigs).
    pub ca_pem: String,
}

/// PEM material for a fresh CA and a server certificate it signed.
pub struct GeneratedPem {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A fresh CA and a server certificate for `hosts` (names or IP addresses), as PEM: the
/// devcluster serves it, and the gateway's demo uses the same to present its own listener.
pub fn generate_pem(hosts: &[String]) -> Result<GeneratedPem, TlsError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "devcluster CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(hosts.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "devcluster");
    let cert = params.signed_by(&key, &ca)?;
    Ok(GeneratedPem {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A fresh CA and a server configuration presenting a certificate it signed for `hosts`.
pub fn generate(hosts: &[String]) -> Result<TlsMaterial, TlsError> {
    let pem = generate_pem(hosts)?;
    let bad = |what: &str| TlsError::File {
        path: "<generated>".into(),
        problem: what.into(),
    };
    let chain = vec![
        CertificateDer::from_pem_slice(pem.cert_pem.as_bytes()).map_err(|_| bad("certificate"))?,
    ];
    let key = PrivateKeyDer::from_pem_slice(pem.key_pem.as_bytes()).map_err(|_| bad("key"))?;
    Ok(TlsMaterial {
        server: server_config(chain, key)?,
        ca_pem: pem.ca_pem,
    })
}

/// Loads the certificate chain and key named in the topology.
pub fn load(files: &TlsFiles) -> Result<TlsMaterial, TlsError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| TlsError::File {
            path: p.display().to_string(),
            problem: format!("cannot read: {e}"),
        })
    };
    let bad = |p: &std::path::Path, what: &str| TlsError::File {
        path: p.display().to_string(),
        problem: what.to_string(),
    };
    let cert_pem = read(&files.cert_file)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| bad(&files.cert_file, "not a PEM certificate chain"))?;
    if chain.is_empty() {
        return Err(bad(&files.cert_file, "no CERTIFICATE block found"));
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&files.key_file)?)
        .map_err(|_| bad(&files.key_file, "no PEM private key found"))?;
    let ca_pem = match &files.ca_file {
        Some(p) => String::from_utf8(read(p)?).map_err(|_| bad(p, "not UTF-8 PEM"))?,
        None => String::from_utf8(cert_pem).map_err(|_| bad(&files.cert_file, "not UTF-8 PEM"))?,
    };
    Ok(TlsMaterial {
        server: server_config(chain, key)?,
        ca_pem,
    })
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    // kubectl speaks h2 for API calls and dials HTTP/1.1 for WebSocket upgrades.
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Stateless session tickets, as kube-apiserver (Go's crypto/tls) issues them by default: a
    // client resumes whatever the number of clients, where rustls's default 256-entry session
    // cache would forget most of a large fleet's sessions.
    cfg.ticketer = rustls::crypto::ring::Ticketer::new()?;
    Ok(Arc::new(cfg))
}
