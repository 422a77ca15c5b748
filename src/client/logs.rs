//! Structured logs, batched across requests on the worker: up to 100 per envelope, sent when a
//! batch is full, when its oldest log is [`MAX_AGE`] old, and at every flush.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use sentry_types::protocol::v7::client_report::Category;
use sentry_types::protocol::v7::{Envelope, EnvelopeHeaders, ItemContainer, Log, Value};

use super::prepare::Core;
use crate::event::{self, LogRecord};
use crate::scrub;

/// Logs per envelope at most (Relay's limit).
pub(crate) const MAX_LOGS: usize = 100;
/// How long a log may wait for its batch to fill.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(2);

/// The logs waiting to be sent, and since when.
#[derive(Default)]
pub(crate) struct LogBatch {
    logs: Vec<Log>,
    since: Option<Instant>,
    /// Attributes every log carries, made once from the options.
    common: OnceLock<Vec<(&'static str, Value)>>,
}

impl Core {
    /// Scrubs a log line, adds the common attributes and puts it in the batch; a full batch
    /// goes out at once.
    pub(crate) fn add_log(&self, mut record: LogRecord) {
        let options = &self.options;
        scrub::log(&mut record, &options.scrub_rules);
        let common = self
            .logs_lock()
            .common
            .get_or_init(|| common_attributes(options))
            .clone();
        let log = event::log_item(record, &common);
        let full = {
            let mut batch = self.logs_lock();
            batch.logs.push(log);
            batch.since.get_or_insert_with(Instant::now);
            (batch.logs.len() >= MAX_LOGS).then(|| take(&mut batch))
        };
        if let Some(logs) = full {
            self.send_logs(logs);
        }
    }

    /// Sends the batch if it is due (or `now` is a flush); returns when it will be due.
    pub(crate) fn tick_logs(&self, flush: bool) -> Option<Instant> {
        let due = {
            let mut batch = self.logs_lock();
            let since = batch.since?;
            if !flush && since.elapsed() < MAX_AGE {
                return Some(since + MAX_AGE);
            }
            take(&mut batch)
        };
        self.send_logs(due);
        None
    }

    fn logs_lock(&self) -> std::sync::MutexGuard<'_, LogBatch> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One envelope of logs. It carries no sampling context: a batch mixes traces.
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

fn take(batch: &mut LogBatch) -> Vec<Log> {
    batch.since = None;
    std::mem::take(&mut batch.logs)
}

/// What every log says about where it comes from.
fn common_attributes(options: &crate::options::Options) -> Vec<(&'static str, Value)> {
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

/// Mutex-wrapped for the core.
pub(crate) type Logs = Mutex<LogBatch>;
