//! Plain tower services with other body types, the file sink, and a hand-written sink.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use lighttrace::protocol::client_report::{Category, Reason};
use lighttrace::protocol::{Envelope, EnvelopeItem};
use lighttrace::{FileSink, HandlerError, MemorySink, Options, Sink, TrackingLayer};
use tower::{service_fn, ServiceBuilder, ServiceExt};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn works_on_a_plain_tower_service_with_any_body() {
    let sink = MemorySink::new();
    let svc = ServiceBuilder::new()
        .layer(TrackingLayer::with_options(
            Options::new().traces_sample_rate(1.0).sink(sink.clone()),
        ))
        // Behind the layer the body arrives as `RequestBody<B>`, which forwards every frame.
        .service(service_fn(
            |req: Request<lighttrace::RequestBody<Full<Bytes>>>| async move {
                let body = req.into_body().collect().await.unwrap().to_bytes();
                if body.as_ref() == b"fail" {
                    let err = HandlerError::new(std::io::Error::other("backend refused"));
                    return Ok::<_, Infallible>(err.into_response::<Full<Bytes>>());
                }
                lighttrace::add_breadcrumb(lighttrace::Breadcrumb {
                    message: Some("echo".into()),
                    ..Default::default()
                });
                Ok(Response::new(Full::new(body)))
            },
        ));

    let res = svc
        .clone()
        .oneshot(
            Request::post("/echo")
                .body(Full::new(Bytes::from_static(b"hi")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "hi");

    let res = svc
        .oneshot(
            Request::post("/echo")
                .body(Full::new(Bytes::from_static(b"fail")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);

    assert!(sink.wait_for_events(1, WAIT).await);
    let event = &sink.events()[0];
    assert_eq!(
        event.exception.values.last().unwrap().value.as_deref(),
        Some("backend refused")
    );
    // Without axum's MatchedPath, everything shares the unmatched name.
    assert_eq!(event.transaction.as_deref(), Some("POST <unmatched>"));
    assert!(sink.wait_for_transactions(2, WAIT).await);
}

#[tokio::test]
async fn the_file_sink_writes_valid_envelope_files() {
    let dir = std::env::temp_dir().join(format!("lighttrace-test-{}", fastrand_suffix()));
    let sink = FileSink::new(&dir).unwrap();
    let layer = TrackingLayer::with_options(
        Options::new()
            .traces_sample_rate(1.0)
            .dsn(
                lighttrace::parse_dsn("https://0123456789abcdef0123456789abcdef@example.com/1")
                    .unwrap(),
            )
            .sink(sink.clone()),
    );
    let client = layer.client().clone();
    let app = axum::Router::new()
        .route(
            "/boom",
            axum::routing::get(|| async { StatusCode::BAD_GATEWAY }),
        )
        .layer(layer);
    let res = app
        .oneshot(
            Request::get("/boom")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    assert!(client.flush(WAIT).await);

    let mut kinds = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(path.extension().unwrap(), "envelope");
        let envelope = Envelope::from_path(&path).unwrap();
        for item in envelope.items() {
            kinds.push(match item {
                EnvelopeItem::Event(e) => {
                    format!("event:{}", e.message.clone().unwrap_or_default())
                }
                EnvelopeItem::Transaction(t) => {
                    format!("transaction:{}", t.name.clone().unwrap_or_default())
                }
                _ => "other".to_owned(),
            });
        }
    }
    kinds.sort();
    assert_eq!(
        kinds,
        ["event:HTTP 502 on GET /boom", "transaction:GET /boom"]
    );
    assert!(sink.dropped().is_empty(), "{:?}", sink.dropped());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn fastrand_suffix() -> String {
    format!(
        "{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// A user's own sink: just the one required method.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<String>>>);

impl Sink for Collect {
    fn send(&self, envelope: Envelope) {
        let mut names = self.0.lock().unwrap();
        for item in envelope.items() {
            if let EnvelopeItem::Transaction(t) = item {
                names.push(t.name.clone().unwrap_or_default());
            }
        }
    }
}

#[tokio::test]
async fn a_hand_written_sink_plugs_in() {
    let sink = Collect::default();
    let layer =
        TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone()));
    let client = layer.client().clone();
    let app = axum::Router::new()
        .route("/items/{id}", axum::routing::get(|| async { "ok" }))
        .layer(layer);
    let req = Request::get("/items/1")
        .body(axum::body::Body::empty())
        .unwrap();
    app.oneshot(req).await.unwrap();
    // Transactions are built off the request task: flush before looking.
    assert!(client.flush(WAIT).await);
    assert_eq!(*sink.0.lock().unwrap(), ["GET /items/{id}"]);
}

/// What a hand-written sink was told the client dropped.
#[derive(Clone, Default)]
struct Discards(Arc<Mutex<Vec<(Reason, Category, u32)>>>);

impl Discards {
    fn record(&self, reason: Reason, category: Category, quantity: u32) {
        self.0.lock().unwrap().push((reason, category, quantity));
    }

    /// How many of `category` were dropped as `queue_overflow`.
    fn overflowed(&self, category: Category) -> u32 {
        let discarded = self.0.lock().unwrap();
        discarded
            .iter()
            .filter(|(r, c, _)| *r == Reason::QueueOverflow && *c == category)
            .map(|(_, _, n)| n)
            .sum()
    }
}

/// A sink that is saturated for transactions (but not for errors), and says so up front.
#[derive(Clone, Default)]
struct Saturated {
    sent: Arc<Mutex<Vec<&'static str>>>,
    discarded: Discards,
}

impl Sink for Saturated {
    fn send(&self, envelope: Envelope) {
        for item in envelope.items() {
            self.sent.lock().unwrap().push(match item {
                EnvelopeItem::Transaction(_) => "transaction",
                EnvelopeItem::Event(_) => "event",
                _ => "other",
            });
        }
    }

    fn record_discard(&self, reason: Reason, category: Category, quantity: u32) {
        self.discarded.record(reason, category, quantity);
    }

    fn would_drop(&self, category: Category) -> Option<Reason> {
        (category == Category::Transaction).then_some(Reason::QueueOverflow)
    }
}

#[tokio::test]
async fn transactions_a_saturated_sink_would_drop_are_counted_not_built() {
    let sink = Saturated::default();
    let layer =
        TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone()));
    let client = layer.client().clone();
    let app = axum::Router::new()
        .route(
            "/orders",
            axum::routing::get(|| async {
                drop(lighttrace::start_span("db.query", "SELECT orders"));
                drop(lighttrace::start_span("cache.get", "orders"));
                "ok"
            }),
        )
        .route(
            "/fail",
            axum::routing::get(|| async {
                Err::<(), _>(HandlerError::new(std::io::Error::other("disk full")))
            }),
        )
        .layer(layer);
    for path in ["/orders", "/fail"] {
        let req = Request::get(path).body(axum::body::Body::empty()).unwrap();
        app.clone().oneshot(req).await.unwrap();
    }
    assert!(client.flush(WAIT).await);
    // The error still went out; neither transaction was handed to the sink.
    assert_eq!(*sink.sent.lock().unwrap(), ["event"]);
    assert_eq!(sink.discarded.overflowed(Category::Transaction), 2);
    // Two child spans plus the root of /orders, and the root of /fail.
    assert_eq!(sink.discarded.overflowed(Category::Span), 4);
}

#[tokio::test]
async fn polling_a_finished_response_future_is_a_caller_error_not_a_handler_panic() {
    use std::future::Future;
    use tower::{Layer, Service};

    let sink = MemorySink::new();
    let layer =
        TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone()));
    let client = layer.client().clone();
    let mut svc = layer.layer(service_fn(
        |_req: Request<lighttrace::RequestBody<Full<Bytes>>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        },
    ));
    let mut future = Box::pin(svc.call(Request::new(Full::new(Bytes::new()))));
    let response = future.as_mut().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Its body sent: the request is over.
    drop(response);

    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = future.as_mut().poll(&mut cx);
    }));
    let message = again.expect_err("a finished future was polled again silently");
    let message = message.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(message.contains("polled after completion"), "{message}");
    // Nothing was reported for it: the handler did not panic.
    assert!(client.flush(WAIT).await);
    assert!(sink.events().is_empty());
    assert_eq!(sink.transactions().len(), 1);
}

