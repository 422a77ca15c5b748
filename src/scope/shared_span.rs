//! A span whose end other code decides: a `tracing` span closes when its last handle is
//! dropped, and a handle that another thread keeps can outlive the request (sqlx's SQLite
//! worker holds, and is inside, the caller's span while it finishes a statement, after the
//! caller has moved on; so does any task given `Span::current()`). The request's end ends each
//! such span: at its last exit when nobody is inside it, else at the request's end.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::SystemTime;

use sentry_types::protocol::v7::SpanStatus;

use super::span::Running;

/// A recorded span shared between its owner (the `tracing` registry) and its request's scope.
pub(crate) struct SharedSpan {
    state: Mutex<SharedState>,
}

struct SharedState {
    running: Option<Running>,
    /// What is applied to the span when it ends, however it ends (the tracing layer's
    /// reading of OpenTelemetry's fields).
    on_end: Option<fn(&mut Running)>,
    /// Enters not exited yet.
    entered: u32,
    last_exit: Option<SystemTime>,
}

impl SharedSpan {
    /// Shares `running` and tells its request's scope about it.
    pub(crate) fn new(running: Running, on_end: Option<fn(&mut Running)>) -> Arc<SharedSpan> {
        let scope = running.scope().clone();
        let shared = Arc::new(SharedSpan {
            state: Mutex::new(SharedState {
                running: Some(running),
                on_end,
                entered: 0,
                last_exit: None,
            }),
        });
        scope.keep_open(Arc::downgrade(&shared));
        shared
    }

    fn lock(&self) -> MutexGuard<'_, SharedState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Nothing is applied when it ends (it was named explicitly since).
    pub(crate) fn keep_names(&self) {
        self.lock().on_end = None;
    }

    /// Changes the span while it runs.
    pub(crate) fn with(&self, f: impl FnOnce(&mut Running)) {
        if let Some(running) = self.lock().running.as_mut() {
            f(running);
        }
    }

    pub(crate) fn enter(&self) {
        let mut state = self.lock();
        state.entered = state.entered.saturating_add(1);
    }

    pub(crate) fn exit(&self) {
        let mut state = self.lock();
        state.entered = state.entered.saturating_sub(1);
        if state.entered == 0 {
            state.last_exit = Some(SystemTime::now());
        }
    }

    /// The span closed: it ends now, unless the request's end already ended it.
    pub(crate) fn close(&self) {
        let taken = {
            let mut state = self.lock();
            state.running.take().map(|r| (r, state.on_end))
        };
        if let Some((running, on_end)) = taken {
            end(running, on_end, SystemTime::now());
        }
    }

    /// The request ends: the span ends with it, at its last exit when nobody is inside it,
    /// else now (a thread still inside it, as sqlx's worker is for a moment after it answered,
    /// is not the request's work; a span of the request's own that is still running is cut at
    /// the request's end).
    pub(super) fn end_with_request(&self, request_end: SystemTime) {
        let taken = {
            let mut state = self.lock();
            let at = match state.entered {
                0 => state.last_exit,
                _ => None,
            };
            state.running.take().map(|r| (r, state.on_end, at))
        };
        if let Some((running, on_end, at)) = taken {
            end(running, on_end, at.unwrap_or(request_end).min(request_end));
        }
    }
}

/// Ends `running` at `at`, outside the shared span's lock (ending records it in its scope).
fn end(mut running: Running, on_end: Option<fn(&mut Running)>, at: SystemTime) {
    if let Some(on_end) = on_end {
        on_end(&mut running);
    }
    running.finish_at(at, SpanStatus::Ok);
}

/// The shared spans of a request still open, as the scope keeps them.
pub(crate) type OpenSpans = Vec<Weak<SharedSpan>>;
