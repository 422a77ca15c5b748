//! The plain values the request path hands to the client's worker: a finished request, and a
//! capture (a message, an error, a panic) with the context it was made in.

use std::time::SystemTime;

use sentry_types::protocol::v7::{DynamicSamplingContext, Event, Exception, Level, SpanId};
use sentry_types::Uuid;

use super::{ErrorValue, PanicDetails, RequestSnapshot, ScopeData, TraceIds};

/// A request whose scope has closed: everything its error event and transaction are built
/// from, taken out of the scope in one go.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) request: RequestSnapshot,
    pub(crate) trace: TraceIds,
    /// The sampling context an upstream service froze, forwarded unchanged.
    pub(crate) upstream_dsc: Option<Box<DynamicSamplingContext>>,
    /// What handlers added (`None`: nothing).
    pub(crate) data: Option<Box<ScopeData>>,
    /// The response status (499 when the client went away first).
    pub(crate) status: u16,
    pub(crate) finished: SystemTime,
    /// The error event to send, if the request failed and the event was sampled.
    pub(crate) failure: Option<Box<Failure>>,
}

/// How a request failed, as its error event will tell.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A response the classifier called a failure, with the error the handler attached.
    Response {
        event_id: Uuid,
        error: Option<ErrorValue>,
    },
    /// A panic in the handler (or in dropping its future).
    Panic {
        event_id: Uuid,
        details: PanicDetails,
    },
}

impl Finished {
    /// Whether a transaction is to be built (the request was sampled).
    pub(crate) fn traced(&self) -> bool {
        self.trace.sampled
    }

    /// An estimate of the heap bytes this keeps alive, for bounding queues by memory.
    pub(crate) fn retained_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.request.retained_bytes()
            + self.data.as_ref().map_or(0, |d| d.retained_bytes())
            + self.failure.as_ref().map_or(0, |_| 512)
    }
}

/// What a capture reports.
#[derive(Debug)]
pub(crate) enum Captured {
    Message(String),
    /// An error's exception list, made where the error was borrowed.
    Exceptions(Vec<Exception>),
    /// A panic, symbolicated only when the event is built.
    Panic(PanicDetails),
    /// An event the user built whole.
    Event(Box<Event<'static>>),
}

/// A capture: what it reports, and the scope it was made in.
#[derive(Debug)]
pub(crate) struct Capture {
    pub(crate) event_id: Uuid,
    pub(crate) level: Level,
    pub(crate) timestamp: SystemTime,
    pub(crate) what: Captured,
    /// A tag naming where it came from, such as `task` or `thread`.
    pub(crate) origin_tag: Option<(&'static str, String)>,
    pub(crate) context: CaptureContext,
}

/// The scope a capture was made in, copied.
#[derive(Debug, Default)]
pub(crate) struct CaptureContext {
    /// The request it ran in, if any.
    pub(crate) request: Option<RequestSnapshot>,
    /// The request's trace (a fresh unsampled one outside requests).
    pub(crate) trace: Option<TraceIds>,
    /// The span that was current where it was captured.
    pub(crate) span_id: Option<SpanId>,
    pub(crate) upstream_dsc: Option<Box<DynamicSamplingContext>>,
    pub(crate) data: Option<Box<ScopeData>>,
}

impl Capture {
    /// An estimate of the heap bytes this keeps alive, for bounding queues by memory.
    pub(crate) fn retained_bytes(&self) -> usize {
        let what = match &self.what {
            Captured::Message(m) => m.len(),
            Captured::Exceptions(e) => e
                .iter()
                .map(|e| 256 + e.value.as_ref().map_or(0, String::len))
                .sum(),
            // A captured stack: a few dozen frames of addresses.
            Captured::Panic(p) => 4096 + p.message.len(),
            Captured::Event(_) => 4096,
        };
        std::mem::size_of::<Self>()
            + what
            + self
                .context
                .request
                .as_ref()
                .map_or(0, |r| r.retained_bytes())
            + self.context.data.as_ref().map_or(0, |d| d.retained_bytes())
    }
}
