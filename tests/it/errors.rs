//! Errors with their real detail: chains, stack traces, fingerprints, event ids, bodies.

use crate::common;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::routing::{get, post};
use axum::Router;
use http::{HeaderName, Request, StatusCode};
use http_body::Frame;
use lighttrace::protocol::Context as EventContext;
use lighttrace::{HandlerError, MemorySink, Options, TrackingLayer};
use tower::ServiceExt;

const WAIT: Duration = Duration::from_secs(5);

fn options(sink: &MemorySink) -> Options {
    Options::new()
        .dsn(
            lighttrace::parse_dsn("https://0123456789abcdef0123456789abcdef@errors.example.com/1")
                .unwrap(),
        )
        .sink(common::Keep(sink.clone()))
        .traces_sample_rate(0.0)
}

#[derive(Debug)]
struct QueryFailed(std::io::Error);
impl std::fmt::Display for QueryFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("query failed")
    }
}
impl std::error::Error for QueryFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[derive(Debug)]
struct LoadUser(QueryFailed);
impl std::fmt::Display for LoadUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("loading user 7 failed")
    }
}
impl std::error::Error for LoadUser {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn in_app_panic() -> &'static str {
    let empty: Vec<&str> = Vec::new();
    empty[0]
}

fn app(layer: TrackingLayer) -> Router {
    Router::new()
        .route(
            "/chain",
            get(|| async {
                let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "connection timed out");
                Err::<(), _>(HandlerError::new(LoadUser(QueryFailed(io))))
            }),
        )
        .route("/panic", get(|| async { in_app_panic() }))
        .route("/down", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
        .route(
            "/grouped",
            get(|| async {
                lighttrace::set_fingerprint(Some(vec!["payments".into(), "timeout".into()]));
                StatusCode::BAD_GATEWAY
            }),
        )
        .route(
            "/upload",
            post(|mut body: Body| async move {
                // Stream the whole body, as a handler processing a large upload would.
                use http_body_util::BodyExt;
                let mut len = 0usize;
                let mut sum = 0u64;
                while let Some(frame) = body.frame().await {
                    let Ok(chunk) = frame.unwrap().into_data() else {
                        continue;
                    };
                    len += chunk.len();
                    sum = chunk
                        .iter()
                        .fold(sum, |s, b| s.wrapping_mul(31).wrapping_add(u64::from(*b)));
                }
                (StatusCode::INTERNAL_SERVER_ERROR, format!("{len} {sum}"))
            }),
        )
        .layer(layer)
}

async fn send(app: &Router, req: Request<Body>) -> http::Response<Body> {
    common::served(app.clone().oneshot(req).await.unwrap()).await
}

fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn the_source_chain_is_the_exception_list_outermost_last() {
    let sink = MemorySink::new();
    let app = app(TrackingLayer::with_options(options(&sink)));
    send(&app, get_req("/chain")).await;
    assert!(sink.wait_for_events(1, WAIT).await);
    let chain = sink.events()[0].exception.values.clone();
    let types: Vec<_> = chain.iter().map(|e| e.ty.as_str()).collect();
    let values: Vec<_> = chain.iter().map(|e| e.value.as_deref().unwrap()).collect();
    assert_eq!(types, ["io::Error", "QueryFailed", "LoadUser"], "{chain:?}");
    assert_eq!(
        values,
        [
            "connection timed out",
            "query failed",
            "loading user 7 failed"
        ]
    );
    let mechanism = chain[2].mechanism.as_ref().unwrap();
    assert_eq!(mechanism.handled, Some(true));
}

