//! The futures lighttrace returns: the layer's [`ResponseFuture`], and the wrappers of
//! [`FutureTraceExt`](crate::FutureTraceExt) ([`InScope`], [`InSpan`], [`ReportErrors`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Response, StatusCode};
use pin_project_lite::pin_project;
use sentry_types::protocol::v7::SpanId;

use super::ending::{BodyEnd, Ending};
use super::finish::Tracking;
use super::grpc;
use super::meter::Meter;
use super::ResponseBody;
use crate::event::RequestOutcome;
use crate::scope::{catch, Caught};

pub use crate::scope::{InScope, InSpan, ReportErrors};

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

pin_project! {
    /// The future [`TrackingService`](crate::TrackingService) returns: polls the inner future
    /// inside the request's scope, catches panics, and reports the outcome when the response is
    /// ready (or when it is dropped first, as a cancelled request).
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
        tracking: Option<Tracking>,
        // The current span inside the handler's future (a guard it holds open).
        span: Option<SpanId>,
        // Without tracking (nothing can be sent), the latency count alone.
        meter: Option<Meter>,
        // A gRPC call: a panic is answered with gRPC's `INTERNAL`.
        grpc: bool,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            let Some(tracking) = this.tracking.take() else {
                // Untracked (no client) or already finished: still keep a panicking `Drop`
                // from unwinding into the server.
                let _ = drop_inner(this.kind, None, &mut None);
                if let Some(meter) = this.meter.take() {
                    meter.end(499);
                }
                return;
            };
            // Dropped unpolled after `call` panicked: that panic is still to be reported. No
            // response went out: the request counts as cancelled.
            if let KindProj::Panicked { caught } = this.kind.as_mut().project() {
                if let Some(caught) = caught.take() {
                    tracking.on_panic(caught, None, RequestOutcome::status(499));
                    return;
                }
            }
            // Dropped before completing: the client went away (or a timeout fired). The inner
            // future goes first, inside the request's scope, so the spans its drop ends are
            // recorded before the scope finishes; a panic in that drop is reported.
            match drop_inner(this.kind, Some(&tracking), this.span) {
                Ok(()) => tracking.on_cancel(),
                Err(caught) => tracking.on_panic(caught, None, RequestOutcome::status(499)),
            }
        }
    }
}

/// Drops the inner future (inside the request's scope when there is one), catching a panic
/// in its `Drop`. The future is `Done` afterwards either way.
fn drop_inner<F>(
    mut kind: Pin<&mut Kind<F>>,
    tracking: Option<&Tracking>,
    span: &mut Option<SpanId>,
) -> Result<(), Caught> {
    catch(tracking.is_some(), || match tracking {
        Some(t) => t.scope().enter(span, || kind.set(Kind::Done)),
        None => kind.set(Kind::Done),
    })
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(
        kind: Kind<F>,
        tracking: Option<Tracking>,
        span: Option<SpanId>,
        grpc: bool,
    ) -> Self {
        ResponseFuture {
            kind,
            tracking,
            span,
            meter: None,
            grpc,
        }
    }

    /// Counts the request's latency when it ends (for an untracked request).
    pub(crate) fn metered(mut self, meter: Option<Meter>) -> Self {
        self.meter = meter;
        self
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
    B: http_body::Body + Default,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let outcome = match this.kind.as_mut().project() {
            KindProj::Future { future } => {
                let polled = match this.tracking.as_ref() {
                    Some(t) => catch(true, || t.scope().enter(this.span, || future.poll(cx))),
                    None => catch(false, || future.poll(cx)),
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
        // The finished future is dropped now, before the scope finishes; should its drop
        // panic, that is the handler's failure to report. It runs outside the request's scope
        // (its spans hold their own; entering would cost every request an `Arc` clone), so
        // breadcrumbs or captures made by a finished future's `Drop` go to the process scope.
        let dropped = drop_inner(this.kind, None, &mut None);
        let outcome = match (outcome, dropped) {
            (Ok(Ok(_)), Err(caught)) => Err(caught),
            (Ok(Err(err)), Err(caught)) => {
                // The service's error still goes to the caller (error handlers, retries); the
                // panic is reported with the 500 that error stands for.
                if let Some(t) = tracking {
                    t.on_panic(caught, None, RequestOutcome::status(500));
                }
                if let Some(meter) = this.meter.take() {
                    meter.end(500);
                }
                return Poll::Ready(Err(err));
            }
            (outcome, _) => outcome,
        };
        let meter = this.meter.take();
        let grpc = *this.grpc;
        Poll::Ready(match outcome {
            Ok(Ok(mut response)) => {
                // The request ends when the body does.
                let mut ending = match tracking {
                    Some(t) => Some(t.on_response(&mut response)),
                    None => meter.map(|meter| Ending::metered(meter, &mut response, grpc)),
                };
                // An empty body has nothing left to send: the request ends with the head.
                if response.body().is_end_stream() {
                    if let Some(ending) = ending.take() {
                        ending.end(BodyEnd::Complete);
                    }
                }
                Ok(response.map(|body| ResponseBody::new(body, ending, *this.span)))
            }
            Ok(Err(err)) => {
                if let Some(t) = tracking {
                    t.on_end(500);
                }
                if let Some(meter) = meter {
                    meter.end(500);
                }
                Err(err)
            }
            Err(caught) => {
                let mut response = Response::new(ResponseBody::new(B::default(), None, None));
                // A gRPC client reads `INTERNAL` from a trailers-only answer; anyone else a 500.
                let outcome = if grpc {
                    grpc::internal_error_headers(response.headers_mut());
                    RequestOutcome {
                        status: 200,
                        grpc_status: Some(crate::event::grpc::INTERNAL),
                        body_status: None,
                    }
                } else {
                    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    RequestOutcome::status(500)
                };
                if let Some(t) = tracking {
                    t.on_panic(caught, Some(response.headers_mut()), outcome);
                }
                if let Some(meter) = meter {
                    meter.end(outcome.latency_status());
                }
                Ok(response)
            }
        })
    }
}
