//! What a request's end makes of its scope. The response's head is classified when it goes
//! out (a failure's event id can still go in its headers); the request ends when its body does
//! (its last frame, its trailers, an error, a panic, or a drop half-way), and only then is it
//! counted and its scope finished into plain data for the client's worker. The request pays for
//! a classification, a lock and a push.

use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, Response, StatusCode};
use sentry_types::protocol::v7::client_report::{Category, Reason};
use sentry_types::Uuid;

use super::ending::{BodyEnd, Ending, Pending};
use super::error::ReportedError;
use super::grpc::{self, GrpcCall};
use super::LayerConfig;
use crate::client::{Health, Job};
use crate::event::{self, Failure, RequestOutcome};
use crate::scope::{Caught, RequestScope};

/// Per-request tracking state, consumed when the request ends.
pub(crate) struct Tracking {
    pub(super) scope: Arc<RequestScope>,
    pub(super) config: Arc<LayerConfig>,
    /// The request's latency slot, when latency is tracked.
    pub(super) slot: Option<u32>,
    pub(super) started: SystemTime,
    /// A gRPC call: its status is read from the response's head or trailers.
    pub(super) grpc: Option<GrpcCall>,
    /// A gRPC method the service does not have: counted and named as an unmatched route.
    pub(super) unmatched: bool,
}

impl Tracking {
    pub(crate) fn new(
        scope: Arc<RequestScope>,
        config: Arc<LayerConfig>,
        slot: Option<u32>,
        started: SystemTime,
        grpc: Option<GrpcCall>,
    ) -> Self {
        Tracking {
            scope,
            config,
            slot,
            started,
            grpc,
            unmatched: false,
        }
    }

    pub(crate) fn scope(&self) -> &Arc<RequestScope> {
        &self.scope
    }

    /// Classifies the response's head: a failure becomes an error event (with the handler's
    /// error, if it attached one), sent with the transaction when the body ends. A gRPC call's
    /// status is read from the head when it is there (an error answered at once), else from
    /// the trailers.
    pub(crate) fn on_response<B>(self, response: &mut Response<B>) -> Ending {
        let status = response.status();
        self.set_trace_header(response.headers_mut());
        if self.grpc.is_some() && status == StatusCode::OK {
            let known = grpc::status_of_head(response);
            let mut pending = Pending::new(self, status.as_u16());
            if let Some(known) = known {
                pending.grpc_ended(known, Some(response.headers_mut()));
            }
            return Ending::Tracked(pending);
        }
        let reported = response.extensions_mut().remove::<ReportedError>();
        let failed = self.config.is_failure(status)
            && !self
                .config
                .client
                .options_ref()
                .ignore_error_statuses
                .contains(&status.as_u16());
        let mut pending = Pending::new(self, status.as_u16());
        if failed {
            let error = reported.map(ReportedError::into_value);
            pending.fail_with_error(error, Some(response.headers_mut()));
        }
        Ending::Tracked(pending)
    }

    /// Reports a caught panic and the transaction, ended as `outcome` says (500, or a gRPC
    /// `INTERNAL`, when the layer answers for the panic; 499 when no response went out).
    /// `headers` receive the event id header.
    pub(crate) fn on_panic(
        self,
        caught: Caught,
        headers: Option<&mut http::HeaderMap>,
        outcome: RequestOutcome,
    ) {
        let ended = self.count(outcome.latency_status(), || Health::Crashed);
        let mut headers = headers;
        if let Some(headers) = headers.as_deref_mut() {
            self.set_trace_header(headers);
        }
        let failure = match caught {
            Caught::Fresh(details) => self
                .event_id(headers)
                .map(|event_id| Box::new(Failure::Panic { event_id, details })),
            // Reported further in (a scoped task awaited inline).
            Caught::AlreadyReported => None,
        };
        self.finish(outcome, failure, ended);
    }

    /// The request's future was dropped before its response: the client went away, or a
    /// timeout fired. A gRPC call records why (its deadline, or a cancel).
    pub(crate) fn on_cancel(self) {
        if self.grpc.is_none() {
            return self.on_end(499);
        }
        let mut pending = Pending::new(self, 499);
        pending.cut_short();
        pending.end(BodyEnd::Complete);
    }

