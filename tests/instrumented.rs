//! The work inside a request, recorded without touching the code that does it: sqlx's
//! statements on a real SQLite database (run on sqlx's worker thread) and on the request's own
//! thread (an async driver's path), reqwest-tracing's OpenTelemetry-convention spans, and the
//! N+1 and slow-query detectors, under one process-wide subscriber whose `fmt` layer is
//! filtered at `INFO` (its own `EnvFilter`), as a service sets it up.
#![cfg(all(feature = "tracing", feature = "reqwest-middleware"))]

#[path = "it/common/mod.rs"]
mod common;

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use lighttrace::protocol::{Context, Span, SpanStatus, Transaction};
use lighttrace::{HandlerError, MemorySink, Options, TrackingLayer};
use sqlx::SqlitePool;
use tower::ServiceExt;
use tracing_subscriber::prelude::*;

const WAIT: Duration = Duration::from_secs(10);

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

/// The subscriber a service sets up: `fmt` behind its own `EnvFilter` at `INFO`, lighttrace's
/// layer unfiltered, so sqlx's `DEBUG` statement events reach lighttrace and not the console.
fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(|| Printed)
            .with_ansi(false)
            .with_filter(tracing_subscriber::EnvFilter::new("info"));
        tracing_subscriber::registry()
            .with(fmt)
            .with(lighttrace::tracing::layer())
            .init();
    });
}

fn options(sink: &MemorySink) -> Options {
    Options::new()
        .dsn(
            lighttrace::parse_dsn(&format!("https://{}@errors.example.com/1", common::KEY))
                .unwrap(),
        )
        .traces_sample_rate(1.0)
        .sink(common::Keep(sink.clone()))
}

async fn database() -> SqlitePool {
    // One connection: an in-memory database is per connection.
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, title TEXT);
         INSERT INTO users VALUES (1, 'Ann'), (2, 'Bo'), (3, 'Cy'), (4, 'Di'), (5, 'Ed'), (6, 'Flo');
         INSERT INTO posts (user_id, title) VALUES (1, 'a'), (1, 'b'), (2, 'c');",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool
}

async fn hit(app: &Router, path: &str) -> StatusCode {
    let req = Request::get(path).body(Body::empty()).unwrap();
    app.clone().oneshot(req).await.unwrap().status()
}

fn data<'a>(span: &'a Span, key: &str) -> Option<&'a lighttrace::protocol::Value> {
    span.data.get(key)
}

fn root_of(tx: &Transaction<'_>) -> lighttrace::protocol::SpanId {
    match tx.contexts.get("trace") {
        Some(Context::Trace(t)) => t.span_id,
        other => panic!("{other:?}"),
    }
}

#[tracing::instrument(skip(pool))]
async fn load_posts(pool: &SqlitePool, user_id: i64) -> Result<Vec<String>, sqlx::Error> {
    let posts: Vec<(String,)> = sqlx::query_as("SELECT title FROM posts WHERE user_id = ?")
        .bind(user_id)
        .fetch_all(pool)
        .await?;
    Ok(posts.into_iter().map(|(t,)| t).collect())
}

