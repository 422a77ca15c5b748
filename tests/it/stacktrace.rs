//! A handler's panic, as a server groups it: the stack trace's last in-app frame is the line
//! that panicked, library frames (std/core, axum, tokio from the registry) are not in-app, and
//! every frame has an instruction address the loaded images can resolve.

use crate::common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use lighttrace::protocol::DebugImage;
use lighttrace::{MemorySink, Options, TrackingLayer};
use tower::ServiceExt;

static PANIC_LINE: AtomicU32 = AtomicU32::new(0);

async fn first_order() -> String {
    let orders: Vec<u32> = Vec::new();
    PANIC_LINE.store(line!() + 1, Ordering::Relaxed);
    let first = orders[0];
    first.to_string()
}

#[tokio::test]
async fn the_last_in_app_frame_is_the_line_that_panicked() {
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(Options::new().sink(common::Keep(sink.clone())));
    let client = layer.client().clone();
    let app = Router::new().route("/panic", get(first_order)).layer(layer);
    let req = Request::get("/panic").body(Body::empty()).unwrap();
    assert_eq!(app.oneshot(req).await.unwrap().status(), 500);
    assert!(client.flush(Duration::from_secs(5)).await);

    let events = sink.events();
    let exception = events[0].exception.values.last().unwrap();
    let frames = &exception.stacktrace.as_ref().unwrap().frames;
    let culprit = frames
        .iter()
        .rev()
        .find(|f| f.in_app == Some(true))
        .unwrap();
    assert!(
        culprit
            .filename
            .as_deref()
            .unwrap()
            .ends_with("tests/it/stacktrace.rs"),
        "{culprit:?}"
    );
    assert_eq!(
        culprit.lineno,
        Some(u64::from(PANIC_LINE.load(Ordering::Relaxed)))
    );
    assert!(culprit
        .function
        .as_deref()
        .unwrap()
        .starts_with("it::stacktrace::first_order"));

    // Nothing of std, core, axum, tokio or lighttrace is the application's.
    for frame in frames.iter().filter(|f| f.in_app == Some(true)) {
        let function = frame.function.as_deref().unwrap_or("");
        let file = frame
            .abs_path
            .as_deref()
            .or(frame.filename.as_deref())
            .unwrap_or("");
        assert!(
            file.ends_with("tests/it/stacktrace.rs"),
            "in-app frame outside the test: {function} at {file}"
        );
    }
    // The panic machinery is trimmed: the innermost frame is the failing index, in core.
    let innermost = frames.last().unwrap();
    assert_eq!(innermost.in_app, Some(false), "{innermost:?}");
    assert!(frames.iter().all(|f| f.instruction_addr.is_some()));

    let images = &events[0].debug_meta.images;
    assert!(
        !images.is_empty(),
        "debug_meta.images for a stack with addresses"
    );
    let DebugImage::Symbolic(main) = &images[0] else {
        panic!("{:?}", images[0]);
    };
    assert!(main.code_id.is_some() && main.image_size > 0);
}
