//! Performance problems found in a finished request's spans, in the process: N+1 queries and
//! slow database queries, for servers that do not look for them (Bugsink, GlitchTip). Each
//! problem becomes one warning event whose fingerprint (kind, transaction, statement with its
//! literals replaced) makes each problem one issue, linked to the trace.
//!
//! The rules follow Sentry's own detectors (getsentry/sentry,
//! `src/sentry/issue_detection/detectors/`):
//! - **N+1 queries** (`n_plus_one_db_span_detector.py`): database spans (op `db…`, but not
//!   `db.redis` or `db.connection`) under one parent, one after the other with no other span
//!   in between, with the same statement; at least 5 of them
//!   (`performance.issues.n_plus_one_db.count_threshold`), together at least 50 ms
//!   (`…duration_threshold`, the union of their intervals).
//! - **Slow database queries** (`slow_db_query_detector.py`): a `SELECT` that took at least
//!   500 ms (`performance.issues.slow_db_query.duration_threshold`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use sentry_types::protocol::v7::{Context, Event, Level, Request, SpanId, TraceContext, Value};

use super::build::{apply_request, new_event};
use super::{DscInput, Finished};
use crate::util::sql;

/// Sentry's N+1 detector's defaults: repeats, and their total duration.
pub(crate) const N_PLUS_ONE_REPEATS: usize = 5;
/// See [`N_PLUS_ONE_REPEATS`].
pub(crate) const N_PLUS_ONE_TOTAL: Duration = Duration::from_millis(50);

/// What to look for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Detectors {
    /// Repeats and total duration of an N+1 run, when looked for.
    pub(crate) n_plus_one: Option<(usize, Duration)>,
    /// How long a slow `SELECT` takes, when looked for.
    pub(crate) slow_db_query: Option<Duration>,
}

/// The kinds of problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProblemKind {
    NPlusOne,
    SlowDbQuery,
}

impl ProblemKind {
    fn tag(self) -> &'static str {
        match self {
            ProblemKind::NPlusOne => "n_plus_one_db_queries",
            ProblemKind::SlowDbQuery => "slow_db_query",
        }
    }
}

/// One problem: the offending spans and their statement.
#[derive(Clone, Debug)]
pub(crate) struct Problem {
    pub(crate) kind: ProblemKind,
    /// The statement as the spans show it.
    pub(crate) statement: String,
    /// Their parent (an N+1's), or the slow span itself.
    pub(crate) span: SpanId,
    pub(crate) spans: Vec<SpanId>,
    pub(crate) total: Duration,
}

/// The warning event of a problem, and the input of its sampling context.
pub(crate) fn problem_event(
    finished: &Finished,
    problem: &Problem,
    interface: Request,
) -> (Box<Event<'static>>, DscInput) {
    let name = finished.request.transaction_name();
    let mut event = new_event(Level::Warning, finished.finished);
    let shown = shortened(&problem.statement, 200);
    event.message = Some(match problem.kind {
        ProblemKind::NPlusOne => format!("N+1 query: {shown} (×{}) in {name}", problem.spans.len()),
        ProblemKind::SlowDbQuery => format!(
            "Slow DB query: {shown} ({} ms) in {name}",
            problem.total.as_millis()
        ),
    });
    event.fingerprint = Cow::Owned(vec![
        Cow::Borrowed(problem.kind.tag()),
        Cow::Owned(name.clone()),
        Cow::Owned(sql::parametrized(&problem.statement)),
    ]);
    event.logger = Some("lighttrace.performance".to_owned());
    event.tags.insert(
        "performance_issue".to_owned(),
        problem.kind.tag().to_owned(),
    );
    apply_request(&mut event, &finished.request, interface, None);
    // Linked to the trace, at the span the problem is under.
    event.contexts.insert(
        "trace".into(),
        Context::Trace(Box::new(TraceContext {
            span_id: problem.span,
            trace_id: finished.trace.trace_id,
            parent_span_id: None,
            op: Some("db".to_owned()),
            description: None,
            status: None,
            origin: Some("auto.db.lighttrace".to_owned()),
            data: BTreeMap::new(),
        })),
    );
    let mut details = BTreeMap::new();
    details.insert(
        "statement".to_owned(),
        Value::from(problem.statement.as_str()),
    );
    details.insert(
        "repeats".to_owned(),
        Value::from(problem.spans.len() as u64),
    );
    details.insert(
        "total_duration_ms".to_owned(),
        Value::from(problem.total.as_secs_f64() * 1000.0),
    );
    details.insert(
        "span_ids".to_owned(),
        Value::Array(
            problem
                .spans
                .iter()
                .map(|id| Value::String(id.to_string()))
                .collect(),
        ),
    );
    event
        .contexts
        .insert(problem.kind.tag().into(), Context::Other(details));
    let dsc = DscInput::for_trace(&finished.trace, Some(name), finished.upstream_dsc.clone());
    (Box::new(event), dsc)
}

/// At most `max` characters of `text`, with `…` when cut.
fn shortened(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((at, _)) => Cow::Owned(format!("{}…", &text[..at])),
        None => Cow::Borrowed(text),
    }
}
