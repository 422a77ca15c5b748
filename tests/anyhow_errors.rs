//! `anyhow` errors keep their context chain and their backtrace (feature `anyhow`).
#![cfg(feature = "anyhow")]

#[path = "it/common/mod.rs"]
mod common;

use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use lighttrace::{HandlerError, MemorySink, Options, TrackingLayer};
use tower::ServiceExt;

fn load_config() -> anyhow::Result<String> {
    let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
    Err(io)
        .context("reading /etc/app.toml")
        .context("loading config")
}

#[tokio::test]
async fn anyhow_context_chain_and_backtrace_reach_the_event() {
    // anyhow captures a backtrace only when asked; this binary runs this one test.
    std::env::set_var("RUST_LIB_BACKTRACE", "1");
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/config",
            get(|| async { load_config().map_err(HandlerError::from_anyhow) }),
        )
        .layer(TrackingLayer::with_options(
            Options::new()
                .traces_sample_rate(1.0)
                .sink(common::Keep(sink.clone()))
                .traces_sample_rate(0.0),
        ));
    let res = app
        .oneshot(Request::get("/config").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    // The request is over when its body has been sent.
    drop(res);
    assert!(sink.wait_for_events(1, Duration::from_secs(5)).await);
    let chain = sink.events()[0].exception.values.clone();
    let values: Vec<_> = chain.iter().map(|e| e.value.clone().unwrap()).collect();
    assert_eq!(
        values,
        ["no such file", "reading /etc/app.toml", "loading config"]
    );
    assert_eq!(chain[0].ty, "io::Error");
    let frames = &chain[2]
        .stacktrace
        .as_ref()
        .expect("anyhow's backtrace")
        .frames;
    let own = frames
        .iter()
        .find(|f| f.function.as_deref().unwrap_or("").contains("load_config"))
        .unwrap_or_else(|| {
            panic!(
                "no load_config frame in {:#?}",
                frames
                    .iter()
                    .map(|f| f.function.clone())
                    .collect::<Vec<_>>()
            )
        });
    assert_eq!(own.in_app, Some(true));
}
