//! The events of one session on their way to the disk: filled by the relay (through the
//! [`Recorder`](super::recorder::Recorder) tap, without waiting), emptied by the session's
//! writer task.
//!
//! Bounded by what it holds, in bytes, until the writer has *written* it (not merely taken it):
//! a `best_effort` recording drops what does not fit (counted, and marked in the file once
//! room is back); a `required` one accepts the event and reports itself full, and the relay
//! waits for room before it reads the next message, so the pod is slowed instead. Either way
//! a session holds at most `budget` plus one message.

use crate::tap::Stream;
use podgate_metrics::Outcome;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// One thing that happened in a session, at a moment since its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Output {
        at: Duration,
        stream: Stream,
        data: Vec<u8>,
    },
    Input {
        at: Duration,
        data: Vec<u8>,
    },
    Resize {
        at: Duration,
        cols: u16,
        rows: u16,
    },
    /// Text of the gateway's own (a notice to the person, a gap).
    Marker {
        at: Duration,
        text: String,
    },
    /// The session is over: nothing follows.
    Ended {
        at: Duration,
        outcome: Outcome,
        exit_code: Option<i32>,
        message: Option<String>,
    },
}

impl Event {
    /// What it holds, for the budget (its data and a fixed share for the rest).
    pub fn cost(&self) -> usize {
        64 + match self {
            Event::Output { data, .. } | Event::Input { data, .. } => data.len(),
            Event::Marker { text, .. } => text.len(),
            Event::Ended { message, .. } => message.as_ref().map_or(0, String::len),
            Event::Resize { .. } => 0,
        }
    }
}

/// What a recording does when the disk falls behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the event (best_effort).
    Drop,
    /// Keep it and make the relay wait (required).
    Wait,
}

pub struct Queue {
    state: Mutex<State>,
    /// Wakes the writer.
    filled: Notify,
    /// Wakes a relay waiting for room.
    drained: Notify,
    budget: usize,
    overflow: Overflow,
}

#[derive(Default)]
struct State {
    events: VecDeque<Event>,
    /// Bytes pushed and not yet released by the writer.
    held: usize,
    /// The recording stopped (failed, truncated): events are no longer kept, except the end.
    stopped: bool,
    /// The end was pushed.
    ended: bool,
    /// Dropped since the last gap marker.
    dropped: u64,
}

/// What became of a pushed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Kept,
    /// Dropped for room (best_effort): count it.
    Dropped,
    /// The recording has stopped.
    Ignored,
}

