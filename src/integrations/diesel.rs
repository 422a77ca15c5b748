//! [`DieselInstrumentation`]: diesel's queries (2.2 and later, and diesel-async's, which share
//! the trait) as `db` spans of the request they run for.

use std::time::SystemTime;

use diesel::connection::{Instrumentation, InstrumentationEvent};
use sentry_types::protocol::v7::{SpanStatus, Value};

use crate::event::{new_span_id, DbFacts, DbSystem, SpanRecord, SpanText};
use crate::scope::{self, current_span};

/// Records each query a diesel connection runs as a `db` span (feature `diesel`), following
/// Sentry's queries module: op `db`, the SQL as the description, `db.system` and
/// `db.operation` as data. Bind values can hold personal data: they are sent (as `db.params`,
/// scrubbed like every value) only with [`send_default_pii`](crate::Options::send_default_pii).
///
/// diesel is synchronous: run it with [`lighttrace::spawn_blocking`](crate::spawn_blocking), which
/// carries the request's scope and current span to the blocking thread, and the queries become
/// spans of that request. Install it on every new connection with diesel's
/// `set_default_instrumentation`, or on one with `Connection::set_instrumentation`.
///
/// ```no_run
/// use diesel::connection::set_default_instrumentation;
///
/// set_default_instrumentation(|| Some(Box::new(lighttrace::DieselInstrumentation::new())))
///     .expect("instrumentation installed");
/// ```
#[derive(Debug, Default)]
pub struct DieselInstrumentation {
    /// The database system, from the connection URL (or as given).
    system: Option<&'static str>,
    /// When the queries under way started, innermost last.
    started: Vec<SystemTime>,
}

impl DieselInstrumentation {
    /// An instrumentation that tells the database system from the connection's URL
    /// (`postgres://` is `postgresql`, `mysql://` `mysql`, anything else `sqlite`).
    pub fn new() -> Self {
        DieselInstrumentation::default()
    }

    /// An instrumentation for a connection to `system` (OpenTelemetry's name: `postgresql`,
    /// `mysql`, `sqlite`), for a connection made before it was installed.
    pub fn for_system(system: &'static str) -> Self {
        DieselInstrumentation {
            system: Some(system),
            started: Vec::new(),
        }
    }
}

impl Instrumentation for DieselInstrumentation {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartEstablishConnection { url, .. } if self.system.is_none() => {
                self.system = Some(system_of_url(url));
            }
            InstrumentationEvent::StartQuery { .. } => self.started.push(SystemTime::now()),
            InstrumentationEvent::FinishQuery { query, error, .. } => {
                let end = SystemTime::now();
                let start = self.started.pop().unwrap_or(end);
                let status = if error.is_some() {
                    SpanStatus::InternalError
                } else {
                    SpanStatus::Ok
                };
                record(&query.to_string(), start, end, status, self.system);
            }
            _ => {}
        }
    }
}

/// A finished query as a `db` span of the request current on this thread, if it is sampled.
fn record(
    text: &str,
    start: SystemTime,
    end: SystemTime,
    status: SpanStatus,
    system: Option<&'static str>,
) {
    scope::with_current(|scope| {
        if !scope.records_spans() {
            return;
        }
        // diesel's text is the SQL, then ` -- binds: [..]` for a query with bind values.
        let (sql, binds) = match text.rsplit_once(" -- binds: ") {
            Some((sql, binds)) => (sql.trim(), Some(binds)),
            None => (text.trim(), None),
        };
        let pii = scope.client.options_ref().send_default_pii;
        let data = match (pii, binds) {
            (true, Some(binds)) => vec![("db.params".into(), Value::from(binds))],
            _ => Vec::new(),
        };
        scope.record_span(SpanRecord {
            span_id: new_span_id(),
            parent: current_span().unwrap_or(scope.trace.span_id),
            op: SpanText::Borrowed("db"),
            description: SpanText::Owned(sql.to_owned()),
            start,
            end,
            status,
            data,
            db: Some(DbFacts {
                system: DbSystem::Known(system.unwrap_or("other_sql")),
                rows_returned: None,
                rows_affected: None,
            }),
        });
    });
}

fn system_of_url(url: &str) -> &'static str {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        "postgresql"
    } else if url.starts_with("mysql://") {
        "mysql"
    } else {
        "sqlite"
    }
}
