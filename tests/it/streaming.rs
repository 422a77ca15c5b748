//! Streamed responses over real HTTP: a request ends when its body does. A server-sent-events
//! route whose stream fails half-way is an error event of its request; a body that panics is a
//! fatal one; a client that hangs up half-way makes the request `cancelled`; a slow stream's
//! transaction lasts until its last byte.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::routing::get;
use axum::Router;
use lighttrace::protocol::{Context, SpanStatus, TraceContext, Transaction};
use lighttrace::{MemorySink, TrackingLayer};
use tokio_stream::StreamExt;

use crate::common;

const WAIT: Duration = Duration::from_secs(10);

fn trace(tx: &Transaction<'_>) -> TraceContext {
    match tx.contexts.get("trace") {
        Some(Context::Trace(t)) => (**t).clone(),
        other => panic!("no trace context: {other:?}"),
    }
}

/// Three chunks, 20 ms apart, then whatever `end` is.
fn chunks(
    end: Option<std::io::Error>,
) -> impl tokio_stream::Stream<Item = Result<Bytes, std::io::Error>> {
    let items = (1..=3)
        .map(|i| Ok(Bytes::from(format!("chunk {i}\n"))))
        .chain(end.map(Err));
    tokio_stream::iter(items).throttle(Duration::from_millis(20))
}

async fn serve(sink: &MemorySink) -> (String, lighttrace::Client) {
    let app = Router::new()
        .route(
            "/feed",
            get(|| async {
                let events = tokio_stream::iter(1..=4)
                    .throttle(Duration::from_millis(5))
                    .map(|i| {
                        if i < 3 {
                            Ok(SseEvent::default().data(format!("price {i}")))
                        } else {
                            Err(std::io::Error::other("the price feed went away"))
                        }
                    });
                Sse::new(events)
            }),
        )
        .route(
            "/download",
            get(|| async { Body::from_stream(chunks(None)) }),
        )
        .route(
            "/endless",
            get(|| async {
                let forever = tokio_stream::iter(0u64..)
                    .throttle(Duration::from_millis(5))
                    .map(|i| Ok::<_, std::io::Error>(Bytes::from(format!("tick {i}\n"))));
                Body::from_stream(forever)
            }),
        )
        .route(
            "/explodes",
            get(|| async {
                // Throttled: the head goes out before the second row is made.
                let rows = tokio_stream::iter(1..=3).throttle(Duration::from_millis(10));
                let stream = rows.map(|i| {
                    if i == 2 {
                        let rows: Vec<&str> = Vec::new();
                        return Ok(Bytes::from(rows[i].to_owned()));
                    }
                    Ok::<_, std::io::Error>(Bytes::from("row\n"))
                });
                Body::from_stream(stream)
            }),
        );
    let layer = TrackingLayer::with_options(
        common::options_into(sink)
            .release("feeds@1.0.0")
            .traces_sample_rate(1.0),
    );
    let client = layer.client().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app.layer(layer)).await });
    (format!("http://{addr}"), client)
}

#[tokio::test]
async fn an_sse_stream_that_fails_half_way_is_an_error_event_of_its_request() {
    let sink = MemorySink::new();
    let (base, _client) = serve(&sink).await;
    let mut res = reqwest::get(format!("{base}/feed")).await.unwrap();
    assert_eq!(res.status(), 200, "the head went out before the failure");
    let mut received = String::new();
    let cut = loop {
        match res.chunk().await {
            Ok(Some(chunk)) => received.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(cut, "the client saw the stream cut short");
    assert!(received.contains("price 2"), "{received}");

    assert!(sink.wait_for_events(1, WAIT).await);
    let event = &sink.events()[0];
    assert_eq!(event.level, lighttrace::Level::Error);
    assert_eq!(event.transaction.as_deref(), Some("GET /feed"));
    let chain: Vec<_> = event
        .exception
        .values
        .iter()
        .map(|e| (e.ty.as_str(), e.value.as_deref()))
        .collect();
    // axum's error around the stream's own, outermost last.
    let feed = Some("the price feed went away");
    assert_eq!(chain, [("io::Error", feed), ("Error", feed)]);
    assert!(sink.wait_for_transactions(1, WAIT).await);
    let trace = trace(&sink.transactions()[0]);
    assert_eq!(trace.status, Some(SpanStatus::InternalError));
    // The status already sent stays in the data.
    assert_eq!(trace.data["http.response.status_code"], 200);
}

#[tokio::test]
async fn a_streamed_download_is_measured_to_its_last_byte() {
    let sink = MemorySink::new();
    let (base, client) = serve(&sink).await;
    let body = reqwest::get(format!("{base}/download"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "chunk 1\nchunk 2\nchunk 3\n");

    assert!(sink.wait_for_transactions(1, WAIT).await);
    let tx = &sink.transactions()[0];
    assert_eq!(trace(tx).status, Some(SpanStatus::Ok));
    let took = tx
        .timestamp
        .unwrap()
        .duration_since(tx.start_timestamp)
        .unwrap();
    // Three chunks 20 ms apart: the first goes at once, the last 40 ms later.
    assert!(took >= Duration::from_millis(40), "{took:?}");
    let route = client.latency().route("GET /download").unwrap().clone();
    assert_eq!((route.count, route.errors), (1, 0));
    assert!(sink.events().is_empty());
}

#[tokio::test]
async fn a_client_that_hangs_up_half_way_makes_the_request_cancelled() {
    let sink = MemorySink::new();
    let (base, client) = serve(&sink).await;
    let mut res = reqwest::get(format!("{base}/endless")).await.unwrap();
    assert!(res.chunk().await.unwrap().is_some());
    drop(res);

    assert!(sink.wait_for_transactions(1, WAIT).await);
    let trace = trace(&sink.transactions()[0]);
    assert_eq!(trace.status, Some(SpanStatus::Cancelled));
    assert_eq!(trace.data["http.response.status_code"], 200);
    assert!(sink.events().is_empty(), "a client going away is no error");
    assert!(client.flush(WAIT).await);
    let route = client.latency().route("GET /endless").unwrap().clone();
    assert_eq!((route.count, route.errors), (1, 0));
}

#[tokio::test]
async fn a_body_that_panics_is_a_fatal_event_and_the_server_keeps_serving() {
    let sink = MemorySink::new();
    let (base, _client) = serve(&sink).await;
    let res = reqwest::get(format!("{base}/explodes")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.is_err(), "the response was cut short");
    let after = reqwest::get(format!("{base}/download")).await.unwrap();
    assert_eq!(after.status(), 200);

    assert!(sink.wait_for_events(1, WAIT).await);
    let event = &sink.events()[0];
    assert_eq!(event.level, lighttrace::Level::Fatal);
    assert_eq!(event.exception.values[0].ty, "panic");
    assert_eq!(event.transaction.as_deref(), Some("GET /explodes"));
    assert!(sink.wait_for_transactions(2, WAIT).await);
    let exploded = sink
        .transactions()
        .into_iter()
        .find(|t| t.name.as_deref() == Some("GET /explodes"))
        .unwrap();
    assert_eq!(trace(&exploded).status, Some(SpanStatus::InternalError));
}
