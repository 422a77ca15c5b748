//! The layer on a real axum `Router`, asserted through `MemorySink`.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Path;
use axum::routing::{get, post};
use axum::Router;
use http::{Request, StatusCode};
use lighttrace::protocol::{Context, EnvelopeItem, Event, SpanStatus, Value};
use lighttrace::{Breadcrumb, HandlerError, Level, MemorySink, Options, TrackingLayer, User};
use tower::ServiceExt;

use crate::common;

const WAIT: Duration = Duration::from_secs(5);
const DSN: &str = "https://0123456789abcdef0123456789abcdef@errors.example.com/42";

#[derive(Debug)]
struct DbError {
    source: std::io::Error,
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("loading user failed")
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

async fn get_user(Path(user_id): Path<u64>) -> Result<String, HandlerError> {
    lighttrace::add_breadcrumb(Breadcrumb {
        category: Some("db".into()),
        message: Some(format!("load user {user_id}")),
        ..Default::default()
    });
    lighttrace::set_tag("tenant", "acme");
    if user_id == 0 {
        return Err(DbError {
            source: std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "connection refused",
            ),
        }
        .into());
    }
    Ok(format!("user {user_id}"))
}

fn options(sink: &MemorySink) -> Options {
    Options::new()
        .dsn(lighttrace::parse_dsn(DSN).unwrap())
        .environment("test")
        .release("api@1.2.3")
        .sink(common::Keep(sink.clone()))
        .traces_sample_rate(1.0)
}

fn app(layer: TrackingLayer) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/users/{user_id}", get(get_user))
        .route("/panic", get(panic_handler))
        .route(
            "/unavailable",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "try later") }),
        )
        .route("/echo", post(|body: String| async move { body }))
        .layer(layer)
}

async fn panic_handler() -> &'static str {
    lighttrace::set_user(Some(User {
        id: Some("7".into()),
        ..Default::default()
    }));
    let items: Vec<u32> = Vec::new();
    if items.is_empty() {
        panic!("no items for user 7");
    }
    "unreachable"
}

async fn send(app: &Router, req: Request<Body>) -> http::Response<Body> {
    common::served(app.clone().oneshot(req).await.unwrap()).await
}

fn get_req(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header("host", "api.example.com")
        .body(Body::empty())
        .unwrap()
}

fn trace_ctx(
    contexts: &std::collections::BTreeMap<String, Context>,
) -> &lighttrace::protocol::TraceContext {
    match contexts.get("trace") {
        Some(Context::Trace(t)) => t,
        other => panic!("no trace context: {other:?}"),
    }
}

fn response_status(event: &Event<'static>) -> Option<u64> {
    match event.contexts.get("response") {
        Some(Context::Response(r)) => r.status_code,
        _ => None,
    }
}

#[tokio::test]
async fn transactions_are_named_after_the_route_with_http_status() {
    let sink = MemorySink::new();
    let app = app(TrackingLayer::with_options(options(&sink)));
    assert_eq!(send(&app, get_req("/users/7")).await.status(), 200);
    assert_eq!(send(&app, get_req("/no/such/page")).await.status(), 404);
    assert_eq!(send(&app, get_req("/wp-login.php")).await.status(), 404);
    assert!(sink.wait_for_transactions(3, WAIT).await);

    let txs = sink.transactions();
    assert_eq!(txs[0].name.as_deref(), Some("GET /users/{user_id}"));
    assert_eq!(trace_ctx(&txs[0].contexts).status, Some(SpanStatus::Ok));
    assert_eq!(
        trace_ctx(&txs[0].contexts).op.as_deref(),
        Some("http.server")
    );
    // Unmatched requests share one name; the raw URL stays in `request.url`.
    assert_eq!(txs[1].name, txs[2].name);
    assert_eq!(txs[1].name.as_deref(), Some("GET <unmatched>"));
    assert_eq!(
        trace_ctx(&txs[1].contexts).status,
        Some(SpanStatus::NotFound)
    );
    let url = txs[2].request.as_ref().unwrap().url.as_ref().unwrap();
    assert_eq!(url.path(), "/wp-login.php");
    assert_eq!(txs[0].release.as_deref(), Some("api@1.2.3"));
    assert_eq!(txs[0].environment.as_deref(), Some("test"));
    assert_eq!(txs[0].platform, "native");
    assert!(txs[0].timestamp.unwrap() >= txs[0].start_timestamp);
    // No errors for successful and 404 requests.
    assert!(sink.events().is_empty());
}

