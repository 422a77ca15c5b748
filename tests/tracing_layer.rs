//! The `tracing` integration on real axum routers: events per request, errors with their chain,
//! `#[instrument]` spans, spawned instrumented work, structured logs, the `log` crate, and
//! `fmt`/`EnvFilter` beside it.
#![cfg(feature = "tracing")]

#[path = "it/common/mod.rs"]
mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use lighttrace::protocol::client_report::{Category, Reason};
use lighttrace::protocol::{Context, Envelope, EnvelopeItem, ItemContainer, Level, Log};
use lighttrace::{MemorySink, Options, Sink, TrackingLayer};
use tower::ServiceExt;
use tracing::Instrument;
use tracing_subscriber::prelude::*;

const WAIT: Duration = Duration::from_secs(5);

/// What the `fmt` layer printed, for the trace-id recipe.
static PRINTED: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Printed;
impl Write for Printed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        PRINTED.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One subscriber for the whole binary (requests run on runtime threads): `fmt` printing to
/// a buffer behind an `EnvFilter`, and lighttrace with logs from INFO up.
fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(|| Printed)
            .with_ansi(false)
            .with_filter(tracing_subscriber::EnvFilter::new("info"));
        tracing_subscriber::registry()
            .with(fmt)
            .with(lighttrace::tracing::layer().logs(tracing::Level::INFO))
            .init();
        tracing_log::LogTracer::init().unwrap();
    });
}

fn options(sink: &MemorySink) -> Options {
    Options::new()
        .dsn(
            lighttrace::parse_dsn(&format!("https://{}@errors.example.com/1", common::KEY))
                .unwrap(),
        )
        .release("api@2.0.0")
        .traces_sample_rate(1.0)
        .environment("test")
        .sink(common::Keep(sink.clone()))
}

async fn get_status(app: &Router, path: &str) -> StatusCode {
    let req = Request::get(path).body(Body::empty()).unwrap();
    app.clone().oneshot(req).await.unwrap().status()
}

