//! [`OutgoingLayer`]: a tower layer for the client side, around any
//! `Service<http::Request<B>>` client (hyper-util's `Client`, tonic's `Channel`, a
//! `tower::ServiceBuilder` stack): every request it sends carries the trace and is recorded as
//! an `http.client` span (a gRPC call as a `grpc.client` span, ended by its trailers' status)
//! and an `http` breadcrumb of the request it was sent from.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::http_call::{Ended, HttpCall};
use super::OutgoingBody;
use crate::event::grpc;

/// Traces the requests a client service sends: every request carries the trace and is
/// recorded as an `http.client` span and an `http` breadcrumb of the request it was sent from.
///
/// A gRPC call (`content-type: application/grpc…`, as tonic's `Channel` sends) is a
/// `grpc.client` span named `package.Service/Method`, with the status of a trailers-only answer
/// or of the trailers at the end of the response's [`OutgoingBody`]: wrap the channel with
/// `tower::ServiceBuilder::new().layer(OutgoingLayer::new()).service(channel)` and hand that to
/// the generated client's `new`.
///
/// ```
/// use lighttrace::{MemorySink, OutgoingLayer, Options, TrackingLayer};
/// use tower::{service_fn, Layer, ServiceExt};
///
/// # #[tokio::main] async fn main() {
/// // Any client that is a `Service<http::Request<B>>`; this one answers 204 itself.
/// let client = OutgoingLayer::new().layer(service_fn(|req: http::Request<String>| async move {
///     assert!(req.headers().contains_key("sentry-trace"));
///     Ok::<_, std::convert::Infallible>(http::Response::builder().status(204).body(()).unwrap())
/// }));
///
/// let sink = MemorySink::new();
/// let app = axum::Router::new()
///     .route(
///         "/",
///         axum::routing::get(move || {
///             let client = client.clone();
///             async move {
///                 let req = http::Request::get("http://inventory.internal/items")
///                     .body(String::new())
///                     .unwrap();
///                 client.oneshot(req).await.unwrap().status().as_u16().to_string()
///             }
///         }),
///     )
///     .layer(TrackingLayer::with_options(
///         Options::new().traces_sample_rate(1.0).sink(sink.clone()),
///     ));
/// let req = http::Request::get("/").body(axum::body::Body::empty()).unwrap();
/// app.oneshot(req).await.unwrap();
/// assert!(sink.wait_for_transactions(1, std::time::Duration::from_secs(5)).await);
/// let span = &sink.transactions()[0].spans[0];
/// assert_eq!(span.op.as_deref(), Some("http.client"));
/// assert_eq!(span.description.as_deref(), Some("GET http://inventory.internal/items"));
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
#[must_use]
pub struct OutgoingLayer {
    _private: (),
}

impl OutgoingLayer {
    /// The layer.
    pub fn new() -> Self {
        OutgoingLayer::default()
    }
}

impl<S> Layer<S> for OutgoingLayer {
    type Service = OutgoingService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OutgoingService { inner }
    }
}

/// The service [`OutgoingLayer`] makes.
#[derive(Clone, Debug)]
pub struct OutgoingService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for OutgoingService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: fmt::Display,
{
    type Response = Response<OutgoingBody<ResBody>>;
    type Error = S::Error;
    type Future = OutgoingFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let grpc = grpc::is_grpc(req.headers());
        let call = if grpc {
            let uri = req.uri().clone();
            HttpCall::start_grpc(&uri, req.headers_mut())
        } else {
            let (method, uri) = (req.method().clone(), req.uri().clone());
            HttpCall::start(&method, &uri, req.headers_mut())
        };
        OutgoingFuture {
            inner: self.inner.call(req),
            call: Some(call),
            grpc,
        }
    }
}

pin_project! {
    /// The response future of [`OutgoingService`].
    pub struct OutgoingFuture<F> {
        #[pin]
        inner: F,
        call: Option<HttpCall>,
        grpc: bool,
    }
}

impl<F> fmt::Debug for OutgoingFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingFuture").finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for OutgoingFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    E: fmt::Display,
{
    type Output = Result<Response<OutgoingBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        let call = this.call.take();
        Poll::Ready(match result {
            Ok(response) => {
                let call = call.and_then(|call| {
                    if !*this.grpc || response.status() != http::StatusCode::OK {
                        call.finish(Ended::Status(response.status()), None);
                        return None;
                    }
                    // A trailers-only answer has its status in the head; any other, in trailers.
                    match grpc::status_in(response.headers()) {
                        Some((code, _)) => {
                            call.finish(Ended::Grpc(Some(code)), None);
                            None
                        }
                        None => Some(call),
                    }
                });
                Ok(response.map(|body| OutgoingBody::new(body, call)))
            }
            Err(error) => {
                if let Some(call) = call {
                    let reason = error.to_string();
                    call.failed(&reason);
                }
                Err(error)
            }
        })
    }
}