async fn user_page(State(pool): State<SqlitePool>) -> Result<String, HandlerError> {
    let (name,): (String,) = sqlx::query_as("SELECT name FROM users WHERE id = ?")
        .bind(1)
        .fetch_one(&pool)
        .await?;
    let posts = load_posts(&pool, 1).await?;
    Ok(format!("{name}: {}", posts.join(", ")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_statements_are_db_spans_of_their_request_nested_where_they_ran() {
    install();
    let sink = MemorySink::new();
    let pool = database().await;
    let app = Router::new()
        .route("/user", get(user_page))
        .with_state(pool)
        .layer(TrackingLayer::with_options(options(&sink)));
    assert_eq!(hit(&app, "/user").await, StatusCode::OK);
    assert!(sink.wait_for_transactions(1, WAIT).await);
    let tx = &sink.transactions()[0];
    let root = root_of(tx);
    let db: Vec<&Span> = tx
        .spans
        .iter()
        .filter(|s| s.op.as_deref() == Some("db"))
        .collect();
    assert_eq!(db.len(), 2, "{:#?}", tx.spans);
    for span in &db {
        assert_eq!(data(span, "db.system"), Some(&"sqlite".into()));
        assert_eq!(data(span, "db.operation"), Some(&"SELECT".into()));
        let (start, end) = (span.start_timestamp, span.timestamp.unwrap());
        assert!(start <= end && start >= tx.start_timestamp && end <= tx.timestamp.unwrap());
        assert_eq!(span.status, Some(SpanStatus::Ok));
    }
    // The handler's own query under the request's root; the helper's under the helper's span.
    let by_text = |text: &str| {
        *db.iter()
            .find(|s| s.description.as_deref() == Some(text))
            .unwrap()
    };
    let name = by_text("SELECT name FROM users WHERE id = ?");
    assert_eq!(name.parent_span_id, Some(root));
    let posts = by_text("SELECT title FROM posts WHERE user_id = ?");
    let helper = tx
        .spans
        .iter()
        .find(|s| s.op.as_deref().is_some_and(|op| op.ends_with("load_posts")))
        .unwrap();
    assert_eq!(posts.parent_span_id, Some(helper.span_id));
    assert_eq!(data(posts, "rows_returned"), Some(&2.into()));
    // In order: the name, then the posts.
    assert!(name.timestamp.unwrap() <= posts.start_timestamp);
    // The console, filtered at INFO, never saw them.
    let printed = String::from_utf8(PRINTED.lock().unwrap().clone()).unwrap();
    assert!(!printed.contains("SELECT title"), "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsampled_request_records_no_query() {
    install();
    let sink = MemorySink::new();
    let pool = database().await;
    let app = Router::new()
        .route("/user", get(user_page))
        .with_state(pool)
        .layer(TrackingLayer::with_options(
            options(&sink).traces_sample_rate(0.0),
        ));
    assert_eq!(hit(&app, "/user").await, StatusCode::OK);
    let client_flushed = sink
        .wait_for_transactions(1, Duration::from_millis(300))
        .await;
    assert!(!client_flushed);
    assert!(sink.transactions().is_empty());
}

/// What an async driver (PostgreSQL, MySQL) does: sqlx's statement event emitted in the
/// request's own task, with the fields `sqlx-core`'s `logger.rs` gives it.
fn async_driver_statement(sql: &str, elapsed: Duration) {
    let summary: String = sql.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
    tracing::debug!(
        target: "sqlx::query",
        summary = %format!("{summary} …"),
        db.statement = %format!("\n\n{sql}\n"),
        rows_affected = 0u64,
        rows_returned = 1u64,
        elapsed = ?elapsed,
        elapsed_secs = elapsed.as_secs_f64(),
    );
}

#[tokio::test]
async fn an_async_drivers_statement_is_a_span_in_the_requests_own_task() {
    install();
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/orders",
            get(|| async {
                let _guard = lighttrace::start_span("orders.load", "load the orders");
                async_driver_statement(
                    "SELECT * FROM orders WHERE customer_id = $1 AND state = $2",
                    Duration::from_millis(7),
                );
                "ok"
            }),
        )
        .layer(TrackingLayer::with_options(options(&sink)));
    assert_eq!(hit(&app, "/orders").await, StatusCode::OK);
    assert!(sink.wait_for_transactions(1, WAIT).await);
    let tx = &sink.transactions()[0];
    let guard = tx
        .spans
        .iter()
        .find(|s| s.op.as_deref() == Some("orders.load"))
        .unwrap();
    let db = tx
        .spans
        .iter()
        .find(|s| s.op.as_deref() == Some("db"))
        .unwrap();
    assert_eq!(
        db.description.as_deref(),
        Some("SELECT * FROM orders WHERE customer_id = $1 AND state = $2")
    );
    assert_eq!(data(db, "db.system"), Some(&"postgresql".into()));
    assert_eq!(
        db.parent_span_id,
        Some(guard.span_id),
        "under the span current there"
    );
    let took = db
        .timestamp
        .unwrap()
        .duration_since(db.start_timestamp)
        .unwrap();
    assert!(
        took >= Duration::from_millis(7) && took < Duration::from_millis(8),
        "{took:?}"
    );
}

async fn n_plus_one(State(pool): State<SqlitePool>) -> Result<String, HandlerError> {
    let users: Vec<(i64,)> = sqlx::query_as("SELECT id FROM users ORDER BY id")
        .fetch_all(&pool)
        .await?;
    let mut total = 0;
    for (id,) in users {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM posts WHERE user_id = ?")
            .bind(id)
            .fetch_one(&pool)
            .await?;
        total += n;
    }
    Ok(total.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_n_plus_one_is_one_issue_per_problem_and_a_slow_select_another() {
    install();
    let sink = MemorySink::new();
    let pool = database().await;
    let app = Router::new()
        .route("/users", get(n_plus_one))
        .route("/user", get(user_page))
        .with_state(pool)
        .layer(TrackingLayer::with_options(
            options(&sink)
                .n_plus_one_threshold(5, Duration::ZERO)
                .slow_db_query_threshold(Duration::from_secs(3600)),
        ));
    assert_eq!(hit(&app, "/users").await, StatusCode::OK);
    assert_eq!(hit(&app, "/users").await, StatusCode::OK);
    // Fewer than 5 repeats: no problem.
    assert_eq!(hit(&app, "/user").await, StatusCode::OK);
    assert!(sink.wait_for_transactions(3, WAIT).await);
    assert!(sink.wait_for_events(2, WAIT).await);
    let events = sink.events();
    assert_eq!(
        events.len(),
        2,
        "one per request with the problem: {events:#?}"
    );
    for event in &events {
        assert_eq!(event.level, lighttrace::Level::Warning);
        assert_eq!(
            event.message.as_deref(),
            Some("N+1 query: SELECT COUNT(*) FROM posts WHERE user_id = ? (×6) in GET /users")
        );
        assert_eq!(
            event
                .fingerprint
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>(),
            [
                "n_plus_one_db_queries",
                "GET /users",
                "SELECT COUNT(*) FROM posts WHERE user_id = ?"
            ],
            "stable: one issue for the problem"
        );
        let details = match event.contexts.get("n_plus_one_db_queries") {
            Some(Context::Other(map)) => map,
            other => panic!("{other:?}"),
        };
        assert_eq!(details["repeats"], 6);
        assert_eq!(details["span_ids"].as_array().unwrap().len(), 6);
    }
    // Linked to its transaction's trace.
    let txs = sink.transactions();
    let trace_of = |c: &std::collections::BTreeMap<String, Context>| match c.get("trace") {
        Some(Context::Trace(t)) => t.trace_id,
        other => panic!("{other:?}"),
    };
    for event in &events {
        assert!(txs
            .iter()
            .any(|t| trace_of(&t.contexts) == trace_of(&event.contexts)));
    }

    // A slow SELECT (here: any) is an event of its own, once per statement per request.
    let sink = MemorySink::new();
    let pool = database().await;
    let app = Router::new()
        .route("/user", get(user_page))
        .with_state(pool)
        .layer(TrackingLayer::with_options(
            options(&sink).slow_db_query_threshold(Duration::ZERO),
        ));
    assert_eq!(hit(&app, "/user").await, StatusCode::OK);
    assert!(sink.wait_for_events(2, WAIT).await);
    let mut titles: Vec<String> = sink
        .events()
        .into_iter()
        .filter_map(|e| e.message)
        .collect();
    titles.sort();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(
        titles[0].starts_with("Slow DB query: SELECT name FROM users WHERE id = ? ("),
        "{titles:?}"
    );
    assert!(titles[0].ends_with(" ms) in GET /user"), "{titles:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_tracing_spans_follow_opentelemetrys_conventions() {
    install();
    let upstream = common::Upstream::start(503).await;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(reqwest_tracing::TracingMiddleware::default())
        .build();
    let sink = MemorySink::new();
    let target = format!("{}/inventory?token=secret", upstream.base);
    let app = Router::new()
        .route(
            "/proxy",
            get(move || {
                let (client, target) = (client.clone(), target.clone());
                async move {
                    let res = client.get(&target).send().await.unwrap();
                    res.status().as_u16().to_string()
                }
            }),
        )
        .layer(TrackingLayer::with_options(options(&sink)));
    assert_eq!(hit(&app, "/proxy").await, StatusCode::OK);
    assert!(sink.wait_for_transactions(1, WAIT).await);
    let tx = &sink.transactions()[0];
    let span = tx
        .spans
        .iter()
        .find(|s| s.op.as_deref() == Some("http.client"))
        .unwrap_or_else(|| panic!("{:#?}", tx.spans));
    // reqwest-tracing's default span names no URL: the scheme, address and port stand in.
    let authority = upstream.base.trim_start_matches("http://");
    assert_eq!(
        span.description.as_deref(),
        Some(format!("GET http://{authority}").as_str())
    );
    assert_eq!(
        span.status,
        Some(SpanStatus::Unavailable),
        "503, from the HTTP status"
    );
    assert_eq!(data(span, "http.response.status_code"), Some(&503.into()));
    assert_eq!(data(span, "otel.kind"), Some(&"client".into()));
}
