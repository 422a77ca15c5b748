//! diesel's queries (a real SQLite database through diesel) as `db` spans of the request that
//! ran them in `lighttrace::spawn_blocking`, bind values only with `send_default_pii`.
#![cfg(feature = "diesel")]

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use http::{Request, StatusCode};
use lighttrace::protocol::{Context, SpanStatus};
use lighttrace::{DieselInstrumentation, MemorySink, Options, TrackingLayer};
use tower::ServiceExt;

use crate::common;

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// What the handler does: a blocking diesel session, with a query that fails.
fn session() -> Result<String, diesel::result::Error> {
    let mut conn = SqliteConnection::establish(":memory:").expect("sqlite");
    conn.set_instrumentation(DieselInstrumentation::for_system("sqlite"));
    conn.batch_execute(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT);
         INSERT INTO users VALUES (1, 'Ann', 'ann@example.com');",
    )?;
    let _span = lighttrace::start_span("repo", "load the user");
    let found: Name = diesel::sql_query("SELECT name FROM users WHERE email = ?")
        .bind::<Text, _>("ann@example.com")
        .get_result(&mut conn)?;
    let missing = diesel::sql_query("SELECT name FROM no_such_table WHERE id = ?")
        .bind::<BigInt, _>(7)
        .get_result::<Name>(&mut conn);
    assert!(missing.is_err());
    Ok(found.name)
}

async fn run(pii: bool) -> lighttrace::protocol::Transaction<'static> {
    let sink = MemorySink::new();
    let app = Router::new()
        .route(
            "/user",
            get(|| async { lighttrace::spawn_blocking(session).await.unwrap().unwrap() }),
        )
        .layer(TrackingLayer::with_options(
            Options::new()
                .dsn(
                    lighttrace::parse_dsn(&format!("https://{}@errors.example.com/1", common::KEY))
                        .unwrap(),
                )
                .traces_sample_rate(1.0)
                .send_default_pii(pii)
                .sink(common::Keep(sink.clone())),
        ));
    let req = Request::get("/user").body(Body::empty()).unwrap();
    assert_eq!(app.oneshot(req).await.unwrap().status(), StatusCode::OK);
    assert!(sink.wait_for_transactions(1, Duration::from_secs(10)).await);
    sink.transactions().remove(0)
}

#[tokio::test]
async fn diesel_queries_are_db_spans_of_the_request_in_spawn_blocking() {
    let tx = run(false).await;
    let root = match tx.contexts.get("trace") {
        Some(Context::Trace(t)) => t.span_id,
        other => panic!("{other:?}"),
    };
    let repo = tx
        .spans
        .iter()
        .find(|s| s.op.as_deref() == Some("repo"))
        .unwrap();
    let db: Vec<_> = tx
        .spans
        .iter()
        .filter(|s| s.op.as_deref() == Some("db"))
        .collect();
    let select = db
        .iter()
        .find(|s| s.description.as_deref() == Some("SELECT name FROM users WHERE email = ?"))
        .unwrap_or_else(|| panic!("{db:#?}"));
    assert_eq!(
        select.parent_span_id,
        Some(repo.span_id),
        "under the span current there"
    );
    assert_eq!(select.data["db.system"], "sqlite");
    assert_eq!(select.data["db.operation"], "SELECT");
    assert_eq!(select.status, Some(SpanStatus::Ok));
    assert!(
        !select.data.contains_key("db.params"),
        "no bind values without PII"
    );
    let failed = db
        .iter()
        .find(|s| {
            s.description
                .as_deref()
                .is_some_and(|d| d.contains("no_such_table"))
        })
        .unwrap();
    assert_eq!(failed.status, Some(SpanStatus::InternalError));
    // The schema, set up before the span was opened, is under the request's root.
    assert!(db.iter().any(|s| s.parent_span_id == Some(root)));
}

#[tokio::test]
async fn bind_values_are_sent_with_pii_and_scrubbed() {
    let tx = run(true).await;
    let select = tx
        .spans
        .iter()
        .find(|s| s.description.as_deref() == Some("SELECT name FROM users WHERE email = ?"))
        .unwrap();
    let params = select.data["db.params"].as_str().unwrap();
    assert!(params.contains("ann@example.com"), "{params}");
}
