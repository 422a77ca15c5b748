//! Trace identity: the ids of a request's trace, the span statuses, and the input of the
//! dynamic sampling context (the envelope's `trace` header and outgoing `baggage`).

use std::collections::BTreeMap;

use sentry_types::protocol::v7::{
    Context, DynamicSamplingContext, SpanId, SpanStatus, TraceContext, TraceId,
};

use super::ids::{new_span_id, new_trace_id, sample_rand_of};

/// What an incoming request said about the trace it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct IncomingTrace {
    pub(crate) trace_id: TraceId,
    pub(crate) parent_span_id: SpanId,
    /// The upstream sampling decision, when it made one.
    pub(crate) sampled: Option<bool>,
    /// The trace's `sample_rand` from `baggage` (or made up to agree with the upstream
    /// decision), once the trace headers were read together.
    pub(crate) sample_rand: Option<f64>,
    /// The rate the upstream service decided with, from `baggage`.
    pub(crate) sample_rate: Option<f64>,
}

/// The span status Sentry expects for an HTTP status code.
pub(crate) fn span_status_for(status: u16) -> SpanStatus {
    match status {
        100..=399 => SpanStatus::Ok,
        401 => SpanStatus::Unauthenticated,
        403 => SpanStatus::PermissionDenied,
        404 => SpanStatus::NotFound,
        409 => SpanStatus::AlreadyExists,
        429 => SpanStatus::ResourceExhausted,
        499 => SpanStatus::Cancelled,
        400..=498 => SpanStatus::InvalidArgument,
        501 => SpanStatus::Unimplemented,
        503 => SpanStatus::Unavailable,
        504 => SpanStatus::DeadlineExceeded,
        500..=599 => SpanStatus::InternalError,
        _ => SpanStatus::UnknownError,
    }
}

/// Trace identity of the current request (or of a capture outside any request).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TraceIds {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) parent_span_id: Option<SpanId>,
    pub(crate) sampled: bool,
    /// The rate the sampling decision was made with.
    pub(crate) sample_rate: f32,
    /// The trace's random number in `[0, 1)`, which every service of the trace decides with
    /// (`sample_rand < rate`).
    pub(crate) sample_rand: f64,
    /// The decision passed on downstream: this service's, or with tracing off here the
    /// caller's (`None`: left to the next service).
    pub(crate) decision: Option<bool>,
}

impl TraceIds {
    /// A trace started here, decided already.
    pub(crate) fn new_root(sampled: bool, sample_rate: f32) -> Self {
        let trace_id = new_trace_id();
        TraceIds::start(
            trace_id,
            None,
            sampled,
            sample_rate,
            sample_rand_of(trace_id),
        )
    }

    /// The trace of a request: `trace_id` is the incoming trace's when there is one.
    pub(crate) fn start(
        trace_id: TraceId,
        incoming: Option<&IncomingTrace>,
        sampled: bool,
        sample_rate: f32,
        sample_rand: f64,
    ) -> Self {
        TraceIds {
            trace_id,
            span_id: new_span_id(),
            parent_span_id: incoming.map(|i| i.parent_span_id),
            sampled,
            sample_rate,
            sample_rand,
            decision: Some(sampled),
        }
    }

    pub(crate) fn trace_context(&self, op: &str, status: Option<SpanStatus>) -> Context {
        // Every field spelled out: `..Default::default()` would draw random ids from a
        // ChaCha generator only to throw them away.
        Context::Trace(Box::new(TraceContext {
            span_id: self.span_id,
            trace_id: self.trace_id,
            parent_span_id: self.parent_span_id,
            op: Some(op.to_owned()),
            description: None,
            status,
            origin: Some(origin_of(op).to_owned()),
            data: BTreeMap::new(),
        }))
    }
}

/// The origin of a server span with this op: Sentry's `auto.<category>.<integration>`, the
/// category being gRPC for a gRPC call (sentry-python's is `auto.grpc.grpc`).
pub(crate) fn origin_of(op: &str) -> &'static str {
    if op.starts_with("grpc.") {
        "auto.grpc.lighttrace"
    } else {
        "auto.http.lighttrace"
    }
}

/// What the dynamic sampling context of an envelope (its `trace` header) and of outgoing
/// `baggage` is made from. The client adds its own facts (public key, release, environment).
#[derive(Clone, Debug)]
pub(crate) struct DscInput {
    pub(crate) trace_id: TraceId,
    pub(crate) transaction: Option<String>,
    pub(crate) sampled: bool,
    /// The rate the sampling decision was made with (`None`: the client's `traces_sample_rate`).
    pub(crate) sample_rate: Option<f32>,
    /// The trace's `sample_rand`.
    pub(crate) sample_rand: f64,
    /// The context an upstream service froze (from incoming `baggage`): forwarded as it is.
    pub(crate) upstream: Option<Box<DynamicSamplingContext>>,
}

impl DscInput {
    /// A fresh, unsampled trace, for captures outside any request.
    pub(crate) fn unsampled(trace_id: TraceId) -> DscInput {
        DscInput {
            trace_id,
            transaction: None,
            sampled: false,
            sample_rate: None,
            sample_rand: sample_rand_of(trace_id),
            upstream: None,
        }
    }

    /// The input for a request's trace.
    pub(crate) fn for_trace(
        trace: &TraceIds,
        transaction: Option<String>,
        upstream: Option<Box<DynamicSamplingContext>>,
    ) -> DscInput {
        DscInput {
            trace_id: trace.trace_id,
            transaction,
            sampled: trace.sampled,
            sample_rate: Some(trace.sample_rate),
            sample_rand: trace.sample_rand,
            upstream,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_span_statuses() {
        assert_eq!(span_status_for(200), SpanStatus::Ok);
        assert_eq!(span_status_for(404), SpanStatus::NotFound);
        assert_eq!(span_status_for(422), SpanStatus::InvalidArgument);
        assert_eq!(span_status_for(500), SpanStatus::InternalError);
        assert_eq!(span_status_for(503), SpanStatus::Unavailable);
    }
}
