//! `tracing` spans as child spans of the request's transaction.
//!
//! A span is recorded only when it is created inside a sampled request (or under a span that
//! is): the record lives in the span's extensions in the registry. Entering a recorded span
//! makes it the current span of the code running (a swap of one thread-local), so lighttrace's
//! own spans and `send_traced` calls nest under it; entering a span without a record costs a
//! registry lookup and nothing else.

use std::sync::{Arc, Mutex};

use ::tracing::span::{Attributes, Id, Record};
use sentry_types::protocol::v7::SpanId;
use tracing_subscriber::registry::LookupSpan;

use super::fields::Fields;
use crate::event::SpanText;
use crate::scope::{self, RequestScope, Running, SharedSpan};

/// The span's own current span (itself, or a guard opened inside it and still open), and what
/// was current outside each enter that has not exited yet: entering swaps the inner one in,
/// exiting swaps it back out, as an `in_span` future does around each poll.
struct CurrentSwap {
    inner: Option<SpanId>,
    /// Enters not yet exited, innermost last (a span is rarely entered twice at once: a few
    /// slots, no allocation).
    outer: [Option<SpanId>; 4],
    depth: usize,
}

/// What lighttrace keeps in a recorded span's extensions.
pub(super) struct SpanState {
    /// Shared with the request's scope, which ends it with the request if its close comes late.
    span: Arc<SharedSpan>,
    id: SpanId,
    scope: Arc<RequestScope>,
    /// What is current inside the span and outside it, swapped on enter and exit.
    current: Mutex<CurrentSwap>,
    /// The span was named with `sentry.op` or `sentry.name`: OpenTelemetry's conventions do not
    /// rename it.
    named: bool,
}

impl SpanState {
    pub(super) fn scope(&self) -> &Arc<RequestScope> {
        &self.scope
    }

    pub(super) fn id(&self) -> SpanId {
        self.id
    }
}

/// Records a new span if it belongs to a sampled request: the request current on this thread,
/// or, in work spawned with the span (`.instrument(span)`), the request its parent belongs to.
pub(super) fn on_new_span<'a, S>(
    span: &tracing_subscriber::registry::SpanRef<'a, S>,
    attrs: &Attributes<'_>,
) where
    S: LookupSpan<'a>,
{
    // The request the span's parent belongs to (a recorded span, or a request's own span).
    let parent_record = || span.parent().and_then(super::requests::request_of);
    // Borrowed first: an unsampled request's spans cost no reference count.
    let recording = scope::with_current_ref(|scope| scope.records_spans().then(|| scope.clone()));
    let (scope, parent) = match recording {
        Some(None) => return,
        Some(Some(scope)) => {
            // An explicit parent of the same request wins; otherwise whatever is current
            // here (a `tracing` span entered, an `in_span` future, a guard), else the root.
            let explicit = if attrs.is_contextual() {
                None
            } else {
                parent_record()
                    .filter(|(s, _)| Arc::ptr_eq(s, &scope))
                    .map(|(_, id)| id)
            };
            let parent = explicit
                .or_else(scope::current_span)
                .unwrap_or(scope.trace.span_id);
            (scope, parent)
        }
        None => match parent_record() {
            Some(found) => found,
            None => return,
        },
    };
    let mut fields = Fields::with_room(attrs.metadata().fields().len());
    attrs.record(&mut fields);
    let metadata = attrs.metadata();
    let named = fields.op.is_some() || fields.name.is_some();
    // Borrowed: joined and copied only if the span is ever sent.
    let op = match fields.op.take() {
        Some(op) => SpanText::Owned(op),
        None => SpanText::Path(metadata.target(), metadata.name()),
    };
    let description = match fields.name.take() {
        Some(name) => SpanText::Owned(name),
        None => SpanText::Borrowed(metadata.name()),
    };
    let Some(mut running) = Running::start_in(&scope, parent, op, description) else {
        return;
    };
    for (key, value) in fields.values {
        running.set_data(key, value);
    }
    if !named {
        super::otel::rename(&mut running);
    }
    let Some(id) = running.id() else {
        return;
    };
    // Fields recorded since (the response's status) can change what it is, when it ends.
    let on_end = (!named).then_some(rename_and_set_status as fn(&mut Running));
    span.extensions_mut().insert(SpanState {
        span: SharedSpan::new(running, on_end),
        id,
        scope,
        current: Mutex::new(CurrentSwap {
            inner: Some(id),
            outer: [None; 4],
            depth: 0,
        }),
        named,
    });
}

/// Fields recorded after the span was created become span data too (and `sentry.op` or
/// `sentry.name` rename it).
pub(super) fn on_record<'a, S>(
    span: &tracing_subscriber::registry::SpanRef<'a, S>,
    values: &Record<'_>,
) where
    S: LookupSpan<'a>,
{
    let mut extensions = span.extensions_mut();
    let Some(record) = extensions.get_mut::<SpanState>() else {
        return;
    };
    let mut fields = Fields::default();
    values.record(&mut fields);
    if fields.op.is_some() || fields.name.is_some() {
        record.named = true;
        record.span.keep_names();
    }
    record.span.with(|running| {
        running.rename(fields.op.take(), fields.name.take());
        for (key, value) in fields.values {
            running.set_data(key, value);
        }
    });
}

/// Makes a recorded span (or what was opened in it and is still open) current while it is
/// entered.
pub(super) fn on_enter<'a, S>(span: &tracing_subscriber::registry::SpanRef<'a, S>)
where
    S: LookupSpan<'a>,
{
    if let Some(record) = span.extensions().get::<SpanState>() {
        let mut swap = record.current.lock().unwrap_or_else(|e| e.into_inner());
        let outer = scope::replace_span(swap.inner);
        let depth = swap.depth;
        if let Some(slot) = swap.outer.get_mut(depth) {
            *slot = outer;
        }
        // Deeper than the slots: the outermost is restored at the last exit instead.
        swap.depth = depth + 1;
        drop(swap);
        record.span.enter();
    }
}

/// Restores what was current before the enter, keeping what is current inside for the next.
pub(super) fn on_exit<'a, S>(span: &tracing_subscriber::registry::SpanRef<'a, S>)
where
    S: LookupSpan<'a>,
{
    if let Some(record) = span.extensions().get::<SpanState>() {
        let mut swap = record.current.lock().unwrap_or_else(|e| e.into_inner());
        if swap.depth > 0 {
            swap.depth -= 1;
            let slot = swap.depth.min(swap.outer.len() - 1);
            let outer = swap.outer[slot];
            swap.inner = scope::replace_span(outer);
        }
        drop(swap);
        record.span.exit();
    }
}

/// The span ends when it closes (its duration is creation to close, whatever it was entered),
/// or with its request if that comes first (see `scope::SharedSpan`).
pub(super) fn on_close<'a, S>(span: &tracing_subscriber::registry::SpanRef<'a, S>, _id: &Id)
where
    S: LookupSpan<'a>,
{
    if let Some(record) = span.extensions_mut().remove::<SpanState>() {
        record.span.close();
    }
}

/// OpenTelemetry's conventions applied to a span that was not named explicitly, when it ends.
fn rename_and_set_status(running: &mut Running) {
    super::otel::rename(running);
    super::otel::set_status(running);
}
