//! Per-request state, and the free functions that reach it from handlers and middleware.
//!
//! Each request's [`RequestScope`] is owned by that request's response future. Around every
//! poll of the inner service the future makes it the thread's current scope (a thread-local
//! set through a guard, and restored when the poll ends, on unwind too), so free functions such
//! as [`add_breadcrumb`] reach the scope of the request they run in and no other: concurrent
//! requests cannot see each other's state, and no hub has to be bound to each future.
//!
//! The current *span* is tracked the same way, but per future: each future that can open spans
//! (the response future, [`InSpan`], and `tracing` spans) keeps its own "current span" and swaps
//! it in for the length of its poll, as `tracing`'s `Instrumented` does. Concurrent futures of
//! one request (`join!`, `select!`) therefore never parent their spans under each other's.
//!
//! When the request completes, the future takes the scope's state out in one lock, into a
//! plain [`Finished`] value for the client's worker; the scope is closed from then on, and a
//! span that ends later is counted, not raced.

mod api;
mod outgoing;
mod panic;
mod process;
#[cfg(feature = "tracing")]
mod shared_span;
mod span;
mod task;

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use sentry_types::protocol::v7::client_report::{Category, Reason};
use sentry_types::protocol::v7::{DynamicSamplingContext, Level, SpanId};

use crate::client::Client;
use crate::event::{
    CaptureContext, DscInput, Failure, Finished, RequestOutcome, RequestSnapshot, ScopeData,
    SpanRecord, TraceIds,
};

pub use api::{
    add_breadcrumb, capture_error, capture_message, current_trace_id, set_extra, set_fingerprint,
    set_tag, set_user, CapturableError,
};
#[cfg(feature = "tracing")]
pub(crate) use api::{breadcrumb_in, capture_in};
pub(crate) use outgoing::inject_current;
pub use outgoing::inject_trace_headers;
pub use panic::capture_panics;
pub(crate) use panic::{catch, install_hook, Caught};
pub(crate) use process::capture_context as process_capture_context;
#[cfg(feature = "tracing")]
pub(crate) use process::trace_id as process_trace_id;
#[cfg(feature = "tracing")]
pub(crate) use shared_span::SharedSpan;
pub(crate) use span::Running;
pub use span::{start_span, SpanGuard};
pub use task::{spawn, spawn_blocking, spawn_named, FutureTraceExt, InScope, InSpan, ReportErrors};

/// What is current on this thread: set only for the length of a poll (or a call) of tracked
/// code.
struct Current {
    /// The scope of the request whose future (or a task forked from it) is being polled.
    scope: RefCell<Option<Arc<RequestScope>>>,
    /// The span new spans are children of, in the future being polled (`None`: the request's
    /// root span).
    span: Cell<Option<SpanId>>,
}

thread_local! {
    // A guard instead of tokio's task-local closure: the closure moved the request and the
    // inner future in and out on every call and poll, which showed up as `memcpy`.
    static CURRENT: Current = const {
        Current {
            scope: RefCell::new(None),
            span: Cell::new(None),
        }
    };
}

/// The current request's scope, if code runs inside one. The borrow ends before it returns, so
/// whatever the caller then runs may enter other scopes.
pub(crate) fn current() -> Option<Arc<RequestScope>> {
    CURRENT
        .try_with(|c| c.scope.borrow().clone())
        .ok()
        .flatten()
}

/// The span new spans are children of in the future being polled.
pub(crate) fn current_span() -> Option<SpanId> {
    CURRENT.try_with(|c| c.span.get()).ok().flatten()
}

/// Makes `span` the current span, returning the one before.
pub(crate) fn replace_span(span: Option<SpanId>) -> Option<SpanId> {
    CURRENT.try_with(|c| c.span.replace(span)).ok().flatten()
}

/// Keeps a scope and a future's current span in place until dropped; then writes the future's
/// current span back to its slot and restores what was current before (also on unwind). Not
/// `Send`: it must be dropped on the thread whose state it set.
struct Entered<'a> {
    prev_scope: Option<Arc<RequestScope>>,
    prev_span: Option<SpanId>,
    slot: &'a mut Option<SpanId>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let prev = self.prev_scope.take();
        let prev_span = self.prev_span;
        let _ = CURRENT.try_with(|c| {
            *self.slot = c.span.replace(prev_span);
            // The replaced scope is dropped after the borrow has ended.
            c.scope.replace(prev)
        });
    }
}

