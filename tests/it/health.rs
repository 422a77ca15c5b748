//! Release health (sessions), per-route latency and the trace id response header, through a
//! real axum router.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use lighttrace::protocol::client_report::{Category, Reason};
use lighttrace::protocol::{EnvelopeItem, SessionAggregates};
use lighttrace::{HandlerError, MemorySink, Options, Sink, TrackingLayer, TRACERESPONSE};
use tower::ServiceExt;

const WAIT: Duration = Duration::from_secs(5);

fn router(layer: TrackingLayer) -> Router {
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/fail",
            get(|| async { Err::<(), _>(HandlerError::new(std::io::Error::other("db down"))) }),
        )
        .route(
            "/panic",
            get(|| async {
                let empty: Vec<u8> = Vec::new();
                empty[0].to_string()
            }),
        )
        .route(
            "/reported",
            get(|| async {
                // Answered 200, but an error was captured for it: errored, not exited.
                lighttrace::capture_error(&std::io::Error::other("cache miss storm"));
                "degraded"
            }),
        )
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                "slow"
            }),
        )
        .layer(layer)
}

async fn hit(app: &Router, path: &str) -> http::Response<Body> {
    let req = Request::get(path).body(Body::empty()).unwrap();
    common::served(app.clone().oneshot(req).await.unwrap()).await
}

fn sessions(sink: &MemorySink) -> Vec<SessionAggregates<'static>> {
    sink.envelopes()
        .iter()
        .flat_map(|e| e.items().cloned().collect::<Vec<_>>())
        .filter_map(|item| match item {
            EnvelopeItem::SessionAggregates(s) => Some(s),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn every_request_is_counted_once_in_release_health() {
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(
        Options::new()
            .traces_sample_rate(1.0)
            .release("api@2.0.0")
            .environment("staging")
            // Sessions are not sampled: none of these requests is traced.
            .traces_sample_rate(0.0)
            .sink(common::Keep(sink.clone())),
    );
    let client = layer.client().clone();
    let app = router(layer);
    let mut served = 0;
    for (path, times) in [
        ("/ok", 10),
        ("/missing", 2),
        ("/fail", 4),
        ("/panic", 3),
        ("/reported", 2),
    ] {
        for _ in 0..times {
            hit(&app, path).await;
            served += 1;
        }
    }
    assert!(client.flush(WAIT).await);

    let sent = sessions(&sink);
    assert!(!sent.is_empty(), "a sessions item at flush");
    let (mut exited, mut errored, mut crashed) = (0, 0, 0);
    for item in &sent {
        assert_eq!(item.attributes.release, "api@2.0.0");
        assert_eq!(item.attributes.environment.as_deref(), Some("staging"));
        for a in &item.aggregates {
            exited += a.exited;
            errored += a.errored;
            crashed += a.crashed;
            assert_eq!(
                a.started
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
                    % 60,
                0,
                "aggregated per minute"
            );
        }
    }
    assert_eq!((exited, errored, crashed), (12, 6, 3));
    assert_eq!(exited + errored + crashed, served);

    // Counted once: nothing more at the next flush, and new requests start from zero.
    assert!(client.flush(WAIT).await);
    assert_eq!(sessions(&sink).len(), sent.len());
    hit(&app, "/ok").await;
    assert!(client.close(WAIT).await);
    let last = sessions(&sink);
    assert_eq!(last.len(), sent.len() + 1, "sent at shutdown");
    assert_eq!(last.last().unwrap().aggregates[0].exited, 1);
}

#[tokio::test]
async fn an_error_that_ignore_errors_drops_leaves_the_request_exited() {
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(
        Options::new()
            .traces_sample_rate(1.0)
            .release("api@2.0.0")
            .traces_sample_rate(0.0)
            .ignore_errors(["io::Error"])
            .sink(common::Keep(sink.clone())),
    );
    let client = layer.client().clone();
    let app = router(layer);
    // A handler's error and a captured one, both of the ignored type; and a panic, not ignored.
    assert_eq!(hit(&app, "/fail").await.status(), 500);
    hit(&app, "/reported").await;
    hit(&app, "/panic").await;
    assert!(client.flush(WAIT).await);
    let (mut exited, mut errored, mut crashed) = (0, 0, 0);
    for item in sessions(&sink) {
        for a in &item.aggregates {
            exited += a.exited;
            errored += a.errored;
            crashed += a.crashed;
        }
    }
    assert_eq!((exited, errored, crashed), (2, 0, 1));
    // Only the panic is an event; each dropped error is counted once.
    assert_eq!(sink.events().len(), 1);
    let dropped: u32 = sink
        .discarded()
        .iter()
        .filter(|(r, c, _)| *r == Reason::EventProcessor && *c == Category::Error)
        .map(|(_, _, n)| n)
        .sum();
    assert_eq!(dropped, 2);
}

#[tokio::test]
async fn without_a_release_nothing_is_counted_or_sent() {
    let sink = MemorySink::new();
    let layer =
        TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone()));
    let client = layer.client().clone();
    let app = router(layer);
    hit(&app, "/ok").await;
    hit(&app, "/panic").await;
    assert!(client.flush(WAIT).await);
    assert!(sessions(&sink).is_empty());
}