#[derive(Debug)]
struct GatewayError(std::io::Error);
impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the card gateway refused")
    }
}
impl std::error::Error for GatewayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_land_in_the_scope_of_the_request_they_ran_in() {
    install();
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/work/{n}",
            get(|Path(n): Path<u32>| async move {
                for step in 0..3 {
                    tracing::info!(request = n, step, "working");
                    tokio::task::yield_now().await;
                }
                tracing::debug!(request = n, "not kept by default");
                tracing::warn!(request = n, "almost done");
                tracing::error!(request = n, "done badly");
                "ok"
            }),
        )
        .layer(TrackingLayer::with_options(options(&sink)));
    let tasks: Vec<_> = (0..24)
        .map(|n| {
            let app = app.clone();
            tokio::spawn(async move { get_status(&app, &format!("/work/{n}")).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert!(sink.wait_for_events(24, WAIT).await);
    let events = sink.events();
    assert_eq!(
        events.len(),
        24,
        "one error event per request, nothing else"
    );
    for event in events {
        let n = event.extra["request"].as_u64().unwrap();
        assert_eq!(event.message.as_deref(), Some("done badly"));
        assert_eq!(event.level, Level::Error);
        assert_eq!(event.transaction.as_deref(), Some("GET /work/{n}"));
        assert_eq!(event.logger.as_deref(), Some(module_path!()));
        let crumbs: Vec<_> = event
            .breadcrumbs
            .values
            .iter()
            .skip(1) // the request's own
            .map(|c| (c.message.clone().unwrap(), c.data["request"].as_u64()))
            .collect();
        assert_eq!(crumbs.len(), 4, "3 infos and a warning: {crumbs:?}");
        assert!(crumbs.iter().all(|(_, r)| *r == Some(n)), "{crumbs:?}");
        assert_eq!(crumbs[3].0, "almost done");
        match event.contexts.get("Rust Tracing Location") {
            Some(Context::Other(location)) => {
                assert_eq!(location["file"], file!());
                assert!(location["line"].as_u64().unwrap() > 0);
            }
            other => panic!("no location: {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_error_field_gives_the_exception_chain_and_secrets_stay_home() {
    install();
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/pay",
            get(|| async {
                let e = GatewayError(std::io::Error::other("connection reset"));
                tracing::error!(
                    error = &e as &dyn std::error::Error,
                    password = "hunter2",
                    auth = "Bearer abc.def.ghi",
                    amount = 42,
                    "payment failed"
                );
                "degraded"
            }),
        )
        .layer(TrackingLayer::with_options(options(&sink)));
    assert_eq!(get_status(&app, "/pay").await, StatusCode::OK);
    assert!(sink.wait_for_events(1, WAIT).await);
    let event = &sink.events()[0];
    let chain: Vec<_> = event
        .exception
        .values
        .iter()
        .map(|e| e.value.clone().unwrap())
        .collect();
    assert_eq!(chain, ["connection reset", "the card gateway refused"]);
    let outermost = event.exception.values.last().unwrap();
    assert_eq!(outermost.mechanism.as_ref().unwrap().ty, "tracing");
    assert_eq!(event.message.as_deref(), Some("payment failed"));
    assert_eq!(event.extra["amount"], 42);
    assert_eq!(event.extra["password"], "[Filtered]");
    assert_eq!(event.extra["auth"], "[Filtered]");
    let raw = String::from_utf8(sink.serialized().concat()).unwrap();
    assert!(!raw.contains("hunter2") && !raw.contains("abc.def.ghi"));
}

#[tracing::instrument(fields(rows))]
async fn load_user(id: u32) -> String {
    tokio::task::yield_now().await;
    tracing::Span::current().record("rows", 1);
    let (profile, settings) = tokio::join!(load_profile(id), load_settings(id));
    format!("{profile} {settings}")
}

#[tracing::instrument(fields(sentry.op = "db.query"))]
async fn load_profile(id: u32) -> String {
    tokio::task::yield_now().await;
    let _native = lighttrace::start_span("cache.get", "profile cache");
    tokio::task::yield_now().await;
    format!("profile {id}")
}

#[tracing::instrument(fields(sentry.name))]
async fn load_settings(id: u32) -> String {
    tracing::Span::current().record("sentry.name", "settings of the user");
    tokio::task::yield_now().await;
    format!("settings {id}")
}

#[tokio::test]
async fn instrumented_helpers_become_nested_child_spans() {
    install();
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/users/{id}",
            get(|Path(id): Path<u32>| async move {
                let user = load_user(id).await;
                // Spawned work with a span of the request, awaited before the response.
                let audit = tracing::info_span!("audit", user = id);
                tokio::spawn(
                    async {
                        tracing::info!("audited");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    .instrument(audit),
                )
                .await
                .unwrap();
                user
            }),
        )
        .route(
            "/created-early",
            get(|| async {
                // Created now, entered only later: its duration is creation to close.
                let span = tracing::info_span!("queued");
                tokio::time::sleep(Duration::from_millis(30)).await;
                span.in_scope(|| tracing::info!("ran"));
                drop(span);
                "ok"
            }),
        )
        .layer(TrackingLayer::with_options(options(&sink)));
    assert_eq!(get_status(&app, "/users/7").await, StatusCode::OK);
    assert_eq!(get_status(&app, "/created-early").await, StatusCode::OK);
    assert!(sink.wait_for_transactions(2, WAIT).await);
    let txs = sink.transactions();
    let tx = &txs[0];
    let root = match tx.contexts.get("trace") {
        Some(Context::Trace(t)) => t.span_id,
        other => panic!("{other:?}"),
    };
    let by = |name: &str| {
        tx.spans
            .iter()
            .find(|s| s.description.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no span {name}: {:?}", tx.spans))
    };
    assert_eq!(tx.spans.len(), 5, "{:?}", tx.spans);
    assert_eq!(by("load_user").parent_span_id, Some(root));
    assert_eq!(
        by("load_user").op.as_deref(),
        Some(concat!(module_path!(), "::load_user"))
    );
    assert_eq!(by("load_user").data["id"], 7);
    assert_eq!(by("load_user").data["rows"], 1, "recorded later");
    assert_eq!(
        by("load_profile").parent_span_id,
        Some(by("load_user").span_id)
    );
    assert_eq!(by("load_profile").op.as_deref(), Some("db.query"));
    assert_eq!(
        by("settings of the user").parent_span_id,
        Some(by("load_user").span_id),
        "renamed after creation"
    );
    assert_eq!(
        by("profile cache").parent_span_id,
        Some(by("load_profile").span_id),
        "a native span nests under the entered tracing span"
    );
    assert_eq!(by("audit").parent_span_id, Some(root));
    assert_eq!(by("audit").data["user"], 7);
    let audit = by("audit");
    let took = audit
        .timestamp
        .unwrap()
        .duration_since(audit.start_timestamp)
        .unwrap();
    assert!(took >= Duration::from_millis(20), "{took:?}");

    let queued = &txs[1].spans[0];
    let took = queued
        .timestamp
        .unwrap()
        .duration_since(queued.start_timestamp)
        .unwrap();
    assert!(
        took >= Duration::from_millis(30),
        "creation to close: {took:?}"
    );
}

#[tokio::test]
async fn a_span_another_thread_still_holds_when_the_request_ends_is_kept() {
    install();
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(options(&sink));
    let client = layer.client().clone();
    // What sqlx's SQLite worker does: it is still inside the caller's span a moment after
    // answering.
    let (keep, kept) = std::sync::mpsc::channel::<tracing::Span>();
    let (entered, inside) = std::sync::mpsc::channel::<()>();
    let inside = Arc::new(Mutex::new(inside));
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let span = kept.recv().unwrap();
        let guard = span.enter();
        entered.send(()).unwrap();
        released.recv().unwrap();
        drop(guard);
        drop(span);
    });
    let app = Router::new()
        .route(
            "/users/{id}",
            get(move || {
                let (keep, inside) = (keep.clone(), inside.clone());
                async move {
                    async {
                        keep.send(tracing::Span::current()).unwrap();
                        inside.lock().unwrap().recv().unwrap();
                    }
                    .instrument(tracing::info_span!("load_user"))
                    .await;
                    "user"
                }
            }),
        )
        .layer(layer);
    assert_eq!(get_status(&app, "/users/1").await, StatusCode::OK);
    assert!(client.flush(WAIT).await);
    // The request is over and the span's last handle is still on the other thread.
    let tx = &sink.transactions()[0];
    let span = tx
        .spans
        .iter()
        .find(|s| s.description.as_deref() == Some("load_user"))
        .expect("the helper's span is in the transaction");
    assert!(
        span.timestamp.unwrap() <= tx.timestamp.unwrap(),
        "it ended before the request"
    );
    release.send(()).unwrap();
    holder.join().unwrap();
    // Closing it later changes nothing and is not counted as lost.
    assert!(client.flush(WAIT).await);
    assert!(sink
        .discarded()
        .iter()
        .all(|(r, c, _)| !(*r == Reason::EventProcessor && *c == Category::Span)));
}

#[tokio::test]
async fn unsampled_requests_record_no_spans_and_send_nothing_for_them() {
    install();
    let sink = MemorySink::new();
    let layer = TrackingLayer::with_options(options(&sink).traces_sample_rate(0.0));
    let client = layer.client().clone();
    let app = Router::new()
        .route(
            "/users/{id}",
            get(|Path(id): Path<u32>| async move {
                let user = load_user(id).await;
                tracing::error!("after the spans");
                user
            }),
        )
        .layer(layer);
    assert_eq!(get_status(&app, "/users/1").await, StatusCode::OK);
    assert!(client.flush(WAIT).await);
    assert!(sink.transactions().is_empty());
    // The error event still links to the (unsampled) trace, and the only span counted as
    // dropped is the transaction's root one: no other was recorded.
    assert_eq!(sink.events().len(), 1);
    let spans: u32 = sink
        .discarded()
        .iter()
        .filter(|(_, c, _)| *c == Category::Span)
        .map(|(_, _, n)| n)
        .sum();
    assert_eq!(spans, 1);
}

/// Collects what the client hands to the sink, and can refuse logs as a rate limit would.
#[derive(Clone, Default)]
struct Logs {
    inner: MemorySink,
    refuse_logs: Arc<std::sync::atomic::AtomicBool>,
}

impl Sink for Logs {
    fn send(&self, envelope: Envelope) {
        common::Keep(self.inner.clone()).send(envelope);
    }
    fn record_discard(&self, reason: Reason, category: Category, quantity: u32) {
        self.inner.record_discard(reason, category, quantity);
    }
    fn would_drop(&self, category: Category) -> Option<Reason> {
        (category == Category::LogItem
            && self.refuse_logs.load(std::sync::atomic::Ordering::Relaxed))
        .then_some(Reason::RatelimitBackoff)
    }
}

fn logs_of(sink: &MemorySink) -> Vec<Vec<Log>> {
    sink.envelopes()
        .iter()
        .flat_map(|e| {
            e.items()
                .filter_map(|item| match item {
                    EnvelopeItem::ItemContainer(ItemContainer::Logs(logs)) => Some(logs.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn structured_logs_are_batched_across_requests_with_their_trace() {
    install();
    let sink = Logs::default();
    let layer = TrackingLayer::with_options(options(&sink.inner).sink(sink.clone()));
    let client = layer.client().clone();
    let app = Router::new()
        .route(
            "/log/{n}",
            get(|Path(n): Path<u32>| async move {
                tracing::info!(
                    order = n,
                    paid = true,
                    ratio = 0.5,
                    token = "s3cret",
                    "order placed"
                );
                lighttrace::current_trace_id().unwrap()
            }),
        )
        .layer(layer);
    let mut traces = Vec::new();
    for n in 0..150 {
        let res = app
            .clone()
            .oneshot(
                Request::get(format!("/log/{n}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let body = axum::body::to_bytes(res.into_body(), 64).await.unwrap();
        traces.push(String::from_utf8(body.to_vec()).unwrap());
    }
    assert!(client.flush(WAIT).await);
    let batches = logs_of(&sink.inner);
    let sizes: Vec<_> = batches.iter().map(Vec::len).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 150, "{sizes:?}");
    assert!(sizes.iter().all(|n| *n <= 100), "{sizes:?}");
    let logs: Vec<Log> = batches.into_iter().flatten().collect();
    for (n, log) in logs.iter().enumerate() {
        assert_eq!(log.body, "order placed");
        let order = log.attributes["order"].0.as_u64().unwrap() as usize;
        assert_eq!(log.trace_id.unwrap().to_string(), traces[order], "log {n}");
        assert_eq!(log.attributes["paid"].0, true);
        assert_eq!(log.attributes["ratio"].0, 0.5);
        assert_eq!(log.attributes["token"].0, "[Filtered]");
        assert_eq!(log.attributes["sentry.release"].0, "api@2.0.0");
        assert_eq!(log.attributes["sentry.environment"].0, "test");
        assert_eq!(log.attributes["sentry.sdk.name"].0, "lighttrace");
        assert!(log.attributes.contains_key("sentry.trace.parent_span_id"));
    }
    // Log envelopes mix traces: no sampling context.
    for envelope in sink.inner.envelopes() {
        if envelope
            .items()
            .any(|i| matches!(i, EnvelopeItem::ItemContainer(_)))
        {
            let mut raw = Vec::new();
            envelope.to_writer(&mut raw).unwrap();
            let header: serde_json::Value =
                serde_json::from_slice(raw.split(|b| *b == b'\n').next().unwrap()).unwrap();
            assert!(header.get("trace").is_none(), "{header}");
        }
    }

    // Refused (a rate limit on log_item): counted, not sent.
    sink.refuse_logs
        .store(true, std::sync::atomic::Ordering::Relaxed);
    sink.inner.clear();
    assert_eq!(get_status(&app, "/log/1").await, StatusCode::OK);
    assert!(client.flush(WAIT).await);
    assert!(logs_of(&sink.inner).is_empty());
    assert!(sink
        .inner
        .discarded()
        .contains(&(Reason::RatelimitBackoff, Category::LogItem, 1)));
}

#[tokio::test]
async fn the_log_crate_and_the_fmt_trace_id_recipe_work_beside_it() {
    install();
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/legacy",
            get(|| async {
                log::warn!(target: "legacy_lib", "retrying with {} attempts", 3);
                tracing::info!("marker for fmt");
                StatusCode::BAD_GATEWAY
            }),
        )
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(|_: &Request<_>| {
                tracing::info_span!(
                    "request",
                    trace_id = lighttrace::current_trace_id().unwrap_or_default()
                )
            }),
        )
        .layer(TrackingLayer::with_options(options(&sink)));
    assert_eq!(get_status(&app, "/legacy").await, StatusCode::BAD_GATEWAY);
    assert!(sink.wait_for_events(1, WAIT).await);
    let event = &sink.events()[0];
    let crumb = event
        .breadcrumbs
        .values
        .iter()
        .find(|c| c.category.as_deref() == Some("legacy_lib"))
        .expect("the log crate's warning as a breadcrumb");
    assert_eq!(crumb.message.as_deref(), Some("retrying with 3 attempts"));
    let trace_id = match event.contexts.get("trace") {
        Some(Context::Trace(t)) => t.trace_id.to_string(),
        other => panic!("{other:?}"),
    };
    let printed = String::from_utf8(PRINTED.lock().unwrap().clone()).unwrap();
    let line = printed
        .lines()
        .find(|l| l.contains("marker for fmt"))
        .expect("fmt printed the line");
    assert!(line.contains(&trace_id), "{line}");
}

#[tokio::test]
async fn outside_requests_events_use_the_process_scope() {
    install();
    let sink = MemorySink::new();
    let client = lighttrace::Client::new(options(&sink));
    // This binary's only global client; other tests never log outside requests.
    client.install_global();
    tracing::info!(job = "nightly", "cleanup started");
    tracing::error!(job = "nightly", "cleanup failed");
    assert!(client.flush(WAIT).await);
    let events = sink.events();
    let event = events
        .iter()
        .find(|e| e.message.as_deref() == Some("cleanup failed"))
        .unwrap();
    assert!(event
        .breadcrumbs
        .values
        .iter()
        .any(|c| c.message.as_deref() == Some("cleanup started")));
    assert!(event.request.is_none());
}
