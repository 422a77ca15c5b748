//! The circuit breaker: after consecutive failures the sink stops sending, waits, then probes
//! the server with one request; a failed probe doubles the wait (up to a minute).

use std::time::{Duration, Instant};

/// The longest wait between probes.
const MAX_COOLDOWN: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub(super) struct Circuit {
    threshold: u32,
    first_cooldown: Duration,
    state: CircuitState,
}

#[derive(Debug, PartialEq)]
enum CircuitState {
    /// Sending; this many failures in a row so far.
    Closed(u32),
    /// Not sending until then; the wait that got us here.
    Open { until: Instant, cooldown: Duration },
    /// One probe allowed (it may be in flight).
    Probing { cooldown: Duration },
}

impl Circuit {
    pub(super) fn new(threshold: u32, first_cooldown: Duration) -> Circuit {
        Circuit {
            threshold,
            first_cooldown,
            state: CircuitState::Closed(0),
        }
    }

    /// How many requests may be in flight now, at most `concurrency`.
    pub(super) fn allowed(&mut self, now: Instant, concurrency: usize) -> usize {
        if let CircuitState::Open { until, cooldown } = self.state {
            if now >= until {
                self.state = CircuitState::Probing { cooldown };
            }
        }
        match self.state {
            CircuitState::Closed(_) => concurrency,
            CircuitState::Open { .. } => 0,
            CircuitState::Probing { .. } => 1,
        }
    }

    /// When the circuit will let a probe through, if it is open.
    pub(super) fn reopens_at(&self) -> Option<Instant> {
        match self.state {
            CircuitState::Open { until, .. } => Some(until),
            _ => None,
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        matches!(self.state, CircuitState::Closed(_))
    }

    /// Lets a probe through now (a flush wants to know whether the server is back).
    pub(super) fn probe_now(&mut self) {
        if let CircuitState::Open { cooldown, .. } = self.state {
            self.state = CircuitState::Probing { cooldown };
        }
    }

    pub(super) fn success(&mut self) {
        self.state = CircuitState::Closed(0);
    }

    pub(super) fn failure(&mut self, now: Instant) {
        self.state = match self.state {
            CircuitState::Closed(n) if n + 1 < self.threshold => CircuitState::Closed(n + 1),
            CircuitState::Closed(_) => CircuitState::Open {
                until: now + self.first_cooldown,
                cooldown: self.first_cooldown,
            },
            CircuitState::Probing { cooldown } | CircuitState::Open { cooldown, .. } => {
                let cooldown = (cooldown * 2).min(MAX_COOLDOWN);
                CircuitState::Open {
                    until: now + cooldown,
                    cooldown,
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_and_backs_off() {
        let t0 = Instant::now();
        let mut c = Circuit::new(3, Duration::from_secs(1));
        assert_eq!(c.allowed(t0, 4), 4);
        c.failure(t0);
        c.failure(t0);
        assert_eq!(c.allowed(t0, 4), 4, "two failures: still closed");
        c.failure(t0);
        assert_eq!(c.allowed(t0, 4), 0, "open");
        assert_eq!(c.reopens_at(), Some(t0 + Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(c.allowed(t1, 4), 1, "one probe");
        c.failure(t1);
        assert_eq!(c.reopens_at(), Some(t1 + Duration::from_secs(2)), "doubled");
        let t2 = t1 + Duration::from_secs(2);
        assert_eq!(c.allowed(t2, 4), 1);
        c.success();
        assert!(c.is_closed());
        assert_eq!(c.allowed(t2, 4), 4);
    }

    #[test]
    fn the_wait_is_capped_and_a_flush_can_probe_at_once() {
        let t = Instant::now();
        let mut c = Circuit::new(1, Duration::from_secs(40));
        c.failure(t);
        c.probe_now();
        assert_eq!(c.allowed(t, 4), 1);
        c.failure(t);
        assert_eq!(c.reopens_at(), Some(t + MAX_COOLDOWN));
    }
}
