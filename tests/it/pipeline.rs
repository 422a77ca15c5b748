//! The one-way pipeline: user code contained and kept off the request task, the breadcrumb
//! bound, spans parented per future, and spans that end after their request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use lighttrace::protocol::client_report::{Category, Reason};
use lighttrace::protocol::{Context, SpanStatus};
use lighttrace::{Breadcrumb, FutureTraceExt, Level, MemorySink, Options, TrackingLayer};
use tower::ServiceExt;

use crate::common;

const WAIT: Duration = Duration::from_secs(5);

fn options(sink: &MemorySink) -> Options {
    common::options_into(sink)
}

async fn get_status(app: &Router, path: &str) -> StatusCode {
    let req = Request::get(path).body(Body::empty()).unwrap();
    app.clone().oneshot(req).await.unwrap().status()
}

fn crumb(message: &str) -> Breadcrumb {
    Breadcrumb {
        message: Some(message.to_owned()),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_panicking_before_breadcrumb_loses_only_its_breadcrumb() {
    let sink = MemorySink::new();
    let caller = std::thread::current().id();
    let layer = TrackingLayer::with_options(options(&sink).before_breadcrumb(move |c| {
        assert_ne!(
            std::thread::current().id(),
            caller,
            "ran on the request task"
        );
        if c.message.as_deref() == Some("bad") {
            panic!("a buggy before_breadcrumb");
        }
        Some(c)
    }));
    let app = Router::new()
        .route(
            "/ok",
            get(|| async {
                lighttrace::add_breadcrumb(crumb("bad"));
                lighttrace::add_breadcrumb(crumb("good"));
                lighttrace::capture_message("look here", Level::Warning);
                "fine"
            }),
        )
        .layer(layer);
    assert_eq!(get_status(&app, "/ok").await, StatusCode::OK);
    assert!(sink.wait_for_events(1, WAIT).await);
    assert!(sink.wait_for_transactions(1, WAIT).await);
    let events = sink.events();
    assert_eq!(events.len(), 1, "no fatal event for the hook's panic");
    assert_eq!(events[0].level, Level::Warning);
    let messages: Vec<_> = events[0]
        .breadcrumbs
        .values
        .iter()
        .filter_map(|c| c.message.clone())
        .collect();
    assert_eq!(messages, ["GET /ok", "good"]);
}

#[tokio::test]
async fn captures_run_before_send_off_the_request_task() {
    let sink = MemorySink::new();
    // The hook holds until the test lets it go: the response must not wait for it.
    let release = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let gate = release.clone();
    let layer = TrackingLayer::with_options(options(&sink).before_send(move |event| {
        if event.message.as_deref() == Some("panic in the hook") {
            panic!("a buggy before_send");
        }
        let (lock, cvar) = &*gate;
        let mut open = lock.lock().unwrap();
        while !*open {
            open = cvar.wait(open).unwrap();
        }
        Some(event)
    }));
    let app = Router::new()
        .route(
            "/capture",
            get(|| async {
                let id = lighttrace::capture_message("slow hook", Level::Error);
                assert!(id.is_some());
                lighttrace::capture_message("panic in the hook", Level::Error);
                lighttrace::capture_error(&std::io::Error::other("also slow"));
                "captured"
            }),
        )
        .layer(layer);
    let status = tokio::time::timeout(WAIT, get_status(&app, "/capture"))
        .await
        .expect("the response waited for before_send");
    assert_eq!(status, StatusCode::OK);
    {
        let (lock, cvar) = &*release;
        *lock.lock().unwrap() = true;
        cvar.notify_all();
    }
    assert!(sink.wait_for_events(2, WAIT).await);
    assert!(sink.wait_for_transactions(1, WAIT).await);
    let messages: Vec<_> = sink
        .events()
        .into_iter()
        .map(|e| {
            e.message
                .or_else(|| e.exception.values.last().and_then(|x| x.value.clone()))
        })
        .collect();
    assert_eq!(
        messages,
        [Some("slow hook".to_owned()), Some("also slow".to_owned())]
    );
    assert!(sink
        .discarded()
        .contains(&(Reason::EventProcessor, Category::Error, 1)));
}

#[tokio::test]
async fn an_event_carries_at_most_max_breadcrumbs_the_requests_own_included() {
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(options(&sink).max_breadcrumbs(3));
    let app = Router::new()
        .route(
            "/few",
            get(|| async {
                lighttrace::add_breadcrumb(crumb("one"));
                lighttrace::add_breadcrumb(crumb("two"));
                StatusCode::BAD_GATEWAY
            }),
        )
        .route(
            "/many",
            get(|| async {
                for i in 0..10 {
                    lighttrace::add_breadcrumb(crumb(&format!("c{i}")));
                }
                StatusCode::BAD_GATEWAY
            }),
        )
        .layer(layer);
    assert_eq!(get_status(&app, "/few").await, StatusCode::BAD_GATEWAY);
    assert_eq!(get_status(&app, "/many").await, StatusCode::BAD_GATEWAY);
    assert!(sink.wait_for_events(2, WAIT).await);
    let messages = |i: usize| -> Vec<String> {
        sink.events()[i]
            .breadcrumbs
            .values
            .iter()
            .filter_map(|c| c.message.clone())
            .collect()
    };
    assert_eq!(messages(0), ["GET /few", "one", "two"]);
    assert_eq!(messages(1), ["c7", "c8", "c9"], "newest kept, 3 in all");
}

#[tokio::test]
async fn concurrent_spans_are_parented_by_the_future_that_started_them() {
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/join",
            get(|| async {
                let a = async {
                    // Held across an await while `b` runs.
                    let _inner = lighttrace::start_span("db", "a.inner");
                    tokio::task::yield_now().await;
                    let _deeper = lighttrace::start_span("db", "a.deeper");
                    tokio::task::yield_now().await;
                };
                let b = async {
                    tokio::task::yield_now().await;
                    let _inner = lighttrace::start_span("db", "b.inner");
                    tokio::task::yield_now().await;
                };
                tokio::join!(a.in_span("task", "a"), b.in_span("task", "b"));
                let _after = lighttrace::start_span("db", "after");
                "joined"
            }),
        )
        .layer(TrackingLayer::with_options(options(&sink)));
    assert_eq!(get_status(&app, "/join").await, StatusCode::OK);
    assert!(sink.wait_for_transactions(1, WAIT).await);
    let tx = &sink.transactions()[0];
    let root = match tx.contexts.get("trace") {
        Some(Context::Trace(t)) => t.span_id,
        other => panic!("no trace context: {other:?}"),
    };
    let id = |name: &str| {
        tx.spans
            .iter()
            .find(|s| s.description.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no span {name}"))
    };
    assert_eq!(tx.spans.len(), 6);
    assert_eq!(id("a").parent_span_id, Some(root));
    assert_eq!(id("b").parent_span_id, Some(root), "b is not a's child");
    assert_eq!(id("a.inner").parent_span_id, Some(id("a").span_id));
    assert_eq!(id("a.deeper").parent_span_id, Some(id("a.inner").span_id));
    assert_eq!(
        id("b.inner").parent_span_id,
        Some(id("b").span_id),
        "b.inner is not under a.inner"
    );
    assert_eq!(id("after").parent_span_id, Some(root));
}

#[tokio::test]
async fn a_span_that_ends_after_its_request_is_counted_not_raced() {
    let sink = MemorySink::new();
    let (tx_guard, rx_guard) = tokio::sync::oneshot::channel();
    let slot = Arc::new(Mutex::new(Some(tx_guard)));
    let app = Router::new()
        .route(
            "/late",
            get(move || {
                let slot = slot.clone();
                async move {
                    let guard = lighttrace::start_span("cache.put", "outlives the request");
                    let _ = slot.lock().unwrap().take().unwrap().send(guard);
                    "done"
                }
            }),
        )
        .layer(TrackingLayer::with_options(options(&sink)));
    assert_eq!(get_status(&app, "/late").await, StatusCode::OK);
    assert!(sink.wait_for_transactions(1, WAIT).await);
    assert!(sink.transactions()[0].spans.is_empty());
    // Ends now, after the transaction was queued and sent.
    drop(rx_guard.await.unwrap());
    assert!(sink
        .discarded()
        .contains(&(Reason::EventProcessor, Category::Span, 1)));
}

#[tokio::test]
async fn a_cancelled_span_future_is_recorded_as_cancelled() {
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/select",
            get(|| async {
                tokio::select! {
                    _ = std::future::pending::<()>().in_span("http.client", "never answers") => {}
                    _ = tokio::task::yield_now().in_span("cache.get", "answers") => {}
                }
                "first wins"
            }),
        )
        .layer(TrackingLayer::with_options(options(&sink)));
    assert_eq!(get_status(&app, "/select").await, StatusCode::OK);
    assert!(sink.wait_for_transactions(1, WAIT).await);
    let tx = &sink.transactions()[0];
    let status = |name: &str| {
        tx.spans
            .iter()
            .find(|s| s.description.as_deref() == Some(name))
            .and_then(|s| s.status)
    };
    assert_eq!(status("never answers"), Some(SpanStatus::Cancelled));
    assert_eq!(status("answers"), Some(SpanStatus::Ok));
}

#[tokio::test]
async fn panicking_request_path_closures_fall_back_and_never_fail_the_request() {
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(options(&sink).traces_sampler(|ctx| {
        if ctx.route() == Some("/sampler-bug") {
            panic!("a buggy sampler");
        }
        1.0
    }))
    .transaction_name(|req| {
        if req.uri().path() == "/namer-bug" {
            panic!("a buggy namer");
        }
        None
    })
    .classify(|status: StatusCode| {
        if status == StatusCode::IM_A_TEAPOT {
            panic!("a buggy classifier");
        }
        status.is_server_error()
    });
    let app = Router::new()
        .route("/sampler-bug", get(|| async { "ok" }))
        .route("/namer-bug", get(|| async { "ok" }))
        .route("/teapot", get(|| async { StatusCode::IM_A_TEAPOT }))
        .layer(layer);
    assert_eq!(get_status(&app, "/sampler-bug").await, StatusCode::OK);
    assert_eq!(get_status(&app, "/namer-bug").await, StatusCode::OK);
    assert_eq!(get_status(&app, "/teapot").await, StatusCode::IM_A_TEAPOT);
    assert!(sink.wait_for_transactions(2, WAIT).await);
    let names: Vec<_> = sink
        .transactions()
        .into_iter()
        .map(|t| t.name.unwrap_or_default())
        .collect();
    // The sampler's request is untraced (and counted); the namer's keeps its route name; the
    // classifier's falls back to "5xx is a failure" (a 418 is not).
    assert_eq!(names, ["GET /namer-bug", "GET /teapot"]);
    assert!(sink.events().is_empty());
    assert!(sink
        .discarded()
        .contains(&(Reason::EventProcessor, Category::Transaction, 1)));
}
