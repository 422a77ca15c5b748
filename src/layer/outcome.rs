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
use crate::client::Job;
use crate::event::{self, Failure};
use crate::scope::{Caught, RequestScope};
use crate::util::unwind::contain;

/// Per-request tracking state, consumed when the request ends.
pub(crate) struct Tracking {
    scope: Arc<RequestScope>,
    config: Arc<LayerConfig>,
}

impl Tracking {
    pub(crate) fn new(scope: Arc<RequestScope>, config: Arc<LayerConfig>) -> Self {
        Tracking { scope, config }
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
        if !failed && !self.scope.trace.sampled {
            return;
        }
        let failure = failed.then(|| self.event_id()).flatten().map(|event_id| {
            self.set_event_id(response.headers_mut(), event_id);
            Box::new(Failure::Response {
                event_id,
                error: reported.map(ReportedError::into_value),
            })
        });
        self.finish(status.as_u16(), failure);
    }

    /// Reports a caught panic and the transaction, with `status` (500 when the layer answers
    /// for the panic, 499 when no response went out). `headers` receive the event id header.
    pub(crate) fn on_panic(
        self,
        caught: Caught,
        headers: Option<&mut http::HeaderMap>,
        status: u16,
    ) {
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
        self.finish(status, failure);
    }

    /// The request ended without a response to classify (cancelled, or the service's error):
    /// only the transaction, if sampled.
    pub(crate) fn on_end(self, status: u16) {
        self.finish(status, None);
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

    fn finish(self, status: u16, failure: Option<Box<Failure>>) {
        if failure.is_none() && !self.scope.trace.sampled {
            return;
        }
        let client = &self.scope.client;
        let Some(mut finished) = self.scope.finish(status, SystemTime::now(), failure) else {
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