/// The state of one request: its trace ids, the request snapshot, and what handlers added (user,
/// tags, extra data, breadcrumbs, spans).
pub(crate) struct RequestScope {
    pub(crate) client: Client,
    pub(crate) trace: TraceIds,
    /// Whether spans started in this scope are recorded (a sampled request's own scope).
    records_spans: bool,
    /// An error event was captured in it (release health counts the request as errored).
    errored: AtomicBool,
    inner: Mutex<ScopeState>,
    /// The request's own `tracing` span, made on the first poll of a sampled request and
    /// entered around every poll: work that carries `tracing`'s current span elsewhere (sqlx's
    /// SQLite worker thread, `.in_current_span()`) stays tied to the request through it.
    #[cfg(feature = "tracing")]
    tracing_span: std::sync::OnceLock<::tracing::Span>,
}

/// The name (target `lighttrace`, level `TRACE`) of a request's own `tracing` span. At `TRACE`,
/// a `fmt` layer filtered at `INFO` never shows it.
#[cfg(feature = "tracing")]
pub(crate) const REQUEST_SPAN: &str = "lighttrace.request";

struct ScopeState {
    /// Taken when the scope finishes.
    request: Option<RequestSnapshot>,
    /// The sampling context an upstream service froze, forwarded unchanged (boxed: it is rare,
    /// and the scope is allocated per request).
    upstream_dsc: Option<Box<DynamicSamplingContext>>,
    /// Allocated on first change: most requests never touch it.
    data: Option<Box<ScopeData>>,
    /// The request finished: its state was taken, and late spans are counted, not kept.
    closed: bool,
    /// `tracing` spans of the request that may still be open (see `SharedSpan`).
    #[cfg(feature = "tracing")]
    open: shared_span::OpenSpans,
}

