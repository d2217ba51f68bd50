//! Verified tokens, remembered so a repeat (every request of a kubectl session carries the
//! same token) costs a SHA-256 and a map lookup instead of a signature check.
//!
//! - Keyed by SHA-256 of the token: the cache never holds a token, and a memory dump of it
//!   yields nothing usable.
//! - An entry is good until the token's `exp`, never after (leeway is for clock skew between
//!   machines, not for our own memory), and only while the issuer has not withdrawn a key since
//!   it was verified (the key store's epoch).
//! - Bounded: when full, an expired entry found among a few random samples is evicted, else a
//!   random one. Random eviction costs O(1) and cannot be gamed into evicting a chosen entry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::Identity;
use ring::digest;

/// How many random slots are checked for an expired entry before evicting a live one.
const EVICTION_SAMPLES: usize = 8;

pub(crate) type TokenKey = [u8; 32];

/// Hit and miss counts, for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
    pub capacity: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) identity: Identity,
    /// The token's `exp`, Unix seconds.
    pub(crate) expires_at: u64,
    /// Index of the issuer that verified it, and that issuer's key epoch at the time.
    pub(crate) issuer: usize,
    pub(crate) epoch: u64,
}

pub(crate) struct TokenCache {
    capacity: usize,
    inner: Mutex<Slots>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Entries in a dense vector (for O(1) random picks) indexed by a map.
struct Slots {
    index: HashMap<TokenKey, usize>,
    slots: Vec<(TokenKey, Entry)>,
    rng: u64,
}

impl Slots {
    fn remove(&mut self, position: usize) {
        let (key, _) = self.slots.swap_remove(position);
        self.index.remove(&key);
        if let Some((moved, _)) = self.slots.get(position) {
            self.index.insert(*moved, position);
        }
    }

