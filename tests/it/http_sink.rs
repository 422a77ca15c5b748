//! The HTTP sink against a real collector on 127.0.0.1 that can misbehave on demand.
#![cfg(feature = "http-sink")]

use crate::common;

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use common::{Collector, Mode, KEY};
use http::{Request, StatusCode};
use lighttrace::protocol::client_report::{Category, Reason};
use lighttrace::{
    Client, HandlerError, HttpSink, HttpSinkOptions, Level, Options, Sink, TrackingLayer,
};
use tower::ServiceExt;

const WAIT: Duration = Duration::from_secs(10);

fn fast() -> HttpSinkOptions {
    HttpSinkOptions::default()
        .request_timeout(Duration::from_secs(5))
        .circuit_cooldown(Duration::from_millis(50))
}

fn router(layer: TrackingLayer) -> Router {
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/fail",
            get(|| async {
                Err::<(), _>(HandlerError::new(std::io::Error::other("database is down")))
            }),
        )
        .layer(layer)
}

async fn hit(app: &Router, path: &str) -> StatusCode {
    app.clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap()
        .status()
}

fn discards(sink: &HttpSink, reason: Reason, category: Category) -> u64 {
    sink.dropped()
        .into_iter()
        .filter(|(r, c, _)| *r == reason && *c == category)
        .map(|(_, _, n)| n)
        .sum()
}

#[tokio::test]
async fn envelopes_arrive_whole_gzipped_with_protocol_headers() {
    let collector = Collector::start(Mode::Accept(None)).await;
    let layer =
        TrackingLayer::with_options(Options::new().dsn(collector.dsn()).traces_sample_rate(1.0));
    let client = layer.client().clone();
    let app = router(layer);
    assert_eq!(hit(&app, "/fail").await, 500);
    assert_eq!(hit(&app, "/ok").await, 200);
    assert!(client.flush(WAIT).await);

    let mut types = collector.item_types();
    types.sort();
    assert_eq!(
        types,
        [vec!["event"], vec!["transaction"], vec!["transaction"]]
    );
    collector.with_received(|received| {
        let gzipped = received
            .iter()
            .filter(|r| r.headers.contains_key("content-encoding"))
            .count();
        assert!(
            gzipped > 0 && gzipped < received.len(),
            "both forms are exercised"
        );
        for r in received {
            let auth = r.headers["x-sentry-auth"].to_str().unwrap();
            assert!(
                auth.starts_with("Sentry sentry_version=7, sentry_client=lighttrace/"),
                "{auth}"
            );
            assert!(auth.contains(&format!("sentry_key={KEY}")));
            let ua = r.headers["user-agent"].to_str().unwrap();
            assert_eq!(ua, concat!("lighttrace/", env!("CARGO_PKG_VERSION")));
            assert_eq!(r.headers["content-type"], "application/x-sentry-envelope");
            // Envelopes of 1 KiB or more are gzipped; smaller ones go as they are.
            let gzipped = r.headers.get("content-encoding").is_some();
            assert_eq!(gzipped, r.raw.len() >= 1024, "{} bytes", r.raw.len());
            if gzipped {
                assert_eq!(r.headers["content-encoding"], "gzip");
            }
            assert!(r.envelope.uuid().is_some());
        }
        let event = received.iter().find_map(|r| r.envelope.event()).unwrap();
        assert_eq!(
            event.exception.values.last().unwrap().value.as_deref(),
            Some("database is down")
        );
    });
    collector.keep("http-sink-basic");
}

