//! Reading a `tracing` event's or span's fields: the message, the first error (with its
//! `source()` chain), the span name and op overrides, the `log` crate's own fields (through
//! `tracing-log`), and everything else as values.

use std::fmt;

use ::tracing::field::{Field, Visit};
use sentry_types::protocol::v7::{Exception, Value};

use crate::event;

/// A field naming the span's op (default: `{target}::{name}`).
pub const SPAN_OP_FIELD: &str = "sentry.op";
/// A field naming the span's description (default: the span's name).
pub const SPAN_NAME_FIELD: &str = "sentry.name";

/// What the fields said.
#[derive(Default)]
pub(super) struct Fields {
    pub(super) message: Option<String>,
    /// The first error field's exception list, outermost last.
    pub(super) error: Option<Vec<Exception>>,
    pub(super) values: Vec<(&'static str, Value)>,
    pub(super) op: Option<String>,
    pub(super) name: Option<String>,
    /// Where a `log` record (bridged by `tracing-log`) came from.
    pub(super) log_target: Option<String>,
    pub(super) log_module: Option<String>,
    pub(super) log_file: Option<String>,
    pub(super) log_line: Option<u64>,
}

impl Fields {
    /// Room for `fields` values (one of which is usually the message): one exact allocation
    /// instead of growing.
    pub(super) fn with_room(fields: usize) -> Self {
        Fields {
            values: Vec::with_capacity(fields.saturating_sub(1)),
            ..Default::default()
        }
    }

    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        // Most fields are the message or the user's own: skip the comparisons for those.
        if !matches!(name.as_bytes().first(), Some(b'm' | b's' | b'l')) {
            self.values.push((name, value));
            return;
        }
        match (name, value) {
            ("message", Value::String(s)) => self.message = Some(s),
            (SPAN_OP_FIELD, Value::String(s)) => self.op = Some(s),
            (SPAN_NAME_FIELD, Value::String(s)) => self.name = Some(s),
            ("log.target", Value::String(s)) => self.log_target = Some(s),
            ("log.module_path", Value::String(s)) => self.log_module = Some(s),
            ("log.file", Value::String(s)) => self.log_file = Some(s),
            ("log.line", Value::Number(n)) => self.log_line = n.as_u64(),
            (name, value) => self.values.push((name, value)),
        }
    }

    /// The message (taken), else the fields' values joined (an event with fields only).
    pub(super) fn take_body(&mut self) -> String {
        match self.message.take() {
            Some(message) => message,
            None => self
                .values
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.put(field, Value::String(value.to_string()));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.put(field, Value::String(value.to_string()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.error.is_none() {
            self.error = Some(event::error_chain(value, None, "tracing", true));
        } else {
            self.put(field, Value::String(value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_from_fields_alone() {
        let mut fields = Fields {
            values: vec![("user", "ann".into()), ("n", 3.into())],
            ..Default::default()
        };
        assert_eq!(fields.take_body(), "user=ann n=3");
    }
}
