//! [`ResponseBody`]: a response's body, watched to its end. A request ends when its response's
//! body does (its last frame, or its trailers), is dropped, or fails: that is when its
//! transaction and latency end, its release-health outcome and status are decided, and a gRPC
//! status sent in trailers is read.

use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use sentry_types::protocol::v7::SpanId;

use super::ending::{BodyEnd, Ending};
use super::grpc;
use crate::scope::catch;

type BoxError = Box<dyn StdError + Send + Sync>;

pin_project! {
    /// The body of a response from a [`TrackingService`](crate::TrackingService): the inner
    /// body's frames, unchanged, with the request's scope current while a streamed body (one
    /// whose length is not known in advance) is polled, so its breadcrumbs, captures and spans
    /// belong to the request. The request is
    /// recorded when the body ends, fails or is dropped: a body that fails is an error event of
    /// the request, one that panics a fatal one (the status already sent stays in its data),
    /// and one dropped half-way (the client went away) makes the request `cancelled`.
    ///
    /// ```
    /// use http_body_util::BodyExt;
    /// use lighttrace::{MemorySink, Options, RequestBody, ResponseBody, TrackingLayer};
    /// use std::time::Duration;
    /// use tower::{service_fn, ServiceBuilder, ServiceExt};
    ///
    /// # #[tokio::main] async fn main() {
    /// let sink = MemorySink::new();
    /// let svc = ServiceBuilder::new()
    ///     .layer(TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone())))
    ///     .service(service_fn(|_req: http::Request<RequestBody<String>>| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new("streamed".to_owned()))
    ///     }));
    /// let res = svc.oneshot(http::Request::new(String::new())).await.unwrap();
    /// let body: ResponseBody<String> = res.into_body();
    /// // Nothing is recorded while the body is being sent ...
    /// assert!(!sink.wait_for_transactions(1, Duration::from_millis(50)).await);
    /// // ... and the transaction ends with its last byte.
    /// assert_eq!(body.collect().await.unwrap().to_bytes(), "streamed");
    /// assert!(sink.wait_for_transactions(1, Duration::from_secs(5)).await);
    /// # }
    /// ```
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        ending: Option<Ending>,
        // The span current in the request where its response was made.
        span: Option<SpanId>,
        polled: bool,
        // Panicked: not polled again.
        done: bool,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(ending) = this.ending.take() {
                // Never polled: nothing was streamed that could be cut short (a server sends
                // the body as soon as the head; a test that looks only at the status drops it).
                let end = if *this.polled { BodyEnd::Cancelled } else { BodyEnd::Complete };
                ending.end(end);
            }
        }
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(inner: B, ending: Option<Ending>, span: Option<SpanId>) -> Self {
        ResponseBody {
            inner,
            ending,
            span,
            polled: false,
            done: false,
        }
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("ended", &self.ending.is_none())
            .finish_non_exhaustive()
    }
}

impl<B> Default for ResponseBody<B>
where
    B: Default,
{
    fn default() -> Self {
        ResponseBody::new(B::default(), None, None)
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        *this.polled = true;
        let mut inner = this.inner;
        // A body whose length is known is already made (a buffer): polling it runs none of the
        // app's code, so the scope is entered only for streams.
        let streamed = inner.size_hint().exact().is_none();
        let tracked = this.ending.is_some();
        let polled = match this.ending.as_ref().and_then(Ending::scope) {
            Some(scope) if streamed => catch(true, || {
                scope.enter(this.span, || inner.as_mut().poll_frame(cx))
            }),
            _ => catch(tracked, || inner.as_mut().poll_frame(cx)),
        };
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(None)) => {
                if let Some(ending) = this.ending.take() {
                    ending.end(BodyEnd::Complete);
                }
                Poll::Ready(None)
            }
            Ok(Poll::Ready(Some(Ok(mut frame)))) => {
                if let Some(trailers) = frame.trailers_mut() {
                    if let Some(ending) = this.ending.take() {
                        ending.end(BodyEnd::Trailers(trailers));
                    }
                } else if inner.is_end_stream() {
                    // The last frame: a server stops polling here.
                    if let Some(ending) = this.ending.take() {
                        ending.end(BodyEnd::Complete);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Ok(Poll::Ready(Some(Err(error)))) => {
                let error: Arc<dyn StdError + Send + Sync> = Arc::from(error.into());
                if let Some(ending) = this.ending.take() {
                    ending.end(BodyEnd::Failed(error.clone()));
                }
                Poll::Ready(Some(Err(Box::new(SharedError(error)))))
            }
            Err(caught) => {
                *this.done = true;
                let Some(ending) = this.ending.take() else {
                    return Poll::Ready(Some(Err("the response body panicked".into())));
                };
                let grpc = ending.is_grpc();
                ending.end(BodyEnd::Panicked(caught));
                if grpc {
                    // A gRPC client reads `INTERNAL` from the trailers, as from any failed call.
                    let mut trailers = http::HeaderMap::new();
                    grpc::internal_error_trailers(&mut trailers);
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
                // Anyone else sees the response cut short.
                Poll::Ready(Some(Err("the response body panicked".into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A body's error, kept for the request's event and handed on to the server.
struct SharedError(Arc<dyn StdError + Send + Sync>);

impl fmt::Debug for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl StdError for SharedError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}