/// A hand-written response future that finishes at once and panics when dropped.
struct FinishesThenPanicsOnDrop(Option<Result<Response<Full<Bytes>>, std::io::Error>>);

impl std::future::Future for FinishesThenPanicsOnDrop {
    type Output = Result<Response<Full<Bytes>>, std::io::Error>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::task::Poll::Ready(self.0.take().expect("polled once"))
    }
}

impl Drop for FinishesThenPanicsOnDrop {
    fn drop(&mut self) {
        panic!("drop after finishing");
    }
}

#[tokio::test]
async fn a_finished_future_that_panics_when_dropped_is_a_reported_500_and_errors_pass_through() {
    let sink = MemorySink::new();
    let layer =
        TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone()));
    let client = layer.client().clone();
    let svc = ServiceBuilder::new().layer(layer).service(service_fn(
        |req: Request<lighttrace::RequestBody<Full<Bytes>>>| {
            FinishesThenPanicsOnDrop(Some(if req.uri().path() == "/err" {
                Err(std::io::Error::other("upstream gone"))
            } else {
                Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
            }))
        },
    ));
    let ok = Request::get("/ok").body(Full::new(Bytes::new())).unwrap();
    let response = svc.clone().oneshot(ok).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // A service error still reaches the caller (error handlers, retries) as the error.
    let err = Request::get("/err").body(Full::new(Bytes::new())).unwrap();
    let error = svc.oneshot(err).await.unwrap_err();
    assert_eq!(error.to_string(), "upstream gone");

    assert!(client.flush(WAIT).await);
    let panics: Vec<_> = sink
        .events()
        .iter()
        .map(|e| e.exception.values[0].value.clone().unwrap_or_default())
        .collect();
    assert_eq!(panics, ["drop after finishing", "drop after finishing"]);
}

