//! Child spans of the current request's transaction.

use std::sync::Arc;
use std::time::SystemTime;

use sentry_types::protocol::v7::client_report::{Category, Reason};
use sentry_types::protocol::v7::{Span, SpanId, SpanStatus, Value};

use super::{with_current, RequestScope};
use crate::event::new_span_id;

/// A span being recorded: where it goes when it ends, and the span itself.
pub(crate) struct Running {
    scope: Arc<RequestScope>,
    span: Span,
}

impl Running {
    /// Starts a span under the current one, if this request is being traced.
    pub(crate) fn start(op: String, description: String) -> Option<Running> {
        with_current(|scope| {
            if !scope.records_spans {
                return None;
            }
            let parent = scope
                .state()
                .open_spans
                .last()
                .copied()
                .unwrap_or(scope.trace.span_id);
            Some(Running {
                scope: scope.clone(),
                span: Span {
                    span_id: new_span_id(),
                    trace_id: scope.trace.trace_id,
                    parent_span_id: Some(parent),
                    same_process_as_parent: None,
                    op: Some(op),
                    description: Some(description),
                    timestamp: None,
                    start_timestamp: SystemTime::now(),
                    status: None,
                    tags: Default::default(),
                    data: Default::default(),
                },
            })
        })
        .flatten()
    }

    pub(crate) fn id(&self) -> SpanId {
        self.span.span_id
    }

    /// Makes this span the parent of spans started from now on.
    pub(crate) fn enter(&self) {
        self.scope.state().open_spans.push(self.span.span_id);
    }

    /// Undoes [`enter`](Self::enter).
    pub(crate) fn exit(&self) {
        let mut state = self.scope.state();
        if let Some(pos) = state
            .open_spans
            .iter()
            .rposition(|id| *id == self.span.span_id)
        {
            state.open_spans.remove(pos);
        }
    }

    pub(crate) fn set_data(&mut self, key: String, value: Value) {
        self.span.data.insert(key, value);
    }

    pub(crate) fn set_status(&mut self, status: SpanStatus) {
        self.span.status = Some(status);
    }

    /// Ends the span and records it in its transaction (or counts it, past the cap).
    pub(crate) fn finish(mut self, default_status: SpanStatus) {
        self.exit();
        self.span.timestamp = Some(SystemTime::now());
        if self.span.status.is_none() {
            self.span.status = Some(default_status);
        }
        let max = self.scope.client.options_ref().max_spans;
        let mut state = self.scope.state();
        if state.spans.len() < max {
            state.spans.push(self.span);
        } else {
            drop(state);
            self.scope
                .client
                .record_discard(Reason::BufferOverflow, Category::Span, 1);
        }
    }
}

/// Starts a child span of whatever span is current in this request. It ends when the guard is
/// dropped or [`finish`](SpanGuard::finish)ed. Outside a sampled request it records nothing and
/// costs next to nothing.
///
/// For work that runs concurrently with other work of the same request (`join!`, `select!`),
/// prefer [`FutureExt::in_span`](crate::FutureExt::in_span), which is current only while its
/// future is being polled.
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
    let running = Running::start(op.into(), description.into());
    if let Some(r) = &running {
        r.enter();
    }
    SpanGuard { running }
}

/// A running span; see [`start_span`].
#[must_use = "the span ends when this guard is dropped"]
pub struct SpanGuard {
    running: Option<Running>,
}

impl std::fmt::Debug for SpanGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanGuard")
            .field("span_id", &self.span_id())
            .finish()
    }
}

impl SpanGuard {
    /// Attaches data to the span (scrubbed like everything else).
    pub fn set_data(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        if let Some(r) = self.running.as_mut() {
            r.set_data(key.into(), value.into());
        }
    }

    /// Sets the span's status (default `ok`).
    pub fn set_status(&mut self, status: SpanStatus) {
        if let Some(r) = self.running.as_mut() {
            r.set_status(status);
        }
    }

    /// The span's id while it is being recorded (the request is sampled).
    pub fn span_id(&self) -> Option<SpanId> {
        self.running.as_ref().map(Running::id)
    }

    /// Ends the span now.
    pub fn finish(mut self) {
        if let Some(r) = self.running.take() {
            r.finish(SpanStatus::Ok);
        }
    }
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.finish(SpanStatus::Ok);
        }
    }
}
