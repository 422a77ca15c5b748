//! Performance problems in a finished request's spans, found on the worker: N+1 queries and
//! slow database queries (see `event::performance` for the rules, after Sentry's own
//! detectors, and the event each problem becomes).

use std::time::{Duration, SystemTime};

use sentry_types::protocol::v7::SpanId;

use crate::event::performance::{Detectors, Problem, ProblemKind};
use crate::event::{Finished, SpanRecord};
use crate::util::sql;

fn is_db(span: &SpanRecord) -> bool {
    let op = span.op.as_text();
    op.starts_with("db") && !op.starts_with("db.redis") && !op.starts_with("db.connection")
}

fn took(span: &SpanRecord) -> Duration {
    span.end.duration_since(span.start).unwrap_or_default()
}

/// The problems in `finished`'s spans.
pub(super) fn find(finished: &Finished, detectors: Detectors) -> Vec<Problem> {
    let Some(spans) = finished.data.as_deref().map(|d| &d.spans[..]) else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    if let Some((repeats, total)) = detectors.n_plus_one {
        n_plus_one(spans, repeats.max(2), total, &mut problems);
    }
    if let Some(threshold) = detectors.slow_db_query {
        for span in spans.iter().filter(|s| is_db(s) && took(s) >= threshold) {
            let description = span.description.as_text();
            let is_select = description
                .trim_start()
                .get(..6)
                .is_some_and(|w| w.eq_ignore_ascii_case("select"));
            // One event per statement per request, however often it was slow.
            let key = sql::parametrized(&description);
            let seen = problems.iter().any(|p: &Problem| {
                p.kind == ProblemKind::SlowDbQuery && sql::parametrized(&p.statement) == key
            });
            if is_select && !seen {
                problems.push(Problem {
                    kind: ProblemKind::SlowDbQuery,
                    statement: description.into_owned(),
                    span: span.span_id,
                    spans: vec![span.span_id],
                    total: took(span),
                });
            }
        }
    }
    problems
}

/// Runs of the same statement among each parent's children, in the order they started.
fn n_plus_one(spans: &[SpanRecord], repeats: usize, total: Duration, out: &mut Vec<Problem>) {
    let mut parents: Vec<SpanId> = Vec::new();
    for span in spans.iter().filter(|s| is_db(s)) {
        if !parents.contains(&span.parent) {
            parents.push(span.parent);
        }
    }
    for parent in parents {
        let mut children: Vec<&SpanRecord> = spans.iter().filter(|s| s.parent == parent).collect();
        children.sort_by_key(|s| s.start);
        let mut i = 0;
        while i < children.len() {
            let first = children[i];
            let mut j = i + 1;
            if is_db(first) {
                while j < children.len()
                    && is_db(children[j])
                    && children[j].description.as_text() == first.description.as_text()
                {
                    j += 1;
                }
            }
            let run = &children[i..j];
            if run.len() >= repeats {
                let covered = union(run);
                if covered >= total {
                    out.push(Problem {
                        kind: ProblemKind::NPlusOne,
                        statement: first.description.as_text().into_owned(),
                        span: parent,
                        spans: run.iter().map(|s| s.span_id).collect(),
                        total: covered,
                    });
                }
            }
            i = j;
        }
    }
}

/// The time the spans cover together (overlaps counted once).
fn union(run: &[&SpanRecord]) -> Duration {
    let mut intervals: Vec<(SystemTime, SystemTime)> =
        run.iter().map(|s| (s.start, s.end)).collect();
    intervals.sort();
    let mut covered = Duration::ZERO;
    let mut current: Option<(SystemTime, SystemTime)> = None;
    for (start, end) in intervals {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                covered += e.duration_since(s).unwrap_or_default();
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((s, e)) = current {
        covered += e.duration_since(s).unwrap_or_default();
    }
    covered
}
