//! sqlx's statement events as database spans, with no change to the code that runs the
//! queries (and sea-orm's, which runs on sqlx).
//!
//! sqlx reports every statement as a `tracing` event when it ends (`sqlx-core`'s
//! `logger.rs`, 0.8): target `sqlx::query`, at `DEBUG` (`WARN` past the slow-statement
//! threshold), with the fields `summary` (the first four words), `db.statement` (the whole
//! statement, placeholders and all, surrounded by blank lines; empty when the summary is the
//! whole statement), `rows_affected`, `rows_returned` and `elapsed_secs`. Bind values are never
//! part of it. The span follows Sentry's queries module (op `db`, the statement as the
//! description, `db.system` and `db.operation` as data) and OpenTelemetry's database
//! conventions for the system's name (`sqlite`, `postgresql`, `mysql`, `other_sql`).
//!
//! sqlx names no database system: SQLite runs each connection on its own thread named
//! `sqlx-sqlite-worker-{n}`, a statement with `$1` placeholders is PostgreSQL's, and
//! [`TracingLayer::db_system`](super::TracingLayer::db_system) names it for the others.

use std::time::{Duration, SystemTime};

use ::tracing::field::{Field, Visit};
use ::tracing::{Event, Metadata};
use sentry_types::protocol::v7::{SpanId, SpanStatus};

use crate::event::{new_span_id, DbFacts, DbSystem, SpanRecord, SpanText};
use crate::scope::RequestScope;

/// The target of sqlx's statement events.
const TARGET: &str = "sqlx::query";

/// Whether `metadata` is that of a sqlx statement event.
#[inline]
pub(super) fn is_statement(metadata: &Metadata<'_>) -> bool {
    metadata.is_event() && metadata.target() == TARGET
}

/// What a statement event says.
#[derive(Default)]
struct Statement {
    summary: String,
    statement: String,
    rows_affected: Option<u64>,
    rows_returned: Option<u64>,
    elapsed_secs: Option<f64>,
}

impl Visit for Statement {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            // A summary that ends in `…` is cut: the statement is in `db.statement`.
            "summary" if !value.ends_with('…') => value.clone_into(&mut self.summary),
            "db.statement" => value.trim().clone_into(&mut self.statement),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "rows_affected" => self.rows_affected = Some(value),
            "rows_returned" => self.rows_returned = Some(value),
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, u64::try_from(value).unwrap_or(0));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed_secs = Some(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `summary` and `db.statement` arrive as `str` from sqlx; as `Debug` from a layer in
        // between that re-emits them, quoted.
        if matches!(field.name(), "summary" | "db.statement") {
            let text = format!("{value:?}");
            self.record_str(field, text.trim_matches('"'));
        }
    }
}

/// Records the statement `event` reports as a finished `db` span of `scope`, under `parent`.
pub(super) fn record(
    event: &Event<'_>,
    scope: &RequestScope,
    parent: SpanId,
    configured_system: Option<&std::sync::Arc<str>>,
) {
    let end = SystemTime::now();
    let mut statement = Statement::default();
    event.record(&mut statement);
    let text = if statement.statement.is_empty() {
        // Four words or fewer: the summary is the whole statement.
        std::mem::take(&mut statement.summary)
    } else {
        std::mem::take(&mut statement.statement)
    };
    if text.is_empty() {
        return;
    }
    let elapsed = statement
        .elapsed_secs
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(Duration::ZERO, Duration::from_secs_f64);
    let system = match configured_system {
        Some(name) => DbSystem::Named(name.clone()),
        None => DbSystem::Known(system_of(&text)),
    };
    scope.record_span(SpanRecord {
        span_id: new_span_id(),
        parent,
        op: SpanText::Borrowed("db"),
        description: SpanText::Owned(text),
        start: end.checked_sub(elapsed).unwrap_or(end),
        end,
        status: SpanStatus::Ok,
        data: Vec::new(),
        db: Some(DbFacts {
            system,
            rows_returned: statement.rows_returned,
            rows_affected: statement.rows_affected,
        }),
    });
}

/// The database system, as far as the statement and the thread tell.
fn system_of(statement: &str) -> &'static str {
    thread_local! {
        // Whether this is one of sqlx's SQLite worker threads, found out once per thread.
        static SQLITE_WORKER: bool = std::thread::current()
            .name()
            .is_some_and(|name| name.starts_with("sqlx-sqlite-worker"));
    }
    if SQLITE_WORKER.try_with(|is| *is).unwrap_or(false) {
        "sqlite"
    } else if has_numbered_placeholder(statement) {
        "postgresql"
    } else {
        "other_sql"
    }
}

/// Whether the statement has a `$1`-style placeholder (PostgreSQL's). A `$1` inside a quoted
/// string of another database's statement is taken for one: rare, and not worth scanning
/// every statement byte by byte for quotes.
fn has_numbered_placeholder(statement: &str) -> bool {
    let mut from = 0;
    while let Some(at) = statement[from..].find('$') {
        let next = from + at + 1;
        if statement
            .as_bytes()
            .get(next)
            .is_some_and(u8::is_ascii_digit)
        {
            return true;
        }
        from = next;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_and_operation_come_from_the_statement() {
        assert_eq!(system_of("SELECT * FROM users WHERE id = $1"), "postgresql");
        assert_eq!(system_of("SELECT '$' FROM users WHERE id = ?"), "other_sql");
        assert_eq!(
            system_of("SELECT $$ x $$, a FROM t WHERE b = $2"),
            "postgresql"
        );
        assert_eq!(system_of("SELECT 1"), "other_sql");
        let sqlite = std::thread::Builder::new()
            .name("sqlx-sqlite-worker-3".into())
            .spawn(|| system_of("SELECT 1"))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(sqlite, "sqlite");
    }
}
