//! Which sessions can be resumed on this replica, and the global budget of their buffers.
//!
//! A session opted in to resume registers here for as long as it runs ([`Registration`]: one
//! owner, released exactly once when it is dropped, whatever ended the session). Each
//! registration reserves `sessions.resume_buffer` of `sessions.resume_buffer_total`, so the
//! memory of all buffers together is bounded however many sessions there are. When the
//! budget is taken, the sessions that have waited longest for their page give way (they end
//! as `resume_window_expired`); a new session that still finds no room runs without resume.

use super::key::ResumeKey;
use super::{Attach, ResumeSettings};
use podgate_metrics::ResumeMetrics;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// One resumable session, as the resume route finds it.
pub struct Slot<C> {
    pub session_id: String,
    pub key: ResumeKey,
    /// Where a resume hands the session its new connection.
    pub attach: mpsc::Sender<Attach<C>>,
    /// Since when nobody is attached (`None` while a page is).
    waiting_since: Mutex<Option<Instant>>,
    /// Cancelled when this session must give way to a new one (the budget is taken).
    pub give_way: CancellationToken,
    /// Whether its share of the budget was given back (exactly once).
    released: AtomicBool,
}

impl<C> Slot<C> {
    pub fn set_waiting(&self, waiting: bool) {
        self.set_waiting_since(waiting.then(Instant::now));
    }

    fn set_waiting_since(&self, since: Option<Instant>) {
        *self
            .waiting_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = since;
    }

    /// How long nobody has been attached (`None` while a page is).
    pub fn waiting_for(&self) -> Option<std::time::Duration> {
        self.waiting_since().map(|t| t.elapsed())
    }

    fn waiting_since(&self) -> Option<Instant> {
        *self
            .waiting_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

pub struct Resumables<C> {
    pub settings: ResumeSettings,
    pub metrics: ResumeMetrics,
    slots: Mutex<Slots<C>>,
}

struct Slots<C> {
    by_id: HashMap<String, Arc<Slot<C>>>,
    /// Bytes of the budget reserved.
    reserved: u64,
}

/// A session's place in the store: removed, and its budget given back, when dropped.
pub struct Registration<C> {
    store: Arc<Resumables<C>>,
    pub slot: Arc<Slot<C>>,
    pub attached: mpsc::Receiver<Attach<C>>,
    /// The credential to hand the page (once, in `hello`).
    pub credential: String,
}

impl<C> Resumables<C> {
    pub fn new(settings: ResumeSettings, metrics: ResumeMetrics) -> Resumables<C> {
        Resumables {
            settings,
            metrics,
            slots: Mutex::new(Slots {
                by_id: HashMap::new(),
                reserved: 0,
            }),
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.window.is_some()
    }

    /// Registers `session_id` of `owner` for resume, or `None` (resume disabled, the budget
    /// taken by sessions that are attached, or no randomness for a credential).
    pub fn register(self: &Arc<Self>, session_id: &str, owner: &str) -> Option<Registration<C>> {
        if !self.enabled() {
            return None;
        }
        let (key, credential) = match ResumeKey::issue(owner) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!("no resume for session {session_id}: {e}");
                return None;
            }
        };
        let share = self.settings.buffer as u64;
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        while slots.reserved + share > self.settings.total {
            // The one that has waited longest gives way.
            let oldest = slots
                .by_id
                .values()
                .filter(|s| !s.released.load(Ordering::Relaxed))
                .filter_map(|s| s.waiting_since().map(|t| (t, s.clone())))
                .min_by_key(|(t, _)| *t);
            let Some((_, victim)) = oldest else {
                tracing::warn!(
                    "session {session_id} runs without resume: sessions.resume_buffer_total is taken by attached sessions"
                );
                return None;
            };
            victim.released.store(true, Ordering::Relaxed);
            slots.reserved -= share;
            victim.give_way.cancel();
        }
        slots.reserved += share;
        let (tx, rx) = mpsc::channel(1);
        let slot = Arc::new(Slot {
            session_id: session_id.to_string(),
            key,
            attach: tx,
            waiting_since: Mutex::new(None),
            give_way: CancellationToken::new(),
            released: AtomicBool::new(false),
        });
        slots.by_id.insert(session_id.to_string(), slot.clone());
        drop(slots);
        Some(Registration {
            store: self.clone(),
            slot,
            attached: rx,
            credential,
        })
    }

    pub fn get(&self, session_id: &str) -> Option<Arc<Slot<C>>> {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_id
            .get(session_id)
            .cloned()
    }

    /// Budget bytes reserved now (tests, the benchmark).
    pub fn reserved(&self) -> u64 {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reserved
    }

    pub fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_id
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<C> Drop for Registration<C> {
    fn drop(&mut self) {
        let mut slots = self
            .store
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slots
            .by_id
            .get(&self.slot.session_id)
            .is_some_and(|s| Arc::ptr_eq(s, &self.slot))
        {
            slots.by_id.remove(&self.slot.session_id);
        }
        if !self.slot.released.swap(true, Ordering::Relaxed) {
            slots.reserved -= self.store.settings.buffer as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn store(total_sessions: u64) -> Arc<Resumables<()>> {
        let settings = ResumeSettings {
            window: Some(Duration::from_secs(60)),
            buffer: 16 << 10,
            overwrite: false,
            heartbeat: Duration::from_secs(5),
            total: total_sessions * (16 << 10),
        };
        Arc::new(Resumables::new(settings, ResumeMetrics::new()))
    }

    #[test]
    fn the_budget_is_bounded_and_released_exactly_once() {
        let s = store(2);
        let a = s.register("a", "alice").expect("room");
        let b = s.register("b", "bob").expect("room");
        assert_eq!(s.reserved(), 2 * (16 << 10));
        // Both attached: a third runs without resume.
        assert!(s.register("c", "carol").is_none());
        // `a` waits for its page: it gives way to the new session, and is told.
        a.slot.set_waiting(true);
        let c = s.register("c", "carol").expect("a gave way");
        assert!(a.slot.give_way.is_cancelled());
        assert!(!b.slot.give_way.is_cancelled());
        assert_eq!(s.reserved(), 2 * (16 << 10));
        drop(a);
        assert_eq!(s.reserved(), 2 * (16 << 10), "not given back twice");
        assert!(s.get("a").is_none());
        drop((b, c));
        assert_eq!(s.reserved(), 0);
        assert!(s.is_empty());
    }

    #[test]
    fn the_longest_waiting_gives_way_first() {
        let s = store(2);
        let a = s.register("a", "alice").expect("room");
        let b = s.register("b", "bob").expect("room");
        let now = Instant::now();
        b.slot.set_waiting_since(Some(now));
        a.slot
            .set_waiting_since(Some(now + Duration::from_millis(1)));
        let _c = s.register("c", "carol").expect("room");
        assert!(b.slot.give_way.is_cancelled(), "b waited longer");
        assert!(!a.slot.give_way.is_cancelled());
    }

    #[test]
    fn disabled_registers_nothing() {
        let mut settings = store(1).settings;
        settings.window = None;
        let s: Arc<Resumables<()>> = Arc::new(Resumables::new(settings, ResumeMetrics::new()));
        assert!(s.register("a", "alice").is_none());
    }
}
