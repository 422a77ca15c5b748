//! Futures that carry the request's scope into spawned work, or record a span while they run.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use sentry_types::protocol::v7::{Level, SpanStatus};

use super::panic::{self, Caught, Reported};
use super::span::Running;
use super::{current, exception_event, RequestScope};
use crate::event;

/// Extension methods for futures, in the style of tracing's `Instrument`.
pub trait FutureExt: Future + Sized {
    /// Runs this future with (a copy of) the current request's scope: breadcrumbs, user, tags
    /// and trace, as they are now. A panic inside is reported with `handled: false`, then
    /// re-raised so a `JoinHandle` still sees it.
    ///
    /// ```
    /// use lighttrace::FutureExt;
    ///
    /// async fn handler() -> &'static str {
    ///     tokio::spawn(async {
    ///         lighttrace::capture_message("sent from the background", lighttrace::Level::Info);
    ///     }.in_current_scope().named("audit"));
    ///     "accepted"
    /// }
    /// ```
    fn in_current_scope(self) -> InScope<Self> {
        let scope = current().map(|current| Arc::new(current.fork(None)));
        InScope {
            inner: self,
            scope,
            name: None,
        }
    }

    /// Records this future as a child span of the current one; spans started while it is being
    /// polled nest under it. Works for concurrent futures of the same request.
    ///
    /// ```
    /// use lighttrace::FutureExt;
    /// # async fn fetch_user() {} async fn fetch_posts() {}
    /// async fn handler() {
    ///     tokio::join!(
    ///         fetch_user().in_span("db.query", "SELECT user"),
    ///         fetch_posts().in_span("db.query", "SELECT posts"),
    ///     );
    /// }
    /// ```
    fn in_span(self, op: impl Into<String>, description: impl Into<String>) -> InSpan<Self> {
        InSpan {
            inner: self,
            pending: Some((op.into(), description.into())),
            running: None,
        }
    }

    /// Reports an `Err` this future returns (with its `source()` chain), and passes it on.
    ///
    /// ```
    /// use lighttrace::FutureExt;
    /// # async fn send_notification() -> Result<(), std::io::Error> { Ok(()) }
    /// async fn handler() {
    ///     lighttrace::spawn_named("notify_user", send_notification().report_errors());
    /// }
    /// ```
    fn report_errors(self) -> ReportErrors<Self> {
        ReportErrors { inner: self }
    }
}

impl<F: Future> FutureExt for F {}

pin_project! {
    /// A future running with a copy of a request's scope; see [`FutureExt::in_current_scope`].
    pub struct InScope<F> {
        #[pin]
        inner: F,
        scope: Option<Arc<RequestScope>>,
        name: Option<Cow<'static, str>>,
    }
}

impl<F> InScope<F> {
    /// Names the work: events from it carry a `task` tag with this name.
    #[must_use]
    pub fn named(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        let name = name.into();
        if let Some(scope) = &self.scope {
            scope.set_tag("task", &name);
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
        let polled = match this.scope.as_ref() {
            Some(scope) => panic::catch(|| scope.enter(|| inner.poll(cx))),
            None => panic::catch(|| inner.poll(cx)),
        };
        match polled {
            Ok(poll) => poll,
            Err(Caught::AlreadyReported) => {
                std::panic::resume_unwind(Box::new(Reported("panic in a scoped task".to_owned())))
            }
            Err(Caught::Fresh(details)) => {
                let message = details.message.clone();
                match this.scope.as_ref() {
                    Some(scope) => scope.report_panic(details, None),
                    None => {
                        if let Some(client) = crate::client::Client::global() {
                            let in_app = client.options_ref().in_app();
                            let exception = event::panic_exception(&details, &in_app);
                            let mut ev = exception_event(vec![exception], Level::Fatal);
                            if let Some(name) = this.name.as_deref() {
                                ev.tags.insert("task".into(), name.to_owned());
                            }
                            super::send_outside(&client, ev);
                        }
                    }
                }
                std::panic::resume_unwind(Box::new(Reported(message)))
            }
        }
    }
}

pin_project! {
    /// A future recorded as a span; see [`FutureExt::in_span`].
    pub struct InSpan<F> {
        #[pin]
        inner: F,
        pending: Option<(String, String)>,
        running: Option<Running>,
    }

    impl<F> PinnedDrop for InSpan<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before it finished: cancelled (e.g. the losing branch of a select!).
            if let Some(running) = this.project().running.take() {
                running.finish(SpanStatus::Cancelled);
            }
        }
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
            *this.running = Running::start(op, description);
        }
        let Some(running) = this.running.as_ref() else {
            return this.inner.poll(cx);
        };
        struct Exit<'a>(&'a Running);
        impl Drop for Exit<'_> {
            fn drop(&mut self) {
                self.0.exit();
            }
        }
        running.enter();
        let exit = Exit(running);
        let poll = this.inner.poll(cx);
        drop(exit);
        if poll.is_ready() {
            if let Some(running) = this.running.take() {
                running.finish(SpanStatus::Ok);
            }
        }
        poll
    }
}

pin_project! {
    /// A future whose `Err` is reported; see [`FutureExt::report_errors`].
    #[derive(Debug)]
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
/// async fn handler() -> &'static str {
///     lighttrace::spawn(async {
///         lighttrace::add_breadcrumb(lighttrace::Breadcrumb::default());
///     });
///     "accepted"
/// }
/// ```
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.in_current_scope())
}

/// Like [`spawn`], naming the work: its events carry a `task` tag with the name.
///
/// ```
/// # async fn send_notification() -> Result<(), std::io::Error> { Ok(()) }
/// use lighttrace::FutureExt;
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
