//! Privacy: client-side scrubbing, applied to every event and transaction before any user hook
//! sees it.
//!
//! The default rules are at least as strict as Relay's server-side defaults, so nothing that
//! Sentry would strip on arrival leaves the process in the first place. Here are the rules
//! ([`ScrubRules`], their pattern search in `patterns`), the scrubbers of text, values and the
//! parts of a request, the header-name verdict cache (`names`), and the one scrubbed `request`
//! interface (`interface`) that both events and the wire's transactions are built from.

pub(crate) mod interface;
pub(crate) mod names;
mod patterns;
mod request;
mod rules;
mod text;
mod value;

use sentry_types::protocol::v7::{Event, Transaction};

pub(crate) use names::HeaderNames;
pub(crate) use request::{
    is_ip_header, query_without_secrets, scrub_body, scrub_cookies, scrub_query, scrub_request,
};
pub use rules::ScrubRules;
pub(crate) use value::{scrub_map, scrub_value};

/// Scrubs everything in an event that could carry a secret the user did not set explicitly,
/// but its `request` interface: built scrubbed from the request ([`interface`]), or, in an
/// event the user built, scrubbed with [`scrub_request`] before it is assembled.
pub(crate) fn event(event: &mut Event<'static>, rules: &ScrubRules) {
    value::scrub_map(&mut event.extra, rules);
    for crumb in event.breadcrumbs.values.iter_mut() {
        value::scrub_breadcrumb(crumb, rules);
    }
    if let Some(user) = event.user.as_mut() {
        value::scrub_map(&mut user.other, rules);
    }
    value::scrub_messages(event, rules);
}

/// Scrubs everything in a transaction that could carry a secret the user did not set
/// explicitly, but its `request` interface, built scrubbed ([`interface`]).
pub(crate) fn transaction(tx: &mut Transaction<'static>, rules: &ScrubRules) {
    value::scrub_map(&mut tx.extra, rules);
    if let Some(user) = tx.user.as_mut() {
        value::scrub_map(&mut user.other, rules);
    }
    for span in tx.spans.iter_mut() {
        value::scrub_map(&mut span.data, rules);
        if let Some(description) = span.description.as_mut() {
            rules.scrub_string(description);
        }
    }
}

/// Scrubs a log line: its body as text, its attributes as data.
#[cfg(feature = "tracing")]
pub(crate) fn log(record: &mut crate::event::LogRecord, rules: &ScrubRules) {
    use sentry_types::protocol::v7::Value;
    rules.scrub_string(&mut record.body);
    for (key, value) in record.attributes.iter_mut() {
        if rules.is_sensitive_key(key) {
            *value = Value::String(crate::event::FILTERED.to_owned());
        } else {
            value::scrub_value(value, rules);
        }
    }
}
