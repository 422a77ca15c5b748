//! A transaction's child spans, as the direct writer writes them: each one's description and
//! data scrubbed.

use sentry_types::protocol::v7::Value;

use super::json::{self, rfc3339, string, Object};
use super::{hex, Facts};
use crate::event::{SpanRecord, SpanText, FILTERED};
use crate::scrub::{self, ScrubRules};

/// One child span, its description and data scrubbed.
pub(super) fn write_span(
    out: &mut Vec<u8>,
    span: &SpanRecord,
    facts: &Facts,
    rules: &ScrubRules,
    scratch: &mut String,
) {
    let mut object = Object::new(out);
    object.plain("span_id", &hex::span_id(span.span_id));
    object.plain("trace_id", &facts.trace_id);
    if span.parent == facts.root {
        object.plain("parent_span_id", &facts.span_id);
    } else {
        object.plain("parent_span_id", &hex::span_id(span.parent));
    }
    write_text(object.field("op"), &span.op, None, scratch);
    write_text(
        object.field("description"),
        &span.description,
        Some(rules),
        scratch,
    );
    rfc3339(object.field("timestamp"), span.end);
    rfc3339(object.field("start_timestamp"), span.start);
    object.json("status", &span.status);
    if !span.data.is_empty() || span.db.is_some() {
        let mut data = Object::new(object.field("data"));
        let facts = span
            .db
            .as_ref()
            .map(|db| db.data(&span.description.as_text()))
            .unwrap_or_default();
        // The facts first, unless the span's own data has the key (it wins, as in the
        // struct's map); a key set twice keeps its last value.
        let facts = facts
            .iter()
            .filter(|(key, _)| !span.data.iter().any(|(k, _)| k == key))
            .map(|(key, value)| (*key, value));
        let own = span
            .data
            .iter()
            .enumerate()
            .filter(|(i, (key, _))| !span.data[i + 1..].iter().any(|(k, _)| k == key))
            .map(|(_, (key, value))| (key.as_ref(), value));
        for (key, value) in facts.chain(own) {
            let out = data.key(key);
            if rules.is_sensitive_key(key) {
                string(out, FILTERED);
                continue;
            }
            match value {
                Value::String(s) => match rules.scrub_text(s) {
                    Some(clean) => string(out, &clean),
                    None => string(out, s),
                },
                Value::Array(_) | Value::Object(_) => {
                    let mut value = value.clone();
                    scrub::scrub_value(&mut value, rules);
                    json::serde_json_value::Json::write(&value, out);
                }
                _ => json::serde_json_value::Json::write(value, out),
            }
        }
        data.end();
    }
    object.end();
}

/// A span's op or description as a JSON string, scrubbed when `rules` are given.
pub(super) fn write_text(
    out: &mut Vec<u8>,
    text: &SpanText,
    rules: Option<&ScrubRules>,
    scratch: &mut String,
) {
    let text: &str = match text {
        SpanText::Borrowed(s) => s,
        SpanText::Owned(s) => s,
        SpanText::Path(a, b) => {
            scratch.clear();
            scratch.push_str(a);
            scratch.push_str("::");
            scratch.push_str(b);
            scratch
        }
    };
    match rules.and_then(|r| r.scrub_text(text)) {
        Some(clean) => string(out, &clean),
        None => string(out, text),
    }
}
