//! Spans, sampling, distributed trace propagation and background tasks, through real axum apps.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use lighttrace::protocol::client_report::{Category, Reason};
use lighttrace::protocol::{Context, SpanStatus, TraceContext, Transaction};
use lighttrace::{Breadcrumb, FutureTraceExt, Level, MemorySink, Options, TrackingLayer, User};
use tower::ServiceExt;

const WAIT: Duration = Duration::from_secs(5);
const KEY: &str = "0123456789abcdef0123456789abcdef";
const T: &str = "771a43a4192642f0b136d5159a501700";
const S: &str = "b0e6f15b45c36b12";

fn options(sink: &MemorySink) -> Options {
    Options::new()
        .traces_sample_rate(1.0)
        .dsn(lighttrace::parse_dsn(&format!("https://{KEY}@errors.example.com/1")).unwrap())
        .release("api@1.0.0")
        .environment("test")
        .sink(common::Keep(sink.clone()))
        .traces_sample_rate(1.0)
}

fn trace(tx_contexts: &std::collections::BTreeMap<String, Context>) -> TraceContext {
    match tx_contexts.get("trace") {
        Some(Context::Trace(t)) => (**t).clone(),
        _ => panic!("no trace context"),
    }
}

fn envelope_trace_headers(sink: &MemorySink) -> Vec<serde_json::Value> {
    sink.serialized()
        .iter()
        .map(|raw| {
            let header: serde_json::Value =
                serde_json::from_slice(raw.split(|b| *b == b'\n').next().unwrap()).unwrap();
            header["trace"].clone()
        })
        .collect()
}

fn make_app(sink: &MemorySink, opts: impl FnOnce(Options) -> Options) -> Router {
    make_app_with_client(sink, opts).0
}

fn make_app_with_client(
    sink: &MemorySink,
    opts: impl FnOnce(Options) -> Options,
) -> (Router, lighttrace::Client) {
    let layer = TrackingLayer::with_options(opts(options(sink)));
    let client = layer.client().clone();
    let router = Router::new()
        .route("/users/{id}", get(|| async { "ok" }))
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "no") }),
        )
        .layer(layer);
    (router, client)
}

