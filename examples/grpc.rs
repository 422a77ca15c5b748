//! A tonic gRPC service behind the layer: every call is a transaction named after its method
//! (`shop.Orders/Place`, op `grpc.server`), its status read from the gRPC status (in the head,
//! or in the trailers at a stream's end), server errors and panics are events, and a panicking
//! handler answers `INTERNAL` as a gRPC client expects.
//!
//! ```text
//! cargo run --example grpc       # serves shop.Orders on 127.0.0.1:50051 (PORT overrides)
//! ```
//!
//! The service is `examples/shop`: `Place` (unary), `Track` (server streaming), `Basket`
//! (client streaming); an order's item picks what happens (`book` succeeds, `broken` fails
//! with `INTERNAL`, `unknown` with `NOT_FOUND`, `panic` panics; a tracked `lost` order fails
//! after three updates, an `endless` one never ends).
//!
//! With `LIGHTTRACE_DSN` or `SENTRY_DSN` set it reports there; otherwise every envelope is a
//! file in `./lighttrace-envelopes/` (`LIGHTTRACE_ENVELOPE_DIR` overrides), summed up on stdout.

mod shop;

use std::time::Duration;

use lighttrace::{FileSink, Options, TrackingLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut options = Options::from_env()?
        .environment("production")
        .release(concat!("grpc-example@", env!("CARGO_PKG_VERSION")))
        .traces_sample_rate(1.0);
    if options.dsn_ref().is_none() {
        let dir = std::env::var("LIGHTTRACE_ENVELOPE_DIR")
            .unwrap_or_else(|_| "lighttrace-envelopes".to_owned());
        options = options.sink(FileSink::new(&dir)?.with_summary());
        println!("reporting to files in {dir}/");
    }
    let layer = TrackingLayer::with_options(options);
    let client = layer.client().clone();

    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(50051);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("shop.Orders listening on http://{}", listener.local_addr()?);
    tonic::transport::Server::builder()
        .layer(layer)
        .add_service(shop::OrdersServer)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown_signal(),
        )
        .await?;
    let delivered = client.flush(Duration::from_secs(5)).await;
    println!("shut down (everything delivered: {delivered})");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