#[tokio::test]
async fn identical_panics_and_identical_5xx_group_together() {
    let sink = MemorySink::new();
    let app = app(TrackingLayer::with_options(options(&sink)));
    for path in ["/panic", "/panic", "/down", "/down"] {
        assert_eq!(send(&app, get_req(path)).await.status().as_u16() / 100, 5);
    }
    assert!(sink.wait_for_events(4, WAIT).await);
    let events = sink.events();
    let key = |e: &lighttrace::protocol::Event<'static>| {
        let exc = e.exception.values.last();
        (
            exc.map(|x| (x.ty.clone(), x.value.clone())),
            e.message.clone(),
            e.fingerprint.to_vec(),
        )
    };
    let panics: Vec<_> = events
        .iter()
        .filter(|e| !e.exception.values.is_empty())
        .collect();
    let downs: Vec<_> = events
        .iter()
        .filter(|e| e.exception.values.is_empty())
        .collect();
    assert_eq!((panics.len(), downs.len()), (2, 2));
    assert_eq!(key(panics[0]), key(panics[1]));
    assert_eq!(key(downs[0]), key(downs[1]));
    let panic_exc = panics[0].exception.values.last().unwrap();
    assert_eq!(panic_exc.ty, "panic");
    assert!(
        !panic_exc.value.as_deref().unwrap().contains("thread"),
        "no thread id in the title"
    );
    assert_eq!(downs[0].message.as_deref(), Some("HTTP 503 on GET /down"));
    // The panic's own frame is the app's; library frames are not.
    let frames = &panic_exc.stacktrace.as_ref().unwrap().frames;
    let own = frames
        .iter()
        .find(|f| f.function.as_deref().unwrap_or("").contains("in_app_panic"))
        .expect("handler frame");
    assert_eq!(own.in_app, Some(true));
    assert!(frames
        .iter()
        .filter(|f| f.function.as_deref().unwrap_or("").starts_with("tokio::"))
        .all(|f| f.in_app == Some(false)));
    // The panic machinery on top of the stack is trimmed: the innermost frame is not it.
    let innermost = frames.last().unwrap().function.clone().unwrap_or_default();
    assert!(
        !innermost.starts_with("std::panicking") && !innermost.starts_with("core::panicking"),
        "{innermost}"
    );
}

#[tokio::test]
async fn in_app_prefixes_are_configurable() {
    let sink = MemorySink::new();
    let app = app(TrackingLayer::with_options(
        options(&sink)
            .in_app_include(["tokio::"])
            .in_app_exclude(["it::errors::in_app_panic"]),
    ));
    send(&app, get_req("/panic")).await;
    assert!(sink.wait_for_events(1, WAIT).await);
    let frames = sink.events()[0].exception.values[0]
        .stacktrace
        .clone()
        .unwrap()
        .frames;
    let f = |p: &str| {
        frames
            .iter()
            .find(|f| f.function.as_deref().unwrap_or("").starts_with(p))
            .unwrap()
            .in_app
    };
    assert_eq!(f("it::errors::in_app_panic"), Some(false));
    assert_eq!(f("tokio::"), Some(true));
}

#[tokio::test]
async fn fingerprints_from_the_scope_and_the_response_context() {
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(options(&sink).before_send(|e| {
        // Filtering on the response status is possible in before_send.
        match e.contexts.get("response") {
            Some(EventContext::Response(r)) if r.status_code == Some(502) => Some(e),
            _ => None,
        }
    }));
    let client = layer.client().clone();
    let app = app(layer);
    send(&app, get_req("/grouped")).await;
    send(&app, get_req("/down")).await;
    // Everything queued has been processed before absence is asserted.
    assert!(client.flush(WAIT).await);
    let events = sink.events();
    assert_eq!(
        events.len(),
        1,
        "the 503 was filtered by status in before_send"
    );
    assert_eq!(events[0].fingerprint.to_vec(), ["payments", "timeout"]);
}

