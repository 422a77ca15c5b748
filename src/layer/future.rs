//! The response future: polls the inner future inside the request's scope, catches panics, and
//! reports the outcome when the response is ready.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use http::{Response, StatusCode};
use pin_project_lite::pin_project;
use sentry_types::protocol::v7::client_report::Category;
use sentry_types::protocol::v7::Level;

use super::classify::ClassifyResponse;
use super::error::ReportedError;
use crate::event;
use crate::scope::{catch, exception_event, Caught, RequestScope};

pin_project! {
    #[project = KindProj]
    pub(crate) enum Kind<F> {
        Future { #[pin] future: F },
        Panicked { caught: Option<Caught> },
        /// Completed, or cancelled: the inner future is gone.
        Done,
    }
}

impl<F> Kind<F> {
    pub(crate) fn from_call(result: Result<F, Caught>) -> Self {
        match result {
            Ok(future) => Kind::Future { future },
            Err(caught) => Kind::Panicked {
                caught: Some(caught),
            },
        }
    }
}

/// Per-request tracking state, taken when the request completes.
pub(crate) struct Tracking {
    pub(crate) scope: Arc<RequestScope>,
    pub(crate) classifier: Arc<dyn ClassifyResponse>,
    /// Where to put the event id on responses that produced an event, if anywhere.
    pub(crate) event_id_header: Option<http::HeaderName>,
}

pin_project! {
    /// The future [`TrackingService`](super::TrackingService) returns.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
        tracking: Option<Tracking>,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            let Some(tracking) = this.tracking.take() else {
                // Untracked (no client) or already finished: still keep a panicking `Drop`
                // from unwinding into the server.
                let _ = drop_inner(this.kind, None);
                return;
            };
            // Dropped unpolled after `call` panicked: that panic is still to be reported. No
            // response went out: the request counts as cancelled.
            if let KindProj::Panicked { caught } = this.kind.as_mut().project() {
                if let Some(caught) = caught.take() {
                    tracking.on_panic(caught, None, 499);
                    return;
                }
            }
            // Dropped before completing: the client went away (or a timeout fired). The inner
            // future goes first, inside the request's scope, so the spans its drop ends are
            // recorded before the transaction is queued; a panic in that drop is reported.
            match drop_inner(this.kind, Some(&tracking.scope)) {
                Ok(()) => tracking.finish_transaction(499),
                Err(caught) => tracking.on_panic(caught, None, 499),
            }
        }
    }
}

/// Drops the inner future (inside the request's scope when there is one), catching a panic
/// in its `Drop`. The future is `Done` afterwards either way.
fn drop_inner<F>(
    mut kind: Pin<&mut Kind<F>>,
    scope: Option<&Arc<RequestScope>>,
) -> Result<(), Caught> {
    catch(|| match scope {
        Some(scope) => scope.enter(|| kind.set(Kind::Done)),
        None => kind.set(Kind::Done),
    })
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(kind: Kind<F>, tracking: Option<Tracking>) -> Self {
        ResponseFuture { kind, tracking }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let outcome = match this.kind.as_mut().project() {
            KindProj::Future { future } => {
                let polled = match this.tracking.as_ref() {
                    Some(t) => catch(|| t.scope.enter(|| future.poll(cx))),
                    None => catch(|| future.poll(cx)),
                };
                match polled {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(result)) => Ok(result),
                    Err(details) => Err(details),
                }
            }
            KindProj::Panicked { caught } => Err(caught.take().unwrap_or(Caught::AlreadyReported)),
            // A caller bug, as for any future: say so instead of polling a finished future
            // again (whose own panic would be reported as the handler's).
            KindProj::Done => panic!("lighttrace::ResponseFuture polled after completion"),
        };
        let tracking = this.tracking.take();
        // The finished future is dropped now, before anything is queued; should its drop
        // panic, that is the handler's failure to report. It runs outside the request's scope
        // (its spans hold their own; entering would cost every request an `Arc` clone), so
        // breadcrumbs or captures made by a finished future's `Drop` go to the process scope.
        let dropped = drop_inner(this.kind, None);
        let outcome = match (outcome, dropped) {
            (Ok(Ok(_)), Err(caught)) => Err(caught),
            (Ok(Err(err)), Err(caught)) => {
                // The service's error still goes to the caller (error handlers, retries); the
                // panic is reported with the 500 that error stands for.
                if let Some(t) = tracking {
                    t.on_panic(caught, None, 500);
                }
                return Poll::Ready(Err(err));
            }
            (outcome, _) => outcome,
        };
        Poll::Ready(match outcome {
            Ok(Ok(mut response)) => {
                if let Some(t) = tracking {
                    t.on_response(&mut response);
                }
                Ok(response)
            }
            Ok(Err(err)) => {
                if let Some(t) = tracking {
                    t.finish_transaction(500);
                }
                Err(err)
            }
            Err(caught) => {
                let mut response = Response::new(B::default());
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                if let Some(t) = tracking {
                    t.on_panic(caught, Some(response.headers_mut()), 500);
                }
                Ok(response)
            }
        })
    }
}

