//! `tracing` events as breadcrumbs, error events and structured logs, on the scope of the
//! request they ran in.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use ::tracing::{Event, Level};
use sentry_types::protocol::v7::{self as protocol, Context, LogLevel, Map, Value};

use super::fields::Fields;
use super::filter::EventFilter;
use crate::client::{Client, Job};
use crate::event::{self, Captured, Crumb, LogRecord, LoggedCrumb};
use crate::scope::{self, RequestScope};

/// Where an event goes: the request's scope (or none: the process scope), and its client.
pub(super) struct Destination<'a> {
    pub(super) scope: Option<&'a Arc<RequestScope>>,
    pub(super) client: &'a Client,
}

/// Turns one event into what `filter` asks for. The common case, a breadcrumb, moves the
/// event's message and fields into the scope without copying them or building a protocol
/// breadcrumb (that happens only if an error event carries it).
pub(super) fn handle(event: &Event<'_>, filter: EventFilter, to: Destination<'_>) {
    let metadata = event.metadata();
    let mut fields = Fields::with_room(metadata.fields().len());
    event.record(&mut fields);
    let level = *metadata.level();
    let scope = to.scope;
    if filter.contains(EventFilter::LOG) {
        log(&fields, level, metadata, &to);
    }
    let wants_event = filter.contains(EventFilter::EVENT);
    if filter.contains(EventFilter::BREADCRUMB) {
        let target = match &fields.log_target {
            Some(t) => Cow::Owned(t.clone()),
            None => Cow::Borrowed(metadata.target()),
        };
        let (message, data) = if wants_event {
            (fields.message.clone(), fields.values.clone())
        } else {
            (fields.message.take(), std::mem::take(&mut fields.values))
        };
        let message = message.unwrap_or_else(|| {
            Fields {
                values: data.clone(),
                ..Default::default()
            }
            .take_body()
        });
        let crumb = LoggedCrumb {
            timestamp: SystemTime::now(),
            level: sentry_level(level),
            target,
            message,
            data,
        };
        scope::breadcrumb_in(scope, Crumb::Logged(crumb));
    }
    if wants_event {
        let mut built = event::new_event(sentry_level(level), SystemTime::now());
        built.logger = Some(
            fields
                .log_target
                .clone()
                .unwrap_or_else(|| metadata.target().to_owned()),
        );
        match fields.error.take() {
            Some(exceptions) => {
                // The error is the title; the message says what failed.
                built.exception = exceptions.into();
                built.message = fields.message.take();
            }
            None => built.message = Some(fields.take_body()),
        }
        let location = location(
            fields.log_module.as_deref().or(metadata.module_path()),
            fields.log_file.as_deref().or(metadata.file()),
            fields.log_line.or(metadata.line().map(u64::from)),
        );
        built.extra = fields
            .values
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        if !location.is_empty() {
            built
                .contexts
                .insert("Rust Tracing Location".into(), Context::Other(location));
        }
        scope::capture_in(
            scope,
            Captured::Event(Box::new(built)),
            sentry_level(level),
            None,
        );
    }
}

fn location(module: Option<&str>, file: Option<&str>, line: Option<u64>) -> Map<String, Value> {
    let mut out = BTreeMap::new();
    if let Some(module) = module {
        out.insert("module_path".to_owned(), Value::from(module));
    }
    if let Some(file) = file {
        out.insert("file".to_owned(), Value::from(file));
    }
    if let Some(line) = line {
        out.insert("line".to_owned(), Value::from(line));
    }
    out
}

/// A structured log, with the trace and span of where it ran, its fields and its code
/// location as attributes. Built into the protocol log (and scrubbed) on the worker.
fn log(
    fields: &Fields,
    level: Level,
    metadata: &::tracing::Metadata<'static>,
    to: &Destination<'_>,
) {
    let (trace_id, span_id) = match to.scope {
        Some(scope) => (
            scope.trace.trace_id,
            Some(scope::current_span().unwrap_or(scope.trace.span_id)),
        ),
        None => (scope::process_trace_id(), scope::current_span()),
    };
    let mut attributes: Vec<(Cow<'static, str>, Value)> = fields
        .values
        .iter()
        .map(|(k, v)| (Cow::Borrowed(*k), v.clone()))
        .collect();
    let target = fields.log_target.as_deref().unwrap_or(metadata.target());
    attributes.push(("sentry.origin".into(), "auto.log.tracing".into()));
    attributes.push(("logger.name".into(), target.into()));
    if let Some(module) = fields.log_module.as_deref().or(metadata.module_path()) {
        attributes.push(("code.module.name".into(), module.into()));
    }
    if let Some(file) = fields.log_file.as_deref().or(metadata.file()) {
        attributes.push(("code.file.path".into(), file.into()));
    }
    if let Some(line) = fields.log_line.or(metadata.line().map(u64::from)) {
        attributes.push(("code.line.number".into(), line.into()));
    }
    if let Some(exceptions) = &fields.error {
        if let Some(outermost) = exceptions.last() {
            attributes.push(("exception.type".into(), outermost.ty.clone().into()));
        }
    }
    let record = LogRecord {
        timestamp: SystemTime::now(),
        level: log_level(level),
        body: match &fields.message {
            Some(message) => message.clone(),
            None => Fields {
                values: fields.values.clone(),
                ..Default::default()
            }
            .take_body(),
        },
        trace_id,
        span_id,
        attributes,
    };
    to.client.submit(Job::Log(Box::new(record)));
}

fn sentry_level(level: Level) -> protocol::Level {
    match level {
        Level::ERROR => protocol::Level::Error,
        Level::WARN => protocol::Level::Warning,
        Level::INFO => protocol::Level::Info,
        _ => protocol::Level::Debug,
    }
}

fn log_level(level: Level) -> LogLevel {
    match level {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        Level::DEBUG => LogLevel::Debug,
        _ => LogLevel::Trace,
    }
}
