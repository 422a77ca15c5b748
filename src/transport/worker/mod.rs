//! The delivery loop: one task on the sink's own thread that packs envelopes, keeps them in a
//! bounded queue, POSTs them on up to `concurrency` keep-alive connections, and does the
//! accounting.
//!
//! The loop never waits on a request: each POST runs as its own task with a deadline, and the
//! loop goes on taking envelopes, answering flushes and sending reports while requests hang.
//! A request that gets no answer is retried (up to `max_retries`); a server's answer never is.
//! Consecutive failures open the circuit: nothing is sent until a cooldown has passed, then one
//! probe. After a 429, one request at a time goes until an answer is not a 429, so a limit
//! that expires lets one envelope through, not a burst.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use http::StatusCode;
use sentry_types::protocol::v7::client_report::Reason;
use sentry_types::protocol::v7::Envelope;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::circuit::Circuit;
use super::conn::{Connection, Outcome};
use super::pack::{pack, pack_serialized, Packed, Packer};
use super::spool::Spool;
use super::{Msg, Transport};
use crate::wire::SerializedEnvelope;

mod close;
mod flushes;
mod replay;

use flushes::Flush;

pub(super) use close::drain_as_failed;

/// What a finished POST hands back: the connection (if it can be used again) and the answer.
type Posted = (Option<Connection>, Outcome);

/// A segment of the disk buffer being sent again.
struct Replay {
    seq: u64,
    /// Its envelopes not yet dealt with.
    outstanding: usize,
}

struct Delivery {
    transport: Arc<Transport>,
    queue: VecDeque<Packed>,
    idle: Vec<Connection>,
    in_flight: JoinSet<Posted>,
    /// The envelopes of the POSTs in flight, by task: kept here so that one whose task is
    /// cancelled (at shutdown) or fails is still accounted for.
    flying: HashMap<tokio::task::Id, Packed>,
    circuit: Circuit,
    packer: Packer,
    spool: Option<Spool>,
    replay: Option<Replay>,
    flushes: Vec<Flush>,
    /// After a 429: one request at a time until an answer is not a 429.
    probing_limit: bool,
    /// Requests that failed (no answer, 5xx) so far.
    failures: u64,
    next_report: Instant,
}

