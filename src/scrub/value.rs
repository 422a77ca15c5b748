//! Scrubbing structured data: maps and JSON values at any depth, breadcrumbs, messages and
//! exception values.

use std::collections::BTreeMap;

use sentry_types::protocol::v7::{Breadcrumb, Event, Value};

use super::ScrubRules;
use crate::event::FILTERED;

/// Scrubs sensitive keys (at any depth), bearer tokens and cards in free-form data.
pub(crate) fn scrub_map(map: &mut BTreeMap<String, Value>, rules: &ScrubRules) {
    for (key, value) in map.iter_mut() {
        if rules.is_sensitive_key(key) {
            *value = Value::String(FILTERED.to_owned());
        } else {
            scrub_value(value, rules);
        }
    }
}

/// Scrubs a JSON value at any depth; true when anything in it changed.
pub(crate) fn scrub_value(value: &mut Value, rules: &ScrubRules) -> bool {
    match value {
        Value::String(s) => rules.scrub_string(s),
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, v| scrub_value(v, rules) | changed),
        Value::Object(obj) => {
            let mut changed = false;
            for (key, v) in obj.iter_mut() {
                if rules.is_sensitive_key(key) {
                    if v.as_str() != Some(FILTERED) {
                        *v = Value::String(FILTERED.to_owned());
                        changed = true;
                    }
                } else {
                    changed |= scrub_value(v, rules);
                }
            }
            changed
        }
        _ => false,
    }
}

/// Breadcrumb data and messages are free-form: scrub them like any other data.
pub(crate) fn scrub_breadcrumb(crumb: &mut Breadcrumb, rules: &ScrubRules) {
    scrub_map(&mut crumb.data, rules);
    if let Some(message) = crumb.message.as_mut() {
        rules.scrub_string(message);
    }
}

/// Messages and exception values can quote secrets too (an error that prints a card number).
pub(crate) fn scrub_messages(event: &mut Event<'static>, rules: &ScrubRules) {
    if let Some(message) = event.message.as_mut() {
        rules.scrub_string(message);
    }
    for exception in event.exception.values.iter_mut() {
        if let Some(value) = exception.value.as_mut() {
            rules.scrub_string(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ScrubRules {
        ScrubRules::default()
    }

    #[test]
    fn nested_data_is_scrubbed() {
        let mut map = BTreeMap::new();
        map.insert(
            "payload".to_owned(),
            serde_json::json!({"user": {"password": "p", "name": "ann"}, "list": [{"token": "t"}]}),
        );
        map.insert("amount".to_owned(), serde_json::json!(29.99));
        scrub_map(&mut map, &rules());
        assert_eq!(map["payload"]["user"]["password"], FILTERED);
        assert_eq!(map["payload"]["user"]["name"], "ann");
        assert_eq!(map["payload"]["list"][0]["token"], FILTERED);
        assert_eq!(map["amount"], 29.99);
    }
}
