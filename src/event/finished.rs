//! The plain values the request path hands to the client's worker: a finished request, and a
//! capture (a message, an error, a panic) with the context it was made in.

use std::time::SystemTime;

use sentry_types::protocol::v7::{
    DynamicSamplingContext, Event, Exception, Level, SpanId, SpanStatus, Value,
};
use sentry_types::Uuid;

use super::grpc;
use super::{span_status_for, ErrorValue, PanicDetails, RequestSnapshot, ScopeData, TraceIds};

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
    /// A gRPC call's status code (0-16), from the response's headers or trailers.
    pub(crate) grpc_status: Option<i32>,
    /// How the response's body ended when not as its head said: cut short (`cancelled`) or
    /// failed (`internal_error`).
    pub(crate) body_status: Option<SpanStatus>,
}

/// How a request ended, as the layer saw it: what [`Finished`] records besides the scope.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestOutcome {
    /// The response status (499 when the client went away before it).
    pub(crate) status: u16,
    /// A gRPC call's status code, when one was read.
    pub(crate) grpc_status: Option<i32>,
    /// How the body ended, when not as the head said.
    pub(crate) body_status: Option<SpanStatus>,
}

impl RequestOutcome {
    /// A response with this status, its body complete.
    pub(crate) fn status(status: u16) -> Self {
        RequestOutcome {
            status,
            grpc_status: None,
            body_status: None,
        }
    }

    /// The status the request's route counts it with: 499 for a body cut short, 500 for one
    /// that failed, the HTTP status a gRPC status stands for, else the response's.
    pub(crate) fn latency_status(&self) -> u16 {
        match (self.body_status, self.grpc_status) {
            (Some(SpanStatus::Cancelled), _) => 499,
            (Some(_), _) => 500,
            (None, Some(code)) => grpc::http_status(i64::from(code)),
            (None, _) => self.status,
        }
    }
}

impl Failure {
    /// The id of the event this failure becomes.
    pub(crate) fn event_id(&self) -> Uuid {
        match self {
            Failure::Response { event_id, .. }
            | Failure::Panic { event_id, .. }
            | Failure::Grpc { event_id, .. } => *event_id,
        }
    }
}

/// How a request failed, as its error event will tell.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A response the classifier called a failure, with the error the handler attached.
    Response {
        event_id: Uuid,
        error: Option<ErrorValue>,
    },
    /// A panic in the handler (or in dropping its future, or in polling its response body).
    Panic {
        event_id: Uuid,
        details: PanicDetails,
    },
    /// A gRPC status the classifier calls a failure, with its message and, when tonic gives
    /// it, the error it was made from.
    Grpc {
        event_id: Uuid,
        code: i32,
        message: Option<String>,
        exceptions: Option<Vec<Exception>>,
    },
}

impl Finished {
    /// The server span's op: `grpc.server` for a gRPC call, else `http.server`.
    pub(crate) fn op(&self) -> &'static str {
        if self.request.grpc {
            "grpc.server"
        } else {
            "http.server"
        }
    }

    /// The server span's status: how the body ended, when it did not end as its head said;
    /// else the gRPC status's (a call cut short has one); else the HTTP status's (a cancelled
    /// request's 499 is `cancelled`).
    pub(crate) fn span_status(&self) -> SpanStatus {
        if let Some(status) = self.body_status {
            return status;
        }
        match self
            .grpc_status
            .and_then(|c| grpc::span_status(i64::from(c)))
        {
            Some(status) => status,
            None => span_status_for(self.status),
        }
    }

    /// The server span's data, searchable by status as Sentry's other SDKs make it:
    /// `http.response.status_code`, or for a gRPC call OpenTelemetry's RPC attributes
    /// (`rpc.system`, `rpc.method`, and the status as `rpc.grpc.status_code` and, by name,
    /// `rpc.response.status_code`).
    pub(crate) fn span_data(&self) -> Vec<(&'static str, Value)> {
        if !self.request.grpc {
            return vec![("http.response.status_code", Value::from(self.status))];
        }
        let mut data = vec![("rpc.system", Value::from("grpc"))];
        // An unknown method's name is the client's to choose: left out, as its route is.
        if self.request.route.is_some() {
            data.push(("rpc.method", Value::from(self.request.transaction_name())));
        }
        if let Some(code) = self.grpc_status {
            data.push(("rpc.grpc.status_code", Value::from(code)));
            if let Some(name) = grpc::code_name(i64::from(code)) {
                data.push(("rpc.response.status_code", Value::from(name)));
            }
        }
        data
    }

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
