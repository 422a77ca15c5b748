//! The gRPC cells: a unary call of `shop.Orders/Place` through tonic's client and server, in
//! memory (no socket: the client's transport is the server's service stack), with no layer,
//! with lighttrace's, and with sentry-tower's. Each stack answers with tonic's boxed body, so
//! every cell pays the same boxing.

use std::sync::Arc;

use lighttrace::{Options, TrackingLayer};
use tower::util::BoxCloneService;
use tower::{Layer, ServiceBuilder, ServiceExt};

#[path = "../../examples/shop/mod.rs"]
mod shop;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Req = http::Request<tonic::body::Body>;

/// A gRPC server stack, as the client's transport.
pub type GrpcStack =
    BoxCloneService<http::Request<tonic::body::Body>, http::Response<tonic::body::Body>, BoxError>;

fn routes() -> tonic::service::Routes {
    tonic::service::Routes::new(shop::OrdersServer)
}

/// `service` answering with tonic's boxed body.
fn boxed<S, B>(service: S) -> GrpcStack
where
    S: tower::Service<Req, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let service = ServiceExt::<Req>::map_response(service, |res| res.map(tonic::body::Body::new));
    BoxCloneService::new(ServiceExt::<Req>::map_err(service, Into::into))
}

/// The service alone.
pub fn bare() -> GrpcStack {
    boxed(routes())
}

/// Behind lighttrace's layer, sampling `rate` of the calls.
pub fn lighttrace(rate: f32) -> (GrpcStack, lighttrace::Client) {
    let layer = TrackingLayer::with_options(
        Options::new()
            .dsn(lighttrace::parse_dsn(super::DSN).unwrap())
            .traces_sample_rate(rate)
            .sink(super::Discard),
    );
    let client = layer.client().clone();
    (boxed(layer.layer(routes())), client)
}

/// Behind sentry-tower's layers (a hub per call, an `http.server` transaction), sampling `rate`
/// of the calls. sentry-tower catches no panics, and tower-http's catcher would answer a gRPC
/// call with an HTTP 500: the cells make no failing calls.
pub fn sentry_tower(rate: f32) -> (GrpcStack, sentry::ClientInitGuard) {
    let guard = sentry::init(
        sentry::ClientOptions::new()
            .dsn(super::DSN)
            .traces_sample_rate(rate)
            .transport(Arc::new(super::SentryDiscard)),
    );
    let stack = ServiceBuilder::new()
        .layer(sentry::integrations::tower::NewSentryLayer::<Req>::new_from_top())
        .layer(sentry::integrations::tower::SentryHttpLayer::new().enable_transaction())
        .service(routes());
    (boxed(stack), guard)
}

/// One unary call through `stack`, its answer decoded.
pub async fn place(stack: &GrpcStack) -> u32 {
    let mut orders = shop::OrdersClient::new(stack.clone());
    let receipt = orders.place(shop::order("book", 2)).await.unwrap();
    receipt.into_inner().items
}