#[tokio::test]
async fn the_event_id_header_names_the_event() {
    let sink = MemorySink::new();
    let header = HeaderName::from_static("x-event-id");
    let app = app(TrackingLayer::with_options(options(&sink)).event_id_header(header.clone()));
    let ok = send(&app, get_req("/no-such")).await;
    assert!(ok.headers().get(&header).is_none(), "no event, no header");
    let failed = send(&app, get_req("/chain")).await;
    let panicked = send(&app, get_req("/panic")).await;
    assert!(sink.wait_for_events(2, WAIT).await);
    let ids: Vec<String> = sink
        .events()
        .iter()
        .map(|e| e.event_id.simple().to_string())
        .collect();
    for res in [failed, panicked] {
        let id = res.headers()[&header].to_str().unwrap().to_owned();
        assert!(ids.contains(&id), "{id} not in {ids:?}");
    }
}

/// A body of `chunks` × 64 KiB, produced as it is read.
struct Generated {
    left: usize,
}

impl http_body::Body for Generated {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        let byte = b'a' + (self.left % 26) as u8;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![byte; 64 * 1024])))))
    }
}

#[tokio::test]
async fn a_streamed_50_mib_body_reaches_the_handler_unchanged_and_the_event_keeps_a_prefix() {
    let sink = MemorySink::new();
    let app = app(TrackingLayer::with_options(options(&sink)));
    let chunks = 50 * 16; // 50 MiB
    let req = Request::post("/upload")
        .header("content-type", "text/plain")
        .body(Body::new(Generated { left: chunks }))
        .unwrap();
    let res = send(&app, req).await;
    assert_eq!(res.status(), 500);
    let text = String::from_utf8(
        axum::body::to_bytes(res.into_body(), 1024)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    // The handler saw every byte, in order.
    let mut expected_sum = 0u64;
    for i in (0..chunks).rev() {
        let byte = u64::from(b'a' + (i % 26) as u8);
        for _ in 0..64 * 1024 {
            expected_sum = expected_sum.wrapping_mul(31).wrapping_add(byte);
        }
    }
    assert_eq!(text, format!("{} {expected_sum}", 50 * 1024 * 1024));

    assert!(sink.wait_for_events(1, WAIT).await);
    let data = sink.events()[0].request.clone().unwrap().data.unwrap();
    assert!(data.len() < 10 * 1024 + 100, "{} bytes kept", data.len());
    let first = char::from(b'a' + ((chunks - 1) % 26) as u8);
    assert!(
        data.starts_with(&first.to_string().repeat(100)),
        "{}",
        &data[..20]
    );
    assert!(
        data.ends_with("[lighttrace: truncated, 52428800 bytes in all]"),
        "{}",
        &data[data.len() - 60..]
    );
}

#[tokio::test]
async fn json_and_form_bodies_are_attached_scrubbed() {
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/json",
            post(|_: String| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route(
            "/bin",
            post(|_: Bytes| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .layer(TrackingLayer::with_options(options(&sink)));
    let req = Request::post("/json")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"order":{"id":7,"card":{"number":"4111111111111111","holder":"ANN"}},"password":"pw"}"#))
        .unwrap();
    send(&app, req).await;
    let req = Request::post("/bin")
        .header("content-type", "application/octet-stream")
        .body(Body::from(vec![0u8, 1, 2]))
        .unwrap();
    send(&app, req).await;
    assert!(sink.wait_for_events(2, WAIT).await);
    let events = sink.events();
    let json = events
        .iter()
        .find(|e| e.transaction.as_deref() == Some("POST /json"))
        .unwrap();
    let data: serde_json::Value =
        serde_json::from_str(json.request.as_ref().unwrap().data.as_deref().unwrap()).unwrap();
    assert_eq!(data["order"]["id"], 7);
    assert_eq!(data["order"]["card"]["holder"], "ANN");
    assert_eq!(data["order"]["card"]["number"], "[Filtered]");
    assert_eq!(data["password"], "[Filtered]");
    let bin = events
        .iter()
        .find(|e| e.transaction.as_deref() == Some("POST /bin"))
        .unwrap();
    assert!(
        bin.request.as_ref().unwrap().data.is_none(),
        "binary bodies are not captured"
    );
}
