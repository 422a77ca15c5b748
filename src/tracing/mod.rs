//! The `tracing` integration (feature `tracing`): breadcrumbs, error events, spans and
//! structured logs from the instrumentation a service already has.
//!
//! ```
//! use tracing_subscriber::prelude::*;
//!
//! tracing_subscriber::registry()
//!     .with(lighttrace::tracing::layer())
//!     .init();
//! ```
//!
//! With the layer installed:
//!
//! - **Events become what they mean**, in the scope of the request they ran in (outside
//!   requests, the process-wide scope of the [global client](crate::Client::install_global)):
//!   `ERROR` an error event, `WARN` and `INFO` breadcrumbs, `DEBUG` and `TRACE` nothing. A
//!   closure over the event's metadata can decide otherwise ([`TracingLayer::event_filter`]).
//!   `error!(error = &e as &dyn std::error::Error, "payment failed")` gives an exception list
//!   from `e` and its `source()` chain, with the message beside it; other fields become the
//!   event's data, the target its logger, the file and line its `Rust Tracing Location`
//!   context. Fields are scrubbed like everything else.
//! - **Spans become spans.** A span created inside a sampled request (`#[instrument]` on a
//!   handler's helpers, or work spawned with `.instrument(span)`) becomes a child span of the
//!   request's transaction, nested as `tracing` nests them; its fields become span data. Its
//!   op is `{target}::{name}` and its description its name, unless the span has a
//!   `sentry.op` or `sentry.name` field ([`SPAN_OP_FIELD`], [`SPAN_NAME_FIELD`]). It lasts from
//!   creation to close, however often it was entered. Outside a request, or in an unsampled
//!   one, spans record nothing.
//! - **Structured logs**, when turned on with [`TracingLayer::logs`]: events at or above a
//!   level are also sent as Sentry logs, with the trace and span of the request they ran in,
//!   batched across requests (up to 100 per envelope, sent within 2 seconds and at every
//!   flush).
//!
//! It works beside `fmt::layer()` and `EnvFilter`, and with the `log` crate through
//! `tracing-log`'s `LogTracer`. To print the request's trace id on each local log line, open a
//! span with it for every request inside the tracking layer, for instance with tower-http's
//! `TraceLayer`:
//!
//! ```ignore
//! .layer(TraceLayer::new_for_http().make_span_with(|_: &http::Request<_>| {
//!     tracing::info_span!("request", trace_id = lighttrace::current_trace_id().unwrap_or_default())
//! }))
//! .layer(TrackingLayer::from_env()?) // outermost: its scope is current when the span is made
//! ```

mod events;
mod fields;
mod filter;
mod otel;
mod requests;
mod spans;
mod sqlx;

use std::fmt;
use std::sync::Arc;

use ::tracing::span::{Attributes, Id, Record};
use ::tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

pub use fields::{SPAN_NAME_FIELD, SPAN_OP_FIELD};
pub use filter::{default_event_filter, default_span_filter, EventFilter};

use crate::client::Client;
use crate::scope;

type EventFilterFn = dyn Fn(&Metadata<'_>) -> EventFilter + Send + Sync;
type SpanFilterFn = dyn Fn(&Metadata<'_>) -> bool + Send + Sync;

/// The `tracing_subscriber::Layer` that feeds lighttrace; see the [module docs](self).
#[derive(Clone)]
#[must_use]
pub struct TracingLayer {
    event_filter: Arc<EventFilterFn>,
    span_filter: Arc<SpanFilterFn>,
    logs: Option<Level>,
    db_system: Option<Arc<str>>,
}

/// The layer with its defaults: `ERROR` → error event, `WARN`/`INFO` → breadcrumb, spans at
/// `INFO` and above, no structured logs.
///
/// ```
/// use tracing_subscriber::prelude::*;
///
/// let subscriber = tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer())
///     .with(lighttrace::tracing::layer().logs(tracing::Level::INFO));
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(order = 42, "order placed");
/// });
/// ```
pub fn layer() -> TracingLayer {
    TracingLayer {
        event_filter: Arc::new(default_event_filter),
        span_filter: Arc::new(default_span_filter),
        logs: None,
        db_system: None,
    }
}

impl Default for TracingLayer {
    fn default() -> Self {
        layer()
    }
}

impl fmt::Debug for TracingLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracingLayer")
            .field("logs", &self.logs)
            .finish_non_exhaustive()
    }
}

