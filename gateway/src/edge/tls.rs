//! Server TLS for the public listener, with certificate rotation without a restart.
//!
//! Certificates on the public listener are short-lived in most deployments (cert-manager,
//! ACME), so the gateway must pick up a renewed pair while it keeps serving: restarting
//! would cut every open shell. [`ReloadingCert`] is a rustls certificate resolver whose pair
//! can be swapped at any time; each new handshake reads the current one, established
//! connections keep the certificate they were made with. [`spawn_watcher`] polls the files
//! and swaps when they change.
//!
//! A bad new pair (half-written, key not matching, wrong file) never replaces a good one:
//! the old certificate stays in use and the problem is reported, naming the file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

/// Why a certificate/key pair was refused. Every variant names the file (or, for in-memory
/// material, what it was) so an operator can act on the log line alone.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: no CERTIFICATE block")]
    NoCertificate { file: String },
    #[error("{file}: malformed PEM: {problem}")]
    Pem { file: String, problem: String },
    #[error(
        "{file}: no private key (expected a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block)"
    )]
    NoPrivateKey { file: String },
    #[error("{file}: unsupported private key: {source}")]
    UnsupportedKey { file: String, source: rustls::Error },
    #[error("{file}: invalid certificate: {source}")]
    BadCertificate { file: String, source: rustls::Error },
    #[error("{key_file}: key does not match certificate {cert_file}")]
    KeyMismatch { cert_file: String, key_file: String },
}

/// What identifies one version of a file without reading it. The inode is part of it because
/// Kubernetes secret volumes and most rotation tools replace files by renaming a new one into
/// place, which may keep the length and, within the clock's granularity, the mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    ino: u64,
}

impl Stamp {
    fn of(path: &Path) -> Result<Stamp, TlsError> {
        use std::os::unix::fs::MetadataExt as _;
        // `metadata` follows symlinks: a secret volume's `tls.crt -> ..data/tls.crt` is judged
        // by the file it currently points to.
        let meta = std::fs::metadata(path).map_err(|source| TlsError::Io {
            file: path.display().to_string(),
            source,
        })?;
        Ok(Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            ino: meta.ino(),
        })
    }
}

/// The files behind a resolver and the versions last loaded (or last refused, so a bad pair
/// is reported once per change rather than on every poll).
#[derive(Debug)]
struct Files {
    cert_file: PathBuf,
    key_file: PathBuf,
    /// Held for the whole of a reload, which also serialises concurrent reloads.
    seen: Mutex<(Stamp, Stamp)>,
}

/// A server certificate that can be replaced while the listener runs.
pub struct ReloadingCert {
    current: RwLock<Arc<CertifiedKey>>,
    /// `None` for in-memory material, which has nothing to reload.
    files: Option<Files>,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ReloadingCert");
        match &self.files {
            Some(files) => d
                .field("cert_file", &files.cert_file)
                .field("key_file", &files.key_file),
            None => d.field("source", &"in memory"),
        }
        .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Loads the pair once; it is then reloaded by [`ReloadingCert::reload`].
    pub fn load(
        cert_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
    ) -> Result<Self, TlsError> {
        let cert_file = cert_file.into();
        let key_file = key_file.into();
        // Stamps first, contents second: a write in between is then seen as a change on the
        // next poll instead of being missed.
        let stamps = (Stamp::of(&cert_file)?, Stamp::of(&key_file)?);
        let key = read_pair(&cert_file, &key_file)?;
        Ok(ReloadingCert {
            current: RwLock::new(Arc::new(key)),
            files: Some(Files {
                cert_file,
                key_file,
                seen: Mutex::new(stamps),
            }),
        })
    }

