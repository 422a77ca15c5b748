//! The seed guide's app, in Rust: error and latency tracking for an axum service.
//!
//! ```text
//! cargo run --example quickstart            # serves 127.0.0.1:3000 (PORT overrides)
//! curl -H 'X-User-ID: 42' localhost:3000/users/7
//! curl localhost:3000/users                  # lists users the slow way: an N+1 query
//! curl localhost:3000/panic ; curl localhost:3000/fail
//! curl -X POST 'localhost:3000/send-email?email=ann@example.com'
//! curl localhost:3000/stats ; curl localhost:3000/metrics   # latency per route
//! ```
//!
//! With `LIGHTTRACE_DSN` or `SENTRY_DSN` set it reports there. Otherwise every envelope is
//! written as a file into `./lighttrace-envelopes/` (`LIGHTTRACE_ENVELOPE_DIR` overrides) and a
//! one-line summary of each is printed. With `SENTRY_SPOTLIGHT=1` every envelope also goes to
//! Spotlight's sidecar (`npx @spotlightjs/spotlight`, UI at http://localhost:8969).
//!
//! Users and posts live in SQLite (in memory, through sqlx): every statement is a `db` span of
//! the request that ran it, with no code for it at the call sites.

use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use lighttrace::{FileSink, FutureTraceExt, HandlerError, Options, TrackingLayer, User};
use serde_json::{json, Value};
use sqlx::SqlitePool;
use tracing_subscriber::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Logs printed locally as usual, and fed to lighttrace: INFO and WARN become breadcrumbs of
    // the request they ran in, ERROR an error event, `#[instrument]` spans child spans, sqlx's
    // statements `db` spans. The filter is the `fmt` layer's own: lighttrace's layer still
    // receives sqlx's DEBUG statement events.
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
        .traces_sample_rate(1.0)
        // N+1 queries in a request's spans become issues of their own. An in-memory database
        // answers in microseconds, so this demo flags any 5 repeats; a real service keeps the
        // 50 ms default of `detect_n_plus_one(true)`.
        .n_plus_one_threshold(5, Duration::ZERO);
    let destination = match options.dsn_ref() {
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
    let destination = match options.spotlight_ref() {
        Some(url) => format!("{destination}, and Spotlight at {url}"),
        None => destination,
    };
    let layer = TrackingLayer::with_options(options);
    let client = layer.client().clone();
    // Captures outside any request use the process-wide client, and panics on any other thread
    // or task are reported too.
    client.install_global();
    lighttrace::capture_panics();

    let pool = database().await?;

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
        .route("/users", get(list_users))
        .route("/users/{user_id}", get(get_user))
        .route("/panic", get(panic_route))
        .route("/fail", get(fail))
        .layer(middleware::from_fn(set_user_context))
        .layer(layer)
        .with_state(pool);

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

/// The guide's users and posts, in an in-memory SQLite database shared by the pool's
/// connections.
async fn database() -> Result<SqlitePool, sqlx::Error> {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(4)
        .min_connections(4)
        // Connections are kept for good: none is opened in the middle of a request (its
        // set-up statements would show up among the request's queries).
        .idle_timeout(None)
        .max_lifetime(None)
        .connect("sqlite:file:quickstart?mode=memory&cache=shared")
        .await?;
    // Opened now, all four, rather than when traffic first needs them.
    let mut warm = Vec::new();
    for _ in 0..4 {
        warm.push(pool.acquire().await?);
    }
    drop(warm);
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, title TEXT NOT NULL);",
    )
    .execute(&pool)
    .await?;
    for (id, name) in [
        (1, "Ann"),
        (2, "Bo"),
        (3, "Cy"),
        (4, "Di"),
        (5, "Ed"),
        (6, "Flo"),
        (7, "Gus"),
    ] {
        sqlx::query("INSERT OR IGNORE INTO users (id, name) VALUES (?, ?)")
            .bind(id)
            .bind(name)
            .execute(&pool)
            .await?;
        sqlx::query("INSERT OR IGNORE INTO posts (id, user_id, title) VALUES (?, ?, ?), (?, ?, ?)")
            .bind(id * 2)
            .bind(id)
            .bind(format!("{name}'s first post"))
            .bind(id * 2 + 1)
            .bind(id)
            .bind(format!("{name}'s second post"))
            .execute(&pool)
            .await?;
    }
    Ok(pool)
}

async fn get_user(
    State(pool): State<SqlitePool>,
    Path(user_id): Path<i64>,
) -> Result<Json<Value>, HandlerError> {
    // Child operations, each its own span in the transaction's waterfall: the two loads run
    // concurrently, each `#[instrument]`ed helper is a span, and its query a `db` span in it.
    let (user, posts) = tokio::join!(load_user(&pool, user_id), load_posts(&pool, user_id));
    tracing::info!(
        amount = 29.99,
        currency = "USD",
        "Payment processing started"
    );
    Ok(Json(json!({"user": user?, "posts": posts?})))
}

#[tracing::instrument(skip(pool))]
async fn load_user(pool: &SqlitePool, user_id: i64) -> Result<Value, sqlx::Error> {
    let user: Option<(i64, String)> = sqlx::query_as("SELECT id, name FROM users WHERE id = ?")
        .bind(user_id)
        .fetch_optional(pool)
        .await?;
    Ok(user.map_or(Value::Null, |(id, name)| json!({"id": id, "name": name})))
}

#[tracing::instrument(skip(pool), fields(rows))]
async fn load_posts(pool: &SqlitePool, user_id: i64) -> Result<Value, sqlx::Error> {
    let posts: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, title FROM posts WHERE user_id = ? ORDER BY id")
            .bind(user_id)
            .fetch_all(pool)
            .await?;
    tracing::Span::current().record("rows", posts.len());
    if posts.is_empty() {
        tracing::warn!(user_id, "no posts for this user");
    }
    Ok(posts
        .into_iter()
        .map(|(id, title)| json!({"id": id, "title": title}))
        .collect())
}

/// Every user with their number of posts, the slow way: one query for the users, then one
/// per user (a JOIN would be one query). lighttrace reports it as an N+1 issue.
async fn list_users(State(pool): State<SqlitePool>) -> Result<Json<Value>, HandlerError> {
    let users: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM users ORDER BY id")
        .fetch_all(&pool)
        .await?;
    let mut listed = Vec::with_capacity(users.len());
    for (id, name) in users {
        let (posts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM posts WHERE user_id = ?")
            .bind(id)
            .fetch_one(&pool)
            .await?;
        listed.push(json!({"id": id, "name": name, "posts": posts}));
    }
    Ok(Json(Value::Array(listed)))
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
