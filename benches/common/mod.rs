//! What the benches share: the router each SDK wraps, discarding sinks, and the request.

#![allow(dead_code)]

pub mod grpc;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use lighttrace::protocol::Envelope;
use lighttrace::{HandlerError, Options, Sink, TrackingLayer};
use tower_http::catch_panic::CatchPanicLayer;

pub const DSN: &str = "https://0123456789abcdef0123456789abcdef@errors.example.com/1";

/// Discards envelopes, counting them and anything the client dropped before the sink, so a cell
/// that outran the off-task builder says so instead of looking cheaper.
pub struct Discard;
pub static SENT: AtomicU64 = AtomicU64::new(0);
pub static DROPPED: AtomicU64 = AtomicU64::new(0);
impl Sink for Discard {
    fn send(&self, envelope: Envelope) {
        SENT.fetch_add(1, Ordering::Relaxed);
        black_box(envelope);
    }
    /// As the HTTP sink does: transactions arrive as bytes (their writing is measured; the
    /// peer's discarding transport is handed structs it never serialises).
    fn takes_serialized(&self) -> bool {
        true
    }
    fn send_serialized(&self, envelope: lighttrace::sink::SerializedEnvelope) {
        SENT.fetch_add(1, Ordering::Relaxed);
        black_box(envelope);
    }
    fn record_discard(
        &self,
        reason: lighttrace::protocol::client_report::Reason,
        _category: lighttrace::protocol::client_report::Category,
        quantity: u32,
    ) {
        if reason == lighttrace::protocol::client_report::Reason::QueueOverflow {
            DROPPED.fetch_add(u64::from(quantity), Ordering::Relaxed);
        }
    }
}

pub struct SentryDiscard;
impl sentry::Transport for SentryDiscard {
    fn send_envelope(&self, envelope: sentry::Envelope) {
        black_box(envelope);
    }
}

#[derive(Clone, Copy)]
pub enum Flavor {
    Lighttrace,
    Sentry,
    Plain,
}

pub fn routes(flavor: Flavor) -> Router {
    Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .route(
            "/instrumented/{id}",
            get(|axum::extract::Path(id): axum::extract::Path<u32>| load(id)),
        )
        .route(
            "/spans/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                    for _ in 0..n {
                        let _span =
                            lighttrace::start_span("db", "SELECT * FROM posts WHERE user_id = $1");
                    }
                    "spanned"
                },
            ),
        )
        .route(
            "/queries/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                    for _ in 0..n {
                        sqlx_statement();
                    }
                    "queried"
                },
            ),
        )
        .route(
            "/fail",
            get(move || async move {
                match flavor {
                    // sentry-tower does not report 5xx: the handler reports it itself.
                    Flavor::Sentry => {
                        sentry::capture_message("database is down", sentry::Level::Error);
                        (StatusCode::INTERNAL_SERVER_ERROR, "error").into_response_parts()
                    }
                    // lighttrace reports the handler's error by itself.
                    Flavor::Lighttrace => {
                        HandlerError::new(std::io::Error::other("database is down")).into_parts()
                    }
                    Flavor::Plain => {
                        (StatusCode::INTERNAL_SERVER_ERROR, "error").into_response_parts()
                    }
                }
            }),
        )
        .route(
            "/panic",
            get(|| async {
                let v: Vec<u8> = Vec::new();
                black_box(v[1]);
                "unreachable"
            }),
        )
}

/// What sqlx reports for each statement an async driver runs (`sqlx-core`'s `logger.rs`): an
/// event in the request's task, its fields as sqlx gives them.
fn sqlx_statement() {
    let elapsed = std::time::Duration::from_micros(250);
    tracing::debug!(
        target: "sqlx::query",
        summary = "SELECT * FROM posts …",
        db.statement = "\n\nSELECT * FROM posts WHERE user_id = $1\n",
        rows_affected = 0u64,
        rows_returned = 3u64,
        elapsed = ?elapsed,
        elapsed_secs = elapsed.as_secs_f64(),
    );
}