    /// A fixed pair from PEM text, for generated certificates (demo mode). `reload` is a no-op.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        let key = parse_pair(
            cert_pem,
            "in-memory certificate",
            key_pem,
            "in-memory private key",
        )?;
        Ok(ReloadingCert {
            current: RwLock::new(Arc::new(key)),
            files: None,
        })
    }

    /// Re-reads the files if either changed since the last attempt, and swaps in the new pair
    /// when it is valid. Returns whether it swapped. On error the previous certificate stays
    /// in use; a refused version is not retried until the files change again.
    ///
    /// Does blocking file IO: call it from a blocking context.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let Some(files) = &self.files else {
            return Ok(false);
        };
        let mut seen = files.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let now = (Stamp::of(&files.cert_file)?, Stamp::of(&files.key_file)?);
        if now == *seen {
            return Ok(false);
        }
        *seen = now;
        let key = read_pair(&files.cert_file, &files.key_file)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        Ok(true)
    }

    /// The pair new handshakes get now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// When the certificate new handshakes get expires (`notAfter`, Unix seconds).
    pub fn not_after(&self) -> Option<u64> {
        self.current()
            .cert
            .first()
            .and_then(|leaf| crate::x509::not_after(leaf.as_ref()))
    }

    /// The watched files, `None` for in-memory material.
    pub fn files(&self) -> Option<(&Path, &Path)> {
        self.files
            .as_ref()
            .map(|f| (f.cert_file.as_path(), f.key_file.as_path()))
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn read_pair(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Io {
            file: path.display().to_string(),
            source,
        })
    };
    let cert_pem = read(cert_file)?;
    let key_pem = read(key_file)?;
    parse_pair(
        &cert_pem,
        &cert_file.display().to_string(),
        &key_pem,
        &key_file.display().to_string(),
    )
}

/// Parses a chain (leaf first) and its key, and checks that they belong together: serving a
/// key that does not match would fail every handshake, which is worse than keeping the old pair.
fn parse_pair(
    cert_pem: &[u8],
    cert_file: &str,
    key_pem: &[u8],
    key_file: &str,
) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            file: cert_file.to_string(),
            problem: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            file: cert_file.to_string(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            file: key_file.to_string(),
        },
        e => TlsError::Pem {
            file: key_file.to_string(),
            problem: e.to_string(),
        },
    })?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|source| {
        TlsError::UnsupportedKey {
            file: key_file.to_string(),
            source,
        }
    })?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        // ring's keys always know their public half; `Unknown` cannot happen with them, and
        // would mean "cannot tell", not "mismatch".
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
            cert_file: cert_file.to_string(),
            key_file: key_file.to_string(),
        }),
        Err(source) => Err(TlsError::BadCertificate {
            file: cert_file.to_string(),
            source,
        }),
    }
}

/// The AES-128-GCM suites: on every x86 and ARM server CPU of the last decade their bulk
/// encryption (AES-NI/VAES) and their hash (SHA-256, on the SHA extensions) run in hardware.
/// ring's default order puts AES-256-GCM-SHA384 first, whose SHA-384 key schedule and
/// transcript hash run in software: 6–8 % of the gateway's CPU per session setup (profile in
/// BENCHMARKS.md). Go clients and servers (kubectl, kube-apiserver) pick AES-128-GCM on such
/// hardware too; its 128-bit keys are what TLS 1.3 requires every implementation to offer.
fn preferred(suite: &rustls::SupportedCipherSuite) -> bool {
    use rustls::CipherSuite as S;
    matches!(
        suite.suite(),
        S::TLS13_AES_128_GCM_SHA256
            | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    )
}

/// ring with the AES-128-GCM suites first and everything else in ring's order: the
/// listener's provider, and (installed as the process default by `main`) the upstream
/// clients', so both legs of a session use it.
pub fn provider() -> rustls::crypto::CryptoProvider {
    let mut p = rustls::crypto::ring::default_provider();
    // Stable: the preferred suites keep their order among themselves, as do the others.
    p.cipher_suites.sort_by_key(|s| !preferred(s));
    p
}

