//! Putting a trace on an outgoing request's headers: `sentry-trace`, the `sentry-` entries of
//! `baggage` (appended to other vendors' entries, replacing stale `sentry-` ones), and W3C
//! `traceparent` when it is on.

use http::header::{HeaderMap, HeaderValue};
use sentry_types::protocol::v7::{DynamicSamplingContext, SpanId, TraceId};

use super::headers::{self, BAGGAGE, SENTRY_TRACE, TRACEPARENT};

/// The trace an outgoing request continues.
pub(crate) struct Outgoing<'a> {
    pub(crate) trace_id: TraceId,
    /// The span the downstream service continues from.
    pub(crate) span_id: SpanId,
    /// The decision passed on (`None`: left to the downstream service).
    pub(crate) sampled: Option<bool>,
    /// The trace's sampling context, for `baggage`.
    pub(crate) dsc: &'a DynamicSamplingContext,
    pub(crate) traceparent: bool,
}

/// Writes `trace`'s headers into `headers`.
pub(crate) fn inject(trace: &Outgoing<'_>, headers: &mut HeaderMap) {
    let sentry_trace = headers::sentry_trace_value(trace.trace_id, trace.span_id, trace.sampled);
    if let Ok(v) = HeaderValue::from_str(&sentry_trace) {
        headers.insert(SENTRY_TRACE.clone(), v);
    }
    if trace.traceparent {
        let tp = headers::traceparent_value(trace.trace_id, trace.span_id, trace.sampled);
        if let Ok(v) = HeaderValue::from_str(&tp) {
            headers.insert(TRACEPARENT.clone(), v);
        }
    }
    let ours: Vec<(String, String)> = match serde_json::to_value(trace.dsc) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k, s)),
                serde_json::Value::Null => None,
                other => Some((k, other.to_string())),
            })
            .collect(),
        _ => Vec::new(),
    };
    let existing: Vec<&str> = headers
        .get_all(&BAGGAGE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let existing = (!existing.is_empty()).then(|| existing.join(","));
    let merged = headers::merge_baggage(existing.as_deref(), &ours);
    if let Ok(v) = HeaderValue::from_str(&merged) {
        headers.insert(BAGGAGE.clone(), v);
    }
}
