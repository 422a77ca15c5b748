//! Backpressure: the trace rate lowered while the sink cannot keep up, as Sentry's SDKs do
//! (developer documentation, "Backpressure Management"; sentry-python's `monitor.py`).
//!
//! The worker looks at the sink every `backpressure_check_interval` (10 s by default). The sink
//! is unhealthy when it dropped a transaction since the last look (its queue was full, or the
//! server's rate limit covered it; the worker's own queue overflowing counts too) or would drop
//! one now. Each unhealthy look raises the downsampling factor by one, up to 10, and every
//! sampling decision then uses `rate / 2^factor`; the first healthy look sets it back to 0.
//! Only the worker writes here, once per interval; requests read the factor.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use sentry_types::protocol::v7::client_report::Category;

use crate::sink::Sink;

/// Sentry's SDKs halve the rate at most ten times (to 1/1024 of itself).
pub(crate) const MAX_FACTOR: u8 = 10;

/// The downsampling state of one client.
pub(crate) struct Backpressure {
    /// Requests read it; the worker writes it once per interval at most.
    factor: AtomicU8,
    /// A transaction was dropped for want of room or by a rate limit since the last look.
    strained: AtomicBool,
    enabled: bool,
    interval: Duration,
    /// When the next look is due, in nanoseconds after `since`.
    next_check: AtomicU64,
    since: Instant,
}

impl Backpressure {
    pub(crate) fn new(enabled: bool, interval: Duration) -> Self {
        Backpressure {
            factor: AtomicU8::new(0),
            strained: AtomicBool::new(false),
            enabled,
            interval,
            next_check: AtomicU64::new(nanos(interval)),
            since: Instant::now(),
        }
    }

    /// The exponent every trace rate is divided by (`rate / 2^factor`).
    pub(crate) fn factor(&self) -> u8 {
        self.factor.load(Ordering::Relaxed)
    }

    /// Notes a transaction the sink or the queue had no room for, or a rate limit dropped.
    pub(crate) fn strained(&self) {
        if self.enabled && !self.strained.load(Ordering::Relaxed) {
            self.strained.store(true, Ordering::Relaxed);
        }
    }

    /// Looks at the sink when a look is due. Says when the next one is, while the rate is
    /// lowered: a worker with nothing to do still wakes to restore it.
    pub(crate) fn tick(&self, sink: Option<&dyn Sink>) -> Option<Instant> {
        if !self.enabled {
            return None;
        }
        let now = nanos(self.since.elapsed());
        let mut next = self.next_check.load(Ordering::Relaxed);
        if now >= next {
            let unhealthy = self.strained.swap(false, Ordering::Relaxed)
                || sink.is_some_and(|s| s.would_drop(Category::Transaction).is_some());
            let factor = match unhealthy {
                true => self.factor().saturating_add(1).min(MAX_FACTOR),
                false => 0,
            };
            self.factor.store(factor, Ordering::Relaxed);
            next = now.saturating_add(nanos(self.interval));
            self.next_check.store(next, Ordering::Relaxed);
        }
        (self.factor() > 0).then(|| self.since + Duration::from_nanos(next))
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `rate` lowered by `factor` halvings.
pub(crate) fn downsampled(rate: f32, factor: u8) -> f32 {
    match factor {
        0 => rate,
        f => rate / f32::from(1u16 << f.min(MAX_FACTOR)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use sentry_types::protocol::v7::client_report::Reason;
    use sentry_types::protocol::v7::Envelope;

    /// A sink that is full while told so.
    struct Full(AtomicBool);

    impl Sink for Full {
        fn send(&self, _: Envelope) {}
        fn would_drop(&self, category: Category) -> Option<Reason> {
            (self.0.load(Ordering::Relaxed) && category == Category::Transaction)
                .then_some(Reason::QueueOverflow)
        }
    }

    #[test]
    fn the_factor_rises_once_per_unhealthy_look_up_to_ten_and_resets_when_healthy() {
        let monitor = Backpressure::new(true, Duration::ZERO);
        let sink = Full(AtomicBool::new(true));
        for expected in (1..=MAX_FACTOR).chain([MAX_FACTOR, MAX_FACTOR]) {
            assert!(
                monitor.tick(Some(&sink)).is_some(),
                "due again while lowered"
            );
            assert_eq!(monitor.factor(), expected);
        }
        sink.0.store(false, Ordering::Relaxed);
        assert_eq!(
            monitor.tick(Some(&sink)),
            None,
            "healthy: no wake-ups needed"
        );
        assert_eq!(monitor.factor(), 0);
        // A drop noted between looks is unhealthy even if the sink has room at the look.
        monitor.strained();
        monitor.tick(Some(&sink));
        assert_eq!(monitor.factor(), 1);
        monitor.tick(Some(&sink));
        assert_eq!(
            monitor.factor(),
            0,
            "the note is spent by the look that saw it"
        );
    }

    #[test]
    fn nothing_moves_between_looks_or_when_turned_off() {
        let monitor = Backpressure::new(true, Duration::from_secs(3600));
        let sink = Full(AtomicBool::new(true));
        monitor.strained();
        assert_eq!(monitor.tick(Some(&sink)), None, "not due for an hour");
        assert_eq!(monitor.factor(), 0);
        let off = Backpressure::new(false, Duration::ZERO);
        off.strained();
        assert_eq!(off.tick(Some(&sink)), None);
        assert_eq!(off.factor(), 0);
    }

    #[test]
    fn rates_are_halved_per_step() {
        assert_eq!(downsampled(1.0, 0), 1.0);
        assert_eq!(downsampled(1.0, 1), 0.5);
        assert_eq!(downsampled(0.5, 3), 0.0625);
        assert_eq!(downsampled(1.0, 10), 1.0 / 1024.0);
        assert_eq!(downsampled(1.0, 200), 1.0 / 1024.0);
    }
}
