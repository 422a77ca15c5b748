//! A small gRPC service, `shop.Orders`, written by hand the way tonic's code generator writes
//! one (no `.proto` file, no `protoc`, no build script): its messages are `prost` derives, its
//! server a tower `Service` that routes by path, its client a `tonic::client::Grpc`. The gRPC
//! example serves it; the tests and the benches drive it.
//!
//! ```proto
//! package shop;
//! service Orders {
//!   rpc Place(Order) returns (Receipt);              // unary
//!   rpc Track(Order) returns (stream Update);        // server streaming
//!   rpc Basket(stream Order) returns (Receipt);      // client streaming
//! }
//! ```
//!
//! What an order's `item` makes the server do: `"broken"` fails with `INTERNAL` (its source an
//! I/O error), `"unknown"` with `NOT_FOUND`, `"panic"` panics, `"slow"` takes three seconds;
//! a tracked `"lost"` order fails with `UNAVAILABLE` after three updates, an `"endless"` one
//! never ends. Anything else succeeds.

#![allow(dead_code)] // Each user drives part of it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::Body;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::codec::Streaming;
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;
use tower::Service;

/// An order for `quantity` of `item`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Order {
    #[prost(string, tag = "1")]
    pub item: String,
    #[prost(uint32, tag = "2")]
    pub quantity: u32,
}

/// What a placed order gets back.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Receipt {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(uint32, tag = "2")]
    pub items: u32,
}

/// One step of an order's delivery.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Update {
    #[prost(uint32, tag = "1")]
    pub step: u32,
    #[prost(string, tag = "2")]
    pub status: String,
}

/// The server side of `shop.Orders`.
#[derive(Clone, Copy, Debug, Default)]
pub struct OrdersServer;

impl tonic::server::NamedService for OrdersServer {
    const NAME: &'static str = "shop.Orders";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send>>;

impl<B> Service<http::Request<B>> for OrdersServer
where
    B: Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match req.uri().path() {
            "/shop.Orders/Place" => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(ProstCodec::<Receipt, Order>::default());
                Ok(grpc.unary(tower::service_fn(place), req).await)
            }),
            "/shop.Orders/Track" => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(ProstCodec::<Update, Order>::default());
                Ok(grpc.server_streaming(tower::service_fn(track), req).await)
            }),
            "/shop.Orders/Basket" => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(ProstCodec::<Receipt, Order>::default());
                Ok(grpc.client_streaming(tower::service_fn(basket), req).await)
            }),
            // What generated code answers for a method the service does not have.
            _ => Box::pin(async { Ok(Status::unimplemented("no such method").into_http()) }),
        }
    }
}

async fn place(req: Request<Order>) -> Result<Response<Receipt>, Status> {
    let order = req.into_inner();
    match order.item.as_str() {
        "broken" => {
            let mut status = Status::internal("the order could not be stored");
            status.set_source(Arc::new(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "the orders database refused the connection",
            )));
            Err(status)
        }
        "unknown" => Err(Status::not_found("no such item: unknown")),
        "panic" => {
            let prices: Vec<u32> = Vec::new();
            let price = prices[order.quantity as usize];
            Ok(Response::new(Receipt {
                id: format!("free-{price}"),
                items: 0,
            }))
        }
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok(Response::new(receipt(&order)))
        }
        _ => Ok(Response::new(receipt(&order))),
    }
}

fn receipt(order: &Order) -> Receipt {
    Receipt {
        id: format!("order-{}-{}", order.item, order.quantity),
        items: order.quantity,
    }
}

type Updates = ReceiverStream<Result<Update, Status>>;

async fn track(req: Request<Order>) -> Result<Response<Updates>, Status> {
    let item = req.into_inner().item;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let mut step = 0;
        loop {
            step += 1;
            if step > 3 && item != "endless" {
                break;
            }
            let update = Update {
                step,
                status: format!("{item}: step {step}"),
            };
            if tx.send(Ok(update)).await.is_err() {
                return; // The client stopped listening.
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if item == "lost" {
            let _ = tx
                .send(Err(Status::unavailable("the carrier stopped answering")))
                .await;
        }
    });
    Ok(Response::new(ReceiverStream::new(rx)))
}

async fn basket(req: Request<Streaming<Order>>) -> Result<Response<Receipt>, Status> {
    let mut orders = req.into_inner();
    let mut items = 0;
    while let Some(order) = orders.next().await {
        items += order?.quantity;
    }
    Ok(Response::new(Receipt {
        id: "basket".to_owned(),
        items,
    }))
}

/// The client side of `shop.Orders`, over any gRPC transport (tonic's `Channel`, or one wrapped
/// in tower layers).
#[derive(Clone, Debug)]
pub struct OrdersClient<T> {
    inner: tonic::client::Grpc<T>,
}

impl OrdersClient<tonic::transport::Channel> {
    /// A client of the server at `addr` (`http://127.0.0.1:50051`).
    pub async fn connect(addr: String) -> Result<Self, tonic::transport::Error> {
        let channel = tonic::transport::Endpoint::new(addr)?.connect().await?;
        Ok(OrdersClient::new(channel))
    }
}

impl<T> OrdersClient<T>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T::ResponseBody: Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    /// A client over `transport`.
    pub fn new(transport: T) -> Self {
        OrdersClient {
            inner: tonic::client::Grpc::new(transport),
        }
    }

    async fn ready(&mut self) -> Result<(), Status> {
        self.inner
            .ready()
            .await
            .map_err(|e| Status::unavailable(format!("not ready: {}", e.into())))
    }

    /// `Place`: one order, one receipt.
    pub async fn place(&mut self, order: Request<Order>) -> Result<Response<Receipt>, Status> {
        self.ready().await?;
        let path = http::uri::PathAndQuery::from_static("/shop.Orders/Place");
        self.inner.unary(order, path, ProstCodec::default()).await
    }

    /// `Track`: the updates of one order, as a stream.
    pub async fn track(
        &mut self,
        order: Request<Order>,
    ) -> Result<Response<Streaming<Update>>, Status> {
        self.ready().await?;
        let path = http::uri::PathAndQuery::from_static("/shop.Orders/Track");
        self.inner
            .server_streaming(order, path, ProstCodec::default())
            .await
    }

    /// `Basket`: a stream of orders, one receipt for them all.
    pub async fn basket(
        &mut self,
        orders: impl tokio_stream::Stream<Item = Order> + Send + 'static,
    ) -> Result<Response<Receipt>, Status> {
        self.ready().await?;
        let path = http::uri::PathAndQuery::from_static("/shop.Orders/Basket");
        self.inner
            .client_streaming(Request::new(orders), path, ProstCodec::default())
            .await
    }
}

/// An order of `quantity` × `item`.
pub fn order(item: &str, quantity: u32) -> Request<Order> {
    Request::new(Order {
        item: item.to_owned(),
        quantity,
    })
}
