//! Structured logs: what the request path keeps of a log line, the protocol `Log` built from
//! it on the worker, and the batch logs wait in for their envelope.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use sentry_types::protocol::v7::{Log, LogAttribute, LogLevel, SpanId, TraceId, Value};

/// A log line as captured where it was emitted: its fields are already values, everything
/// else (common attributes, scrubbing, batching) happens on the worker.
#[derive(Debug)]
pub(crate) struct LogRecord {
    pub(crate) timestamp: SystemTime,
    pub(crate) level: LogLevel,
    pub(crate) body: String,
    /// The trace of the request it ran in (a process-wide one outside requests).
    pub(crate) trace_id: TraceId,
    /// The span that was current where it was emitted.
    pub(crate) span_id: Option<SpanId>,
    /// Its fields, then where it came from (`code.*`), as typed attributes.
    pub(crate) attributes: Vec<(Cow<'static, str>, Value)>,
}

impl LogRecord {
    /// An estimate of the heap bytes this keeps alive, for bounding queues by memory.
    pub(crate) fn retained_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.body.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + 48 + matches!(v, Value::String(_)) as usize * 32)
                .sum::<usize>()
    }
}

/// The protocol log: the record's attributes, then `common` ones (release, environment, SDK,
/// server) where the record has none of the same name.
pub(crate) fn log_item(record: LogRecord, common: &[(&'static str, Value)]) -> Log {
    let mut attributes: BTreeMap<String, LogAttribute> = record
        .attributes
        .into_iter()
        .map(|(k, v)| (k.into_owned(), LogAttribute(v)))
        .collect();
    if let Some(span_id) = record.span_id {
        attributes.insert(
            "sentry.trace.parent_span_id".to_owned(),
            LogAttribute(Value::String(span_id.to_string())),
        );
    }
    for (key, value) in common {
        attributes
            .entry((*key).to_owned())
            .or_insert_with(|| LogAttribute(value.clone()));
    }
    Log {
        level: record.level,
        body: record.body,
        trace_id: Some(record.trace_id),
        timestamp: record.timestamp,
        severity_number: None,
        attributes,
    }
}

/// Logs per envelope at most (Relay's limit).
pub(crate) const MAX_LOGS: usize = 100;
/// How long a log may wait for its batch to fill.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(2);

/// The logs waiting to be sent, and since when: up to [`MAX_LOGS`] per envelope, sent when the
/// batch is full, when its oldest log is [`MAX_AGE`] old, and at every flush.
#[derive(Default)]
pub(crate) struct LogBatch {
    logs: Vec<Log>,
    since: Option<Instant>,
}

impl LogBatch {
    /// Adds a log; a batch it fills is taken, to be sent at once.
    pub(crate) fn push(&mut self, log: Log) -> Option<Vec<Log>> {
        self.logs.push(log);
        self.since.get_or_insert_with(Instant::now);
        (self.logs.len() >= MAX_LOGS).then(|| self.take())
    }

    /// The batch, when it is due (or at a flush), and when it will be due otherwise.
    pub(crate) fn take_due(&mut self, flush: bool) -> (Option<Vec<Log>>, Option<Instant>) {
        let Some(since) = self.since else {
            return (None, None);
        };
        if !flush && since.elapsed() < MAX_AGE {
            return (None, Some(since + MAX_AGE));
        }
        (Some(self.take()), None)
    }

    fn take(&mut self) -> Vec<Log> {
        self.since = None;
        std::mem::take(&mut self.logs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_attributes_win_over_common_ones() {
        let record = LogRecord {
            timestamp: SystemTime::now(),
            level: LogLevel::Info,
            body: "paid".into(),
            trace_id: TraceId::from([1; 16]),
            span_id: Some(SpanId::from([2; 8])),
            attributes: vec![("sentry.environment".into(), "mine".into())],
        };
        let common = [
            ("sentry.environment", Value::from("prod")),
            ("sentry.release", Value::from("api@1")),
        ];
        let log = log_item(record, &common);
        assert_eq!(log.attributes["sentry.environment"].0, "mine");
        assert_eq!(log.attributes["sentry.release"].0, "api@1");
        assert_eq!(
            log.attributes["sentry.trace.parent_span_id"].0,
            "0202020202020202"
        );
        assert_eq!(log.trace_id, Some(TraceId::from([1; 16])));
    }
}
