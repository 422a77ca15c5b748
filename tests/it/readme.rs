//! The README's Rust code, compiled: every ```rust block of README.md appears here verbatim
//! (between `// README:begin` and `// README:end`), inside just enough scaffolding to compile,
//! and `readme_blocks_are_all_compiled_here` fails when the two drift apart. The file is not
//! reformatted, so the blocks stay as the README shows them.

#[rustfmt::skip]
#[allow(dead_code, unused_variables, unused_imports, clippy::all)]
mod blocks {
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::Request;
use axum::routing::get;
use axum::{Json, Router};
use lighttrace::{HandlerError, Monitor, Options, TrackingLayer};

#[derive(serde::Serialize)]
struct User {
    id: u64,
}

mod db {
    pub async fn load(id: u64) -> Result<super::User, std::io::Error> {
        Ok(super::User { id })
    }
    pub async fn posts(id: u64) -> Vec<u64> {
        vec![id]
    }
}

mod cache {
    pub async fn warm(_id: u64) -> Result<(), std::io::Error> {
        Ok(())
    }
}

async fn cleanup() -> Result<(), std::io::Error> {
    Ok(())
}

async fn shutdown_signal() {}

fn my_router() -> Router {
    Router::new()
}

mod first_layer {
    async fn get_user() -> &'static str { "user" }

    fn block() -> Result<(), lighttrace::ConfigError> {
// README:begin
use axum::{routing::get, Router};
use lighttrace::TrackingLayer;

let app = Router::new()
    .route("/users/{user_id}", get(get_user))
    .layer(TrackingLayer::try_new("https://<key>@your-lighttrace-host/1")?);
// README:end
        let _: Router = app;
        Ok(())
    }
}

#[cfg(feature = "reqwest")]
mod spans {
    use super::*;

// README:begin
use lighttrace::{FutureTraceExt, TracedRequest};

async fn get_user(Path(id): Path<u64>, State(http): State<reqwest::Client>) -> Result<Json<User>, HandlerError> {
    let user = {
        let _span = lighttrace::start_span("db.query", "SELECT * FROM users WHERE id = $1");
        db::load(id).await?
    };
    // Concurrent work: each future is its own span.
    let (posts, avatar) = tokio::join!(
        db::posts(id).in_span("db.query", "SELECT posts"),
        // Carries sentry-trace + baggage; recorded as an http.client span.
        http.get(format!("http://avatars.internal/{id}")).send_traced(),
    );
    // Background work keeps the request's user and breadcrumbs; its Err is reported.
    lighttrace::spawn_named("warm_cache", cache::warm(id).report_errors());
    Ok(Json(user))
}
// README:end

    fn routes() -> Router {
        Router::new()
            .route("/users/{id}", get(get_user))
            .with_state(reqwest::Client::new())
    }
}

fn tracing_setup() {
// README:begin
use tracing_subscriber::prelude::*;

tracing_subscriber::registry()
    .with(tracing_subscriber::fmt::layer())    // your local logs, unchanged
    .with(lighttrace::tracing::layer())        // breadcrumbs, error events, spans (and logs)
    .init();
// README:end
}

#[cfg(all(feature = "reqwest-middleware", feature = "diesel"))]
mod inside {
    use tracing_subscriber::prelude::*;

    fn block(
        hyper_client: hyper_util::client::legacy::Client<
            hyper_util::client::legacy::connect::HttpConnector,
            http_body_util::Full<bytes::Bytes>,
        >,
    ) -> Result<(), diesel::result::Error> {
// README:begin
use tracing_subscriber::prelude::*;

tracing_subscriber::registry()
    // The console's filter is its own: lighttrace still gets sqlx's DEBUG statements.
    .with(tracing_subscriber::fmt::layer().with_filter(tracing_subscriber::EnvFilter::new("info")))
    .with(lighttrace::tracing::layer())
    .init();

// Every call of this client: trace headers, an http.client span, an http breadcrumb.
let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
    .with(lighttrace::ReqwestMiddleware::new())
    .build();
// Any tower client service (hyper-util's Client, tonic's Channel): the same.
let inventory = tower::ServiceBuilder::new()
    .layer(lighttrace::OutgoingLayer::new())
    .service(hyper_client);
// diesel: every connection reports its queries; run them in `lighttrace::spawn_blocking`.
diesel::connection::set_default_instrumentation(|| {
    Some(Box::new(lighttrace::DieselInstrumentation::new()))
})?;
// README:end
        let _ = (http, inventory);
        Ok(())
    }
}

mod trace_layer {
    use axum::http::Request;
    use axum::routing::get;
    use axum::Router;
    use lighttrace::TrackingLayer;
    use tower_http::trace::TraceLayer;

    async fn get_user() -> &'static str { "user" }

