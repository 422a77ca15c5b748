//! Release health in request mode: every request a client with a release tracks is counted as
//! exited, errored or crashed into per-minute aggregates, sent as a `sessions` item every
//! minute, at each flush and at shutdown. Sessions are never sampled.
//!
//! Counting is a relaxed load and one atomic addition on one of four per-minute slots (keyed by
//! the minute a request ended in); nothing is allocated per request. A slot is reused four minutes later; a count that lands in a slot
//! after it was sent goes out with the next aggregate, so totals are exact.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sentry_types::protocol::v7::SessionAggregateItem;

/// How often aggregates go out.
pub(crate) const INTERVAL: Duration = Duration::from_secs(60);

/// How a request ended, as release health counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Health {
    /// Answered without an error event.
    Exited,
    /// An error event was captured for it (a failure status, `capture_error`, a logged error).
    Errored,
    /// It panicked.
    Crashed,
}

/// The per-minute counters.
pub(crate) struct Sessions {
    slots: [Slot; 4],
    /// The minute (since the epoch) most requests are ending in.
    current: AtomicU64,
    next_send: Mutex<Instant>,
}

// Each slot on its own cache lines: every request writes one.
#[repr(align(128))]
#[derive(Default)]
struct Slot {
    minute: AtomicU64,
    exited: AtomicU32,
    errored: AtomicU32,
    crashed: AtomicU32,
}

impl Sessions {
    pub(crate) fn new() -> Self {
        Sessions {
            slots: Default::default(),
            current: AtomicU64::new(0),
            next_send: Mutex::new(Instant::now() + INTERVAL),
        }
    }

    /// Counts a request that ended at `ended` (the minute it ended in is the one it counts in).
    pub(crate) fn count(&self, ended: SystemTime, health: Health) {
        let secs = ended.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // The current minute, cached: a 64-bit division costs more than the rest together.
        let current = self.current.load(Ordering::Relaxed);
        let minute = if secs.wrapping_sub(current * 60) < 60 {
            current
        } else {
            let minute = secs / 60;
            self.current.store(minute, Ordering::Relaxed);
            minute
        };
        let slot = &self.slots[(minute % 4) as usize];
        let was = slot.minute.load(Ordering::Relaxed);
        if was < minute {
            // Counts of the older minute still here go out under this one: late, not lost.
            let _ = slot
                .minute
                .compare_exchange(was, minute, Ordering::Relaxed, Ordering::Relaxed);
        }
        let counter = match health {
            Health::Exited => &slot.exited,
            Health::Errored => &slot.errored,
            Health::Crashed => &slot.crashed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The aggregates when a minute has passed since they were last taken (or at a flush),
    /// and when they are next due.
    pub(crate) fn take_due(&self, flush: bool) -> (Option<Vec<SessionAggregateItem>>, Instant) {
        let now = Instant::now();
        {
            let mut next = self.next_send.lock().unwrap_or_else(|e| e.into_inner());
            if !flush && now < *next {
                return (None, *next);
            }
            *next = now + INTERVAL;
        }
        let aggregates = self.take();
        (
            (!aggregates.is_empty()).then_some(aggregates),
            now + INTERVAL,
        )
    }

    /// Takes every count, one aggregate per minute that has any.
    fn take(&self) -> Vec<SessionAggregateItem> {
        let mut out: Vec<SessionAggregateItem> = self
            .slots
            .iter()
            .filter_map(|slot| {
                let exited = slot.exited.swap(0, Ordering::Relaxed);
                let errored = slot.errored.swap(0, Ordering::Relaxed);
                let crashed = slot.crashed.swap(0, Ordering::Relaxed);
                if exited + errored + crashed == 0 {
                    return None;
                }
                let minute = slot.minute.load(Ordering::Relaxed);
                Some(SessionAggregateItem {
                    started: UNIX_EPOCH + Duration::from_secs(minute * 60),
                    distinct_id: None,
                    exited,
                    errored,
                    abnormal: 0,
                    crashed,
                })
            })
            .collect();
        out.sort_by_key(|a| a.started);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_taken_once_per_minute_they_fell_in() {
        let sessions = Sessions::new();
        let t0 = UNIX_EPOCH + Duration::from_secs(60 * 1_000_000 + 5);
        for _ in 0..3 {
            sessions.count(t0, Health::Exited);
        }
        sessions.count(t0, Health::Errored);
        sessions.count(t0 + Duration::from_secs(60), Health::Crashed);
        let taken = sessions.take();
        assert_eq!(taken.len(), 2);
        assert_eq!(
            (taken[0].exited, taken[0].errored, taken[0].crashed),
            (3, 1, 0)
        );
        assert_eq!(
            taken[0].started,
            UNIX_EPOCH + Duration::from_secs(60 * 1_000_000)
        );
        assert_eq!(taken[1].crashed, 1);
        assert!(sessions.take().is_empty());
        // A slot four minutes on is reused.
        sessions.count(t0 + Duration::from_secs(240), Health::Exited);
        assert_eq!(
            sessions.take()[0].started,
            taken[0].started + Duration::from_secs(240)
        );
    }
}