impl Queue {
    pub fn new(budget: usize, overflow: Overflow) -> Queue {
        Queue {
            state: Mutex::default(),
            filled: Notify::new(),
            drained: Notify::new(),
            budget,
            overflow,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn push(&self, event: Event) -> Pushed {
        let end = matches!(event, Event::Ended { .. });
        let pushed = {
            let mut s = self.lock();
            if s.ended {
                return Pushed::Ignored;
            }
            if end {
                s.ended = true;
                s.held += event.cost();
                s.events.push_back(event);
                Pushed::Kept
            } else if s.stopped {
                Pushed::Ignored
            } else if self.overflow == Overflow::Drop && s.held + event.cost() > self.budget {
                s.dropped += 1;
                Pushed::Dropped
            } else {
                if s.dropped > 0 {
                    let text = format!(
                        "podgate: {} events were not recorded here (the recording fell behind)",
                        s.dropped
                    );
                    let gap = Event::Marker {
                        at: at(&event),
                        text,
                    };
                    s.held += gap.cost();
                    s.events.push_back(gap);
                    s.dropped = 0;
                }
                s.held += event.cost();
                s.events.push_back(event);
                Pushed::Kept
            }
        };
        if pushed == Pushed::Kept {
            self.filled.notify_one();
        }
        pushed
    }

    /// Whether the relay should wait before handing over more (a `required` recording whose
    /// disk is behind).
    pub fn full(&self) -> bool {
        let s = self.lock();
        self.overflow == Overflow::Wait && !s.stopped && s.held >= self.budget
    }

    /// Notified when room is made; check [`full`](Self::full) again after each wake.
    pub fn drained(&self) -> &Notify {
        &self.drained
    }

    /// Every event waiting, oldest first; waits for one when there is none.
    pub async fn take(&self) -> Vec<Event> {
        loop {
            let notified = self.filled.notified();
            {
                let mut s = self.lock();
                if !s.events.is_empty() {
                    return s.events.drain(..).collect();
                }
            }
            notified.await;
        }
    }

    /// The writer wrote (or discarded) events of this cost: room for more.
    pub fn release(&self, cost: usize) {
        {
            let mut s = self.lock();
            s.held = s.held.saturating_sub(cost);
        }
        self.drained.notify_waiters();
    }

    /// The recording stopped: what waits is dropped, nothing but the end is kept from now on,
    /// and a waiting relay goes on.
    pub fn stop(&self) {
        {
            let mut s = self.lock();
            s.stopped = true;
            let keep: VecDeque<Event> = s
                .events
                .drain(..)
                .filter(|e| matches!(e, Event::Ended { .. }))
                .collect();
            s.held = keep.iter().map(Event::cost).sum();
            s.events = keep;
        }
        self.drained.notify_waiters();
    }

    /// Events dropped and not yet marked (to count at the end).
    pub fn unmarked_drops(&self) -> u64 {
        self.lock().dropped
    }
}

fn at(e: &Event) -> Duration {
    match e {
        Event::Output { at, .. }
        | Event::Input { at, .. }
        | Event::Resize { at, .. }
        | Event::Marker { at, .. }
        | Event::Ended { at, .. } => *at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(n: usize) -> Event {
        Event::Output {
            at: Duration::from_millis(n as u64),
            stream: Stream::Stdout,
            data: vec![b'x'; n],
        }
    }

    fn end() -> Event {
        Event::Ended {
            at: Duration::ZERO,
            outcome: Outcome::Completed,
            exit_code: Some(0),
            message: None,
        }
    }

    #[tokio::test]
    async fn best_effort_drops_beyond_its_budget_and_marks_the_gap() {
        let q = Queue::new(1000, Overflow::Drop);
        assert_eq!(q.push(out(800)), Pushed::Kept);
        assert_eq!(q.push(out(800)), Pushed::Dropped);
        assert_eq!(q.push(out(800)), Pushed::Dropped);
        assert!(!q.full(), "best_effort never holds the relay");
        let taken = q.take().await;
        assert_eq!(taken.len(), 1);
        q.release(taken.iter().map(Event::cost).sum());
        assert_eq!(q.push(out(10)), Pushed::Kept);
        let taken = q.take().await;
        assert!(
            matches!(&taken[0], Event::Marker { text, .. } if text.contains("2 events")),
            "{taken:?}"
        );
        assert_eq!(taken[1], out(10));
    }

    #[tokio::test]
    async fn required_keeps_everything_and_reports_full_until_written() {
        let q = Queue::new(1000, Overflow::Wait);
        assert_eq!(q.push(out(800)), Pushed::Kept);
        assert!(!q.full());
        assert_eq!(q.push(out(800)), Pushed::Kept);
        assert!(q.full());
        let taken = q.take().await;
        assert_eq!(taken.len(), 2);
        assert!(q.full(), "taken is not written");
        q.release(taken[0].cost());
        assert!(!q.full());
    }

    #[tokio::test]
    async fn a_stopped_recording_keeps_only_its_end() {
        let q = Queue::new(1000, Overflow::Wait);
        q.push(out(900));
        q.push(out(900));
        assert!(q.full());
        q.stop();
        assert!(!q.full(), "a stopped recording holds nobody");
        assert_eq!(q.push(out(1)), Pushed::Ignored);
        assert_eq!(q.push(end()), Pushed::Kept);
        assert_eq!(q.push(end()), Pushed::Ignored, "one end");
        assert_eq!(q.take().await, vec![end()]);
    }
}