pub(super) async fn run(transport: Arc<Transport>, mut rx: mpsc::Receiver<Msg>) {
    let options = &transport.options;
    let spool = options
        .disk_buffer
        .as_ref()
        .and_then(|(dir, max)| Spool::open(dir, *max).ok());
    let mut delivery = Delivery {
        circuit: Circuit::new(options.circuit_failures, options.circuit_cooldown),
        packer: Packer::new(options.compression_level),
        next_report: Instant::now() + options.report_interval,
        transport: transport.clone(),
        queue: VecDeque::new(),
        idle: Vec::new(),
        in_flight: JoinSet::new(),
        flying: HashMap::new(),
        spool,
        replay: None,
        flushes: Vec::new(),
        probing_limit: false,
        failures: 0,
    };
    delivery.publish_spool();
    loop {
        delivery.dispatch();
        // A dispatch can settle a flush by itself (what a rate limit holds back is counted, not
        // sent): answer it now rather than at its deadline; a report this queues goes at once.
        delivery.timers();
        delivery.dispatch();
        let wake = delivery.next_wake();
        tokio::select! {
            Some(joined) = delivery.in_flight.join_next_with_id(), if !delivery.in_flight.is_empty() => {
                delivery.joined(joined);
            }
            msg = rx.recv() => match msg {
                Some(Msg::Envelope(envelope)) => delivery.accept(*envelope),
                Some(Msg::Serialized(envelope)) => delivery.accept_serialized(envelope),
                Some(Msg::Flush { timeout, done }) => delivery.flush(timeout, done),
                Some(Msg::Close { timeout, done }) => {
                    let delivered = delivery.close(timeout).await;
                    let _ = done.send(delivered);
                    return;
                }
                None => break,
            },
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    // Every handle is gone without a close: keep or count what is left.
    delivery.close(transport.options.request_timeout).await;
}

impl Delivery {
    fn capacity(&self) -> usize {
        self.transport.options.queue_capacity
    }

    fn publish_queue(&self) {
        self.transport
            .queued
            .store(self.queue.len(), Ordering::Relaxed);
    }

    fn publish_spool(&self) {
        let bytes = self.spool.as_ref().map_or(0, Spool::bytes);
        self.transport.spooled.store(bytes, Ordering::Relaxed);
    }

    /// Packs an envelope into the queue; a full queue spools it or drops and counts it.
    fn accept(&mut self, envelope: Envelope) {
        let transport = &*self.transport;
        // A report rides along only when it will go at once and cannot be spooled with it.
        let report = (self.spool.is_none() && self.queue.is_empty())
            .then(|| transport.outcomes.take_report())
            .flatten();
        let Some(packed) = pack(transport, &mut self.packer, envelope, report) else {
            return;
        };
        self.enqueue(packed);
    }

    /// Packs an envelope the client serialised into the queue, like [`accept`](Self::accept).
    fn accept_serialized(&mut self, envelope: SerializedEnvelope) {
        let transport = &*self.transport;
        let report = (self.spool.is_none() && self.queue.is_empty())
            .then(|| transport.outcomes.take_report())
            .flatten();
        let Some(packed) = pack_serialized(transport, &mut self.packer, envelope, report) else {
            return;
        };
        self.enqueue(packed);
    }

    /// A packed envelope into the queue; a full queue spools it or drops and counts it.
    fn enqueue(&mut self, packed: Packed) {
        if self.queue.len() >= self.capacity() {
            self.overflow(packed);
        } else {
            self.queue.push_back(packed);
        }
        self.publish_queue();
    }

    /// What the full queue cannot take: to disk, or dropped and counted.
    fn overflow(&mut self, packed: Packed) {
        self.lost(packed, Reason::QueueOverflow);
    }

    /// An envelope that will not be delivered now: kept on disk when there is a disk buffer,
    /// else counted under `reason`. Its report's counts go back to pending either way.
    fn lost(&mut self, mut packed: Packed, reason: Reason) {
        let outcomes = &self.transport.outcomes;
        if let Some(counts) = packed.report.take() {
            outcomes.restore(counts);
        }
        if packed.spooled.is_some() {
            // Still on disk: sent again later.
            return;
        }
        if let (Some(spool), Some(_)) = (self.spool.as_mut(), packed.category()) {
            let evicted = match spool.push(&packed) {
                Ok(evicted) => evicted,
                Err(all) => all,
            };
            for (category, n) in evicted {
                outcomes.count(Reason::BufferOverflow, category, n);
            }
            self.publish_spool();
            return;
        }
        for (category, n) in &packed.items {
            outcomes.count(reason, *category, *n);
        }
    }

    /// Starts as many POSTs as the circuit, the rate limits and the connections allow.
    fn dispatch(&mut self) {
        self.maybe_replay();
        let options = &self.transport.options;
        let mut allowed = self.circuit.allowed(Instant::now(), options.concurrency);
        if self.probing_limit {
            allowed = allowed.min(1);
        }
        while self.in_flight.len() < allowed {
            let Some(mut packed) = self.queue.pop_front() else {
                break;
            };
            if let Some(category) = packed.category() {
                let limited = {
                    let limits = self
                        .transport
                        .limits
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    limits.is_limited(category, Instant::now())
                };
                if limited {
                    if let Some(seq) = packed.spooled {
                        // Kept on disk until the limit is over.
                        self.abandon_replay(seq);
                        continue;
                    }
                    if let Some(counts) = packed.report.take() {
                        self.transport.outcomes.restore(counts);
                    }
                    for (category, n) in &packed.items {
                        self.transport
                            .outcomes
                            .count(Reason::RatelimitBackoff, *category, *n);
                    }
                    continue;
                }
            }
            let transport = self.transport.clone();
            let connection = self.idle.pop();
            let (body, gzipped) = (packed.body.clone(), packed.gzipped);
            let task = self.in_flight.spawn(async move {
                let options = &transport.options;
                transport
                    .endpoint
                    .post(
                        connection,
                        body,
                        gzipped,
                        options.connect_timeout,
                        options.request_timeout,
                    )
                    .await
            });
            self.flying.insert(task.id(), packed);
        }
        self.publish_queue();
    }

    /// A POST's task ended: with an answer, or cancelled or failed (counted as no answer).
    fn joined(&mut self, joined: Result<(tokio::task::Id, Posted), tokio::task::JoinError>) {
        let (id, posted) = match joined {
            Ok((id, posted)) => (id, posted),
            Err(error) => (error.id(), (None, Outcome::NoAnswer)),
        };
        if let Some(packed) = self.flying.remove(&id) {
            self.finish(posted, packed);
        }
    }

    /// What a POST's answer means for the envelope, the circuit and the accounting.
    fn finish(&mut self, (connection, answer): Posted, mut packed: Packed) {
        if let Some(connection) = connection {
            self.idle.push(connection);
        }
        let now = Instant::now();
        let outcomes = &self.transport.outcomes;
        match answer {
            Outcome::Answered(status, headers) => {
                {
                    let mut limits = self
                        .transport
                        .limits
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    limits.update_from(
                        headers.sentry.as_deref(),
                        headers.retry_after.as_deref(),
                        status.as_u16(),
                        now,
                    );
                }
                self.probing_limit = status == StatusCode::TOO_MANY_REQUESTS;
                if status.is_server_error() {
                    self.failures += 1;
                    self.circuit.failure(now);
                } else {
                    self.circuit.success();
                }
                match status.as_u16() {
                    200..=299 => {
                        // A client report alone is the sink's own bookkeeping, not delivery.
                        if !packed.items.is_empty() {
                            self.transport.delivered.fetch_add(1, Ordering::Relaxed);
                        }
                        self.resolved(&packed);
                    }
                    // The server counted what it rate-limited: nothing is counted again, but
                    // the counts of a report riding along are put back.
                    429 => {
                        if let Some(counts) = packed.report.take() {
                            outcomes.restore(counts);
                        }
                        if let Some(seq) = packed.spooled {
                            self.abandon_replay(seq);
                        }
                    }
                    500..=599 => {
                        if let Some(seq) = packed.spooled {
                            self.abandon_replay(seq);
                        } else if self.spool.is_some() {
                            self.lost(packed, Reason::SendError);
                        } else {
                            if let Some(counts) = packed.report.take() {
                                outcomes.restore(counts);
                            }
                            for (category, n) in &packed.items {
                                outcomes.count(Reason::SendError, *category, *n);
                            }
                        }
                    }
                    _ => {
                        // Refused for good: counted, and the report it carried is not resent
                        // (it may be what the server refuses).
                        for (category, n) in &packed.items {
                            outcomes.count(Reason::SendError, *category, *n);
                        }
                        self.resolved(&packed);
                    }
                }
            }
            Outcome::NoAnswer => {
                self.failures += 1;
                self.circuit.failure(now);
                if let Some(seq) = packed.spooled {
                    self.abandon_replay(seq);
                } else if packed.attempts < self.transport.options.max_retries {
                    packed.attempts += 1;
                    self.queue.push_front(packed);
                } else {
                    self.lost(packed, Reason::NetworkError);
                }
            }
            Outcome::Unsendable => {
                if let Some(counts) = packed.report.take() {
                    outcomes.restore(counts);
                }
                for (category, n) in &packed.items {
                    outcomes.count(Reason::InternalSdkError, *category, *n);
                }
                self.resolved(&packed);
            }
        }
        self.publish_queue();
    }

    fn spool_queue(&mut self) {
        let queued: Vec<Packed> = self.queue.drain(..).collect();
        for packed in queued {
            self.lost(packed, Reason::NetworkError);
        }
        self.publish_queue();
    }
}