impl Tracking {
    /// Classifies the response, then hands the expensive part (building the error event and the
    /// transaction, hooks, the sink) to the client's worker: the request only pays for a push.
    fn on_response<B>(self, response: &mut Response<B>) {
        let status = response.status();
        let reported = response.extensions_mut().remove::<ReportedError>();
        let failure = self.classifier.is_failure(status);
        let sampled = self.scope.trace.sampled;
        if !failure && !sampled {
            return;
        }
        let finished = SystemTime::now();
        let event_id = failure.then(event::new_event_id);
        if let (Some(id), Some(header)) = (event_id, &self.event_id_header) {
            insert_event_id(response.headers_mut(), header, id);
        }
        let Tracking { scope, .. } = self;
        let client = scope.client.clone();
        if !failure {
            // Sampled and successful, by far the most common: no closure to box.
            client.defer_transaction(scope, status.as_u16(), finished);
            return;
        }
        client.defer(categories(failure, sampled), move || {
            let code = status.as_u16();
            if let Some(event_id) = event_id {
                let mut event = match reported {
                    Some(r) => {
                        #[allow(unused_mut)]
                        let mut chain =
                            event::error_chain(&*r.error, r.type_name, "lighttrace.handler", true);
                        #[cfg(feature = "anyhow")]
                        if let (Some(bt), Some(outermost)) = (r.backtrace(), chain.last_mut()) {
                            let in_app = scope.client.options_ref().in_app();
                            outermost.stacktrace = event::stacktrace_from(bt, &in_app, false);
                        }
                        exception_event(chain, Level::Error)
                    }
                    None => status_event(&scope, status),
                };
                event.event_id = event_id;
                event.timestamp = finished;
                scope.send_event(event, Some(code));
            }
            if sampled {
                scope.send_transaction(code, finished);
            }
        });
    }

    /// Reports a caught panic and the transaction, with `status` (500 when the layer answers
    /// for the panic, 499 when no response went out). `headers` receive the event id header.
    fn on_panic(self, caught: Caught, headers: Option<&mut http::HeaderMap>, status: u16) {
        let finished = SystemTime::now();
        let sampled = self.scope.trace.sampled;
        let fresh = match caught {
            Caught::Fresh(details) => Some(details),
            Caught::AlreadyReported => None,
        };
        if fresh.is_none() && !sampled {
            return;
        }
        let event_id = event::new_event_id();
        if let (Some(_), Some(header), Some(headers)) = (&fresh, &self.event_id_header, headers) {
            insert_event_id(headers, header, event_id);
        }
        let Tracking { scope, .. } = self;
        let client = scope.client.clone();
        client.defer(categories(fresh.is_some(), sampled), move || {
            if let Some(details) = fresh {
                scope.send_panic(&details, Some(status), finished, Some(event_id));
            }
            if sampled {
                scope.send_transaction(status, finished);
            }
        });
    }

    fn finish_transaction(self, status: u16) {
        if self.scope.trace.sampled {
            let finished = SystemTime::now();
            let Tracking { scope, .. } = self;
            scope
                .client
                .clone()
                .defer_transaction(scope, status, finished);
        }
    }
}

fn insert_event_id(
    headers: &mut http::HeaderMap,
    header: &http::HeaderName,
    id: sentry_types::Uuid,
) {
    if let Ok(value) = http::HeaderValue::from_str(&id.simple().to_string()) {
        headers.insert(header.clone(), value);
    }
}

/// What a deferred job would have sent, for counting it if the queue is full.
fn categories(event: bool, transaction: bool) -> &'static [Category] {
    match (event, transaction) {
        (true, true) => &[Category::Error, Category::Transaction],
        (true, false) => &[Category::Error],
        (false, true) => &[Category::Transaction],
        (false, false) => &[],
    }
}

/// A failed response without an error: a stable title so identical failures group together.
fn status_event(
    scope: &RequestScope,
    status: StatusCode,
) -> sentry_types::protocol::v7::Event<'static> {
    let name = scope.transaction_name().unwrap_or_default();
    let code = status.as_u16().to_string();
    let mut event = event::new_event(Level::Error, SystemTime::now());
    // The same title for the same status and route: identical failures group into one issue.
    event.message = Some(format!("HTTP {code} on {name}"));
    event
}
