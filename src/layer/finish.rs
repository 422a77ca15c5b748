//! What a request's end makes of its scope: the response is classified, the scope finishes into
//! plain data (with the error event to send, if any), and the client's worker gets it. The
//! request pays for a classification, a lock and a push.

use std::sync::Arc;
use std::time::SystemTime;

use http::Response;
use sentry_types::protocol::v7::client_report::{Category, Reason};
use sentry_types::Uuid;

use super::error::ReportedError;
use super::{ClassifyResponse, LayerConfig, ServerErrors};
use crate::client::{Health, Job};
use crate::event::{self, Failure};
use crate::scope::{Caught, RequestScope};
use crate::util::unwind::contain;

/// Per-request tracking state, consumed when the request ends.
pub(crate) struct Tracking {
    scope: Arc<RequestScope>,
    config: Arc<LayerConfig>,
    /// The request's latency slot, when latency is tracked.
    slot: Option<u32>,
    started: SystemTime,
}

impl Tracking {
    pub(crate) fn new(
        scope: Arc<RequestScope>,
        config: Arc<LayerConfig>,
        slot: Option<u32>,
        started: SystemTime,
    ) -> Self {
        Tracking {
            scope,
            config,
            slot,
            started,
        }
    }

    pub(crate) fn scope(&self) -> &Arc<RequestScope> {
        &self.scope
    }

    /// Classifies the response; a failure becomes an error event (with the handler's error,
    /// if it attached one), a sampled request a transaction.
    pub(crate) fn on_response<B>(self, response: &mut Response<B>) {
        let status = response.status();
        let reported = response.extensions_mut().remove::<ReportedError>();
        let failed = match &self.config.classifier {
            // A classifier that panics has no opinion: the default (5xx) decides.
            Some(classifier) => contain(|| classifier.is_failure(status))
                .unwrap_or_else(|| ServerErrors.is_failure(status)),
            None => ServerErrors.is_failure(status),
        };
        let options = self.scope.client.options_ref();
        let failed = failed && !options.ignore_error_statuses.contains(&status.as_u16());
        // An error `ignore_errors` drops is no error event, so the request did not error: it
        // is counted (as the worker counts the ignored errors it sees) and not reported. Its
        // chain's type names are only worked out when some are ignored.
        let reported = reported.map(ReportedError::into_value);
        let ignored = failed
            && options.ignores_errors()
            && reported.as_ref().is_some_and(|error| {
                let names = error.type_names();
                options.ignores_error(names.iter().map(String::as_str))
            });
        if ignored {
            self.scope
                .client
                .record_discard(Reason::EventProcessor, Category::Error, 1);
        }
        let failed = failed && !ignored;
        let ended = self.count(status.as_u16(), || {
            if failed {
                Health::Errored
            } else {
                self.health()
            }
        });
        self.set_trace_header(response.headers_mut());
        if !failed && !self.scope.trace.sampled {
            return;
        }
        let failure = failed.then(|| self.event_id()).flatten().map(|event_id| {
            self.set_event_id(response.headers_mut(), event_id);
            Box::new(Failure::Response {
                event_id,
                error: reported,
            })
        });
        self.finish(status.as_u16(), failure, ended);
    }

    /// Reports a caught panic and the transaction, with `status` (500 when the layer answers
    /// for the panic, 499 when no response went out). `headers` receive the event id header.
    pub(crate) fn on_panic(
        self,
        caught: Caught,
        headers: Option<&mut http::HeaderMap>,
        status: u16,
    ) {
        let ended = self.count(status, || Health::Crashed);
        let mut headers = headers;
        if let Some(headers) = headers.as_deref_mut() {
            self.set_trace_header(headers);
        }
        let failure = match caught {
            Caught::Fresh(details) => self.event_id().map(|event_id| {
                if let Some(headers) = headers {
                    self.set_event_id(headers, event_id);
                }
                Box::new(Failure::Panic { event_id, details })
            }),
            // Reported further in (a scoped task awaited inline).
            Caught::AlreadyReported => None,
        };
        self.finish(status, failure, ended);
    }

    /// The request ended without a response to classify (cancelled, or the service's error):
    /// only the transaction, if sampled.
    pub(crate) fn on_end(self, status: u16) {
        let ended = self.count(status, || self.health());
        self.finish(status, None, ended);
    }

    /// Counts the request into its route's latency and, with a release, into release health;
    /// the time it took as the request's end, if it read the clock.
    fn count(&self, status: u16, health: impl FnOnce() -> Health) -> Option<SystemTime> {
        let client = &self.scope.client;
        let health = client.counts_sessions().then(health);
        client.request_ended(self.slot, self.started, status, health)
    }

    /// Errored if an error event was captured during the request.
    fn health(&self) -> Health {
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
    /// so a dropped panic costs no symbol lookups).
    fn event_id(&self) -> Option<Uuid> {
        self.scope.client.sample_error().then(event::new_event_id)
    }

    fn set_event_id(&self, headers: &mut http::HeaderMap, id: Uuid) {
        if let Some(header) = &self.config.event_id_header {
            if let Ok(value) = http::HeaderValue::from_str(&id.simple().to_string()) {
                headers.insert(header.clone(), value);
            }
        }
    }

    /// Queues the request's event and transaction, ended at `ended` (the clock read that
    /// counted the request, when there was one).
    fn finish(self, status: u16, failure: Option<Box<Failure>>, ended: Option<SystemTime>) {
        if failure.is_none() && !self.scope.trace.sampled {
            return;
        }
        let client = &self.scope.client;
        let ended = ended.unwrap_or_else(SystemTime::now);
        let Some(mut finished) = self.scope.finish(status, ended, failure) else {
            return;
        };
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
