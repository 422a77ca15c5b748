//! Spotlight: every envelope also reaches the sidecar, beside the main sink or without one, and
//! a sidecar that is not running costs the application nothing.

use crate::common;

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use common::{Collector, Mode};
use http::Request;
use lighttrace::{HandlerError, MemorySink, Options, TrackingLayer};
use tower::ServiceExt;

const WAIT: Duration = Duration::from_secs(5);

fn router(layer: TrackingLayer) -> Router {
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/fail",
            get(|| async { Err::<(), _>(HandlerError::new(std::io::Error::other("db down"))) }),
        )
        .layer(layer)
}

async fn hit(app: &Router, path: &str) {
    let req = Request::get(path).body(Body::empty()).unwrap();
    app.clone().oneshot(req).await.unwrap();
}

#[tokio::test]
async fn the_sidecar_gets_a_copy_of_everything_the_server_gets() {
    let sidecar = Collector::start(Mode::Accept(None)).await;
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(
        Options::new()
            .traces_sample_rate(1.0)
            .sink(sink.clone())
            .spotlight_url(sidecar.spotlight_url()),
    );
    let client = layer.client().clone();
    let app = router(layer);
    hit(&app, "/ok").await;
    hit(&app, "/fail").await;
    assert!(client.flush(WAIT).await);

    let main: Vec<String> = sink
        .events()
        .iter()
        .map(|e| e.event_id.to_string())
        .chain(sink.transactions().iter().map(|t| t.event_id.to_string()))
        .collect();
    assert_eq!(main.len(), 3, "one error event, two transactions");
    let seen: Vec<String> = sidecar.with_received(|received| {
        received
            .iter()
            .filter_map(|r| r.envelope.uuid().map(|u| u.to_string()))
            .collect()
    });
    for id in &main {
        assert!(
            seen.contains(id),
            "{id} did not reach the sidecar: {seen:?}"
        );
    }
    assert_eq!(sidecar.count_items("event"), 1);
    assert_eq!(sidecar.count_items("transaction"), 2);
    sidecar.keep("spotlight");
}

#[tokio::test]
async fn without_a_dsn_spotlight_alone_receives_and_an_absent_sidecar_fails_nothing() {
    // Spotlight alone: the client is enabled by it.
    let sidecar = Collector::start(Mode::Accept(None)).await;
    let layer = TrackingLayer::with_options(
        Options::new()
            .traces_sample_rate(1.0)
            .spotlight_url(sidecar.spotlight_url()),
    );
    let client = layer.client().clone();
    assert!(client.is_enabled());
    hit(&router(layer), "/fail").await;
    assert!(client.flush(WAIT).await);
    assert_eq!(sidecar.count_items("event"), 1);

    // Nothing listens on the sidecar's port: requests are served, the main sink gets
    // everything, and flushing does not wait on the sidecar.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(
        Options::new()
            .traces_sample_rate(1.0)
            .sink(sink.clone())
            .spotlight_url(format!("http://{closed}/stream").parse().unwrap()),
    );
    let client = layer.client().clone();
    let app = router(layer);
    for _ in 0..20 {
        hit(&app, "/fail").await;
    }
    assert!(client.flush(WAIT).await);
    assert_eq!(sink.events().len(), 20);
    assert!(
        sink.discarded().is_empty(),
        "the sidecar's losses are not the server's: {:?}",
        sink.discarded()
    );
}
