//! What the request path keeps of finished spans and of breadcrumbs from `tracing`: borrowed
//! names where they are `'static`, and no protocol struct until one is built on the worker.
//!
//! A `tracing` span's name, target and field names, and an event's target and field names,
//! are `'static`: keeping them as they are saves the allocations (and the formatting of
//! `target::name`) that the protocol types would cost on every span and every breadcrumb of
//! every request, for the few requests whose data is ever sent.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::SystemTime;

use sentry_types::protocol::v7::{Breadcrumb, Level, Span, SpanId, SpanStatus, TraceId, Value};

/// A span's op or description.
#[derive(Clone, Debug)]
pub(crate) enum SpanText {
    #[cfg_attr(not(any(feature = "tracing", feature = "diesel")), allow(dead_code))]
    Borrowed(&'static str),
    Owned(String),
    /// `"{0}::{1}"`, joined only if the span is sent.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    Path(&'static str, &'static str),
}

impl SpanText {
    /// The text, borrowed unless it is a path to join.
    pub(crate) fn as_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            SpanText::Borrowed(s) => std::borrow::Cow::Borrowed(s),
            SpanText::Owned(s) => std::borrow::Cow::Borrowed(s),
            SpanText::Path(a, b) => std::borrow::Cow::Owned(format!("{a}::{b}")),
        }
    }

    fn to_text(&self) -> String {
        match self {
            SpanText::Borrowed(s) => (*s).to_owned(),
            SpanText::Owned(s) => s.clone(),
            SpanText::Path(a, b) => format!("{a}::{b}"),
        }
    }
}

impl From<String> for SpanText {
    fn from(s: String) -> Self {
        SpanText::Owned(s)
    }
}

/// A finished child span of a request's transaction.
#[derive(Clone, Debug)]
pub(crate) struct SpanRecord {
    pub(crate) span_id: SpanId,
    pub(crate) parent: SpanId,
    pub(crate) op: SpanText,
    pub(crate) description: SpanText,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    pub(crate) status: SpanStatus,
    pub(crate) data: Vec<(Cow<'static, str>, Value)>,
    /// A database span's facts, kept as they are (no allocation on the request thread) and
    /// written as its data (`db.system`, `db.operation`, row counts) when it is sent.
    pub(crate) db: Option<DbFacts>,
}

/// What a database span says besides its statement.
#[derive(Clone, Debug)]
pub(crate) struct DbFacts {
    /// OpenTelemetry's name of the system (`sqlite`, `postgresql`, ...).
    pub(crate) system: DbSystem,
    pub(crate) rows_returned: Option<u64>,
    pub(crate) rows_affected: Option<u64>,
}

/// A database system's name: one the crate recognised, or one the user gave.
#[derive(Clone, Debug)]
pub(crate) enum DbSystem {
    #[cfg_attr(not(any(feature = "tracing", feature = "diesel")), allow(dead_code))]
    Known(&'static str),
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    Named(std::sync::Arc<str>),
}

impl DbSystem {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            DbSystem::Known(name) => name,
            DbSystem::Named(name) => name,
        }
    }
}

impl DbFacts {
    /// The span data these facts are written as, with the operation read from `statement`.
    pub(crate) fn data(&self, statement: &str) -> Vec<(&'static str, Value)> {
        let mut out = Vec::with_capacity(4);
        out.push(("db.system", Value::from(self.system.as_str())));
        if let Some(operation) = crate::util::sql::operation(statement) {
            out.push(("db.operation", Value::String(operation)));
        }
        if let Some(rows) = self.rows_returned {
            out.push(("rows_returned", Value::from(rows)));
        }
        if let Some(rows) = self.rows_affected {
            out.push(("rows_affected", Value::from(rows)));
        }
        out
    }
}

impl SpanRecord {
    /// The protocol span, in trace `trace_id` (a copy: see `build::transaction`).
    pub(crate) fn to_span(&self, trace_id: TraceId) -> Span {
        Span {
            span_id: self.span_id,
            trace_id,
            parent_span_id: Some(self.parent),
            same_process_as_parent: None,
            op: Some(self.op.to_text()),
            description: Some(self.description.to_text()),
            timestamp: Some(self.end),
            start_timestamp: self.start,
            status: Some(self.status),
            tags: BTreeMap::new(),
            data: self
                .db
                .iter()
                .flat_map(|db| db.data(&self.description.as_text()))
                .map(|(k, v)| (k.to_owned(), v))
                .chain(
                    self.data
                        .iter()
                        .map(|(k, v)| (k.clone().into_owned(), v.clone())),
                )
                .collect(),
        }
    }
}

/// A breadcrumb as recorded: a whole one (from `add_breadcrumb`), or the parts of a `tracing`
/// event, made into a breadcrumb only if an event carries it.
#[derive(Clone, Debug)]
pub(crate) enum Crumb {
    /// Boxed: a protocol breadcrumb is several times the size of a logged one, and the ring
    /// moves its elements.
    Full(Box<Breadcrumb>),
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    Logged(LoggedCrumb),
}

/// A `tracing` event kept as a breadcrumb.
#[derive(Clone, Debug)]
pub(crate) struct LoggedCrumb {
    pub(crate) timestamp: SystemTime,
    pub(crate) level: Level,
    pub(crate) target: Cow<'static, str>,
    pub(crate) message: String,
    pub(crate) data: Vec<(&'static str, Value)>,
}

impl Crumb {
    /// The protocol breadcrumb.
    pub(crate) fn into_breadcrumb(self) -> Breadcrumb {
        match self {
            Crumb::Full(crumb) => *crumb,
            Crumb::Logged(c) => Breadcrumb {
                timestamp: c.timestamp,
                ty: if c.level == Level::Error {
                    "error"
                } else {
                    "default"
                }
                .into(),
                category: Some(c.target.into_owned()),
                level: c.level,
                message: Some(c.message),
                data: c.data.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            },
        }
    }
}

impl From<Breadcrumb> for Crumb {
    fn from(crumb: Breadcrumb) -> Self {
        Crumb::Full(Box::new(crumb))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_become_protocol_values_only_when_sent() {
        let record = SpanRecord {
            span_id: SpanId::from([1; 8]),
            parent: SpanId::from([2; 8]),
            op: SpanText::Path("myapp::db", "load_user"),
            description: SpanText::Borrowed("load_user"),
            start: SystemTime::UNIX_EPOCH,
            end: SystemTime::UNIX_EPOCH,
            status: SpanStatus::Ok,
            data: vec![(Cow::Borrowed("id"), Value::from(7))],
            db: None,
        };
        let span = record.to_span(TraceId::from([3; 16]));
        assert_eq!(span.op.as_deref(), Some("myapp::db::load_user"));
        assert_eq!(span.description.as_deref(), Some("load_user"));
        assert_eq!(span.data["id"], 7);
        assert_eq!(span.parent_span_id, Some(SpanId::from([2; 8])));

        let crumb = Crumb::Logged(LoggedCrumb {
            timestamp: SystemTime::UNIX_EPOCH,
            level: Level::Warning,
            target: Cow::Borrowed("myapp::pay"),
            message: "retrying".into(),
            data: vec![("attempt", Value::from(2))],
        })
        .into_breadcrumb();
        assert_eq!(crumb.category.as_deref(), Some("myapp::pay"));
        assert_eq!(crumb.ty, "default");
        assert_eq!(crumb.data["attempt"], 2);
    }
}