    fn block() -> Result<Router, lighttrace::ConfigError> {
// README:begin
let app = Router::new()
    .route("/users/{id}", get(get_user))
    .layer(TraceLayer::new_for_http().make_span_with(|_: &Request<_>| {
        tracing::info_span!("request", trace_id = lighttrace::current_trace_id().unwrap_or_default())
    }))
    .layer(TrackingLayer::from_env()?); // outermost, so its scope is current when the span is made
// README:end
        Ok(app)
    }
}

fn configuration() -> Result<TrackingLayer, lighttrace::ConfigError> {
// README:begin
use lighttrace::{Options, TrackingLayer};

let layer = TrackingLayer::with_options(
    Options::from_env()?            // LIGHTTRACE_DSN, else SENTRY_DSN; SENTRY_RELEASE; SENTRY_ENVIRONMENT
        .environment("production")  // setters win over the environment
        .release("api@1.2.3")
        .sample_rate(1.0)           // share of error events sent
        .traces_sample_rate(0.1)    // share of requests recorded as transactions (default: none)
        .max_breadcrumbs(100)
        .send_default_pii(false)
        .before_send(|event| Some(event))
        .before_send_transaction(|tx| (tx.name.as_deref() != Some("GET /health")).then_some(tx))
        .before_breadcrumb(|crumb| Some(crumb)),
);
// README:end
    Ok(layer)
}

fn monitor() -> Result<(), lighttrace::ConfigError> {
// README:begin
let nightly = Monitor::new("nightly-cleanup").crontab("0 3 * * *")?.max_runtime(30);
tokio::spawn(async move {
    let mut every_day = tokio::time::interval(Duration::from_secs(24 * 3600));
    loop {
        every_day.tick().await;
        let _ = nightly.run(cleanup()).await; // an Err or a panic is reported; the loop goes on
    }
});
// README:end
    Ok(())
}

fn latency_routes(layer: TrackingLayer) -> Router {
// README:begin
let client = layer.client().clone();
let app = Router::new()
    .route("/stats", get({ let c = client.clone(); move || async move { c.latency().to_string() } }))
    .route("/metrics", get(move || async move { client.latency().prometheus() }))
    // ... your routes
    .layer(layer);
// README:end
    app
}

async fn shutdown(layer: TrackingLayer, app: Router, listener: tokio::net::TcpListener) -> std::io::Result<()> {
// README:begin
let client = layer.client().clone();
axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
client.close(std::time::Duration::from_secs(5)).await; // never waits past its timeout
// README:end
    Ok(())
}

mod grpc {
    use lighttrace::TrackingLayer;

    use crate::shop::OrdersClient;
    use crate::shop::OrdersServer as Orders;

    /// What a generated server wrapper (`OrdersServer::new(impl)`) is, here.
    struct OrdersServer;
    impl OrdersServer {
        fn new(orders: Orders) -> Orders {
            orders
        }
    }

    async fn block(
        options: lighttrace::Options,
        orders: Orders,
        addr: std::net::SocketAddr,
    ) -> Result<(), Box<dyn std::error::Error>> {
// README:begin
// A tonic server: the same layer.
tonic::transport::Server::builder()
    .layer(TrackingLayer::with_options(options))
    .add_service(OrdersServer::new(orders))
    .serve(addr)
    .await?;

// A tonic client: every call a grpc.client span, the trace carried in its metadata.
let channel = tonic::transport::Endpoint::from_static("http://orders.internal:50051")
    .connect()
    .await?;
let orders = OrdersClient::new(
    tower::ServiceBuilder::new()
        .layer(lighttrace::OutgoingLayer::new())
        .service(channel),
);
// README:end
        let _ = orders;
        Ok(())
    }
}

async fn memory_sink() {
// README:begin
let sink = lighttrace::MemorySink::new();
let app = my_router().layer(TrackingLayer::with_options(Options::new().sink(sink.clone())));
// ... drive `app` with tower::ServiceExt::oneshot, then read or drop each response:
// a request ends when its body does ...
assert!(sink.wait_for_events(1, Duration::from_secs(5)).await);
assert_eq!(sink.events()[0].transaction.as_deref(), Some("GET /users/{user_id}"));
// README:end
}

}

/// The blocks between the markers, in order.
pub(crate) fn regions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        match (line.trim(), current.as_mut()) {
            ("// README:begin", None) => current = Some(Vec::new()),
            ("// README:end", Some(lines)) => {
                out.push(lines.join("\n"));
                current = None;
            }
            (_, Some(lines)) => lines.push(line.trim_end()),
            _ => {}
        }
    }
    out
}

/// README.md's ```rust blocks, in order.
pub(crate) fn rust_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        match current.as_mut() {
            None if line.starts_with("```rust") => current = Some(Vec::new()),
            Some(lines) if line.starts_with("```") => {
                out.push(lines.join("\n"));
                current = None;
            }
            Some(lines) => lines.push(line.trim_end()),
            None => {}
        }
    }
    out
}

#[test]
fn readme_blocks_are_all_compiled_here() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let here = std::fs::read_to_string(format!("{root}/tests/it/readme.rs")).unwrap();
    let blocks = rust_blocks(&readme);
    let compiled = regions(&here);
    assert!(
        blocks.len() >= 9,
        "README.md has {} Rust blocks",
        blocks.len()
    );
    for block in &blocks {
        assert!(
            compiled.contains(block),
            "this README block is not in tests/it/readme.rs (copy it there, between markers, so it is compiled):\n{block}"
        );
    }
    for region in &compiled {
        assert!(
            blocks.contains(region),
            "tests/it/readme.rs holds a block the README no longer has:\n{region}"
        );
    }
}