    /// xorshift64*: eviction needs unpredictability against a remote client, not a CSPRNG
    /// (the seed comes from one).
    fn random(&mut self, below: usize) -> usize {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let value = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (value % below as u64) as usize
    }
}

impl TokenCache {
    /// A cache of at most `capacity` entries; 0 disables it.
    pub(crate) fn new(capacity: usize) -> Self {
        let mut seed = [0u8; 8];
        // A failure leaves a fixed seed; eviction stays correct, only predictable.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed);
        TokenCache {
            capacity,
            inner: Mutex::new(Slots {
                index: HashMap::new(),
                slots: Vec::new(),
                rng: u64::from_le_bytes(seed) | 1,
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub(crate) fn key(token: &str) -> TokenKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        key
    }

    /// The identity cached for `key`, if still good at `now` and `still_valid` agrees (the
    /// issuer's key epoch has not moved). Stale entries are dropped.
    pub(crate) fn get(
        &self,
        key: &TokenKey,
        now: u64,
        still_valid: impl FnOnce(&Entry) -> bool,
    ) -> Option<(Identity, u64)> {
        let found = if self.capacity == 0 {
            None
        } else {
            let mut slots = self.lock();
            match slots.index.get(key).copied() {
                Some(position) => {
                    let entry = &slots.slots[position].1;
                    if now < entry.expires_at && still_valid(entry) {
                        Some((entry.identity.clone(), entry.expires_at))
                    } else {
                        slots.remove(position);
                        None
                    }
                }
                None => None,
            }
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Remembers a verified token, unless it is already expired at `now`.
    pub(crate) fn insert(&self, key: TokenKey, entry: Entry, now: u64) {
        if self.capacity == 0 || entry.expires_at <= now {
            return;
        }
        let mut slots = self.lock();
        if let Some(&position) = slots.index.get(&key) {
            slots.slots[position].1 = entry;
            return;
        }
        if slots.slots.len() >= self.capacity {
            let len = slots.slots.len();
            let mut victim = slots.random(len);
            for _ in 0..EVICTION_SAMPLES {
                let candidate = slots.random(len);
                if slots.slots[candidate].1.expires_at <= now {
                    victim = candidate;
                    break;
                }
            }
            slots.remove(victim);
        }
        let position = slots.slots.len();
        slots.slots.push((key, entry));
        slots.index.insert(key, position);
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.lock().slots.len(),
            capacity: self.capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        // Every mutation leaves the slots consistent before anything can panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn entry(user: &str, expires_at: u64) -> Entry {
        Entry {
            identity: Identity::new(user, ["dev"]).expect("valid identity"),
            expires_at,
            issuer: 0,
            epoch: 7,
        }
    }

    fn user(cache: &TokenCache, token: &str, now: u64) -> Option<String> {
        cache
            .get(&TokenCache::key(token), now, |e| e.epoch == 7)
            .map(|(i, _)| i.user().to_string())
    }

    #[test]
    fn hits_until_exp_and_never_after() {
        let cache = TokenCache::new(10);
        cache.insert(TokenCache::key("t1"), entry("ann", NOW + 60), NOW);
        assert_eq!(user(&cache, "t1", NOW), Some("ann".to_owned()));
        assert_eq!(user(&cache, "t1", NOW + 59), Some("ann".to_owned()));
        assert_eq!(user(&cache, "t2", NOW), None);
        assert_eq!(user(&cache, "t1", NOW + 60), None, "expired at exp exactly");
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (2, 2, 0));
        // Already expired: not stored.
        cache.insert(TokenCache::key("old"), entry("old", NOW), NOW);
        assert_eq!(cache.stats().entries, 0);
    }

    #[test]
    fn a_moved_epoch_invalidates() {
        let cache = TokenCache::new(10);
        let key = TokenCache::key("t");
        cache.insert(key, entry("ann", NOW + 60), NOW);
        assert!(cache.get(&key, NOW, |e| e.epoch == 8).is_none());
        assert_eq!(cache.stats().entries, 0, "dropped");
    }

    #[test]
    fn bounded_with_eviction_preferring_expired() {
        let cache = TokenCache::new(4);
        for i in 0..4 {
            cache.insert(TokenCache::key(&format!("t{i}")), entry("u", NOW + 60), NOW);
        }
        assert_eq!(cache.stats().entries, 4);
        // Re-inserting a present key replaces it in place.
        cache.insert(TokenCache::key("t0"), entry("again", NOW + 60), NOW);
        assert_eq!(cache.stats().entries, 4);
        assert_eq!(user(&cache, "t0", NOW), Some("again".to_owned()));
        for i in 4..100 {
            cache.insert(TokenCache::key(&format!("t{i}")), entry("u", NOW + 60), NOW);
            assert_eq!(cache.stats().entries, 4);
        }
        // The index and the slots agree after all those swaps.
        let present = (0..100)
            .filter(|i| user(&cache, &format!("t{i}"), NOW).is_some())
            .count();
        assert_eq!(present, 4);

        // With one expired entry among four, sampling finds it ~90% of the time (1 - (3/4)^8),
        // where a blind pick would spare the live ones only 1 time in 4.
        let mut survived = 0;
        for round in 0..200 {
            let cache = TokenCache::new(4);
            cache.insert(TokenCache::key("dead"), entry("u", NOW + 1), NOW);
            for i in 0..3 {
                cache.insert(
                    TokenCache::key(&format!("live{i}")),
                    entry("u", NOW + 60),
                    NOW,
                );
            }
            cache.insert(
                TokenCache::key(&format!("new{round}")),
                entry("u", NOW + 60),
                NOW + 5,
            );
            survived +=
                usize::from((0..3).all(|i| user(&cache, &format!("live{i}"), NOW + 5).is_some()));
        }
        assert!(
            survived > 150,
            "live entries survived {survived}/200 rounds"
        );
    }

    #[test]
    fn capacity_zero_disables() {
        let cache = TokenCache::new(0);
        cache.insert(TokenCache::key("t"), entry("ann", NOW + 60), NOW);
        assert_eq!(user(&cache, "t", NOW), None);
        assert_eq!(
            cache.stats(),
            CacheStats {
                hits: 0,
                misses: 1,
                entries: 0,
                capacity: 0
            }
        );
    }

    #[test]
    fn keys_are_sha256() {
        let key = TokenCache::key("abc");
        assert_eq!(
            key[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256(\"abc\") starts ba7816bf"
        );
    }
}
