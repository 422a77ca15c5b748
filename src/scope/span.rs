//! Child spans of the current request's transaction.

use std::sync::Arc;
use std::time::SystemTime;

use sentry_types::protocol::v7::{Span, SpanStatus, Value};

use super::{with_current, RequestScope, MAX_SPANS};
use crate::event::new_span_id;

/// Starts a child span of whatever span is current in this request. It ends when the guard is
/// dropped or [`finish`](SpanGuard::finish)ed. Outside a sampled request it records nothing and
/// costs next to nothing.
///
/// ```
/// # async fn fetch_user(_: u64) -> String { String::new() }
/// async fn get_user(id: u64) -> String {
///     let mut span = lighttrace::start_span("db.query", "SELECT * FROM users WHERE id = $1");
///     let user = fetch_user(id).await;
///     span.set_data("rows", 1);
///     user // the span ends here, when `span` is dropped
/// }
/// ```
pub fn start_span(op: impl Into<String>, description: impl Into<String>) -> SpanGuard {
    let started = with_current(|scope| {
        if !scope.trace.sampled {
            return None;
        }
        let span_id = new_span_id();
        let parent = {
            let mut state = scope.state();
            let parent = state
                .open_spans
                .last()
                .copied()
                .unwrap_or(scope.trace.span_id);
            state.open_spans.push(span_id);
            parent
        };
        let span = Span {
            span_id,
            trace_id: scope.trace.trace_id,
            parent_span_id: Some(parent),
            op: Some(op.into()),
            description: Some(description.into()),
            start_timestamp: SystemTime::now(),
            ..Default::default()
        };
        Some((scope.clone(), span))
    })
    .flatten();
    match started {
        Some((scope, span)) => SpanGuard {
            scope: Some(scope),
            span: Some(span),
        },
        None => SpanGuard {
            scope: None,
            span: None,
        },
    }
}

/// A running span; see [`start_span`].
#[must_use = "the span ends when this guard is dropped"]
pub struct SpanGuard {
    scope: Option<Arc<RequestScope>>,
    span: Option<Span>,
}

impl std::fmt::Debug for SpanGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanGuard")
            .field("recording", &self.span.is_some())
            .finish()
    }
}

impl SpanGuard {
    /// Attaches data to the span (scrubbed like everything else).
    pub fn set_data(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        if let Some(span) = self.span.as_mut() {
            span.data.insert(key.into(), value.into());
        }
    }

    /// Sets the span's status (default `ok`).
    pub fn set_status(&mut self, status: SpanStatus) {
        if let Some(span) = self.span.as_mut() {
            span.status = Some(status);
        }
    }

    /// Whether this span is being recorded (the request is sampled).
    pub fn is_recording(&self) -> bool {
        self.span.is_some()
    }

    /// Ends the span now.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        let (Some(scope), Some(mut span)) = (self.scope.take(), self.span.take()) else {
            return;
        };
        span.timestamp = Some(SystemTime::now());
        if span.status.is_none() {
            span.status = Some(SpanStatus::Ok);
        }
        let mut state = scope.state();
        if let Some(pos) = state.open_spans.iter().rposition(|id| *id == span.span_id) {
            state.open_spans.remove(pos);
        }
        if state.spans.len() < MAX_SPANS {
            state.spans.push(span);
        } else {
            state.spans_dropped = state.spans_dropped.saturating_add(1);
        }
    }
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        self.end();
    }
}