impl RequestScope {
    pub(crate) fn new(
        client: Client,
        request: RequestSnapshot,
        trace: TraceIds,
        upstream_dsc: Option<Box<DynamicSamplingContext>>,
    ) -> Self {
        RequestScope {
            client,
            records_spans: trace.sampled,
            trace,
            errored: AtomicBool::new(false),
            #[cfg(feature = "tracing")]
            tracing_span: std::sync::OnceLock::new(),
            inner: Mutex::new(ScopeState {
                request: Some(request),
                upstream_dsc,
                data: None,
                closed: false,
                #[cfg(feature = "tracing")]
                open: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ScopeState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy for spawned work: the same request and trace, and the user, tags and breadcrumbs
    /// as they are now. Changes on either side do not reach the other, and the copy records no
    /// spans (the request's transaction may be long gone when the work finishes).
    pub(crate) fn fork(&self, task: Option<&str>) -> RequestScope {
        let inner = self.lock();
        // An untouched state stays unallocated in the copy too.
        let mut data = inner.data.as_deref().map(|d| Box::new(d.without_spans()));
        if let Some(task) = task {
            let data = data.get_or_insert_with(Default::default);
            data.tags.insert("task".into(), task.to_owned());
        }
        RequestScope {
            client: self.client.clone(),
            // Same trace and sampling decision (outgoing calls from the task propagate them).
            trace: self.trace,
            records_spans: false,
            errored: AtomicBool::new(false),
            #[cfg(feature = "tracing")]
            tracing_span: std::sync::OnceLock::new(),
            inner: Mutex::new(ScopeState {
                request: inner.request.clone(),
                upstream_dsc: inner.upstream_dsc.clone(),
                data,
                closed: false,
                #[cfg(feature = "tracing")]
                open: Vec::new(),
            }),
        }
    }

    /// Changes what handlers can change; ignored once the request finished.
    pub(crate) fn with_data(&self, f: impl FnOnce(&mut ScopeData)) {
        let mut inner = self.lock();
        if !inner.closed {
            f(inner.data.get_or_insert_with(Default::default));
        }
    }

    /// Keeps a finished span for the transaction, or counts it: over `max_spans` (counted with
    /// the transaction as `buffer_overflow`), or after the request finished (`event_processor`
    /// now: its transaction is already on its way).
    pub(crate) fn record_span(&self, span: SpanRecord) {
        let max = self.client.options_ref().max_spans;
        let mut inner = self.lock();
        if inner.closed {
            drop(inner);
            self.client
                .record_discard(Reason::EventProcessor, Category::Span, 1);
            return;
        }
        let data = inner.data.get_or_insert_with(Default::default);
        if data.spans.len() < max {
            if data.spans.capacity() == 0 {
                // A request that records one span records a few: grown from 8, not 4.
                data.spans.reserve(8);
            }
            data.spans.push(span);
        } else {
            data.spans_dropped = data.spans_dropped.saturating_add(1);
        }
    }

    /// Notes an event captured in this scope: at `Error` or above, the request counts as
    /// errored in release health.
    pub(crate) fn note_capture(&self, level: Level) {
        if level >= Level::Error {
            self.errored.store(true, Ordering::Relaxed);
        }
    }

    /// Whether an error event was captured in this scope.
    pub(crate) fn errored(&self) -> bool {
        self.errored.load(Ordering::Relaxed)
    }

    /// Whether spans started in this scope are recorded.
    pub(crate) fn records_spans(&self) -> bool {
        self.records_spans
    }

    /// A copy of the scope for an event captured in it, `span` being the current span.
    pub(crate) fn capture_context(&self, span: Option<SpanId>) -> CaptureContext {
        let inner = self.lock();
        CaptureContext {
            request: inner.request.clone(),
            trace: Some(self.trace),
            span_id: span,
            upstream_dsc: inner.upstream_dsc.clone(),
            data: inner.data.as_deref().map(|d| Box::new(d.without_spans())),
        }
    }

    /// The input of this trace's sampling context, for outgoing `baggage`.
    pub(crate) fn dsc_input(&self) -> DscInput {
        let inner = self.lock();
        DscInput::for_trace(
            &self.trace,
            inner
                .request
                .as_ref()
                .map(RequestSnapshot::transaction_name),
            inner.upstream_dsc.clone(),
        )
    }

    /// Keeps a `tracing` span of this request that others may close late.
    #[cfg(feature = "tracing")]
    pub(crate) fn keep_open(&self, span: std::sync::Weak<SharedSpan>) {
        let mut inner = self.lock();
        if inner.open.len() == inner.open.capacity() {
            // Closed ones go before the list grows.
            inner.open.retain(|s| s.strong_count() > 0);
        }
        inner.open.push(span);
    }

    /// Closes the scope and takes its state out, in one lock, as the plain value the worker
    /// builds the error event and the transaction from. `None` if it was already taken.
    /// `tracing` spans that ended but whose handles others still hold end first.
    pub(crate) fn finish(
        &self,
        outcome: RequestOutcome,
        finished: SystemTime,
        failure: Option<Box<Failure>>,
    ) -> Option<Box<Finished>> {
        let mut inner = self.lock();
        // Until none is left: a span may be created while the lock is let go.
        #[cfg(feature = "tracing")]
        while !inner.open.is_empty() {
            let open = std::mem::take(&mut inner.open);
            // Outside the scope's lock: ending a span records it in the scope.
            drop(inner);
            for span in open.iter().filter_map(std::sync::Weak::upgrade) {
                span.end_with_request(finished);
            }
            inner = self.lock();
        }
        inner.closed = true;
        let request = inner.request.take()?;
        // Boxed once here: the job then moves through the queue and the worker as a pointer.
        Some(Box::new(Finished {
            request,
            trace: self.trace,
            upstream_dsc: inner.upstream_dsc.take(),
            data: inner.data.take(),
            status: outcome.status,
            finished,
            failure,
            grpc_status: outcome.grpc_status,
            body_status: outcome.body_status,
        }))
    }

    /// Runs `f` with this scope current and `*span` as the current span; afterwards `*span`
    /// holds the span that was current when `f` returned (a guard started in `f` and still
    /// open), and what was current before is restored.
    #[inline]
    pub(crate) fn enter<R>(
        self: &Arc<Self>,
        span: &mut Option<SpanId>,
        f: impl FnOnce() -> R,
    ) -> R {
        let (prev_scope, prev_span) = CURRENT
            .try_with(|c| (c.scope.replace(Some(self.clone())), c.span.replace(*span)))
            .unwrap_or((None, None));
        let _entered = Entered {
            prev_scope,
            prev_span,
            slot: span,
            _not_send: std::marker::PhantomData,
        };
        // Made while this scope is current, so the tracing layer ties the span to it; exited
        // before the scope is restored.
        // Only under a process-wide subscriber: without one no layer could see the span.
        #[cfg(feature = "tracing")]
        let _in_span = (self.records_spans && ::tracing::dispatcher::has_been_set()).then(|| {
            self.tracing_span
                .get_or_init(|| ::tracing::trace_span!(target: "lighttrace", "lighttrace.request"))
                .enter()
        });
        f()
    }
}

/// Runs `f` on the current request's scope, or returns `None` outside any request.
pub(crate) fn with_current<R>(f: impl FnOnce(&Arc<RequestScope>) -> R) -> Option<R> {
    current().map(|scope| f(&scope))
}

/// Like [`with_current`], without a reference count: `f` borrows the thread's current scope,
/// so it must not enter another scope (no user code, no polling).
#[cfg(feature = "tracing")]
pub(crate) fn with_current_ref<R>(f: impl FnOnce(&Arc<RequestScope>) -> R) -> Option<R> {
    CURRENT
        .try_with(|c| match c.scope.try_borrow() {
            Ok(scope) => scope.as_ref().map(f),
            Err(_) => None,
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;

    fn scope() -> Arc<RequestScope> {
        let client = Client::new(Options::new());
        let request = RequestSnapshot {
            method: http::Method::GET,
            uri: "/".parse().unwrap(),
            headers: Vec::new(),
            route: None,
            name: None,
            grpc: false,
            started: SystemTime::now(),
            body: None,
            client_ip: None,
        };
        Arc::new(RequestScope::new(
            client,
            request,
            TraceIds::new_root(false, 0.0),
            None,
        ))
    }

    fn is_current(scope: &Arc<RequestScope>) -> bool {
        current().is_some_and(|c| Arc::ptr_eq(&c, scope))
    }

    #[test]
    fn entering_nests_and_restores_the_scope_and_span_before() {
        let (outer, inner) = (scope(), scope());
        let (mut outer_span, mut inner_span) = (None, None);
        assert!(current().is_none());
        outer.enter(&mut outer_span, || {
            assert!(is_current(&outer));
            replace_span(Some(SpanId::from([1; 8])));
            inner.enter(&mut inner_span, || {
                assert!(is_current(&inner));
                assert_eq!(current_span(), None, "each future has its own current span");
                replace_span(Some(SpanId::from([2; 8])));
            });
            assert!(is_current(&outer));
            assert_eq!(current_span(), Some(SpanId::from([1; 8])));
        });
        assert!(current().is_none());
        assert_eq!(current_span(), None);
        // Each slot kept what was current in it when its poll ended.
        assert_eq!(outer_span, Some(SpanId::from([1; 8])));
        assert_eq!(inner_span, Some(SpanId::from([2; 8])));
    }

    #[test]
    fn a_panic_inside_still_restores_the_scope_before() {
        let (outer, inner) = (scope(), scope());
        outer.enter(&mut None, || {
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                inner.enter(&mut None, || panic!("boom"))
            }));
            assert!(caught.is_err());
            assert!(is_current(&outer));
        });
        assert!(current().is_none());
        // Only the test's own handles are left: entering leaked no reference.
        assert_eq!(Arc::strong_count(&outer), 1);
        assert_eq!(Arc::strong_count(&inner), 1);
    }

    #[test]
    fn untouched_scopes_allocate_no_state_and_finishing_closes() {
        let s = scope();
        assert!(s.lock().data.is_none());
        assert!(s.fork(None).lock().data.is_none());
        let named = s.fork(Some("job"));
        assert_eq!(
            named
                .lock()
                .data
                .as_ref()
                .unwrap()
                .tags
                .get("task")
                .map(String::as_str),
            Some("job")
        );
        s.with_data(|d| {
            d.tags.insert("k".into(), "v".into());
        });
        let finished = s
            .finish(RequestOutcome::status(200), SystemTime::now(), None)
            .unwrap();
        assert_eq!(finished.data.unwrap().tags["k"], "v");
        assert!(s
            .finish(RequestOutcome::status(200), SystemTime::now(), None)
            .is_none());
        // Closed: later changes go nowhere.
        s.with_data(|d| {
            d.tags.insert("late".into(), "x".into());
        });
        assert!(s.lock().data.is_none());
    }
}
