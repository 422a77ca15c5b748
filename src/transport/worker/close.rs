//! Shutting the delivery loop down: deliver what can be, keep or count the rest, send a last
//! report.

use std::time::{Duration, Instant};

use sentry_types::protocol::v7::client_report::Reason;
use tokio::sync::mpsc;

use super::{Delivery, Msg, Outcome, Transport};
use crate::transport::pack::pack_report;

impl Delivery {
    /// Shutting down within `timeout`: deliver what can be (a failing server is probed once
    /// more first), then cancel what is still in flight, keep on disk (with a disk buffer) or
    /// count what is left, and send a last client report with the time kept for it. Returns
    /// whether everything was delivered.
    pub(super) async fn close(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        // The last report's share of the time.
        let last_call = deadline - (timeout / 4).min(Duration::from_millis(500));
        self.circuit.probe_now();
        while !(self.queue.is_empty() && self.in_flight.is_empty()) {
            self.dispatch();
            if self.in_flight.is_empty() {
                // Nothing may go (an open circuit after the probe, rate limits).
                break;
            }
            match tokio::time::timeout_at(last_call.into(), self.in_flight.join_next_with_id())
                .await
            {
                Ok(Some(joined)) => self.joined(joined),
                Ok(None) | Err(_) => break,
            }
        }
        let delivered = self.queue.is_empty() && self.in_flight.is_empty();
        // Out of time: cancelled, and counted (or kept on disk) as getting no answer.
        self.in_flight.abort_all();
        while let Some(joined) = self.in_flight.join_next_with_id().await {
            self.joined(joined);
        }
        self.spool_queue();
        if let Some(spool) = self.spool.as_mut() {
            spool.sync();
        }
        self.last_report(deadline).await;
        for flush in self.flushes.drain(..) {
            let _ = flush.done.send(false);
        }
        delivered
    }

    /// The counts still pending, in one report on a fresh connection, whatever the circuit
    /// says: the last chance to deliver them.
    async fn last_report(&mut self, deadline: Instant) {
        let Some(report) = self.transport.standalone_report() else {
            return;
        };
        let Some(packed) = pack_report(&self.transport, &mut self.packer, report) else {
            return;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let options = &self.transport.options;
        let (_, answer) = self
            .transport
            .endpoint
            .post(
                None,
                packed.body.clone(),
                packed.gzipped,
                options.connect_timeout.min(left),
                left,
            )
            .await;
        let delivered = matches!(&answer, Outcome::Answered(s, _) if s.is_success());
        if !delivered {
            if let Some(counts) = packed.report {
                self.transport.outcomes.restore(counts);
            }
        }
    }
}

/// ReportCounts everything as lost when the delivery thread could not get a runtime.
pub(in crate::transport) fn drain_as_failed(transport: &Transport, mut rx: mpsc::Receiver<Msg>) {
    while let Some(msg) = rx.blocking_recv() {
        match msg {
            Msg::Envelope(e) => transport
                .outcomes
                .count_envelope(&e, Reason::InternalSdkError),
            Msg::Serialized(e) => transport.count_items(e.items(), Reason::InternalSdkError),
            Msg::Flush { done, .. } => {
                let _ = done.send(false);
            }
            Msg::Close { done, .. } => {
                let _ = done.send(false);
            }
        }
    }
}
