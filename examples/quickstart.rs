//! The seed guide's app, in Rust: error and latency tracking for an axum service.
//!
//! ```text
//! cargo run --example quickstart            # serves 127.0.0.1:3000 (PORT overrides)
//! curl -H 'X-User-ID: 42' localhost:3000/users/7
//! curl localhost:3000/panic ; curl localhost:3000/fail
//! curl -X POST 'localhost:3000/send-email?email=ann@example.com'
//! curl localhost:3000/stats ; curl localhost:3000/metrics   # latency per route
//! ```
//!
//! With `LIGHTTRACE_DSN` or `SENTRY_DSN` set it reports there. Otherwise every envelope is
//! written as a file into `./lighttrace-envelopes/` (`LIGHTTRACE_ENVELOPE_DIR` overrides) and a
//! one-line summary of each is printed. With `SENTRY_SPOTLIGHT=1` every envelope also goes to
//! Spotlight's sidecar (`npx @spotlightjs/spotlight`, UI at http://localhost:8969).

use std::time::Duration;

use axum::extract::{Path, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use lighttrace::{FileSink, FutureExt, HandlerError, Options, TrackingLayer, User};
use serde_json::{json, Value};
use tracing_subscriber::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Logs printed locally as usual, and fed to lighttrace: INFO and WARN become breadcrumbs of
    // the request they ran in, ERROR an error event, `#[instrument]` spans child spans.
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer().with_filter(tracing_subscriber::EnvFilter::new(
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )),
        )
        .with(lighttrace::tracing::layer())
        .init();
    let mut options = Options::from_env()? // LIGHTTRACE_DSN / SENTRY_DSN, SENTRY_RELEASE, ...
        .environment("production")
        .release(concat!("quickstart@", env!("CARGO_PKG_VERSION")))
        .traces_sample_rate(1.0);
    let destination = match options.get_dsn() {
        Some(dsn) => format!(
            "{}://{}/ (project {})",
            dsn.scheme(),
            dsn.host(),
            dsn.project_id()
        ),
        None => {
            // The embedded default: envelope files plus a summary line per event on stdout.
            let dir = std::env::var("LIGHTTRACE_ENVELOPE_DIR")
                .unwrap_or_else(|_| "lighttrace-envelopes".to_owned());
            let sink = FileSink::new(&dir)?.with_summary();
            options = options.sink(sink);
            format!("files in {dir}/")
        }
    };
    // SENTRY_SPOTLIGHT=1 (read by `from_env`): also to Spotlight's sidecar, for its browser UI.
    let destination = match options.get_spotlight() {
        Some(url) => format!("{destination}, and Spotlight at {url}"),
        None => destination,
    };
    let layer = TrackingLayer::with_options(options);
    let client = layer.client().clone();
    // Captures outside any request use the process-wide client, and panics on any other thread
    // or task are reported too.
    client.install_global();
    lighttrace::capture_panics();

    // Every request's latency, per route (sampled or not): a table for people, and the same
    // numbers for Prometheus.
    let stats_client = client.clone();
    let metrics_client = client.clone();
    let app = Router::new()
        .route(
            "/stats",
            get(move || async move { stats_client.latency().to_string() }),
        )
        .route(
            "/metrics",
            get(move || async move {
                (
                    [(CONTENT_TYPE, "text/plain; version=0.0.4")],
                    metrics_client.latency().prometheus(),
                )
            }),
        )
        .route("/health", get(health))
        .route("/send-email", post(send_email))
        .route("/users/{user_id}", get(get_user))
        .route("/panic", get(panic_route))
        .route("/fail", get(fail))
        .layer(middleware::from_fn(set_user_context))
        .layer(layer);

    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("quickstart listening on http://{}", listener.local_addr()?);
    println!("reporting to {destination}");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // Deliver what is still queued; never waits longer than the timeout.
    let delivered = client.flush(Duration::from_secs(5)).await;
    println!("shut down (everything delivered: {delivered})");
    Ok(())
}

/// Sets the user from `X-User-ID` and records the request as a breadcrumb, as the guide's
/// middleware does.
async fn set_user_context(request: Request, next: Next) -> Response {
    if let Some(user_id) = request
        .headers()
        .get("x-user-id")
        .and_then(|v| v.to_str().ok())
    {
        lighttrace::set_user(Some(User {
            id: Some(user_id.to_owned()),
            ..Default::default()
        }));
    }
    tracing::info!("{} {}", request.method(), request.uri().path());
    next.run(request).await
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[derive(serde::Deserialize)]
struct EmailParams {
    #[serde(default)]
    email: String,
}

async fn send_email(Query(params): Query<EmailParams>) -> Result<Json<Value>, HandlerError> {
    if params.email.is_empty() {
        // A client mistake, not a server failure: 422 and no error event.
        return Err(HandlerError::new(std::io::Error::other("email required"))
            .with_status(StatusCode::UNPROCESSABLE_ENTITY));
    }
    // Runs after the response, with this request's user and breadcrumbs; its `Err` is
    // reported (tagged `task: notify_user`) instead of vanishing with the task.
    lighttrace::spawn_named(
        "notify_user",
        async move { send_notification(&params.email).await }.report_errors(),
    );
    Ok(Json(json!({"status": "email queued"})))
}

#[derive(Debug)]
struct NotificationError(String);

impl std::fmt::Display for NotificationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "notification to {} failed: SMTP server unreachable",
            self.0
        )
    }
}

impl std::error::Error for NotificationError {}

async fn send_notification(email: &str) -> Result<(), NotificationError> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    Err(NotificationError(email.to_owned()))
}

async fn get_user(Path(user_id): Path<u64>) -> Json<Value> {
    // Child operations, each its own span in the transaction's waterfall: the two queries run
    // concurrently, and each `#[instrument]`ed helper is a span.
    let (user, posts) = tokio::join!(load_user(user_id), load_posts(user_id));
    tracing::info!(
        amount = 29.99,
        currency = "USD",
        "Payment processing started"
    );
    Json(json!({"user": user, "posts": posts}))
}

#[tracing::instrument(fields(sentry.op = "db.query", sentry.name = "SELECT * FROM users WHERE id = $1"))]
async fn load_user(user_id: u64) -> Value {
    tokio::time::sleep(Duration::from_millis(15)).await;
    json!({"id": user_id, "name": "Ann"})
}

#[tracing::instrument(fields(sentry.op = "db.query", sentry.name = "SELECT * FROM posts WHERE user_id = $1", rows))]
async fn load_posts(user_id: u64) -> Value {
    tokio::time::sleep(Duration::from_millis(25)).await;
    tracing::Span::current().record("rows", 2);
    if user_id == 0 {
        tracing::warn!(user_id, "no posts for the anonymous user");
    }
    json!([{"id": 1}, {"id": 2}])
}

async fn panic_route() -> &'static str {
    let orders: Vec<u32> = Vec::new();
    // An out-of-bounds index: a bug, caught as a 500 and a fatal event.
    let first = orders[0];
    if first > 0 {
        return "never";
    }
    "unreachable"
}

#[derive(Debug)]
struct PaymentError {
    source: std::io::Error,
}

impl std::fmt::Display for PaymentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("charging the card failed")
    }
}

impl std::error::Error for PaymentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

async fn fail() -> Result<&'static str, HandlerError> {
    let source = std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "payment gateway timed out after 3s",
    );
    Err(PaymentError { source })?
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
