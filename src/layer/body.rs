//! The request body as the inner service sees it: the original body, teed into a small capped
//! buffer as the handler reads it, so an error event can show what was sent.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::event::BodyCapture;

pin_project! {
    /// A request body that forwards every frame unchanged, copying the first bytes (up to
    /// [`Options::max_request_body_size`](crate::Options::max_request_body_size)) of JSON, form
    /// and text bodies aside for error events. Nothing is buffered in advance: a handler that
    /// streams a large upload reads it exactly as before.
    ///
    /// The layer hands it to the inner service in place of the original body; axum's router
    /// accepts it as any other body. A plain tower service behind the layer takes
    /// `http::Request<RequestBody<B>>`:
    ///
    /// ```
    /// use http_body_util::BodyExt;
    /// use lighttrace::{Options, RequestBody, TrackingLayer};
    /// use tower::{service_fn, ServiceBuilder, ServiceExt};
    ///
    /// # #[tokio::main] async fn main() {
    /// let svc = ServiceBuilder::new()
    ///     .layer(TrackingLayer::with_options(Options::new()))
    ///     .service(service_fn(|req: http::Request<RequestBody<String>>| async move {
    ///         let body = req.into_body().collect().await?.to_bytes();
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(String::from_utf8_lossy(&body).into_owned()))
    ///     }));
    /// let res = svc.oneshot(http::Request::new("hello".to_owned())).await.unwrap();
    /// assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "hello");
    /// # }
    /// ```
    pub struct RequestBody<B> {
        #[pin]
        inner: B,
        capture: Option<Arc<BodyCapture>>,
    }
}

impl<B> RequestBody<B> {
    pub(crate) fn new(inner: B, capture: Option<Arc<BodyCapture>>) -> Self {
        RequestBody { inner, capture }
    }

    /// The original body.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B: std::fmt::Debug> std::fmt::Debug for RequestBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("inner", &self.inner)
            .field("captured", &self.capture.is_some())
            .finish()
    }
}

impl<B: Default> Default for RequestBody<B> {
    fn default() -> Self {
        RequestBody {
            inner: B::default(),
            capture: None,
        }
    }
}

impl<B: Body> Body for RequestBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let (Some(capture), Poll::Ready(Some(Ok(frame)))) = (this.capture.as_ref(), &polled) {
            if let Some(data) = frame.data_ref() {
                // A `Buf` may hold several chunks; look at up to 64 of them without copying.
                let mut slices = [std::io::IoSlice::new(&[]); 64];
                let n = data.chunks_vectored(&mut slices);
                let chunks: Vec<&[u8]> = slices[..n].iter().map(|s| &**s).collect();
                capture.record(&chunks, data.remaining());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
