//! Futures that carry the request's scope into spawned work, record a span while they run, or
//! report the error they return.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use sentry_types::protocol::v7::{Level, SpanId, SpanStatus};

use super::api::capture;
use super::panic::{self, Caught, PanicAlreadyReported};
use super::span::Running;
use super::{current, replace_span, RequestScope};
use crate::client::Client;
use crate::event::{self, Capture, Captured};

/// Extension methods for futures, in the style of tracing's `Instrument`.
pub trait FutureTraceExt: Future + Sized {
    /// Runs this future with (a copy of) the current request's scope: breadcrumbs, user, tags
    /// and trace, as they are now. A panic inside is reported with `handled: false`, then
    /// re-raised so a `JoinHandle` still sees it.
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use lighttrace::{FutureTraceExt, Level, MemorySink, Options, TrackingLayer};
    /// use tower::ServiceExt;
    ///
    /// async fn handler() -> &'static str {
    ///     lighttrace::set_tag("tenant", "acme");
    ///     tokio::spawn(async {
    ///         lighttrace::capture_message("sent from the background", Level::Info);
    ///     }.in_current_scope().named("audit"));
    ///     "accepted"
    /// }
    ///
    /// # #[tokio::main] async fn main() {
    /// let sink = MemorySink::new();
    /// let app = Router::new()
    ///     .route("/", get(handler))
    ///     .layer(TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone())));
    /// app.oneshot(http::Request::get("/").body(axum::body::Body::empty()).unwrap()).await.unwrap();
    ///
    /// assert!(sink.wait_for_events(1, std::time::Duration::from_secs(5)).await);
    /// let event = &sink.events()[0];
    /// assert_eq!(event.tags["tenant"], "acme"); // the request's scope, copied
    /// assert_eq!(event.tags["task"], "audit");
    /// # }
    /// ```
    fn in_current_scope(self) -> InScope<Self> {
        let scope = current().map(|current| Arc::new(current.fork(None)));
        // Without a scope a panic can only be reported through the global client.
        let tracked = scope.is_some() || Client::global().is_some_and(|c| c.is_enabled());
        InScope {
            inner: self,
            scope,
            span: None,
            tracked,
            name: None,
        }
    }

    /// Records this future as a child span of the current one; spans started while it is being
    /// polled nest under it. Concurrent futures of the same request each keep their own.
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use lighttrace::{FutureTraceExt, MemorySink, Options, TrackingLayer};
    /// use tower::ServiceExt;
    ///
    /// async fn handler() -> &'static str {
    ///     tokio::join!(
    ///         tokio::task::yield_now().in_span("db.query", "SELECT user"),
    ///         tokio::task::yield_now().in_span("db.query", "SELECT posts"),
    ///     );
    ///     "ok"
    /// }
    ///
    /// # #[tokio::main] async fn main() {
    /// let sink = MemorySink::new();
    /// let app = Router::new()
    ///     .route("/", get(handler))
    ///     .layer(TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone())));
    /// app.oneshot(http::Request::get("/").body(axum::body::Body::empty()).unwrap()).await.unwrap();
    ///
    /// assert!(sink.wait_for_transactions(1, std::time::Duration::from_secs(5)).await);
    /// let tx = &sink.transactions()[0];
    /// assert_eq!(tx.spans.len(), 2);
    /// assert_eq!(tx.spans[0].parent_span_id, tx.spans[1].parent_span_id); // siblings
    /// # }
    /// ```
    fn in_span(self, op: impl Into<String>, description: impl Into<String>) -> InSpan<Self> {
        InSpan {
            inner: self,
            pending: Some((op.into(), description.into())),
            running: None,
            span: None,
        }
    }