/// Rate limits sessions, counting what it is told was dropped.
#[derive(Clone, Default)]
struct SessionsLimited(MemorySink);

impl Sink for SessionsLimited {
    fn send(&self, envelope: lighttrace::protocol::Envelope) {
        self.0.send(envelope);
    }
    fn record_discard(&self, reason: Reason, category: Category, quantity: u32) {
        self.0.record_discard(reason, category, quantity);
    }
    fn would_drop(&self, category: Category) -> Option<Reason> {
        (category == Category::Session).then_some(Reason::RatelimitBackoff)
    }
}

#[tokio::test]
async fn rate_limited_sessions_are_counted_not_sent() {
    let sink = SessionsLimited::default();
    let layer = TrackingLayer::with_options(
        Options::new()
            .traces_sample_rate(1.0)
            .release("api@1")
            .sink(sink.clone()),
    );
    let client = layer.client().clone();
    let app = router(layer);
    hit(&app, "/ok").await;
    assert!(client.flush(WAIT).await);
    assert!(sessions(&sink.0).is_empty());
    assert!(sink
        .0
        .discarded()
        .contains(&(Reason::RatelimitBackoff, Category::Session, 1)));
}

#[tokio::test]
async fn latency_is_counted_per_route_from_every_request() {
    let sink = MemorySink::new();
    // Unsampled, so the numbers come from every request, not from transactions.
    let layer =
        TrackingLayer::with_options(Options::new().traces_sample_rate(0.0).sink(sink.clone()));
    let client = layer.client().clone();
    let app = router(layer);
    for _ in 0..5 {
        hit(&app, "/ok").await;
    }
    for _ in 0..3 {
        hit(&app, "/slow").await;
    }
    hit(&app, "/fail").await;
    hit(&app, "/panic").await;
    hit(&app, "/nowhere/1").await;
    hit(&app, "/nowhere/2").await;
    assert!(sink.transactions().is_empty());

    let report = client.latency();
    let ok = report.route("GET /ok").unwrap();
    assert_eq!((ok.count, ok.errors), (5, 0));
    assert_eq!((ok.method.as_str(), ok.route.as_str()), ("GET", "/ok"));
    let slow = report.route("GET /slow").unwrap();
    assert_eq!(slow.count, 3);
    // Each took at least 30 ms; the percentiles are within 1.6 % of the truth.
    let floor = Duration::from_millis(30).mul_f64(1.0 - 1.0 / 64.0);
    assert!(
        slow.p50 >= floor && slow.p99 >= slow.p50 && slow.max >= slow.p99,
        "{slow:?}"
    );
    assert!(slow.max >= Duration::from_millis(30));
    assert_eq!(report.route("GET /fail").unwrap().errors, 1);
    assert_eq!(
        report.route("GET /panic").unwrap().errors,
        1,
        "a panic is a 500"
    );
    assert_eq!(
        report.route("GET <unmatched>").unwrap().count,
        2,
        "unmatched paths share one bucket"
    );
    assert_eq!(report.count(), 12);
    assert_eq!(report.routes()[0].name, "GET /slow", "slowest first");

    let table = report.to_string();
    assert!(table.lines().next().unwrap().contains("p95"), "{table}");
    assert!(table.contains("GET /slow"), "{table}");

    let text = report.prometheus();
    let line = |suffix: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("http_server_request_duration_seconds_{suffix}")))
            .map(|l| l.rsplit(' ').next().unwrap().to_owned())
    };
    assert_eq!(
        line(r#"count{method="GET",route="/slow",status_class="2xx"}"#).as_deref(),
        Some("3")
    );
    assert_eq!(
        line(r#"bucket{method="GET",route="/slow",status_class="2xx",le="0.025"}"#).as_deref(),
        Some("0"),
        "none of them under 25 ms"
    );
    assert_eq!(
        line(r#"count{method="GET",route="/fail",status_class="5xx"}"#).as_deref(),
        Some("1")
    );

    let taken = client.reset_latency();
    assert_eq!(taken.count(), 12);
    assert_eq!(client.latency().count(), 0);
}

#[tokio::test]
async fn routes_past_the_cap_share_one_bucket_and_latency_can_be_off() {
    let layer = TrackingLayer::with_options(
        Options::new()
            .traces_sample_rate(1.0)
            .sink(MemorySink::new())
            .max_latency_routes(2),
    );
    let client = layer.client().clone();
    let app = router(layer);
    for path in ["/ok", "/slow", "/missing", "/reported", "/ok"] {
        hit(&app, path).await;
    }
    let report = client.latency();
    assert_eq!(report.routes().len(), 3);
    assert_eq!(report.route("GET /ok").unwrap().count, 2);
    assert_eq!(report.route("<other>").unwrap().count, 2);

    let layer = TrackingLayer::with_options(
        Options::new()
            .traces_sample_rate(1.0)
            .sink(MemorySink::new())
            .track_latency(false),
    );
    let client = layer.client().clone();
    hit(&router(layer), "/ok").await;
    assert_eq!(client.latency().count(), 0);
}

#[tokio::test]
async fn latency_is_counted_even_when_nothing_can_be_sent() {
    let layer = TrackingLayer::with_options(Options::new().traces_sample_rate(1.0));
    let client = layer.client().clone();
    assert!(!client.is_enabled());
    let app = router(layer);
    hit(&app, "/ok").await;
    assert_eq!(hit(&app, "/panic").await.status(), 500);
    let report = client.latency();
    assert_eq!(report.route("GET /ok").unwrap().count, 1);
    assert_eq!(report.route("GET /panic").unwrap().errors, 1);
}

#[tokio::test]
async fn every_response_can_carry_its_trace_id() {
    let sink = MemorySink::new();
    let layer =
        TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone()))
            .trace_response_header(TRACERESPONSE);
    let client = layer.client().clone();
    let app = router(layer);
    let ok = hit(&app, "/ok").await;
    let panicked = hit(&app, "/panic").await;
    assert!(client.flush(WAIT).await);
    let transactions = sink.transactions();
    for (response, name) in [(&ok, "GET /ok"), (&panicked, "GET /panic")] {
        let value = response.headers()["traceresponse"].to_str().unwrap();
        let tx = transactions
            .iter()
            .find(|t| t.name.as_deref() == Some(name))
            .unwrap();
        let Some(lighttrace::protocol::Context::Trace(trace)) = tx.contexts.get("trace") else {
            panic!("no trace context");
        };
        assert_eq!(
            value,
            format!("00-{}-{}-01", trace.trace_id, trace.span_id),
            "{name}"
        );
    }

    // Unsampled: the same header, flagged 00, under a name of the user's choice.
    let layer = TrackingLayer::with_options(
        Options::new()
            .traces_sample_rate(1.0)
            .sink(MemorySink::new())
            .traces_sample_rate(0.0),
    )
    .trace_response_header(http::HeaderName::from_static("x-trace-id"));
    let response = hit(&router(layer), "/ok").await;
    let value = response.headers()["x-trace-id"].to_str().unwrap();
    assert!(
        value.starts_with("00-") && value.ends_with("-00"),
        "{value}"
    );
    assert_eq!(value.len(), 55);
    // Off by default.
    let layer = TrackingLayer::with_options(
        Options::new()
            .traces_sample_rate(1.0)
            .sink(Arc::new(MemorySink::new())),
    );
    assert!(hit(&router(layer), "/ok")
        .await
        .headers()
        .get("traceresponse")
        .is_none());
}