/// The listener's rustls configuration: ring, TLS 1.2 and 1.3, no client certificates (users
/// authenticate with tokens), certificate from `resolver` at every handshake. The server's
/// suite order wins over the client's (see [`provider`]): rustls clients, like the
/// kubernetes Python client's OpenSSL, list AES-256 first.
///
/// ALPN offers `h2` first for kubectl's API calls and `http/1.1` for WebSocket upgrades,
/// which HTTP/2 cannot carry here.
pub fn server_config(resolver: Arc<ReloadingCert>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        // Only fails for a provider without any cipher suite for TLS 1.2 or 1.3; ring's
        // default provider has both, and this is fixed at compile time.
        .expect("ring's default provider supports the safe default TLS versions")
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    cfg.ignore_client_order = true;
    Arc::new(cfg)
}

/// Polls the resolver's files every `every` and swaps in a changed pair, until `shutdown`;
/// `swapped` is told of each new pair (the expiry gauge follows it).
///
/// Polling a file's metadata costs a `stat` and works everywhere, including secret volumes
/// where inotify events are unreliable across the symlink swap. Swaps are logged at info,
/// refusals at warn with the file and the problem (the same refusal only once in a row).
/// A zero `every`, or in-memory material, means there is nothing to watch: the task only
/// waits for `shutdown`.
pub fn spawn_watcher(
    resolver: Arc<ReloadingCert>,
    every: Duration,
    shutdown: CancellationToken,
    swapped: impl Fn(&ReloadingCert) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if every.is_zero() || resolver.files().is_none() {
            shutdown.cancelled().await;
            return;
        }
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate; the pair was just loaded.
        tick.tick().await;
        let mut last_error: Option<String> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            // On the runtime thread: most ticks are two `stat`s (microseconds), and a change
            // reads two small PEM files. A blocking-pool hop every tick kept a pool thread
            // from ever going idle, which the benchmarks' leak check saw as a leaked thread.
            let outcome = resolver.reload();
            match outcome {
                Ok(false) => {}
                Ok(true) => {
                    last_error = None;
                    swapped(&resolver);
                    if let Some((cert_file, key_file)) = resolver.files() {
                        tracing::info!(
                            cert_file = %cert_file.display(),
                            key_file = %key_file.display(),
                            "reloaded the TLS certificate"
                        );
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    if last_error.as_deref() != Some(message.as_str()) {
                        tracing::warn!(error = %message, "keeping the previous TLS certificate");
                    }
                    last_error = Some(message);
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    struct Pair {
        cert_pem: String,
        key_pem: String,
        der: CertificateDer<'static>,
    }

    fn ca() -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca")
    }

    fn leaf(ca: &CertifiedIssuer<'static, KeyPair>) -> Pair {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .signed_by(&key, ca)
            .expect("sign");
        Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    /// Replaces a file the way rotation tools do: write aside, rename into place.
    fn replace(path: &Path, contents: &str) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, contents).expect("write");
        std::fs::rename(&tmp, path).expect("rename");
    }

    fn write_pair(dir: &Path, pair: &Pair) -> (PathBuf, PathBuf) {
        let cert = dir.join("tls.crt");
        let key = dir.join("tls.key");
        replace(&cert, &pair.cert_pem);
        replace(&key, &pair.key_pem);
        (cert, key)
    }

    fn leaf_der(r: &ReloadingCert) -> CertificateDer<'static> {
        r.current().cert[0].clone()
    }

    #[test]
    fn loads_the_pair() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = leaf(&ca());
        let (cert, key) = write_pair(dir.path(), &a);
        let r = ReloadingCert::load(&cert, &key).expect("load");
        assert_eq!(leaf_der(&r), a.der);
        // Nothing changed: no swap.
        assert!(!r.reload().expect("reload"));
    }

    #[test]
    fn reload_swaps_a_changed_pair() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = ca();
        let (a, b) = (leaf(&ca), leaf(&ca));
        let (cert, key) = write_pair(dir.path(), &a);
        let r = ReloadingCert::load(&cert, &key).expect("load");
        write_pair(dir.path(), &b);
        assert!(r.reload().expect("reload"));
        assert_eq!(leaf_der(&r), b.der);
        assert!(!r.reload().expect("reload again"));
    }

    #[test]
    fn a_corrupt_file_keeps_the_old_pair() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = ca();
        let (a, b) = (leaf(&ca), leaf(&ca));
        let (cert, key) = write_pair(dir.path(), &a);
        let r = ReloadingCert::load(&cert, &key).expect("load");

        replace(&cert, "not a certificate\n");
        let e = r.reload().expect_err("garbage must be refused");
        assert!(matches!(e, TlsError::NoCertificate { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("tls.crt") && msg.contains("no CERTIFICATE block"),
            "{msg}"
        );
        assert_eq!(leaf_der(&r), a.der);
        // Refused once; not retried until the files change again.
        assert!(!r.reload().expect("unchanged"));

        // Fixed by the operator: picked up.
        write_pair(dir.path(), &b);
        assert!(r.reload().expect("reload"));
        assert_eq!(leaf_der(&r), b.der);
    }

    #[test]
    fn refuses_every_bad_pair() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = ca();
        let (a, b) = (leaf(&ca), leaf(&ca));
        let (cert, key) = write_pair(dir.path(), &a);
        let r = ReloadingCert::load(&cert, &key).expect("load");

        // A new certificate with the old key, as when only half of a rotation has landed.
        replace(&cert, &b.cert_pem);
        let e = r.reload().expect_err("mismatch");
        assert!(matches!(e, TlsError::KeyMismatch { .. }), "{e}");
        assert!(
            e.to_string().contains("key does not match certificate"),
            "{e}"
        );
        assert_eq!(leaf_der(&r), a.der);

        replace(&key, &b.cert_pem);
        let e = r.reload().expect_err("no key");
        assert!(matches!(e, TlsError::NoPrivateKey { .. }), "{e}");
        assert!(e.to_string().contains("tls.key"), "{e}");

        replace(&key, "-----BEGIN PRIVATE KEY-----\nAAAA\n");
        let e = r.reload().expect_err("unterminated");
        assert!(matches!(e, TlsError::Pem { .. }), "{e}");

        replace(
            &key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        let e = r.reload().expect_err("not a key");
        assert!(matches!(e, TlsError::UnsupportedKey { .. }), "{e}");

        replace(&key, &b.key_pem);
        replace(
            &cert,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let e = r.reload().expect_err("not a certificate");
        assert!(matches!(e, TlsError::BadCertificate { .. }), "{e}");

        std::fs::remove_file(&cert).expect("remove");
        let e = r.reload().expect_err("missing");
        assert!(matches!(e, TlsError::Io { .. }), "{e}");
        assert!(e.to_string().contains("tls.crt"), "{e}");
        assert_eq!(leaf_der(&r), a.der);

        let e = ReloadingCert::load(&cert, &key).expect_err("missing at start");
        assert!(matches!(e, TlsError::Io { .. }), "{e}");
    }

    #[test]
    fn from_pem_checks_the_pair() {
        let ca = ca();
        let (a, b) = (leaf(&ca), leaf(&ca));
        let r = ReloadingCert::from_pem(a.cert_pem.as_bytes(), a.key_pem.as_bytes()).expect("pem");
        assert_eq!(leaf_der(&r), a.der);
        assert!(!r.reload().expect("nothing to reload"));
        let e = ReloadingCert::from_pem(a.cert_pem.as_bytes(), b.key_pem.as_bytes())
            .expect_err("mismatch");
        assert!(matches!(e, TlsError::KeyMismatch { .. }), "{e}");
    }

    #[test]
    fn offers_h2_then_http1() {
        let a = leaf(&ca());
        let r = ReloadingCert::from_pem(a.cert_pem.as_bytes(), a.key_pem.as_bytes()).expect("pem");
        let cfg = server_config(Arc::new(r));
        assert_eq!(
            cfg.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn provider_puts_aes_128_gcm_first_and_keeps_every_suite() {
        let ours = provider();
        let ring = rustls::crypto::ring::default_provider();
        assert_eq!(
            ours.cipher_suites[0].suite(),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
        );
        let mut a: Vec<_> = ours.cipher_suites.iter().map(|s| s.suite()).collect();
        let mut b: Vec<_> = ring.cipher_suites.iter().map(|s| s.suite()).collect();
        a.sort_by_key(|s| u16::from(*s));
        b.sort_by_key(|s| u16::from(*s));
        assert_eq!(a, b);
    }

    /// A client listing AES-256 first (rustls's default order) still gets AES-128-GCM.
    #[test]
    fn the_servers_suite_order_wins() {
        let ca = ca();
        let a = leaf(&ca);
        let r = ReloadingCert::from_pem(a.cert_pem.as_bytes(), a.key_pem.as_bytes()).expect("pem");
        let mut server = rustls::ServerConnection::new(server_config(Arc::new(r))).expect("server");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).expect("root");
        let client_cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut client = rustls::ClientConnection::new(Arc::new(client_cfg), name).expect("client");
        for _ in 0..8 {
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
            let mut wire = Vec::new();
            client.write_tls(&mut wire).expect("client writes");
            server.read_tls(&mut wire.as_slice()).expect("server reads");
            server.process_new_packets().expect("server handshake");
            wire.clear();
            server.write_tls(&mut wire).expect("server writes");
            client.read_tls(&mut wire.as_slice()).expect("client reads");
            client.process_new_packets().expect("client handshake");
        }
        assert!(!client.is_handshaking() && !server.is_handshaking());
        assert_eq!(
            server.negotiated_cipher_suite().map(|s| s.suite()),
            Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
        );
    }

    /// Connects, reads one byte written by the server, and returns the leaf it presented.
    async fn presented_leaf(
        addr: std::net::SocketAddr,
        client: Arc<rustls::ClientConfig>,
    ) -> CertificateDer<'static> {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut tls = tokio_rustls::TlsConnector::from(client)
            .connect(name, tcp)
            .await
            .expect("handshake");
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.expect("read");
        assert_eq!(byte[0], b'!');
        let (_, conn) = tls.get_ref();
        conn.peer_certificates().expect("server certificates")[0].clone()
    }

    #[tokio::test]
    async fn new_handshakes_get_the_reloaded_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = ca();
        let (a, b) = (leaf(&ca), leaf(&ca));
        let (cert, key) = write_pair(dir.path(), &a);
        let resolver = Arc::new(ReloadingCert::load(&cert, &key).expect("load"));
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config(resolver.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tls.write_all(b"!").await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });

        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).expect("root");
        let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        // A resumed session presents no certificate and reports the one it was first made
        // with; only full handshakes show what the resolver serves now.
        client.resumption = rustls::client::Resumption::disabled();
        let client = Arc::new(client);

        assert_eq!(presented_leaf(addr, client.clone()).await, a.der);
        write_pair(dir.path(), &b);
        assert!(resolver.reload().expect("reload"));
        assert_eq!(presented_leaf(addr, client.clone()).await, b.der);
        server.abort();
    }

    #[tokio::test]
    async fn the_watcher_swaps_and_stops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = ca();
        let (a, b) = (leaf(&ca), leaf(&ca));
        let (cert, key) = write_pair(dir.path(), &a);
        let resolver = Arc::new(ReloadingCert::load(&cert, &key).expect("load"));
        let shutdown = CancellationToken::new();
        let told = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let t = told.clone();
        let task = spawn_watcher(
            resolver.clone(),
            Duration::from_millis(10),
            shutdown.clone(),
            move |swapped: &ReloadingCert| {
                t.store(
                    swapped.not_after().unwrap_or(1),
                    std::sync::atomic::Ordering::SeqCst,
                );
            },
        );
        write_pair(dir.path(), &b);
        tokio::time::timeout(Duration::from_secs(10), async {
            while leaf_der(&resolver) != b.der
                || told.load(std::sync::atomic::Ordering::SeqCst) == 0
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the watcher picks up the new pair");
        // It says so, with the new certificate's expiry.
        assert_eq!(
            told.load(std::sync::atomic::Ordering::SeqCst),
            crate::x509::not_after(b.der.as_ref()).expect("rcgen writes notAfter")
        );
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the watcher stops on shutdown")
            .expect("no panic");
    }
}