async fn send(app: &Router, path: &str, headers: &[(&str, &str)]) -> StatusCode {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    app.clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn an_incoming_sentry_trace_is_continued_with_its_frozen_context() {
    let sink = MemorySink::new();
    let app = make_app(&sink, |o| o);
    let baggage = format!(
        "othervendor=abc,sentry-trace_id={T},sentry-public_key={KEY},sentry-release=upstream%401.0,sentry-sample_rate=0.5,sentry-sampled=true"
    );
    send(
        &app,
        "/users/1",
        &[
            ("sentry-trace", &format!("{T}-{S}-1")),
            ("baggage", &baggage),
        ],
    )
    .await;
    assert!(sink.wait_for_transactions(1, WAIT).await);
    let tx = &sink.transactions()[0];
    let ctx = trace(&tx.contexts);
    assert_eq!(ctx.trace_id.to_string(), T);
    assert_eq!(ctx.parent_span_id.unwrap().to_string(), S);
    assert_ne!(ctx.span_id.to_string(), S);
    // The upstream's dynamic sampling context is forwarded unchanged, not rebuilt.
    let header = &envelope_trace_headers(&sink)[0];
    assert_eq!(header["trace_id"], T);
    assert_eq!(header["release"], "upstream@1.0");
    assert_eq!(header["sample_rate"], "0.5");
    assert!(header.get("othervendor").is_none());
}

#[tokio::test]
async fn an_upstream_decision_is_honoured_and_unsampled_errors_still_link_to_the_trace() {
    let sink = MemorySink::new();
    let app = make_app(&sink, |o| o.traces_sample_rate(1.0));
    send(&app, "/fail", &[("sentry-trace", &format!("{T}-{S}-0"))]).await;
    assert!(sink.wait_for_events(1, WAIT).await);
    assert!(
        sink.transactions().is_empty(),
        "the upstream said not to sample"
    );
    let event = &sink.events()[0];
    assert_eq!(trace(&event.contexts).trace_id.to_string(), T);
    let header = &envelope_trace_headers(&sink)[0];
    assert_eq!(header["sampled"], "false");
    assert_eq!(header["trace_id"], T);

    // And the other way round: a sampled upstream overrides a rate of 0.
    let sink = MemorySink::new();
    let app = make_app(&sink, |o| o.traces_sample_rate(0.0));
    send(&app, "/users/1", &[("sentry-trace", &format!("{T}-{S}-1"))]).await;
    assert!(sink.wait_for_transactions(1, WAIT).await);
}

#[tokio::test]
async fn traceparent_is_continued_and_malformed_headers_are_ignored() {
    let sink = MemorySink::new();
    let app = make_app(&sink, |o| o);
    send(
        &app,
        "/users/1",
        &[("traceparent", &format!("00-{T}-{S}-01"))],
    )
    .await;
    for bad in [
        format!("{}-{S}-1", T.to_uppercase()),
        format!("{T}-{S}-7"),
        "garbage".to_owned(),
        format!("{T}-{S}-1-1"),
    ] {
        assert_eq!(send(&app, "/users/1", &[("sentry-trace", &bad)]).await, 200);
    }
    assert!(sink.wait_for_transactions(5, WAIT).await);
    let txs = sink.transactions();
    assert_eq!(trace(&txs[0].contexts).trace_id.to_string(), T);
    for tx in &txs[1..] {
        let ctx = trace(&tx.contexts);
        assert_ne!(ctx.trace_id.to_string(), T);
        assert!(ctx.parent_span_id.is_none());
    }
}

#[tokio::test]
async fn the_traces_sampler_sees_route_headers_and_parent() {
    let sink = MemorySink::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let (app, client) = make_app_with_client(&sink, move |o| {
        o.traces_sampler(move |ctx| {
            seen2.lock().unwrap().push((
                ctx.method().to_string(),
                ctx.route().map(str::to_owned),
                ctx.headers().contains_key("x-debug"),
                ctx.parent_sampled(),
            ));
            if ctx.headers().contains_key("x-debug") {
                1.0
            } else {
                0.0
            }
        })
    });
    send(&app, "/users/1", &[("x-debug", "1")]).await;
    send(&app, "/users/2", &[("sentry-trace", &format!("{T}-{S}-1"))]).await;
    assert!(client.flush(WAIT).await);
    assert_eq!(
        sink.transactions().len(),
        1,
        "the sampler, not the parent, decides"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen[0],
        ("GET".into(), Some("/users/{id}".into()), true, None)
    );
    assert_eq!(seen[1].3, Some(true));
    assert_eq!(envelope_trace_headers(&sink)[0]["sample_rate"], "1");
}

#[tokio::test]
async fn every_envelope_carries_the_dynamic_sampling_context() {
    let sink = MemorySink::new();
    let app = make_app(&sink, |o| o.traces_sample_rate(1.0));
    send(&app, "/fail", &[]).await;
    assert!(sink.wait_for(2, WAIT).await);
    for header in envelope_trace_headers(&sink) {
        assert_eq!(header["public_key"], KEY);
        assert_eq!(header["release"], "api@1.0.0");
        assert_eq!(header["environment"], "test");
        assert_eq!(header["transaction"], "GET /fail");
        assert_eq!(header["sample_rate"], "1");
        assert_eq!(header["sampled"], "true");
        assert_eq!(header["trace_id"].as_str().unwrap().len(), 32);
    }
}

/// Service B: records the trace headers it received.
async fn downstream(sink: MemorySink) -> (std::net::SocketAddr, Arc<Mutex<Vec<HeaderMap>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let rec = received.clone();
    let app = Router::new()
        .route(
            "/items/{id}",
            get(move |headers: HeaderMap| {
                let rec = rec.clone();
                async move {
                    rec.lock().unwrap().push(headers);
                    "item"
                }
            }),
        )
        .layer(TrackingLayer::with_options(
            Options::new()
                .traces_sample_rate(1.0)
                .dsn(lighttrace::parse_dsn(&format!("https://{KEY}@errors.example.com/2")).unwrap())
                .sink(common::Keep(sink)),
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, received)
}

#[cfg(feature = "reqwest")]
#[tokio::test]
async fn outgoing_calls_carry_the_trace_and_the_downstream_continues_it() {
    use lighttrace::TracedRequest;
    let a_sink = MemorySink::new();
    let b_sink = MemorySink::new();
    let (b_addr, b_headers) = downstream(b_sink.clone()).await;
    let http = reqwest::Client::new();
    let url = format!("http://user:pw@{b_addr}/items/7?secret_token=abc");
    let app = Router::new()
        .route(
            "/orders/{id}",
            get(move || {
                let (http, url) = (http.clone(), url.clone());
                async move {
                    let res = http
                        .get(&url)
                        .header("baggage", "vendor=keep-me")
                        .send_traced()
                        .await
                        .unwrap();
                    res.text().await.unwrap()
                }
            }),
        )
        .layer(TrackingLayer::with_options(
            options(&a_sink).propagate_traceparent(true),
        ));
    let upstream_baggage = format!(
        "other=drop-me,sentry-trace_id={T},sentry-public_key={KEY},sentry-release=edge%401"
    );
    let status = send(
        &app,
        "/orders/1",
        &[
            ("sentry-trace", &format!("{T}-{S}-1")),
            ("baggage", &upstream_baggage),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(a_sink.wait_for_transactions(1, WAIT).await);
    assert!(b_sink.wait_for_transactions(1, WAIT).await);

    let a_tx: Transaction<'static> = a_sink.transactions().remove(0);
    let client_span = a_tx
        .spans
        .iter()
        .find(|s| s.op.as_deref() == Some("http.client"))
        .unwrap();
    assert_eq!(
        client_span.parent_span_id,
        Some(trace(&a_tx.contexts).span_id)
    );
    assert_eq!(client_span.status, Some(SpanStatus::Ok));
    assert_eq!(client_span.data["http.response.status_code"], 200);
    assert!(
        !client_span.data.contains_key("http.query"),
        "its one pair is a secret: left out"
    );
    let desc = client_span.description.as_deref().unwrap();
    assert_eq!(
        desc,
        format!("GET http://{b_addr}/items/7"),
        "no query string or credentials"
    );

    let b_tx = &b_sink.transactions()[0];
    let b_trace = trace(&b_tx.contexts);
    assert_eq!(b_trace.trace_id.to_string(), T);
    assert_eq!(
        b_trace.parent_span_id,
        Some(client_span.span_id),
        "B's parent is A's http.client span"
    );

    let headers = b_headers.lock().unwrap()[0].clone();
    let baggage = headers["baggage"].to_str().unwrap();
    assert!(baggage.starts_with("vendor=keep-me,"), "{baggage}");
    assert!(baggage.contains(&format!("sentry-trace_id={T}")));
    assert!(
        baggage.contains("sentry-release=edge@1"),
        "the frozen context is forwarded: {baggage}"
    );
    assert!(
        !baggage.contains("drop-me"),
        "other vendors' incoming entries are not forwarded"
    );
    assert_eq!(
        headers["traceparent"].to_str().unwrap(),
        format!("00-{T}-{}-01", client_span.span_id)
    );
    // B's envelope carries the DSC A forwarded.
    assert_eq!(envelope_trace_headers(&b_sink)[0]["release"], "edge@1");
}

#[tokio::test]
async fn propagation_targets_limit_outgoing_headers() {
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/x",
            get(|| async {
                let mut internal = HeaderMap::new();
                let mut external = HeaderMap::new();
                let a = lighttrace::inject_trace_headers("http://api.internal/x", &mut internal);
                let b = lighttrace::inject_trace_headers(
                    "https://thirdparty.example.com/",
                    &mut external,
                );
                assert!(
                    a && internal.contains_key("sentry-trace") && internal.contains_key("baggage")
                );
                assert!(!b && external.is_empty());
                assert!(!internal.contains_key("traceparent"), "off by default");
                "ok"
            }),
        )
        .layer(TrackingLayer::with_options(
            options(&sink).trace_propagation_targets(["api.internal"]),
        ));
    assert_eq!(send(&app, "/x", &[]).await, 200);
    // Outside any request nothing is injected.
    let mut headers = HeaderMap::new();
    assert!(!lighttrace::inject_trace_headers(
        "http://api.internal/x",
        &mut headers
    ));
}

#[tokio::test]
async fn spans_beyond_the_cap_are_dropped_and_counted() {
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/many",
            get(|| async {
                for i in 0..5 {
                    lighttrace::start_span("loop", format!("step {i}")).finish();
                }
                "ok"
            }),
        )
        .layer(TrackingLayer::with_options(options(&sink).max_spans(2)));
    send(&app, "/many", &[]).await;
    assert!(sink.wait_for_transactions(1, WAIT).await);
    assert_eq!(sink.transactions()[0].spans.len(), 2);
    let dropped: u32 = sink
        .discarded()
        .iter()
        .filter(|(r, c, _)| *r == Reason::BufferOverflow && *c == Category::Span)
        .map(|(_, _, n)| n)
        .sum();
    assert_eq!(dropped, 3);
}

#[tokio::test]
async fn concurrent_in_span_futures_nest_correctly() {
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/join",
            get(|| async {
                let work = |name: &'static str| {
                    async move {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        async { tokio::task::yield_now().await }
                            .in_span("inner", format!("{name}.inner"))
                            .await;
                    }
                    .in_span("outer", name)
                };
                tokio::join!(work("a"), work("b"));
                "ok"
            }),
        )
        .layer(TrackingLayer::with_options(options(&sink)));
    send(&app, "/join", &[]).await;
    assert!(sink.wait_for_transactions(1, WAIT).await);
    let tx = &sink.transactions()[0];
    let root = trace(&tx.contexts).span_id;
    let by = |d: &str| {
        tx.spans
            .iter()
            .find(|s| s.description.as_deref() == Some(d))
            .unwrap()
            .clone()
    };
    assert_eq!(tx.spans.len(), 4);
    assert_eq!(by("a").parent_span_id, Some(root));
    assert_eq!(by("b").parent_span_id, Some(root));
    assert_eq!(by("a.inner").parent_span_id, Some(by("a").span_id));
    assert_eq!(by("b.inner").parent_span_id, Some(by("b").span_id));
    assert!(by("a").timestamp.unwrap() >= by("a.inner").timestamp.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_task_keeps_the_request_scope_and_its_panic_is_reported() {
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(options(&sink).traces_sample_rate(0.0));
    let client = layer.client().clone();
    let app = Router::new()
        .route(
            "/send-email/{n}",
            get(|Path(n): Path<u32>| async move {
                lighttrace::set_user(Some(User {
                    id: Some(format!("user-{n}")),
                    ..Default::default()
                }));
                lighttrace::add_breadcrumb(Breadcrumb {
                    message: Some(format!("queue email {n}")),
                    ..Default::default()
                });
                let handle = lighttrace::spawn_named(
                    "notify_user",
                    async move {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        if n % 2 == 0 {
                            panic!("smtp exploded for {n}");
                        }
                        Err::<(), _>(std::io::Error::other(format!("smtp refused {n}")))
                    }
                    .report_errors(),
                );
                // The handler changes its scope after spawning: the task must not see this.
                lighttrace::set_tag("after_spawn", "yes");
                let join = handle.await;
                assert_eq!(
                    join.is_err(),
                    n % 2 == 0,
                    "the JoinHandle still sees the panic"
                );
                "queued"
            }),
        )
        .layer(layer);
    for n in 0..4 {
        assert_eq!(send(&app, &format!("/send-email/{n}"), &[]).await, 200);
    }
    assert!(client.flush(WAIT).await);
    let events = sink.events();
    assert_eq!(
        events.len(),
        4,
        "one event per task, no duplicate from the request"
    );
    for event in &events {
        let user = event.user.as_ref().unwrap().id.clone().unwrap();
        let n = user.trim_start_matches("user-");
        assert_eq!(event.tags["task"], "notify_user");
        assert!(!event.tags.contains_key("after_spawn"));
        assert!(event
            .breadcrumbs
            .values
            .iter()
            .any(|b| b.message.as_deref() == Some(&format!("queue email {n}"))));
        let exc = event.exception.values.last().unwrap();
        if n.parse::<u32>().unwrap() % 2 == 0 {
            assert_eq!(event.level, Level::Fatal);
            assert_eq!(
                exc.value.as_deref(),
                Some(format!("smtp exploded for {n}").as_str())
            );
            assert_eq!(exc.mechanism.as_ref().unwrap().handled, Some(false));
        } else {
            assert_eq!(
                exc.value.as_deref(),
                Some(format!("smtp refused {n}").as_str())
            );
        }
        assert_eq!(event.transaction.as_deref(), Some("GET /send-email/{n}"));
    }
}

#[tokio::test]
async fn a_scoped_panic_awaited_inline_is_reported_once() {
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(options(&sink));
    let client = layer.client().clone();
    let app = Router::new()
        .route(
            "/inline",
            get(|| async {
                async { panic!("inline boom") }.in_current_scope().await;
                "unreachable"
            }),
        )
        .layer(layer);
    assert_eq!(send(&app, "/inline", &[]).await, 500);
    assert!(client.flush(WAIT).await);
    assert_eq!(sink.events().len(), 1);
}

#[tokio::test]
async fn spawned_work_propagates_the_sampling_decision_but_records_no_spans() {
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/job",
            get(|| async {
                let headers = lighttrace::spawn(async {
                    let _span = lighttrace::start_span("task", "not recorded");
                    let mut headers = HeaderMap::new();
                    lighttrace::inject_trace_headers("http://worker.internal/", &mut headers);
                    headers
                })
                .await
                .unwrap();
                headers["sentry-trace"].to_str().unwrap().to_owned()
            }),
        )
        .layer(TrackingLayer::with_options(
            options(&sink).traces_sample_rate(1.0),
        ));
    let res = app
        .clone()
        .oneshot(Request::get("/job").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
    let sentry_trace = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        sentry_trace.ends_with("-1"),
        "a sampled request's task says sampled: {sentry_trace}"
    );
    assert!(sink.wait_for_transactions(1, WAIT).await);
    let tx = &sink.transactions()[0];
    assert!(sentry_trace.starts_with(&trace(&tx.contexts).trace_id.to_string()));
    assert!(
        tx.spans.is_empty(),
        "spans of spawned work are not recorded"
    );
}

/// Sends a request and gives up on it after 50 ms: the response future is dropped mid-flight,
/// as when a client goes away or a timeout fires.
async fn give_up_on(app: Router, path: &str) {
    let req = Request::get(path).body(Body::empty()).unwrap();
    let gave_up = tokio::time::timeout(Duration::from_millis(50), app.oneshot(req)).await;
    assert!(gave_up.is_err(), "{path} was expected never to answer");
}

#[tokio::test]
async fn a_cancelled_request_is_cancelled_with_the_spans_its_drop_ends() {
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/slow",
            get(|| async {
                let _query = lighttrace::start_span("db.query", "SELECT pg_sleep(60)");
                std::future::pending::<()>().await;
                "never"
            }),
        )
        .layer(TrackingLayer::with_options(options(&sink)));
    give_up_on(app, "/slow").await;
    assert!(sink.wait_for_transactions(1, WAIT).await);
    let tx = &sink.transactions()[0];
    assert_eq!(tx.name.as_deref(), Some("GET /slow"));
    assert_eq!(trace(&tx.contexts).status, Some(SpanStatus::Cancelled));
    let ops: Vec<_> = tx.spans.iter().map(|s| s.op.as_deref()).collect();
    assert_eq!(ops, [Some("db.query")]);
    assert!(
        sink.events().is_empty(),
        "a cancelled request is not an error"
    );
}

