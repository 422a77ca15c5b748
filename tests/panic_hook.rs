//! The opt-in global panic hook and the global client: process-wide state, so this binary
//! runs one test, whose phases run in order.

#[path = "it/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use lighttrace::{Client, Level, MemorySink, Options, TrackingLayer};
use tower::ServiceExt;

fn explode_in_worker() {
    let items: Vec<u8> = Vec::new();
    let _ = items[3];
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_wide_panic_hook_and_global_client() {
    panics_outside_requests_are_captured_without_blocking().await;
    user_code_panics_are_not_reported_as_panics_of_the_app().await;
}

async fn panics_outside_requests_are_captured_without_blocking() {
    // A hook installed before ours keeps running.
    let previous_calls = Arc::new(AtomicUsize::new(0));
    let counter = previous_calls.clone();
    std::panic::set_hook(Box::new(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    }));

    let sink = MemorySink::new();
    Client::new(
        Options::new()
            .traces_sample_rate(1.0)
            .release("svc@1")
            .sink(common::Keep(sink.clone())),
    )
    .install_global();
    lighttrace::capture_panics();

    let joined = std::thread::Builder::new()
        .name("worker-1".into())
        .spawn(explode_in_worker)
        .unwrap()
        .join();
    assert!(joined.is_err());
    assert_eq!(
        previous_calls.load(Ordering::SeqCst),
        1,
        "the previous hook was chained"
    );

    // A panic in a plain tokio task outside any request is captured too.
    let task = tokio::spawn(async { panic!("background job failed") }).await;
    assert!(task.is_err());

    assert!(sink.wait_for_events(2, Duration::from_secs(5)).await);
    let events = sink.events();
    let thread_event = events
        .iter()
        .find(|e| e.tags.get("thread").map(String::as_str) == Some("worker-1"))
        .expect("event from the std thread");
    assert_eq!(thread_event.level, Level::Fatal);
    assert_eq!(thread_event.release.as_deref(), Some("svc@1"));
    let exc = thread_event.exception.values.last().unwrap();
    assert_eq!(exc.ty, "panic");
    assert!(exc
        .value
        .as_deref()
        .unwrap()
        .starts_with("index out of bounds"));
    let mechanism = exc.mechanism.as_ref().unwrap();
    assert_eq!(mechanism.handled, Some(false));
    assert!(mechanism.data["location"]
        .as_str()
        .unwrap()
        .starts_with("tests/panic_hook.rs:"));
    let frames = &exc.stacktrace.as_ref().unwrap().frames;
    let own = frames
        .iter()
        .find(|f| {
            f.function
                .as_deref()
                .unwrap_or("")
                .contains("explode_in_worker")
        })
        .expect("the panicking function's frame");
    assert_eq!(own.in_app, Some(true));
    assert!(events
        .iter()
        .any(|e| e.exception.values.last().unwrap().value.as_deref()
            == Some("background job failed")));

    // The hook runs no user code: a `before_send` that panics on the panic it is given cannot
    // abort the process (a panic inside a panic hook does), it only loses that event.
    let sink = MemorySink::new();
    let client = Client::new(
        Options::new()
            .traces_sample_rate(1.0)
            .sink(common::Keep(sink.clone()))
            .before_send(|event| {
                let value = event.exception.values.last().and_then(|e| e.value.clone());
                if value.as_deref() == Some("poison for before_send") {
                    panic!("a buggy before_send");
                }
                Some(event)
            }),
    );
    client.install_global();
    let joined = std::thread::spawn(|| panic!("poison for before_send")).join();
    assert!(joined.is_err());
    let joined = std::thread::spawn(|| panic!("harmless")).join();
    assert!(joined.is_err());
    assert!(client.flush(Duration::from_secs(5)).await);
    let values: Vec<_> = sink
        .events()
        .iter()
        .map(|e| e.exception.values.last().unwrap().value.clone().unwrap())
        .collect();
    assert_eq!(values, ["harmless"]);
    use lighttrace::protocol::client_report::{Category, Reason};
    assert!(sink
        .discarded()
        .contains(&(Reason::EventProcessor, Category::Error, 1)));

    // A hung collector cannot freeze panicking threads: the hook only queues.
    let collector = common::Collector::start(common::Mode::Hang).await;
    Client::new(Options::new().traces_sample_rate(1.0).dsn(collector.dsn())).install_global();
    let all = tokio::task::spawn_blocking(|| {
        for _ in 0..50 {
            assert!(std::thread::spawn(explode_in_worker).join().is_err());
        }
    });
    tokio::time::timeout(Duration::from_secs(20), all)
        .await
        .expect("panicking threads were blocked by the collector")
        .unwrap();
}

async fn user_code_panics_are_not_reported_as_panics_of_the_app() {
    // With the global hook on, a contained hook's panic must not become an event either.
    let sink = MemorySink::new();
    let dsn = format!("https://{}@errors.example.com/1", common::KEY);
    let options = Options::new()
        .traces_sample_rate(1.0)
        .dsn(lighttrace::parse_dsn(&dsn).unwrap())
        .sink(common::Keep(sink.clone()));
    let client = lighttrace::Client::new(options.before_send(|event| {
        if event.message.as_deref() == Some("trip") {
            panic!("a buggy before_send");
        }
        Some(event)
    }));
    client.install_global();
    lighttrace::capture_panics();
    let layer = TrackingLayer::with_client(client.clone());
    let hit = Arc::new(AtomicBool::new(false));
    let flag = hit.clone();
    let app = Router::new()
        .route(
            "/",
            get(move || {
                flag.store(true, Ordering::SeqCst);
                async {
                    lighttrace::capture_message("trip", Level::Error);
                    "ok"
                }
            }),
        )
        .layer(layer);
    let req = Request::get("/").body(Body::empty()).unwrap();
    assert_eq!(app.oneshot(req).await.unwrap().status(), StatusCode::OK);
    assert!(client.flush(Duration::from_secs(5)).await);
    assert!(hit.load(Ordering::SeqCst));
    assert!(sink.events().is_empty());
    assert_eq!(sink.transactions().len(), 1);
}