#[tokio::test]
async fn a_closure_can_name_transactions() {
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(options(&sink)).transaction_name(|req| {
        req.route()
            .filter(|r| r.starts_with("/users"))
            .map(|_| "users.show".to_owned())
    });
    let app = app(layer);
    send(&app, get_req("/users/1")).await;
    send(&app, get_req("/health")).await;
    assert!(sink.wait_for_transactions(2, WAIT).await);
    let names: Vec<_> = sink
        .transactions()
        .into_iter()
        .map(|t| t.name.unwrap())
        .collect();
    assert_eq!(names, ["users.show", "GET /health"]);
}

#[tokio::test]
async fn a_panic_is_a_500_and_a_fatal_event_and_the_server_keeps_serving() {
    let sink = MemorySink::new();
    let app = app(TrackingLayer::with_options(options(&sink)));
    let res = send(&app, get_req("/panic?debug=1")).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(send(&app, get_req("/health")).await.status(), 200);

    assert!(sink.wait_for_events(1, WAIT).await);
    let event = &sink.events()[0];
    assert_eq!(event.level, Level::Fatal);
    let exc = event.exception.values.last().unwrap();
    assert_eq!(exc.ty, "panic");
    assert_eq!(exc.value.as_deref(), Some("no items for user 7"));
    let mechanism = exc.mechanism.as_ref().unwrap();
    assert_eq!(mechanism.ty, "panic");
    assert_eq!(mechanism.handled, Some(false));
    let location = mechanism.data["location"].as_str().unwrap();
    assert!(location.starts_with("tests/it/layer.rs:"), "{location}");
    // A real stack trace, with the handler's frame in it and marked as the app's own.
    let frames = &exc.stacktrace.as_ref().unwrap().frames;
    let handler = frames
        .iter()
        .find(|f| {
            f.function
                .as_deref()
                .unwrap_or("")
                .contains("panic_handler")
        })
        .expect("handler frame");
    assert_eq!(handler.in_app, Some(true));
    assert!(frames.iter().any(|f| f.in_app == Some(false)));
    // Request context and the user set before the panic.
    let request = event.request.as_ref().unwrap();
    assert_eq!(request.method.as_deref(), Some("GET"));
    assert_eq!(
        request.url.as_ref().unwrap().as_str(),
        "http://api.example.com/panic"
    );
    assert_eq!(request.query_string.as_deref(), Some("debug=1"));
    assert_eq!(event.user.as_ref().unwrap().id.as_deref(), Some("7"));
    assert_eq!(event.transaction.as_deref(), Some("GET /panic"));
    assert_eq!(response_status(event), Some(500));

    assert!(sink.wait_for_transactions(2, WAIT).await);
    let tx = sink
        .transactions()
        .into_iter()
        .find(|t| t.name.as_deref() == Some("GET /panic"))
        .unwrap();
    assert_eq!(
        trace_ctx(&tx.contexts).status,
        Some(SpanStatus::InternalError)
    );
    // The error event links to the request's trace.
    assert_eq!(
        trace_ctx(&event.contexts).trace_id,
        trace_ctx(&tx.contexts).trace_id
    );
}

#[tokio::test]
async fn a_panic_while_building_the_future_is_caught_too() {
    let sink = MemorySink::new();
    let svc =
        tower::ServiceBuilder::new()
            .layer(TrackingLayer::with_options(options(&sink)))
            .service(
                tower::service_fn(
                    |_req: Request<lighttrace::RequestBody<Body>>| -> std::future::Ready<
                        Result<http::Response<Body>, std::convert::Infallible>,
                    > { panic!("panicked in call()") },
                ),
            );
    let res = svc.oneshot(get_req("/x")).await.unwrap();
    assert_eq!(res.status(), 500);
    assert!(sink.wait_for_events(1, WAIT).await);
    let exc = sink.events()[0].exception.values.last().unwrap().clone();
    assert_eq!(exc.value.as_deref(), Some("panicked in call()"));
}