    /// The call named a method the service does not have (its answer was `UNIMPLEMENTED`):
    /// like a request that matched no route, it shares one name and one latency entry with
    /// every other such call, so scans cannot multiply names.
    pub(super) fn unmatched(&mut self) {
        self.unmatched = true;
        if self.slot.is_some() {
            self.slot = self.scope.client.latency_slot(&http::Method::POST, None);
        }
    }

    /// Whether a gRPC call's deadline has passed (within its timer's slack: a server's timeout
    /// starts a moment before the layer's clock does).
    pub(super) fn deadline_passed(&self) -> bool {
        let Some(timeout) = self.grpc.and_then(|call| call.timeout) else {
            return false;
        };
        let slack = (timeout / 50).max(std::time::Duration::from_millis(2));
        let elapsed = self.started.elapsed().unwrap_or_default();
        elapsed + slack >= timeout
    }

    /// The request ended without a response to classify (cancelled, or the service's error):
    /// only the transaction, if sampled.
    pub(crate) fn on_end(self, status: u16) {
        let ended = self.count(status, || self.health());
        self.finish(RequestOutcome::status(status), None, ended);
    }

    /// Counts the request into its route's latency and, with a release, into release health;
    /// the time it took as the request's end, if it read the clock.
    pub(super) fn count(&self, status: u16, health: impl FnOnce() -> Health) -> Option<SystemTime> {
        let client = &self.scope.client;
        let health = client.counts_sessions().then(health);
        client.request_ended(self.slot, self.started, status, health)
    }

    /// Errored if an error event was captured during the request.
    pub(super) fn health(&self) -> Health {
        if self.scope.errored() {
            Health::Errored
        } else {
            Health::Exited
        }
    }

    /// The trace id header, when the layer is asked for one.
    fn set_trace_header(&self, headers: &mut http::HeaderMap) {
        let Some(name) = &self.config.trace_response_header else {
            return;
        };
        let trace = &self.scope.trace;
        let flags = if trace.sampled { "01" } else { "00" };
        let value = format!("00-{}-{}-{flags}", trace.trace_id, trace.span_id);
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            headers.insert(name.clone(), value);
        }
    }

    /// A fresh event id, if `sample_rate` keeps the event (decided before anything is built,
    /// so a dropped panic costs no symbol lookups), written into `headers` when the layer is
    /// asked to.
    pub(super) fn event_id(&self, headers: Option<&mut HeaderMap>) -> Option<Uuid> {
        let id = self.scope.client.sample_error().then(event::new_event_id)?;
        if let (Some(header), Some(headers)) = (&self.config.event_id_header, headers) {
            if let Ok(value) = http::HeaderValue::from_str(&id.simple().to_string()) {
                headers.insert(header.clone(), value);
            }
        }
        Some(id)
    }

    /// Queues the request's event and transaction, ended at `ended` (the clock read that
    /// counted the request, when there was one).
    pub(super) fn finish(
        self,
        outcome: RequestOutcome,
        failure: Option<Box<Failure>>,
        ended: Option<SystemTime>,
    ) {
        if failure.is_none() && !self.scope.trace.sampled {
            return;
        }
        let client = &self.scope.client;
        let ended = ended.unwrap_or_else(SystemTime::now);
        let status = outcome.status;
        let Some(mut finished) = self.scope.finish(outcome, ended, failure) else {
            return;
        };
        if self.unmatched {
            // The method's name goes with its route (a name the user gave stays).
            finished.request.route = None;
        }
        if finished.traced()
            && client
                .options_ref()
                .trace_ignore_status_codes
                .contains(&status)
        {
            // Dropped before it is built, counted with its spans (the root one included).
            let spans = finished.data.as_ref().map_or(0, |d| d.spans.len()) + 1;
            client.record_discard(Reason::EventProcessor, Category::Transaction, 1);
            client.record_discard(
                Reason::EventProcessor,
                Category::Span,
                u32::try_from(spans).unwrap_or(u32::MAX),
            );
            finished.trace.sampled = false;
        }
        if finished.traced() || finished.failure.is_some() {
            client.submit(Job::Request(finished));
        }
    }
}
