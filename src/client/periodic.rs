//! What the worker sends on its own schedule, from data the client keeps: release-health
//! aggregates every minute (and at each flush), and structured logs in batches (full, two
//! seconds old, or at a flush). Neither carries a sampling context; both obey the sink's
//! rate limits and are counted when dropped.

use std::borrow::Cow;
use std::time::{Instant, SystemTime};

use sentry_types::protocol::v7::client_report::Category;
use sentry_types::protocol::v7::{
    Envelope, EnvelopeHeaders, EnvelopeItem, SessionAggregateItem, SessionAggregates,
    SessionAttributes,
};
#[cfg(feature = "tracing")]
use sentry_types::protocol::v7::{ItemContainer, Log, Value};

use super::pipeline::Core;
#[cfg(feature = "tracing")]
use crate::event::{self, LogRecord};
#[cfg(feature = "tracing")]
use crate::scrub;

impl Core {
    /// Sends the aggregates when they are due (or at a flush); says when they are next due.
    pub(crate) fn tick_sessions(&self, flush: bool) -> Option<Instant> {
        let (due, next) = self.sessions.as_ref()?.take_due(flush);
        if let Some(aggregates) = due {
            self.send_sessions(aggregates);
        }
        Some(next)
    }

    fn send_sessions(&self, aggregates: Vec<SessionAggregateItem>) {
        let (Some(sink), Some(release)) = (self.sink.as_deref(), &self.options.release) else {
            return;
        };
        if let Some(reason) = sink.would_drop(Category::Session) {
            sink.record_discard(reason, Category::Session, 1);
            return;
        }
        let mut envelope =
            Envelope::new().with_headers(EnvelopeHeaders::new().with_sent_at(SystemTime::now()));
        envelope.add_item(EnvelopeItem::SessionAggregates(SessionAggregates {
            aggregates,
            attributes: SessionAttributes {
                release: Cow::Owned(release.clone()),
                environment: self.options.environment.clone().map(Cow::Owned),
                ip_address: None,
                user_agent: None,
            },
        }));
        self.unsampled.report_to(sink);
        sink.send(envelope);
    }

    /// Scrubs a log line, adds the common attributes and puts it in the batch; a full batch
    /// goes out at once.
    #[cfg(feature = "tracing")]
    pub(crate) fn add_log(&self, mut record: LogRecord) {
        scrub::log(&mut record, &self.options.scrub_rules);
        let log = event::log_item(record, &self.log_attributes);
        let full = self
            .logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(log);
        if let Some(logs) = full {
            self.send_logs(logs);
        }
    }

    /// Sends the batch if it is due (or at a flush); returns when it will be due.
    #[cfg(feature = "tracing")]
    pub(crate) fn tick_logs(&self, flush: bool) -> Option<Instant> {
        let (due, next) = self
            .logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_due(flush);
        if let Some(logs) = due {
            self.send_logs(logs);
        }
        next
    }

    /// One envelope of logs. It carries no sampling context: a batch mixes traces.
    #[cfg(feature = "tracing")]
    fn send_logs(&self, logs: Vec<Log>) {
        let Some(sink) = self.sink.as_deref() else {
            return;
        };
        if logs.is_empty() {
            return;
        }
        if let Some(reason) = sink.would_drop(Category::LogItem) {
            let n = u32::try_from(logs.len()).unwrap_or(u32::MAX);
            sink.record_discard(reason, Category::LogItem, n);
            return;
        }
        let mut envelope =
            Envelope::new().with_headers(EnvelopeHeaders::new().with_sent_at(SystemTime::now()));
        envelope.add_item(ItemContainer::Logs(logs));
        self.unsampled.report_to(sink);
        sink.send(envelope);
    }
}

/// What every log says about where it comes from.
#[cfg(feature = "tracing")]
pub(crate) fn log_attributes(options: &crate::options::Options) -> Vec<(&'static str, Value)> {
    let mut out = vec![
        ("sentry.sdk.name", Value::from(crate::SDK_NAME)),
        ("sentry.sdk.version", Value::from(crate::SDK_VERSION)),
    ];
    if let Some(release) = &options.release {
        out.push(("sentry.release", Value::from(release.as_str())));
    }
    if let Some(environment) = &options.environment {
        out.push(("sentry.environment", Value::from(environment.as_str())));
    }
    if let Some(server) = &options.server_name {
        out.push(("server.address", Value::from(server.as_str())));
    }
    out
}