#[tokio::test]
async fn a_handler_error_reports_the_real_error_chain() {
    let sink = MemorySink::new();
    let app = app(TrackingLayer::with_options(options(&sink)));
    let res = send(&app, get_req("/users/0")).await;
    assert_eq!(res.status(), 500);
    let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
    assert!(
        !String::from_utf8_lossy(&body).contains("connection refused"),
        "error text leaked to the client"
    );

    assert!(sink.wait_for_events(1, WAIT).await);
    let event = &sink.events()[0];
    assert_eq!(event.level, Level::Error);
    let chain = &event.exception.values;
    assert_eq!(chain.len(), 2);
    // Outermost last, as Sentry expects.
    assert_eq!(chain[1].ty, "DbError");
    assert_eq!(chain[1].value.as_deref(), Some("loading user failed"));
    assert_eq!(chain[0].value.as_deref(), Some("connection refused"));
    assert_eq!(event.transaction.as_deref(), Some("GET /users/{user_id}"));
    assert_eq!(event.tags["tenant"], "acme");
    assert_eq!(response_status(event), Some(500));
}

#[tokio::test]
async fn a_5xx_response_is_an_error_event_with_a_stable_title() {
    let sink = MemorySink::new();
    let app = app(TrackingLayer::with_options(options(&sink)));
    send(&app, get_req("/unavailable")).await;
    send(&app, get_req("/unavailable")).await;
    assert!(sink.wait_for_events(2, WAIT).await);
    let events = sink.events();
    assert_eq!(
        events[0].message.as_deref(),
        Some("HTTP 503 on GET /unavailable")
    );
    assert_eq!(events[0].message, events[1].message);
    assert_eq!(events[0].fingerprint, events[1].fingerprint);
    assert_ne!(events[0].event_id, events[1].event_id);
}

#[tokio::test]
async fn classification_is_pluggable() {
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(options(&sink))
        .classify(|s: StatusCode| s.is_server_error() && s != StatusCode::SERVICE_UNAVAILABLE);
    let client = layer.client().clone();
    let app = app(layer);
    send(&app, get_req("/unavailable")).await;
    send(&app, get_req("/users/0")).await;
    // Everything queued has been processed before absence is asserted.
    assert!(client.flush(WAIT).await);
    let events = sink.events();
    assert_eq!(
        events.len(),
        1,
        "503 is not a failure under this classifier"
    );
    assert_eq!(events[0].exception.values.last().unwrap().ty, "DbError");
}