    /// Reports an `Err` this future returns (with its `source()` chain), and passes it on.
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use lighttrace::{FutureTraceExt, MemorySink, Options, TrackingLayer};
    /// use tower::ServiceExt;
    ///
    /// async fn send_notification() -> Result<(), std::io::Error> {
    ///     Err(std::io::Error::other("smtp refused"))
    /// }
    ///
    /// # #[tokio::main] async fn main() {
    /// let sink = MemorySink::new();
    /// let app = Router::new()
    ///     .route("/", get(|| async {
    ///         lighttrace::spawn_named("notify_user", send_notification().report_errors());
    ///         "accepted"
    ///     }))
    ///     .layer(TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone())));
    /// app.oneshot(http::Request::get("/").body(axum::body::Body::empty()).unwrap()).await.unwrap();
    ///
    /// assert!(sink.wait_for_events(1, std::time::Duration::from_secs(5)).await);
    /// let event = &sink.events()[0];
    /// assert_eq!(event.exception.values[0].value.as_deref(), Some("smtp refused"));
    /// assert_eq!(event.tags["task"], "notify_user");
    /// # }
    /// ```
    fn report_errors(self) -> ReportErrors<Self> {
        ReportErrors { inner: self }
    }
}

impl<F: Future> FutureTraceExt for F {}

pin_project! {
    /// A future running with a copy of a request's scope; see [`FutureTraceExt::in_current_scope`].
    #[must_use = "futures do nothing unless polled or spawned"]
    pub struct InScope<F> {
        #[pin]
        inner: F,
        scope: Option<Arc<RequestScope>>,
        // The current span inside this future (it records none, but keeps its own).
        span: Option<SpanId>,
        tracked: bool,
        name: Option<Cow<'static, str>>,
    }
}

impl<F> InScope<F> {
    /// Names the work: events from it carry a `task` tag with this name.
    pub fn named(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        let name = name.into();
        if let Some(scope) = &self.scope {
            scope.with_data(|data| {
                data.tags.insert("task".into(), name.to_string());
            });
        }
        self.name = Some(name);
        self
    }
}

impl<F> std::fmt::Debug for InScope<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InScope").field("name", &self.name).finish()
    }
}

impl<F: Future> Future for InScope<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let inner = this.inner;
        let span = this.span;
        let polled = match this.scope.as_ref() {
            Some(scope) => panic::catch(true, || scope.enter(span, || inner.poll(cx))),
            None => panic::catch(*this.tracked, || inner.poll(cx)),
        };
        match polled {
            Ok(poll) => poll,
            Err(Caught::AlreadyReported) => std::panic::resume_unwind(Box::new(
                PanicAlreadyReported("panic in a scoped task".to_owned()),
            )),
            Err(Caught::Fresh(details)) => {
                let message = details.message.clone();
                if *this.tracked {
                    let task = this.name.as_deref().map(|n| ("task", n.to_owned()));
                    let what = Captured::Panic(details);
                    match this.scope.as_ref() {
                        Some(scope) => {
                            scope.note_capture(Level::Fatal);
                            scope.client.capture(Capture {
                                event_id: event::new_event_id(),
                                level: Level::Fatal,
                                timestamp: std::time::SystemTime::now(),
                                what,
                                origin_tag: None,
                                context: scope.capture_context(None),
                            });
                        }
                        None => {
                            capture(what, Level::Fatal, task);
                        }
                    }
                }
                std::panic::resume_unwind(Box::new(PanicAlreadyReported(message)))
            }
        }
    }
}

pin_project! {
    /// A future recorded as a span; see [`FutureTraceExt::in_span`].
    #[must_use = "futures do nothing unless polled"]
    pub struct InSpan<F> {
        #[pin]
        inner: F,
        pending: Option<(String, String)>,
        // Dropped before it finished (the losing branch of a `select!`): recorded as
        // cancelled.
        running: Option<Running>,
        // The current span inside this future: its own, or one a guard opened in it.
        span: Option<SpanId>,
    }
}

impl<F> std::fmt::Debug for InSpan<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InSpan").finish_non_exhaustive()
    }
}

impl<F: Future> Future for InSpan<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if let Some((op, description)) = this.pending.take() {
            // Parented where it is first polled, as a span created there would be.
            *this.running = Running::start(op, description);
            *this.span = this.running.as_ref().and_then(Running::id);
        }
        if this.running.is_none() {
            return this.inner.poll(cx);
        }
        struct RestoreSpan<'a>(&'a mut Option<SpanId>, Option<SpanId>);
        impl Drop for RestoreSpan<'_> {
            fn drop(&mut self) {
                *self.0 = replace_span(self.1);
            }
        }
        let outer = replace_span(*this.span);
        let swap = RestoreSpan(this.span, outer);
        let poll = this.inner.poll(cx);
        drop(swap);
        if poll.is_ready() {
            if let Some(running) = this.running.take() {
                running.finish(SpanStatus::Ok);
            }
        }
        poll
    }
}