impl TracingLayer {
    /// Decides per event what it becomes (one or several of [`EventFilter`]'s kinds). It runs
    /// on every event the subscriber lets through, so keep it cheap.
    ///
    /// ```
    /// use lighttrace::tracing::{default_event_filter, EventFilter};
    ///
    /// let layer = lighttrace::tracing::layer().event_filter(|meta| match meta.target() {
    ///     // Payment warnings are worth an issue each.
    ///     "payments" if *meta.level() == tracing::Level::WARN => EventFilter::EVENT,
    ///     _ => default_event_filter(meta),
    /// });
    /// ```
    pub fn event_filter<F>(mut self, filter: F) -> Self
    where
        F: Fn(&Metadata<'_>) -> EventFilter + Send + Sync + 'static,
    {
        self.event_filter = Arc::new(filter);
        self
    }

    /// Decides which spans become spans of the request's transaction (default:
    /// [`default_span_filter`], `INFO` and above).
    ///
    /// ```
    /// let layer = lighttrace::tracing::layer().span_filter(|meta| meta.target().starts_with("myapp"));
    /// ```
    pub fn span_filter<F>(mut self, filter: F) -> Self
    where
        F: Fn(&Metadata<'_>) -> bool + Send + Sync + 'static,
    {
        self.span_filter = Arc::new(filter);
        self
    }

    /// Also sends events at `level` or above as Sentry structured logs (off by default),
    /// besides what the event filter makes of them.
    ///
    /// ```
    /// let layer = lighttrace::tracing::layer().logs(tracing::Level::INFO);
    /// ```
    pub fn logs(mut self, level: Level) -> Self {
        self.logs = Some(level);
        self
    }

    /// The database system sqlx's statements run on (`db.system`, in OpenTelemetry's names:
    /// `postgresql`, `mysql`, `sqlite`, ...). sqlx does not say: without this, statements
    /// SQLite runs are `sqlite`, those with `$1` placeholders `postgresql`, and the others
    /// `other_sql`.
    ///
    /// ```
    /// let layer = lighttrace::tracing::layer().db_system("mysql");
    /// ```
    pub fn db_system(mut self, system: impl Into<String>) -> Self {
        self.db_system = Some(system.into().into());
        self
    }

    /// A sqlx statement event becomes a `db` span of the request it ran for: the request
    /// current on this thread (an async driver runs it in the request's task), else the one
    /// whose span was current where the query was made (SQLite's worker thread enters the
    /// caller's span).
    fn statement<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let system = self.db_system.as_ref();
        let here = scope::with_current_ref(|scope| {
            if scope.records_spans() {
                let parent = scope::current_span().unwrap_or(scope.trace.span_id);
                sqlx::record(event, scope, parent, system);
            }
        });
        if here.is_some() {
            return;
        }
        if let Some((scope, parent)) = ctx.event_span(event).and_then(requests::request_of) {
            if scope.records_spans() {
                sqlx::record(event, &scope, parent, system);
            }
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for TracingLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if requests::is_request_span(attrs.metadata()) {
            if let Some(span) = ctx.span(id) {
                requests::on_new_request_span(&span);
            }
            return;
        }
        if crate::util::internal::is_internal_thread() || !(self.span_filter)(attrs.metadata()) {
            return;
        }
        if let Some(span) = ctx.span(id) {
            spans::on_new_span(&span, attrs);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            spans::on_record(&span, values);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            spans::on_enter(&span);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            spans::on_exit(&span);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            spans::on_close(&span, &id);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if crate::util::internal::is_internal_thread() {
            return;
        }
        let metadata = event.metadata();
        if sqlx::is_statement(metadata) {
            self.statement(event, &ctx);
        }
        let mut filter = (self.event_filter)(metadata);
        if self.logs.is_some_and(|min| *metadata.level() <= min) {
            filter |= EventFilter::LOG;
        } else if self.logs.is_none() {
            // Logs are off: a filter asking for them gets none.
            filter = filter.without(EventFilter::LOG);
        }
        if filter.is_ignore() {
            return;
        }
        // The request this runs in (borrowed: no reference count per event).
        let handled = scope::with_current_ref(|scope| {
            if scope.client.is_enabled() {
                let to = events::Destination {
                    scope: Some(scope),
                    client: &scope.client,
                };
                events::handle(event, filter, to);
            }
        });
        if handled.is_some() {
            return;
        }
        // In work spawned with a span of a request: that request. Else the process.
        let scope = ctx
            .event_span(event)
            .and_then(requests::request_of)
            .map(|(scope, _)| scope);
        let client = match &scope {
            Some(scope) => scope.client.clone(),
            None => match Client::global() {
                Some(client) => client,
                None => return,
            },
        };
        if client.is_enabled() {
            let to = events::Destination {
                scope: scope.as_ref(),
                client: &client,
            };
            events::handle(event, filter, to);
        }
    }
}