/// Cleanup that fails: its drop panics.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("cleanup failed while the request was cancelled");
    }
}

/// A route that never answers, holding a `PanicsOnDrop`.
fn stuck_with_failing_cleanup(layer: TrackingLayer) -> Router {
    Router::new()
        .route(
            "/stuck",
            get(|| async {
                let _cleanup = PanicsOnDrop;
                std::future::pending::<()>().await;
                "never"
            }),
        )
        .layer(layer)
}

#[tokio::test]
async fn a_panic_in_a_cancelled_handlers_drop_is_reported_not_propagated() {
    let sink = MemorySink::new();
    let app = stuck_with_failing_cleanup(TrackingLayer::with_options(options(&sink)));
    // Dropping the response future runs the handler's drop, which panics: it must not escape.
    give_up_on(app, "/stuck").await;
    assert!(sink.wait_for_events(1, WAIT).await);
    let event = &sink.events()[0];
    let exception = &event.exception.values[0];
    assert_eq!(exception.ty, "panic");
    assert!(exception
        .value
        .as_deref()
        .unwrap_or_default()
        .contains("cleanup failed"));
    assert!(sink.wait_for_transactions(1, WAIT).await);
    let tx = &sink.transactions()[0];
    assert_eq!(
        tx.name.as_deref(),
        Some("GET /stuck"),
        "the transaction still went out"
    );
    // No response went out: still a cancelled request, not a 500.
    assert_eq!(trace(&tx.contexts).status, Some(SpanStatus::Cancelled));
}

#[tokio::test]
async fn without_a_dsn_a_panicking_drop_still_stays_inside_the_layer() {
    let app = stuck_with_failing_cleanup(TrackingLayer::with_options(
        Options::new().traces_sample_rate(1.0),
    ));
    // The panic would otherwise unwind out of the timeout's drop, failing this test.
    give_up_on(app, "/stuck").await;
}
