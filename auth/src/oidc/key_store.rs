//! One issuer's discovery document and signing keys, fetched on first use and kept fresh:
//!
//! - **Lazily, then periodically.** The first token fetches discovery + JWKS. Once the snapshot
//!   is older than `jwks_refresh_interval`, the next token is still served from it while a
//!   background task refetches (stale-while-revalidate), so no request waits for the provider.
//!   After a quiet period of more than two intervals the refetch comes first, so a withdrawn
//!   key is never accepted more than two intervals after its withdrawal.
//! - **On an unknown `kid`**, the caller asks for a refetch: a rotated key is picked up at once.
//! - **Single-flight, rate-limited.** Fetches go through one async mutex; callers that queued
//!   behind a fetch reuse its result instead of fetching again, and a fetch starts at most once
//!   per `min_refetch_interval` (failed attempts count), so a flood of made-up `kid`s or a down
//!   provider costs the provider at most one request pair per interval.
//!
//! A failed refetch keeps the previous keys. Every snapshot has a `generation`; a bump of the
//! `epoch` means a key was withdrawn, so tokens verified with the old set must be verified again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::discovery::{ProviderMetadata, discover};
use super::http::HttpClient;
use super::jwk::KeySet;

/// What one successful fetch produced.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) metadata: Arc<ProviderMetadata>,
    pub(crate) keys: KeySet,
    pub(crate) fetched_at: Instant,
    /// Increases with every successful fetch.
    pub(crate) generation: u64,
}

/// Counters for tests, readiness and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyStats {
    /// Discovery + JWKS fetches attempted.
    pub fetches: u64,
    /// Attempts that failed (the previous keys, if any, stayed in use).
    pub failures: u64,
    /// Usable keys in the current set; 0 before the first successful fetch.
    pub keys: usize,
    /// Time since the current set was fetched.
    pub age: Option<Duration>,
}

#[derive(Default)]
struct FetchLog {
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

pub(crate) struct KeyStore {
    issuer: String,
    http: HttpClient,
    insecure_http_for_loopback: bool,
    refresh_interval: Duration,
    min_refetch_interval: Duration,
    current: RwLock<Option<Arc<Snapshot>>>,
    /// Held for the whole of a fetch: the single-flight gate.
    fetch: tokio::sync::Mutex<FetchLog>,
    /// A background refresh is scheduled or running.
    refreshing: AtomicBool,
    fetches: AtomicU64,
    failures: AtomicU64,
    epoch: AtomicU64,
}

impl KeyStore {
    pub(crate) fn new(
        issuer: String,
        http: HttpClient,
        insecure_http_for_loopback: bool,
        refresh_interval: Duration,
        min_refetch_interval: Duration,
    ) -> Self {
        KeyStore {
            issuer,
            http,
            insecure_http_for_loopback,
            refresh_interval,
            min_refetch_interval,
            current: RwLock::new(None),
            fetch: tokio::sync::Mutex::new(FetchLog::default()),
            refreshing: AtomicBool::new(false),
            fetches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
        }
    }

    pub(crate) fn current(&self) -> Option<Arc<Snapshot>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Bumped whenever a refetch drops a key that was published before.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub(crate) fn stats(&self) -> KeyStats {
        let current = self.current();
        KeyStats {
            fetches: self.fetches.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            keys: current.as_ref().map_or(0, |s| s.keys.len()),
            age: current.map(|s| s.fetched_at.elapsed()),
        }
    }

    /// The current snapshot, fetching the first one if need be. A snapshot older than the
    /// refresh interval is returned as is and refreshed in the background; one older than twice
    /// the interval (nobody used it for a while) is refreshed first, so a key withdrawn during
    /// a quiet period is not accepted even once. If that refresh fails, the old keys are used:
    /// a provider outage must not lock everyone out.
    pub(crate) async fn get(self: &Arc<Self>) -> Result<Arc<Snapshot>, String> {
        let Some(snapshot) = self.current() else {
            return self.refetch(None).await;
        };
        if snapshot.fetched_at.elapsed() >= self.refresh_interval.saturating_mul(2) {
            return Ok(self
                .refetch(Some(snapshot.generation))
                .await
                .unwrap_or(snapshot));
        }
        self.refresh_if_stale(&snapshot);
        Ok(snapshot)
    }

