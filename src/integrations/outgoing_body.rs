//! [`OutgoingBody`]: the body of a response an [`OutgoingService`](super::OutgoingService)
//! received, watched to its end when the call's outcome is there: a gRPC call's status comes
//! in its trailers.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::http_call::{Ended, HttpCall};
use crate::event::grpc;

pin_project! {
    /// The body of a response from an [`OutgoingService`](crate::OutgoingService): the inner
    /// body unchanged. A gRPC call's span ends here, with the status its trailers carry (or
    /// `cancelled` if the body is dropped first: the caller stopped reading a stream).
    pub struct OutgoingBody<B> {
        #[pin]
        inner: B,
        call: Option<HttpCall>,
    }
}

impl<B> OutgoingBody<B> {
    pub(super) fn new(inner: B, call: Option<HttpCall>) -> Self {
        OutgoingBody { inner, call }
    }

    /// The body the client received.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B> fmt::Debug for OutgoingBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingBody")
            .field("ended", &self.call.is_none())
            .finish_non_exhaustive()
    }
}

impl<B: Default> Default for OutgoingBody<B> {
    fn default() -> Self {
        OutgoingBody::new(B::default(), None)
    }
}

impl<B> Body for OutgoingBody<B>
where
    B: Body,
    B::Error: fmt::Display,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = std::task::ready!(this.inner.poll_frame(cx));
        if this.call.is_some() {
            let ended = match &polled {
                Some(Ok(frame)) => frame
                    .trailers_ref()
                    .map(|trailers| Ok(grpc::status_in(trailers).map(|(code, _)| code))),
                // Over without trailers: no status (`UNKNOWN`, as a gRPC client reads it).
                None => Some(Ok(None)),
                Some(Err(error)) => Some(Err(error.to_string())),
            };
            if let Some(ended) = ended {
                if let Some(call) = this.call.take() {
                    match ended {
                        Ok(code) => call.finish(Ended::Grpc(code), None),
                        Err(reason) => call.failed(&reason),
                    }
                }
            }
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