pin_project! {
    /// A future whose `Err` is reported; see [`FutureTraceExt::report_errors`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct ReportErrors<F> {
        #[pin]
        inner: F,
    }
}

impl<F, T, E> Future for ReportErrors<F>
where
    F: Future<Output = Result<T, E>>,
    E: std::error::Error + 'static,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let poll = self.project().inner.poll(cx);
        if let Poll::Ready(Err(err)) = &poll {
            super::capture_error(err);
        }
        poll
    }
}

/// Spawns work on the current tokio runtime with (a copy of) the current request's scope.
/// A panic in it is reported with `handled: false`.
///
/// ```
/// use axum::{routing::get, Router};
/// use lighttrace::{MemorySink, Options, TrackingLayer};
/// use tower::ServiceExt;
///
/// async fn handler() -> &'static str {
///     let job = lighttrace::spawn(async { panic!("the import crashed") });
///     assert!(job.await.is_err()); // the JoinHandle still sees the panic
///     "accepted"
/// }
///
/// # #[tokio::main] async fn main() {
/// let sink = MemorySink::new();
/// let app = Router::new()
///     .route("/import", get(handler))
///     .layer(TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone())));
/// app.oneshot(http::Request::get("/import").body(axum::body::Body::empty()).unwrap()).await.unwrap();
///
/// assert!(sink.wait_for_events(1, std::time::Duration::from_secs(5)).await);
/// let event = &sink.events()[0];
/// assert_eq!(event.exception.values[0].value.as_deref(), Some("the import crashed"));
/// assert_eq!(event.transaction.as_deref(), Some("GET /import"));
/// # }
/// ```
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.in_current_scope())
}

/// Runs blocking work (a synchronous database driver such as diesel, file I/O) on tokio's
/// blocking pool as part of the current request: the request's scope and its current span
/// are current in the closure, so its breadcrumbs, captures and spans (a diesel query through
/// [`DieselInstrumentation`](crate::DieselInstrumentation)) belong to the request, nested
/// where the call was made. Meant for work the request awaits; what it records after the
/// request ended is counted, not kept. A panic in it reaches the `JoinHandle` as usual.
///
/// ```
/// use axum::{routing::get, Router};
/// use lighttrace::{MemorySink, Options, TrackingLayer};
/// use tower::ServiceExt;
///
/// async fn handler() -> String {
///     lighttrace::spawn_blocking(|| {
///         let _span = lighttrace::start_span("file.read", "read the price list");
///         "42".to_owned()
///     })
///     .await
///     .unwrap()
/// }
///
/// # #[tokio::main] async fn main() {
/// let sink = MemorySink::new();
/// let app = Router::new()
///     .route("/prices", get(handler))
///     .layer(TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone())));
/// app.oneshot(http::Request::get("/prices").body(axum::body::Body::empty()).unwrap()).await.unwrap();
/// assert!(sink.wait_for_transactions(1, std::time::Duration::from_secs(5)).await);
/// assert_eq!(sink.transactions()[0].spans[0].op.as_deref(), Some("file.read"));
/// # }
/// ```
pub fn spawn_blocking<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let carried = super::current().map(|scope| (scope, super::current_span()));
    tokio::task::spawn_blocking(move || match carried {
        Some((scope, span)) => {
            let mut span = span;
            scope.enter(&mut span, f)
        }
        None => f(),
    })
}

/// Like [`spawn`], naming the work: its events carry a `task` tag with the name.
///
/// ```
/// # async fn send_notification() -> Result<(), std::io::Error> { Ok(()) }
/// use lighttrace::FutureTraceExt;
/// async fn handler() {
///     lighttrace::spawn_named("notify_user", send_notification().report_errors());
/// }
/// ```
pub fn spawn_named<F>(
    name: impl Into<Cow<'static, str>>,
    future: F,
) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.in_current_scope().named(name))
}