    /// Fetches again unless a fetch newer than the caller's `seen` generation already happened
    /// (it waited behind it) or the last attempt is more recent than `min_refetch_interval`.
    /// Returns the snapshot to use, which is the same one when no fetch was allowed.
    pub(crate) async fn refetch(&self, seen: Option<u64>) -> Result<Arc<Snapshot>, String> {
        let mut log = self.fetch.lock().await;
        let current = self.current();
        if let Some(snapshot) = &current
            && Some(snapshot.generation) != seen
        {
            return Ok(Arc::clone(snapshot));
        }
        if let Some(at) = log.last_attempt
            && at.elapsed() < self.min_refetch_interval
        {
            return match (&log.last_error, current) {
                (Some(error), _) => Err(error.clone()),
                (None, Some(snapshot)) => Ok(snapshot),
                (None, None) => Err(format!("no keys fetched yet from {}", self.issuer)),
            };
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let result = self.fetch_now().await;
        // Measured from the end, so a slow provider gets a full interval of rest.
        log.last_attempt = Some(Instant::now());
        match result {
            Ok((metadata, keys)) => {
                log.last_error = None;
                Ok(self.install(metadata, keys))
            }
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(issuer = %self.issuer, "OIDC discovery/JWKS fetch failed: {error}");
                let error = format!("cannot fetch the signing keys of {}: {error}", self.issuer);
                log.last_error = Some(error.clone());
                Err(error)
            }
        }
    }

    async fn fetch_now(&self) -> Result<(ProviderMetadata, KeySet), String> {
        let metadata = discover(&self.http, &self.issuer, self.insecure_http_for_loopback)
            .await
            .map_err(|e| e.to_string())?;
        let jwks: serde_json::Value = self
            .http
            .get_json(&metadata.jwks_uri)
            .await
            .map_err(|e| e.to_string())?;
        let keys = KeySet::from_value(jwks).map_err(|e| format!("{}: {e}", metadata.jwks_uri))?;
        Ok((metadata, keys))
    }

    fn install(&self, metadata: ProviderMetadata, keys: KeySet) -> Arc<Snapshot> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let previous = current.take();
        if let Some(previous) = &previous {
            if previous.keys.lost_keys_in(&keys) {
                self.epoch.fetch_add(1, Ordering::AcqRel);
            }
            if previous.keys != keys {
                tracing::info!(issuer = %self.issuer, keys = ?keys, "OIDC signing keys changed");
            }
        } else {
            tracing::info!(issuer = %self.issuer, keys = ?keys, "OIDC signing keys loaded");
        }
        let snapshot = Arc::new(Snapshot {
            metadata: Arc::new(metadata),
            keys,
            fetched_at: Instant::now(),
            generation: previous.map_or(1, |p| p.generation + 1),
        });
        *current = Some(Arc::clone(&snapshot));
        snapshot
    }

    /// Starts one background refresh when `snapshot` is older than the refresh interval.
    fn refresh_if_stale(self: &Arc<Self>, snapshot: &Snapshot) {
        if snapshot.fetched_at.elapsed() < self.refresh_interval
            || self.refreshing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.refreshing.store(false, Ordering::Release);
            return;
        };
        let store = Arc::clone(self);
        let generation = snapshot.generation;
        runtime.spawn(async move {
            // Errors are logged by refetch; the old keys stay in use.
            let _ = store.refetch(Some(generation)).await;
            store.refreshing.store(false, Ordering::Release);
        });
    }
}
