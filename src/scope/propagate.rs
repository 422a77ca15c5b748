//! Trace propagation: continuing an incoming trace, and putting ours on outgoing requests.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use sentry_types::protocol::v7::{DynamicSamplingContext, SpanId};

use super::{current_span, with_current, RequestScope};
use crate::event::propagation::{self, IncomingTrace};

static SENTRY_TRACE: HeaderName = HeaderName::from_static("sentry-trace");
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static BAGGAGE: HeaderName = HeaderName::from_static("baggage");

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
    options: &crate::Options,
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

/// Puts the current request's trace on an outgoing request's headers: `sentry-trace`, the
/// `sentry-` entries of `baggage` (appended to entries already there, replacing stale `sentry-`
/// ones), and `traceparent` when [enabled](crate::Options::propagate_traceparent).
///
/// Returns whether headers were added: not outside a request, nor for a URL outside the
/// [`trace_propagation_targets`](crate::Options::trace_propagation_targets).
///
/// ```
/// use axum::{routing::get, Router};
/// use lighttrace::{MemorySink, Options, TrackingLayer};
/// use tower::ServiceExt;
///
/// async fn handler() -> String {
///     let mut headers = http::HeaderMap::new();
///     assert!(lighttrace::inject_trace_headers("http://inventory.internal/items", &mut headers));
///     // ... send the request with `headers` using any HTTP client ...
///     headers["sentry-trace"].to_str().unwrap().to_owned()
/// }
///
/// # #[tokio::main] async fn main() {
/// let app = Router::new()
///     .route("/", get(handler))
///     .layer(TrackingLayer::with_options(Options::new().sink(MemorySink::new())));
/// let res = app.oneshot(http::Request::get("/").body(axum::body::Body::empty()).unwrap()).await.unwrap();
/// let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
/// let sentry_trace = std::str::from_utf8(&body).unwrap();
/// assert_eq!(sentry_trace.len(), 32 + 1 + 16 + 2); // trace id, span id, sampled flag
/// # }
/// ```
pub fn inject_trace_headers(url: &str, headers: &mut HeaderMap) -> bool {
    with_current(|scope| inject(scope, url, headers, None)).unwrap_or(false)
}

/// Like [`inject_trace_headers`], naming the span the downstream service continues from.
pub(crate) fn inject(
    scope: &RequestScope,
    url: &str,
    headers: &mut HeaderMap,
    parent: Option<SpanId>,
) -> bool {
    let options = scope.client.options_ref();
    if !crate::propagation::propagates_to(options, url) {
        return false;
    }
    let trace = &scope.trace;
    let span_id = parent.or_else(current_span).unwrap_or(trace.span_id);
    let sentry_trace = propagation::sentry_trace_value(trace.trace_id, span_id, trace.sampled);
    if let Ok(v) = HeaderValue::from_str(&sentry_trace) {
        headers.insert(SENTRY_TRACE.clone(), v);
    }
    if options.propagate_traceparent {
        let tp = propagation::traceparent_value(trace.trace_id, span_id, trace.sampled);
        if let Ok(v) = HeaderValue::from_str(&tp) {
            headers.insert(TRACEPARENT.clone(), v);
        }
    }
    let input = scope.dsc_input();
    let dsc = match input.upstream {
        Some(upstream) => *upstream,
        None => scope.client.own_dsc(input),
    };
    let ours: Vec<(String, String)> = match serde_json::to_value(&dsc) {
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
    let merged = propagation::merge_baggage(existing.as_deref(), &ours);
    if let Ok(v) = HeaderValue::from_str(&merged) {
        headers.insert(BAGGAGE.clone(), v);
    }
    true
}