#[tokio::test]
async fn events_carry_the_full_request_context() {
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/orders/{id}",
            get(|| async {
                lighttrace::set_user(Some(User {
                    id: Some("u-1".into()),
                    email: Some("ann@example.com".into()),
                    ..Default::default()
                }));
                lighttrace::set_tag("plan", "pro");
                lighttrace::add_breadcrumb(Breadcrumb {
                    category: Some("payment".into()),
                    message: Some("Payment processing started".into()),
                    data: [("amount".to_owned(), Value::from(29.99))]
                        .into_iter()
                        .collect(),
                    ..Default::default()
                });
                lighttrace::capture_message("order looked odd", Level::Warning);
                "ok"
            }),
        )
        .layer(TrackingLayer::with_options(options(&sink)));
    let req = Request::get("/orders/9?expand=items&page=2")
        .header("host", "shop.example.com")
        .header("accept", "application/json")
        .header("x-request-id", "abc")
        .body(Body::empty())
        .unwrap();
    send(&app, req).await;
    assert!(sink.wait_for_events(1, WAIT).await);
    let event = &sink.events()[0];
    assert_eq!(event.level, Level::Warning);
    let request = event.request.as_ref().unwrap();
    assert_eq!(request.method.as_deref(), Some("GET"));
    assert_eq!(
        request.url.as_ref().unwrap().as_str(),
        "http://shop.example.com/orders/9"
    );
    assert_eq!(request.query_string.as_deref(), Some("expand=items&page=2"));
    assert_eq!(request.headers["Accept"], "application/json");
    assert_eq!(request.headers["X-Request-Id"], "abc");
    assert_eq!(
        event.user.as_ref().unwrap().email.as_deref(),
        Some("ann@example.com")
    );
    assert_eq!(event.tags["plan"], "pro");
    let crumbs = &event.breadcrumbs.values;
    assert_eq!(crumbs.len(), 2);
    assert_eq!(crumbs[0].category.as_deref(), Some("request"));
    assert_eq!(crumbs[0].message.as_deref(), Some("GET /orders/9"));
    assert_eq!(
        crumbs[1].message.as_deref(),
        Some("Payment processing started")
    );
    assert_eq!(crumbs[1].data["amount"], 29.99);
    let trace = trace_ctx(&event.contexts);
    assert_eq!(trace.trace_id.to_string().len(), 32);
    assert_eq!(event.release.as_deref(), Some("api@1.2.3"));
    assert_eq!(event.environment.as_deref(), Some("test"));
    let sdk = event.sdk.as_ref().unwrap();
    assert_eq!(
        (sdk.name.as_str(), sdk.version.as_str()),
        ("lighttrace", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(event.platform, "native");
    // The envelope's trace header links the event to the request's trace.
    let envelope = sink
        .serialized()
        .into_iter()
        .find(|e| e.windows(5).any(|w| w == b"odd\"}" || w == b"looke"))
        .unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(envelope.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(header["trace"]["trace_id"], trace.trace_id.to_string());
    assert_eq!(header["trace"]["transaction"], "GET /orders/{id}");
    assert_eq!(
        header["trace"]["public_key"],
        "0123456789abcdef0123456789abcdef"
    );
}

#[tokio::test]
async fn secrets_never_leave_the_process() {
    let sink = MemorySink::new();
    let app = app(TrackingLayer::with_options(options(&sink)));
    let req = Request::get("http://bob:hunter2-userinfo@api.example.com/unavailable?token=tok-SECRET1&api_key=key-SECRET2&password=pw-SECRET3&page=2")
        .header("authorization", "Bearer bearer-SECRET4")
        .header("proxy-authorization", "Basic proxy-SECRET5")
        .header("cookie", "session=cookie-SECRET6")
        .header("x-api-key", "apikey-SECRET7")
        .header("x-auth-token", "hdr-SECRET8")
        .header("x-client-secret", "hdr-SECRET9")
        .header("x-db-password", "hdr-SECRET10")
        .header("user-agent", "integration-test/1.0")
        .body(Body::empty())
        .unwrap();
    send(&app, req).await;
    assert!(sink.wait_for_events(1, WAIT).await);
    assert!(sink.wait_for_transactions(1, WAIT).await);
    for bytes in sink.serialized() {
        let text = String::from_utf8_lossy(&bytes);
        for secret in ["hunter2-userinfo", "SECRET"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        // What is not secret is still there.
        assert!(text.contains("integration-test/1.0"));
        assert!(text.contains("page=2"));
    }
    let request = sink.events()[0].request.clone().unwrap();
    assert_eq!(request.headers["Authorization"], "[Filtered]");
    assert!(
        !request.headers.contains_key("Cookie"),
        "no cookies without send_default_pii"
    );
}

#[tokio::test]
async fn free_functions_never_bleed_between_concurrent_requests() {
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/work/{n}",
            get(|Path(n): Path<u32>| async move {
                lighttrace::set_user(Some(User {
                    id: Some(n.to_string()),
                    ..Default::default()
                }));
                for step in 0..5 {
                    lighttrace::add_breadcrumb(Breadcrumb {
                        message: Some(format!("req {n} step {step}")),
                        ..Default::default()
                    });
                    // Interleave with the other requests on the same threads.
                    tokio::task::yield_now().await;
                    tokio::time::sleep(Duration::from_millis(u64::from(n % 3))).await;
                }
                lighttrace::set_tag("n", n.to_string());
                (StatusCode::INTERNAL_SERVER_ERROR, "fail")
            }),
        )
        .layer(TrackingLayer::with_options(
            options(&sink).traces_sample_rate(0.0),
        ));
    let mut handles = Vec::new();
    for n in 0..64u32 {
        let app = app.clone();
        handles.push(tokio::spawn(async move {
            app.oneshot(get_req(&format!("/work/{n}")))
                .await
                .unwrap()
                .status()
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap(), 500);
    }
    assert!(sink.wait_for_events(64, WAIT).await);
    let events = sink.events();
    assert_eq!(events.len(), 64);
    for event in &events {
        let n = event.user.as_ref().unwrap().id.clone().unwrap();
        assert_eq!(event.tags["n"], n);
        let mine: Vec<_> = event.breadcrumbs.values.iter().skip(1).collect();
        assert_eq!(mine.len(), 5, "request {n} has someone else's breadcrumbs");
        for crumb in mine {
            assert!(crumb
                .message
                .as_deref()
                .unwrap()
                .starts_with(&format!("req {n} ")));
        }
    }
    assert!(
        sink.transactions().is_empty(),
        "traces_sample_rate 0.0 sends no transactions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_requests_on_a_real_server_keep_their_own_scope() {
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/u/{n}",
            get(|Path(n): Path<u32>| async move {
                lighttrace::set_user(Some(User {
                    id: Some(n.to_string()),
                    ..Default::default()
                }));
                tokio::time::sleep(Duration::from_millis(5)).await;
                lighttrace::capture_message(format!("from {n}"), Level::Info);
                "ok"
            }),
        )
        .layer(TrackingLayer::with_options(
            options(&sink).traces_sample_rate(0.0),
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut handles = Vec::new();
    for n in 0..20u32 {
        handles.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let req =
                format!("GET /u/{n} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            stream.write_all(req.as_bytes()).await.unwrap();
            let mut buf = Vec::new();
            stream.read_to_end(&mut buf).await.unwrap();
            assert!(buf.starts_with(b"HTTP/1.1 200"));
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    assert!(sink.wait_for_events(20, WAIT).await);
    for event in sink.events() {
        let n = event.user.unwrap().id.unwrap();
        assert_eq!(event.message.unwrap(), format!("from {n}"));
    }
}

#[tokio::test]
async fn hooks_and_options_apply() {
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(
        options(&sink)
            .max_breadcrumbs(3)
            .tag("service", "api")
            .before_breadcrumb(|c| (c.category.as_deref() != Some("noise")).then_some(c))
            .before_send(|mut e| {
                e.tags.insert("hooked".into(), "yes".into());
                (e.message.as_deref() != Some("drop me")).then_some(e)
            })
            .before_send_transaction(|t| (t.name.as_deref() != Some("GET /health")).then_some(t)),
    );
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/crumbs",
            get(|| async {
                for i in 0..6 {
                    lighttrace::add_breadcrumb(Breadcrumb {
                        category: Some(if i == 5 { "noise" } else { "app" }.into()),
                        message: Some(format!("crumb {i}")),
                        ..Default::default()
                    });
                }
                lighttrace::capture_message("drop me", Level::Error);
                lighttrace::capture_message("keep me", Level::Error);
                "ok"
            }),
        )
        .layer(layer);
    send(&app, get_req("/health")).await;
    send(&app, get_req("/crumbs")).await;
    assert!(sink.wait_for_events(1, WAIT).await);
    assert!(sink.wait_for_transactions(1, WAIT).await);
    let events = sink.events();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.message.as_deref(), Some("keep me"));
    assert_eq!(e.tags["hooked"], "yes");
    assert_eq!(e.tags["service"], "api");
    let messages: Vec<_> = e
        .breadcrumbs
        .values
        .iter()
        .map(|c| c.message.clone().unwrap())
        .collect();
    // The scope kept the newest 3 (crumbs 3 to 5); the hook, run when the event is built,
    // left out the noise, which let the request's own breadcrumb in: 3 carried in all.
    assert_eq!(
        messages,
        ["GET /crumbs", "crumb 3", "crumb 4"],
        "at most 3 carried, noise dropped"
    );
    let txs = sink.transactions();
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].name.as_deref(), Some("GET /crumbs"));
    use lighttrace::protocol::client_report::{Category, Reason};
    let discarded = sink.discarded();
    assert!(discarded.contains(&(Reason::BeforeSend, Category::Error, 1)));
    assert!(discarded.contains(&(Reason::BeforeSend, Category::Transaction, 1)));
}

#[tokio::test]
async fn sample_rate_zero_drops_errors_and_pii_option_keeps_cookies() {
    let sink = MemorySink::new();
    let first = app(TrackingLayer::with_options(options(&sink).sample_rate(0.0)));
    send(&first, get_req("/unavailable")).await;
    assert!(sink.wait_for_transactions(1, WAIT).await);
    assert!(sink.events().is_empty());

    let sink = MemorySink::new();
    let app2 = app(TrackingLayer::with_options(
        options(&sink).send_default_pii(true),
    ));
    let req = Request::get("/unavailable")
        .header("x-forwarded-for", "203.0.113.7")
        .header("cookie", "theme=dark; sessionid=s3cr3t")
        .body(Body::empty())
        .unwrap();
    send(&app2, req).await;
    assert!(sink.wait_for_events(1, WAIT).await);
    let event = sink.events().remove(0);
    let request = event.request.unwrap();
    assert_eq!(request.headers["X-Forwarded-For"], "203.0.113.7");
    // Cookies move to `request.cookies`, sensitive ones scrubbed.
    assert!(!request.headers.contains_key("Cookie"));
    assert_eq!(
        request.cookies.as_deref(),
        Some("theme=dark; sessionid=[Filtered]")
    );
    // With PII on, the client address is the user's.
    let ip = event.user.unwrap().ip_address.unwrap().to_string();
    assert_eq!(ip, "203.0.113.7");
}

#[tokio::test]
async fn child_spans_nest_under_the_transaction() {
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/users/{id}",
            get(|| async {
                let outer = lighttrace::start_span("db.query", "SELECT user");
                {
                    let mut inner = lighttrace::start_span("cache.get", "user:1");
                    inner.set_data("hit", false);
                }
                drop(outer);
                let posts = lighttrace::start_span("db.query", "SELECT posts");
                posts.finish();
                "ok"
            }),
        )
        .layer(TrackingLayer::with_options(options(&sink)));
    send(&app, get_req("/users/1")).await;
    assert!(sink.wait_for_transactions(1, WAIT).await);
    let tx = &sink.transactions()[0];
    let root = trace_ctx(&tx.contexts).span_id;
    assert_eq!(tx.spans.len(), 3);
    let by_desc = |d: &str| {
        tx.spans
            .iter()
            .find(|s| s.description.as_deref() == Some(d))
            .unwrap()
    };
    assert_eq!(by_desc("SELECT user").parent_span_id, Some(root));
    assert_eq!(
        by_desc("user:1").parent_span_id,
        Some(by_desc("SELECT user").span_id)
    );
    assert_eq!(by_desc("SELECT posts").parent_span_id, Some(root));
    assert_eq!(by_desc("user:1").data["hit"], false);
    assert!(tx
        .spans
        .iter()
        .all(|s| s.timestamp.is_some() && s.status == Some(SpanStatus::Ok)));
}

#[tokio::test]
async fn without_a_dsn_the_layer_works_and_sends_nothing() {
    let app = app(TrackingLayer::with_options(Options::new()));
    assert_eq!(send(&app, get_req("/users/3")).await.status(), 200);
    assert_eq!(send(&app, get_req("/panic")).await.status(), 500);
    assert_eq!(send(&app, get_req("/health")).await.status(), 200);
    assert!(!TrackingLayer::with_options(Options::new())
        .client()
        .is_enabled());
}

#[test]
fn an_invalid_dsn_is_a_clear_error() {
    for bad in ["", "not a dsn", "ftp://key@host/1", "https://host/1"] {
        let err = TrackingLayer::try_new(bad).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("invalid DSN"), "{bad:?}: {msg}");
    }
    assert!(TrackingLayer::try_new(DSN).is_ok());
}

#[tokio::test]
async fn envelopes_hold_one_event_or_one_transaction() {
    let sink = MemorySink::new();
    let app = app(TrackingLayer::with_options(options(&sink)));
    send(&app, get_req("/users/0")).await;
    assert!(sink.wait_for(2, WAIT).await);
    for envelope in sink.envelopes() {
        let items: Vec<_> = envelope.items().collect();
        assert_eq!(items.len(), 1);
        assert!(matches!(
            items[0],
            EnvelopeItem::Event(_) | EnvelopeItem::Transaction(_)
        ));
        assert!(envelope.uuid().is_some());
    }
}
