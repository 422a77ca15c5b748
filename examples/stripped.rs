//! A release build's panic, for checking that a stripped binary's events can still be
//! symbolicated server-side: build it with `strip = true`, run it, and its event carries the
//! instruction address of every frame and the executable's image (build id, load address).
//!
//! ```text
//! CARGO_PROFILE_RELEASE_STRIP=true cargo build --release --example stripped
//! LIGHTTRACE_ENVELOPE_DIR=/tmp/stripped target/release/examples/stripped
//! ```
//!
//! CI does exactly that (`.ci/stripped-check.py`) and compares the image's debug id with the
//! binary's GNU build id.

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use lighttrace::{FileSink, Options, TrackingLayer};
use tower::ServiceExt;

async fn first_order() -> String {
    let orders: Vec<u32> = std::hint::black_box(Vec::new());
    orders[0].to_string()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir =
        std::env::var("LIGHTTRACE_ENVELOPE_DIR").unwrap_or_else(|_| "stripped-envelopes".into());
    let layer = TrackingLayer::with_options(Options::new().sink(FileSink::new(&dir)?));
    let client = layer.client().clone();
    let app = Router::new().route("/panic", get(first_order)).layer(layer);
    let request = http::Request::get("/panic").body(Body::empty())?;
    let status = app.oneshot(request).await?.status();
    let flushed = client.flush(Duration::from_secs(10)).await;
    println!("answered {status}, flushed {flushed}, envelopes in {dir}/");
    Ok(())
}
