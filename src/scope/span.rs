//! Child spans of the current request's transaction.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use sentry_types::protocol::v7::{SpanId, SpanStatus, Value};

use super::{current_span, replace_span, with_current, RequestScope};
use crate::event::{new_span_id, SpanRecord, SpanText};

/// A span being recorded: where it goes when it ends, and the span itself. Dropped without
/// [`finish`](Running::finish) (its future was cancelled), it is recorded as `cancelled`.
pub(crate) struct Running {
    scope: Arc<RequestScope>,
    record: Option<SpanRecord>,
    status: Option<SpanStatus>,
}

impl Running {
    /// Starts a span under the current one (the span current in the future being polled, else
    /// the request's root span), if this request is being traced. It does not become current:
    /// callers decide where it is.
    pub(crate) fn start(op: String, description: String) -> Option<Running> {
        with_current(|scope| {
            let parent = current_span().unwrap_or(scope.trace.span_id);
            Running::start_in(scope, parent, op.into(), description.into())
        })
        .flatten()
    }

    /// Starts a span of `scope` under `parent`, if the scope records spans.
    pub(crate) fn start_in(
        scope: &Arc<RequestScope>,
        parent: SpanId,
        op: SpanText,
        description: SpanText,
    ) -> Option<Running> {
        if !scope.records_spans() {
            return None;
        }
        let start = SystemTime::now();
        Some(Running {
            scope: scope.clone(),
            record: Some(SpanRecord {
                span_id: new_span_id(),
                parent,
                op,
                description,
                start,
                end: start,
                status: SpanStatus::Ok,
                data: Vec::new(),
                db: None,
            }),
            status: None,
        })
    }

    pub(crate) fn id(&self) -> Option<SpanId> {
        self.record.as_ref().map(|r| r.span_id)
    }

    pub(crate) fn set_data(&mut self, key: impl Into<Cow<'static, str>>, value: Value) {
        if let Some(record) = self.record.as_mut() {
            record.data.push((key.into(), value));
        }
    }

    /// The data set so far.
    #[cfg(feature = "tracing")]
    pub(crate) fn data(&self) -> &[(Cow<'static, str>, Value)] {
        self.record.as_ref().map_or(&[], |r| &r.data[..])
    }

    /// Renames the span: its op, its description, or both.
    #[cfg(feature = "tracing")]
    pub(crate) fn rename(&mut self, op: Option<String>, description: Option<String>) {
        if let Some(record) = self.record.as_mut() {
            if let Some(op) = op {
                record.op = op.into();
            }
            if let Some(description) = description {
                record.description = description.into();
            }
        }
    }

    pub(crate) fn set_status(&mut self, status: SpanStatus) {
        self.status = Some(status);
    }

    /// Ends the span and records it in its transaction (or counts it: past the cap, or after
    /// the request finished).
    pub(crate) fn finish(self, default_status: SpanStatus) {
        self.finish_at(SystemTime::now(), default_status);
    }

    /// Like [`finish`](Self::finish), as ending at `end`.
    pub(crate) fn finish_at(mut self, end: SystemTime, default_status: SpanStatus) {
        self.end_at(end, default_status);
    }

    /// The request the span belongs to.
    #[cfg(feature = "tracing")]
    pub(super) fn scope(&self) -> &Arc<RequestScope> {
        &self.scope
    }

    fn end_at(&mut self, end: SystemTime, default_status: SpanStatus) {
        if let Some(mut record) = self.record.take() {
            record.end = end.max(record.start);
            record.status = self.status.unwrap_or(default_status);
            self.scope.record_span(record);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.end_at(SystemTime::now(), SpanStatus::Cancelled);
    }
}

/// Starts a child span of whatever span is current in the code running now, and makes it the
/// current one: spans started after it (in this future) are its children. It ends when the guard
/// is dropped or [`finish`](SpanGuard::finish)ed. Outside a sampled request it records nothing
/// and costs next to nothing.
///
/// A guard held across an `.await` stays current only in the future that holds it: concurrent
/// futures of the same request (`join!`, `select!`) keep their own current span. For work that
/// is itself one of those futures, [`FutureTraceExt::in_span`](crate::FutureTraceExt::in_span) reads
/// better.
///
/// ```
/// use axum::{routing::get, Router};
/// use lighttrace::{MemorySink, Options, TrackingLayer};
/// use tower::ServiceExt;
///
/// async fn get_user() -> &'static str {
///     let mut span = lighttrace::start_span("db.query", "SELECT * FROM users WHERE id = $1");
///     tokio::task::yield_now().await; // the query
///     span.set_data("rows", 1);
///     "ann" // the span ends here, when `span` is dropped
/// }
///
/// # #[tokio::main] async fn main() {
/// let sink = MemorySink::new();
/// let app = Router::new()
///     .route("/users/{id}", get(get_user))
///     .layer(TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone())));
/// app.oneshot(http::Request::get("/users/7").body(axum::body::Body::empty()).unwrap()).await.unwrap();
///
/// assert!(sink.wait_for_transactions(1, std::time::Duration::from_secs(5)).await);
/// let span = &sink.transactions()[0].spans[0];
/// assert_eq!(span.op.as_deref(), Some("db.query"));
/// assert_eq!(span.data["rows"], 1);
/// # }
/// ```
pub fn start_span(op: impl Into<String>, description: impl Into<String>) -> SpanGuard {
    let running = Running::start(op.into(), description.into());
    let restore = running.as_ref().map(|r| replace_span(r.id()));
    SpanGuard { running, restore }
}

/// A running span; see [`start_span`].
#[must_use = "the span ends when this guard is dropped"]
pub struct SpanGuard {
    running: Option<Running>,
    /// What was current before this span, to restore when it ends.
    restore: Option<Option<SpanId>>,
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
            r.set_data(Cow::Owned(key.into()), value.into());
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
        self.running.as_ref().and_then(Running::id)
    }

    /// Ends the span now.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        if let Some(running) = self.running.take() {
            // Only where it is still the current span: a guard dropped elsewhere (moved into
            // another future) must not change that future's current span.
            if let Some(previous) = self.restore.take() {
                if current_span() == running.id() {
                    replace_span(previous);
                }
            }
            running.finish(SpanStatus::Ok);
        }
    }
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        self.end();
    }
}