#[tokio::test]
async fn rate_limits_on_a_200_stop_that_category_and_are_reported() {
    // Bugsink's answer to every envelope: no tracing, please.
    let collector =
        Collector::start(Mode::Accept(Some("86400:transaction;span:organization"))).await;
    let sink = HttpSink::with_options(collector.dsn(), fast());
    let layer = TrackingLayer::with_options(
        Options::new()
            .traces_sample_rate(1.0)
            .dsn(collector.dsn())
            .sink(sink.clone()),
    );
    let client = layer.client().clone();
    let app = router(layer);
    hit(&app, "/ok").await;
    assert!(client.flush(WAIT).await);
    assert_eq!(collector.count_items("transaction"), 1);

    for _ in 0..5 {
        hit(&app, "/ok").await;
    }
    hit(&app, "/fail").await; // an error still goes through
    assert!(client.flush(WAIT).await);

    assert_eq!(
        collector.count_items("transaction"),
        1,
        "a transaction was sent inside the window"
    );
    assert_eq!(collector.count_items("event"), 1);
    // The client asks before building a transaction, and is told why not.
    assert_eq!(
        sink.would_drop(Category::Transaction),
        Some(Reason::RatelimitBackoff)
    );
    assert_eq!(sink.would_drop(Category::Error), None);
    assert_eq!(collector.reported("ratelimit_backoff", "transaction"), 6);
    assert_eq!(collector.reported("ratelimit_backoff", "span"), 6);
    collector.keep("http-sink-ratelimit");
}

#[tokio::test]
async fn a_429_is_a_rate_limit_not_a_send_error() {
    for (retry_after, sentry, tx_limited) in [
        (Some("30"), None, true),                // Retry-After: everything
        (None, None, true),                      // bare 429: 60 s, everything
        (None, Some("30:error:project"), false), // only errors
    ] {
        let collector = Collector::start(Mode::TooMany {
            retry_after,
            sentry,
        })
        .await;
        let sink = HttpSink::with_options(collector.dsn(), fast());
        let client = Client::new(
            Options::new()
                .traces_sample_rate(1.0)
                .dsn(collector.dsn())
                .sink(sink.clone()),
        );
        client.capture_message("first", Level::Error);
        client.flush(WAIT).await;
        assert_eq!(collector.attempts_with("event"), 1);
        client.capture_message("second", Level::Error);
        client.flush(WAIT).await;
        assert_eq!(
            collector.attempts_with("event"),
            1,
            "sent inside the window ({retry_after:?}, {sentry:?})"
        );
        // The first was answered 429: the server counted it, the SDK does not count it again.
        // The second was held back by the limit: counted once.
        assert_eq!(
            discards(&sink, Reason::RatelimitBackoff, Category::Error),
            1
        );
        assert_eq!(discards(&sink, Reason::SendError, Category::Error), 0);
        if sentry.is_none() {
            // Everything is limited: not even the client report was sent.
            assert_eq!(collector.attempts(), 1);
        }

        let app = router(TrackingLayer::with_client(client.clone()));
        hit(&app, "/ok").await;
        client.flush(WAIT).await;
        // A limited category is not even attempted (and counted); an unlimited one is, and its
        // 429 is the server's to count.
        let tx_attempted = collector.attempts_with("transaction") == 1;
        assert_eq!(tx_attempted, !tx_limited, "{retry_after:?} {sentry:?}");
        assert_eq!(
            discards(&sink, Reason::RatelimitBackoff, Category::Transaction),
            u64::from(tx_limited)
        );
    }
}

#[tokio::test]
async fn server_errors_are_not_retried_but_counted_and_reported_later() {
    let collector = Collector::start(Mode::ServerError).await;
    let sink = HttpSink::with_options(collector.dsn(), fast().max_retries(2));
    let client = Client::new(
        Options::new()
            .traces_sample_rate(1.0)
            .dsn(collector.dsn())
            .sink(sink.clone()),
    );
    client.capture_message("lost", Level::Error);
    client.flush(WAIT).await;
    assert_eq!(
        collector.attempts_with("event"),
        1,
        "a server's answer is never retried"
    );
    assert_eq!(discards(&sink, Reason::SendError, Category::Error), 1);

    // The server recovers: the report of the loss arrives with the next flush.
    collector.set_mode(Mode::Accept(None));
    assert!(client.flush(WAIT).await);
    assert_eq!(collector.reported("send_error", "error"), 1);
    assert!(sink.pending_discards().is_empty());
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let collector = Collector::start(Mode::Reject(400)).await;
    let sink = HttpSink::with_options(collector.dsn(), fast());
    let client = Client::new(
        Options::new()
            .traces_sample_rate(1.0)
            .dsn(collector.dsn())
            .sink(sink.clone()),
    );
    client.capture_message("rejected", Level::Error);
    client.capture_message("rejected too", Level::Error);
    client.flush(WAIT).await;
    assert_eq!(collector.attempts_with("event"), 2, "a 4xx is not retried");
    // The loss was reported (the report itself was rejected too, and is not resent forever).
    assert_eq!(collector.attempts_with("client_report"), 1);
}

