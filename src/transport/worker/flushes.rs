//! Flushes and timers of the delivery loop: when a flush is answered (everything sent or
//! counted, the server found down again, or its deadline), the final client report of a flush,
//! the periodic report, and when the loop must wake next.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::Delivery;
use crate::transport::pack::pack_report;

/// A flush waiting for the queue to empty.
pub(super) struct Flush {
    pub(super) deadline: Instant,
    pub(super) done: oneshot::Sender<bool>,
    /// Failures counted when it started: one more, with the circuit open, means the server is
    /// down and the flush gives up at once instead of waiting out its deadline.
    failures_at: u64,
    /// Its final client report was queued (once: a report that fails keeps its counts for
    /// later, it is not sent again and again).
    reported: bool,
}

impl Delivery {
    pub(super) fn flush(&mut self, timeout: Duration, done: oneshot::Sender<bool>) {
        // The server may be back: try now instead of waiting for the cooldown.
        self.circuit.probe_now();
        self.flushes.push(Flush {
            deadline: Instant::now() + timeout,
            done,
            failures_at: self.failures,
            reported: false,
        });
    }

    /// The next instant something is due: a report, the end of a cooldown, a flush's deadline.
    pub(super) fn next_wake(&self) -> Instant {
        let mut wake = self.next_report;
        if let Some(at) = self.circuit.reopens_at() {
            wake = wake.min(at);
        }
        for flush in &self.flushes {
            wake = wake.min(flush.deadline);
        }
        wake
    }

    pub(super) fn timers(&mut self) {
        let now = Instant::now();
        if now >= self.next_report {
            self.next_report = now + self.transport.options.report_interval;
            self.queue_report();
        }
        if self.flushes.is_empty() {
            return;
        }
        let idle = |d: &Self| d.queue.is_empty() && d.in_flight.is_empty();
        if idle(self) && self.flushes.iter().any(|f| !f.reported) {
            // The final report of a flush (none while everything is rate limited: the counts
            // then wait, and the flush does not wait for them).
            if self.transport.outcomes.has_pending() {
                self.queue_report();
            }
            for flush in &mut self.flushes {
                flush.reported = true;
            }
        }
        let spool_waits = self.spool.as_ref().is_some_and(|s| !s.is_empty())
            && self.circuit.is_closed()
            && !self.transport.all_limited();
        let complete = idle(self) && !spool_waits;
        let complete_for = |f: &Flush| complete && f.reported;
        let down = self.circuit.reopens_at().is_some();
        let expired = self
            .flushes
            .iter()
            .any(|f| now >= f.deadline || (down && self.failures > f.failures_at));
        if expired && !complete && self.spool.is_some() {
            // A flush ran out of time with a disk buffer: what is still queued goes to disk, so
            // a process that exits now keeps it.
            self.spool_queue();
        }
        let mut waiting = Vec::new();
        for flush in self.flushes.drain(..) {
            if complete_for(&flush) {
                let _ = flush.done.send(true);
            } else if down && self.failures > flush.failures_at {
                // The server failed again since the flush asked: nothing more will go before
                // the cooldown. What is queued stays queued (or, with a disk buffer, on disk).
                let _ = flush.done.send(false);
            } else if now >= flush.deadline {
                let _ = flush.done.send(false);
            } else {
                waiting.push(flush);
            }
        }
        self.flushes = waiting;
    }

    /// Queues a standalone client report when there are counts to report.
    pub(super) fn queue_report(&mut self) {
        if let Some(report) = self.transport.standalone_report() {
            if let Some(packed) = pack_report(&self.transport, &mut self.packer, report) {
                self.queue.push_back(packed);
            }
        }
    }
}
