//! Outgoing HTTP traced without changing each call: a `reqwest-middleware` client and any tower
//! client service (hyper-util's) behind `OutgoingLayer`, against a local server: the trace
//! headers arrive (within the propagation targets), each call is an `http.client` span and an
//! `http` breadcrumb, sampled request or not.
#![cfg(feature = "reqwest-middleware")]

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use lighttrace::protocol::{Breadcrumb, Context, Event, Span, SpanStatus};
use lighttrace::{MemorySink, Options, OutgoingLayer, ReqwestMiddleware, TrackingLayer};
use tower::{Layer, ServiceExt};

use crate::common::{self, Upstream};

const WAIT: Duration = Duration::from_secs(10);

fn options(sink: &MemorySink) -> Options {
    common::options_into(sink).traces_sample_rate(1.0)
}

async fn get_path(app: &Router, path: &str) -> StatusCode {
    let req = Request::get(path).body(Body::empty()).unwrap();
    app.clone().oneshot(req).await.unwrap().status()
}

fn trace_id(contexts: &std::collections::BTreeMap<String, Context>) -> String {
    match contexts.get("trace") {
        Some(Context::Trace(t)) => t.trace_id.to_string(),
        other => panic!("{other:?}"),
    }
}

fn http_crumbs(event: &Event<'_>) -> Vec<Breadcrumb> {
    event
        .breadcrumbs
        .values
        .iter()
        .filter(|c| c.ty == "http" && c.category.as_deref() == Some("http"))
        .cloned()
        .collect()
}

fn client_spans(spans: &[Span]) -> Vec<&Span> {
    spans
        .iter()
        .filter(|s| s.op.as_deref() == Some("http.client"))
        .collect()
}

#[tokio::test]
async fn a_reqwest_middleware_client_traces_every_call() {
    let ok = Upstream::start(200).await;
    let missing = Upstream::start(404).await;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(ReqwestMiddleware::new())
        .build();
    let sink = MemorySink::new();
    let (a, b) = (
        format!("{}/items?token=abc&page=2", ok.base),
        format!("{}/gone", missing.base),
    );
    let app = Router::new()
        .route(
            "/order",
            get(move || {
                let (client, a, b) = (client.clone(), a.clone(), b.clone());
                async move {
                    client.get(&a).send().await.unwrap();
                    client.get(&b).send().await.unwrap();
                    lighttrace::capture_message("checkout done", lighttrace::Level::Error);
                    "ok"
                }
            }),
        )
        .layer(TrackingLayer::with_options(options(&sink)));
    assert_eq!(get_path(&app, "/order").await, StatusCode::OK);
    assert!(sink.wait_for_transactions(1, WAIT).await);
    assert!(sink.wait_for_events(1, WAIT).await);
    let tx = &sink.transactions()[0];
    // The trace reached the server, continuing the request's trace under the call's span.
    let seen = ok.requests();
    let sentry_trace = seen[0]["sentry-trace"].to_str().unwrap().to_owned();
    assert!(
        sentry_trace.starts_with(&trace_id(&tx.contexts)),
        "{sentry_trace}"
    );
    assert!(seen[0]["baggage"]
        .to_str()
        .unwrap()
        .contains("sentry-trace_id="));
    let spans = client_spans(&tx.spans);
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let first = spans[0];
    assert_eq!(
        first.description.as_deref(),
        Some(format!("GET {}/items", ok.base).as_str())
    );
    assert!(sentry_trace.contains(&first.span_id.to_string()));
    // The token is left out entirely: Sentry would filter a whole value with `token=` in it.
    assert_eq!(first.data["http.query"], "page=2");
    assert_eq!(first.data["http.response.status_code"], 200);
    assert_eq!(first.status, Some(SpanStatus::Ok));
    assert_eq!(spans[1].status, Some(SpanStatus::NotFound));
    // One breadcrumb per call, before the event: the second a warning.
    let crumbs = http_crumbs(&sink.events()[0]);
    assert_eq!(crumbs.len(), 2);
    assert_eq!(crumbs[0].data["url"], format!("{}/items", ok.base).as_str());
    assert_eq!(crumbs[0].data["method"], "GET");
    assert_eq!(crumbs[0].data["status_code"], 200);
    assert_eq!(crumbs[1].level, lighttrace::Level::Warning);
    assert_eq!(crumbs[1].data["reason"], "Not Found");
}

#[tokio::test]
async fn calls_outside_the_targets_carry_no_headers_and_unsampled_requests_still_get_breadcrumbs() {
    let upstream = Upstream::start(200).await;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(ReqwestMiddleware::new())
        .build();
    let sink = MemorySink::new();
    let target = format!("{}/x", upstream.base);
    let app = Router::new()
        .route(
            "/",
            get(move || {
                let (client, target) = (client.clone(), target.clone());
                async move {
                    client.get(&target).send().await.unwrap();
                    lighttrace::capture_message("after the call", lighttrace::Level::Error);
                    "ok"
                }
            }),
        )
        .layer(TrackingLayer::with_options(
            options(&sink)
                .traces_sample_rate(0.0)
                .trace_propagation_targets(["https://only.this.example"]),
        ));
    assert_eq!(get_path(&app, "/").await, StatusCode::OK);
    assert!(sink.wait_for_events(1, WAIT).await);
    assert!(!upstream.requests()[0].contains_key("sentry-trace"));
    assert!(!upstream.requests()[0].contains_key("baggage"));
    assert!(sink.transactions().is_empty());
    assert_eq!(http_crumbs(&sink.events()[0]).len(), 1);
}

#[tokio::test]
async fn a_tower_client_behind_the_outgoing_layer_is_traced() {
    let upstream = Upstream::start(503).await;
    let hyper_client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<Full<Bytes>>();
    let client = OutgoingLayer::new().layer(hyper_client);
    let sink = MemorySink::new();
    let target = format!("{}/stock", upstream.base);
    let down = "http://127.0.0.1:1/nothing-listens".to_owned();
    let app = Router::new()
        .route(
            "/",
            get(move || {
                let (client, target, down) = (client.clone(), target.clone(), down.clone());
                async move {
                    let req = Request::get(&target).body(Full::new(Bytes::new())).unwrap();
                    let status = client.clone().oneshot(req).await.unwrap().status();
                    let req = Request::get(&down).body(Full::new(Bytes::new())).unwrap();
                    assert!(client.oneshot(req).await.is_err());
                    status.as_u16().to_string()
                }
            }),
        )
        .layer(TrackingLayer::with_options(options(&sink)));
    assert_eq!(get_path(&app, "/").await, StatusCode::OK);
    assert!(sink.wait_for_transactions(1, WAIT).await);
    let tx = &sink.transactions()[0];
    assert!(upstream.requests()[0]["sentry-trace"]
        .to_str()
        .unwrap()
        .starts_with(&trace_id(&tx.contexts)));
    let spans = client_spans(&tx.spans);
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0].status, Some(SpanStatus::Unavailable));
    assert_eq!(spans[0].data["http.response.status_code"], 503);
    assert_eq!(spans[0].data["server.address"], "127.0.0.1");
    assert_eq!(
        spans[1].status,
        Some(SpanStatus::InternalError),
        "no answer"
    );
    assert!(spans[0].timestamp.unwrap() <= spans[1].start_timestamp);
}