#[tokio::test]
async fn resets_and_garbage_are_survived_and_counted() {
    for addr in [
        common::resetting_server().await,
        common::garbage_server().await,
    ] {
        let dsn = lighttrace::parse_dsn(&format!("http://{KEY}@{addr}/1")).unwrap();
        let sink = HttpSink::with_options(dsn.clone(), fast().max_retries(1).circuit_failures(10));
        let client = Client::new(
            Options::new()
                .traces_sample_rate(1.0)
                .dsn(dsn)
                .sink(sink.clone()),
        );
        client.capture_message("into the void", Level::Error);
        client.flush(WAIT).await;
        assert_eq!(
            discards(&sink, Reason::NetworkError, Category::Error),
            1,
            "{addr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_collector_slows_no_request_and_flush_keeps_its_timeout() {
    let collector = Collector::start(Mode::Hang).await;
    let sink = HttpSink::with_options(
        collector.dsn(),
        fast()
            .queue_capacity(8)
            .concurrency(2)
            .request_timeout(Duration::from_secs(60))
            .circuit_failures(1000),
    );
    let layer = TrackingLayer::with_options(
        Options::new()
            .traces_sample_rate(1.0)
            .dsn(collector.dsn())
            .sink(sink.clone()),
    );
    let client = layer.client().clone();
    let app = router(layer);
    // Liveness, not timing: 200 requests must all finish while the collector never answers.
    let all = async {
        let mut handles = Vec::new();
        for i in 0..200 {
            let app = app.clone();
            handles.push(tokio::spawn(async move {
                hit(&app, if i % 10 == 0 { "/fail" } else { "/ok" }).await
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .expect("requests were blocked by the hanging collector");
    // Once the queue is full the sink says so, and the client stops building transactions.
    // (The burst above may have been dropped before the worker thread took its first
    // envelopes, leaving room: top the queue up until it is full.)
    let full = async {
        while sink.would_drop(Category::Transaction) != Some(Reason::QueueOverflow) {
            hit(&app, "/ok").await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(WAIT, full)
        .await
        .expect("a full queue was not reported by would_drop");

    let flushed = tokio::time::timeout(
        Duration::from_secs(10),
        client.flush(Duration::from_millis(300)),
    )
    .await
    .expect("flush outlived its timeout");
    assert!(!flushed);
    let overflow = discards(&sink, Reason::QueueOverflow, Category::Transaction)
        + discards(&sink, Reason::QueueOverflow, Category::Error);
    assert!(
        overflow >= 180,
        "queue bound not applied: only {overflow} dropped"
    );
    // Dropping every handle returns at once; the worker thread is left to time out on its own.
    drop(app);
    drop(client);
    drop(sink);
}

#[test]
fn works_when_created_outside_a_tokio_runtime() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let collector = rt.block_on(Collector::start(Mode::Accept(None)));
    // Built and used on a plain thread with no runtime entered.
    let client = Client::new(Options::new().traces_sample_rate(1.0).dsn(collector.dsn()));
    assert!(tokio::runtime::Handle::try_current().is_err());
    client.capture_message("from plain std", Level::Info);
    assert!(rt.block_on(client.flush(WAIT)));
    assert_eq!(collector.count_items("event"), 1);
}