/// A sink whose `send` waits until the test opens its gate, stalling the client's worker.
#[derive(Clone, Default)]
struct Gated {
    open: Arc<(Mutex<bool>, std::sync::Condvar)>,
    sent: Arc<std::sync::atomic::AtomicU32>,
    discarded: Discards,
}

impl Gated {
    fn open(&self) {
        *self.open.0.lock().unwrap() = true;
        self.open.1.notify_all();
    }
}

impl Sink for Gated {
    fn send(&self, _envelope: Envelope) {
        let (open, opened) = &*self.open;
        let _open = opened
            .wait_while(open.lock().unwrap(), |open| !*open)
            .unwrap();
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn record_discard(&self, reason: Reason, category: Category, quantity: u32) {
        self.discarded.record(reason, category, quantity);
    }
}

#[tokio::test]
async fn transactions_over_the_clients_queue_bound_are_counted_with_their_spans() {
    let sink = Gated::default();
    // A bound by bytes: a traced request's job keeps its headers, spans and so on alive.
    let layer = TrackingLayer::with_options(
        Options::new()
            .traces_sample_rate(1.0)
            .sink(sink.clone())
            .max_queue_bytes(256 * 1024),
    );
    let client = layer.client().clone();
    let app = axum::Router::new()
        .route(
            "/orders",
            axum::routing::get(|| async {
                drop(lighttrace::start_span("db.query", "SELECT orders"));
                "ok"
            }),
        )
        .layer(layer);
    const REQUESTS: u32 = 2_000;
    for _ in 0..REQUESTS {
        let req = Request::get("/orders")
            .body(axum::body::Body::empty())
            .unwrap();
        app.clone().oneshot(req).await.unwrap();
    }
    sink.open();
    assert!(client.flush(Duration::from_secs(60)).await);
    let sent = sink.sent.load(std::sync::atomic::Ordering::Relaxed);
    let overflowed = sink.discarded.overflowed(Category::Transaction);
    assert!(
        overflowed > 0 && sent > 0,
        "sent {sent}, overflowed {overflowed}"
    );
    // Nothing lost without a count.
    assert_eq!(sent + overflowed, REQUESTS);
    // Each had one child span and its root.
    assert_eq!(sink.discarded.overflowed(Category::Span), 2 * overflowed);
}
