//! The current request's trace on an outgoing request's headers.

use http::header::HeaderMap;
use sentry_types::protocol::v7::SpanId;

use super::{current_span, with_current, RequestScope};
use crate::propagation::{self, Outgoing};

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
///     .layer(TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(MemorySink::new())));
/// let res = app.oneshot(http::Request::get("/").body(axum::body::Body::empty()).unwrap()).await.unwrap();
/// let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
/// let sentry_trace = std::str::from_utf8(&body).unwrap();
/// assert_eq!(sentry_trace.len(), 32 + 1 + 16 + 2); // trace id, span id, sampled flag
/// # }
/// ```
pub fn inject_trace_headers(url: &str, headers: &mut HeaderMap) -> bool {
    inject_current(url, headers, None)
}

/// Like [`inject_trace_headers`], naming the span the downstream service continues from (by
/// default the current span, else the request's own).
pub(crate) fn inject_current(url: &str, headers: &mut HeaderMap, parent: Option<SpanId>) -> bool {
    with_current(|scope| inject(scope, url, headers, parent)).unwrap_or(false)
}

fn inject(
    scope: &RequestScope,
    url: &str,
    headers: &mut HeaderMap,
    parent: Option<SpanId>,
) -> bool {
    let options = scope.client.options_ref();
    if !propagation::propagates_to(options, url) {
        return false;
    }
    let trace = &scope.trace;
    let input = scope.dsc_input();
    let dsc = match input.upstream {
        Some(upstream) => *upstream,
        None => scope.client.own_dsc(input),
    };
    propagation::inject(
        &Outgoing {
            trace_id: trace.trace_id,
            span_id: parent.or_else(current_span).unwrap_or(trace.span_id),
            sampled: trace.decision,
            dsc: &dsc,
            traceparent: options.propagate_traceparent,
        },
        headers,
    );
    true
}
