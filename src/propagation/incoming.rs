//! Continuing an incoming trace: the trace headers of a request, and the sampling context an
//! upstream service froze in its `baggage`.

use http::header::{HeaderMap, HeaderName};
use sentry_types::protocol::v7::DynamicSamplingContext;

use super::headers::{self as propagation, BAGGAGE, SENTRY_TRACE, TRACEPARENT};
use crate::event::IncomingTrace;

/// Whether `name` is one of the headers an incoming trace is read from (`baggage` alone does
/// not continue a trace). Lets the layer skip [`incoming_trace`]'s lookups for requests that
/// carry neither, noticed while it copies the headers anyway.
pub(crate) fn is_trace_header(name: &HeaderName) -> bool {
    name == SENTRY_TRACE || name == TRACEPARENT
}

/// The trace an incoming request continues (`sentry-trace`, else `traceparent`), and the sampling
/// context an upstream service froze in `baggage`. Malformed headers are ignored, and so is a
/// trace of another Sentry organization (see
/// [`strict_trace_continuation`](crate::Options::strict_trace_continuation)).
pub(crate) fn incoming_trace(
    headers: &HeaderMap,
    options: &crate::options::Options,
) -> Option<(IncomingTrace, Option<Box<DynamicSamplingContext>>)> {
    // Constant names: looking up a `&str` would parse the name on every request.
    let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let incoming = text(&SENTRY_TRACE)
        .and_then(propagation::parse_sentry_trace)
        .or_else(|| text(&TRACEPARENT).and_then(propagation::parse_traceparent))?;
    let entries: Vec<(String, String)> = headers
        .get_all(&BAGGAGE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(propagation::sentry_baggage)
        .collect();
    let org = entries
        .iter()
        .find(|(k, _)| k == "org_id")
        .map(|(_, v)| v.trim().parse::<u64>().ok());
    // An org id that does not parse is an org id that does not match.
    let org = match org {
        Some(Some(id)) => Some(id),
        Some(None) => Some(u64::MAX),
        None => None,
    };
    if !options.continues_trace_of(org) {
        return None;
    }
    let upstream = upstream_dsc(&entries, &incoming).map(Box::new);
    Some((incoming, upstream))
}

/// The upstream sampling context, when it is complete enough for Relay (trace id and public
/// key) and belongs to the same trace.
fn upstream_dsc(
    entries: &[(String, String)],
    incoming: &IncomingTrace,
) -> Option<DynamicSamplingContext> {
    if entries.is_empty() {
        return None;
    }
    let object: serde_json::Map<String, serde_json::Value> = entries
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let trace_id = object.get("trace_id")?.as_str()?;
    object.get("public_key")?;
    if trace_id != incoming.trace_id.to_string() {
        return None;
    }
    serde_json::from_value(serde_json::Value::Object(object)).ok()
}
