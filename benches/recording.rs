//! What counting a request costs the request path: per-route latency (a route slot from the
//! per-thread cache, a clock read, three atomic operations) and release health (two), measured
//! alone, in nanoseconds, beside a bare clock read for scale.
//!
//! ```text
//! cargo bench --bench recording
//! ```
//!
//! The route is a real axum `MatchedPath`, taken from a request a router matched. The cells
//! replay exactly the calls the layer adds to each request (`lighttrace::__probe::Probe`), after
//! the clock read the layer makes at each request's start with or without counting: what
//! counting adds is a cell's time minus `clock_read`'s.

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use http::Request;
use lighttrace::__probe::Probe;
use lighttrace::{MemorySink, Options, TrackingLayer};
use tower::ServiceExt;

/// A request as the layer sees it inside a router: with axum's `MatchedPath`.
fn matched_request() -> Request<Body> {
    let seen: Arc<Mutex<Option<MatchedPath>>> = Arc::default();
    let keep = seen.clone();
    let router = Router::new().route(
        "/users/{id}",
        get(move |path: MatchedPath| async move {
            *keep.lock().unwrap() = Some(path);
            "ok"
        }),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let req = Request::get("/users/7").body(Body::empty()).unwrap();
        router.oneshot(req).await.unwrap();
    });
    let path = seen.lock().unwrap().take().unwrap();
    let mut req = Request::get("/users/7").body(Body::empty()).unwrap();
    req.extensions_mut().insert(path);
    req
}

fn cells(c: &mut Criterion) {
    let req = matched_request();
    let mut g = c.benchmark_group("recording");
    g.bench_function("clock_read", |b| {
        b.iter(|| black_box(SystemTime::now()));
    });
    let cases: [(&str, Options); 3] = [
        ("latency_off", Options::new().track_latency(false)),
        ("latency", Options::new()),
        ("latency_and_health", Options::new().release("bench@1")),
    ];
    for (name, options) in cases {
        let layer = TrackingLayer::with_options(options.sink(MemorySink::new()));
        let probe = Probe::new(layer.client(), &req);
        // The start time is read in the loop (as the layer reads it at each request's start):
        // subtract `clock_read` for what counting adds.
        g.bench_function(name, |b| {
            b.iter(|| probe.count(SystemTime::now(), black_box(200)))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = cells
}
criterion_main!(benches);