trait IntoParts {
    fn into_response_parts(self) -> axum::response::Response;
}
impl<T: axum::response::IntoResponse> IntoParts for T {
    fn into_response_parts(self) -> axum::response::Response {
        self.into_response()
    }
}
trait HandlerParts {
    fn into_parts(self) -> axum::response::Response;
}
impl HandlerParts for HandlerError {
    fn into_parts(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}

pub fn lighttrace(rate: f32) -> (Router, lighttrace::Client) {
    lighttrace_with(rate, |options| options)
}

/// lighttrace with its default options changed by `change`.
pub fn lighttrace_with(
    rate: f32,
    change: impl FnOnce(Options) -> Options,
) -> (Router, lighttrace::Client) {
    let layer = TrackingLayer::with_options(change(
        Options::new()
            .dsn(lighttrace::parse_dsn(DSN).unwrap())
            .traces_sample_rate(rate)
            .sink(Discard),
    ));
    let client = layer.client().clone();
    (routes(Flavor::Lighttrace).layer(layer), client)
}

pub fn sentry_tower(rate: f32) -> (Router, sentry::ClientInitGuard) {
    let guard = sentry::init(
        sentry::ClientOptions::new()
            .dsn(DSN)
            .traces_sample_rate(rate)
            .transport(Arc::new(SentryDiscard)),
    );
    // sentry-tower catches no panics: CatchPanicLayer keeps the server alive, as its docs advise.
    let router = routes(Flavor::Sentry)
        .layer(sentry::integrations::tower::SentryHttpLayer::new().enable_transaction())
        .layer(sentry::integrations::tower::NewSentryLayer::<Request<Body>>::new_from_top())
        .layer(CatchPanicLayer::new());
    (router, guard)
}

/// One request through `router`, its response's body read to the end as a server sends it
/// (the layers record a request when its body ends).
pub async fn serve(router: &Router, path: &'static str) -> axum::body::Bytes {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let res = router.clone().oneshot(request(path)).await.unwrap();
    res.into_body().collect().await.unwrap().to_bytes()
}

/// A request with 5 ordinary headers. Names, values and the URI are shared, not copied, as
/// they are when hyper parses a request (slices of its read buffer): cloning them is a
/// reference-count bump, not an allocation.
pub fn request(path: &'static str) -> Request<Body> {
    use http::header::{HeaderName, HeaderValue, ACCEPT, ACCEPT_ENCODING, HOST, USER_AGENT};
    static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
    Request::get(http::Uri::from_static(path))
        .header(HOST, HeaderValue::from_static("api.example.com"))
        .header(USER_AGENT, HeaderValue::from_static("bench/1.0"))
        .header(ACCEPT, HeaderValue::from_static("application/json"))
        .header(ACCEPT_ENCODING, HeaderValue::from_static("gzip"))
        .header(
            X_REQUEST_ID.clone(),
            HeaderValue::from_static("4bf92f3577b34da6"),
        )
        .body(Body::empty())
        .unwrap()
}

/// A handler as `tracing` users write them: three nested `#[instrument]`ed functions, five
/// `info!` and one `warn!`.
#[tracing::instrument]
async fn load(id: u32) -> String {
    tracing::info!(id, "loading");
    let user = load_user(id).await;
    tracing::info!("loaded");
    user
}

#[tracing::instrument]
async fn load_user(id: u32) -> String {
    tracing::info!("querying the user");
    let row = query(id).await;
    tracing::info!(rows = 1, "queried");
    row
}

#[tracing::instrument(fields(sentry.op = "db.query"))]
async fn query(id: u32) -> String {
    tracing::info!("sending the query");
    if id % 2 == 1 {
        tracing::warn!(id, "slow replica");
    }
    format!("user {id}")
}

/// The subscriber each flavor runs under: the registry alone for bare, plus each SDK's layer.
pub fn subscriber(flavor: Flavor) -> tracing::Dispatch {
    use tracing_subscriber::prelude::*;
    match flavor {
        Flavor::Plain => tracing::Dispatch::new(tracing_subscriber::registry()),
        Flavor::Lighttrace => tracing::Dispatch::new(
            tracing_subscriber::registry().with(lighttrace::tracing::layer()),
        ),
        // sentry-tracing's recommended layers, filtered to do what lighttrace's defaults do:
        // spans at INFO and up, INFO/WARN breadcrumbs, ERROR events.
        Flavor::Sentry => {
            use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer, SpanLayer};
            use tracing_subscriber::filter::LevelFilter;
            tracing::Dispatch::new(
                tracing_subscriber::registry()
                    .with(SpanLayer::new().with_filter(LevelFilter::INFO))
                    .with(BreadcrumbLayer::new().with_filter(LevelFilter::INFO))
                    .with(ErrorLayer::new().with_filter(LevelFilter::ERROR)),
            )
        }
    }
}
