//! Continuing an incoming trace: the trace headers of a request, and the sampling context an
//! upstream service froze in its `baggage`.

use http::header::{HeaderMap, HeaderName};
use sentry_types::protocol::v7::DynamicSamplingContext;

use super::headers::{self as propagation, BAGGAGE, SENTRY_TRACE, TRACEPARENT};
use crate::event::{sample_rand_within, IncomingTrace};

/// Whether `name` is one of the headers an incoming trace is read from (`baggage` alone does
/// not continue a trace). Lets the layer skip [`incoming_trace`]'s lookups for requests that
/// carry neither, noticed while it copies the headers anyway.
pub(crate) fn is_trace_header(name: &HeaderName) -> bool {
    name == SENTRY_TRACE || name == TRACEPARENT
}

/// The trace an incoming request continues (`sentry-trace`, else `traceparent`), and the sampling
/// context an upstream service froze in `baggage`. Malformed headers are ignored, and so is a
/// trace of another Sentry organization (see
/// [`strict_trace_continuation`](crate::Options::strict_trace_continuation)).
///
/// The trace's `sample_rand` is `baggage`'s when valid, else made up as Sentry's developer
/// documentation says ("Traces", "Propagated Random Value"): in `[0, rate)` when the upstream
/// sampled the trace at `rate`, in `[rate, 1)` when it did not, in `[0, 1)` when either is
/// unknown. A made-up value is also written into the forwarded sampling context, so that the
/// services downstream decide with it too.
pub(crate) fn incoming_trace(
    headers: &HeaderMap,
    options: &crate::options::Options,
) -> Option<(IncomingTrace, Option<Box<DynamicSamplingContext>>)> {
    // Constant names: looking up a `&str` would parse the name on every request.
    let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let incoming = text(&SENTRY_TRACE)
        .and_then(propagation::parse_sentry_trace)
        .or_else(|| text(&TRACEPARENT).and_then(propagation::parse_traceparent))?;
    let mut incoming = incoming;
    let mut entries: Vec<(String, String)> = headers
        .get_all(&BAGGAGE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(propagation::sentry_baggage)
        .collect();
    let org = entries
        .iter()
        .find(|(k, _)| k == "org_id")
        .map(|(_, v)| v.trim().parse::<u64>().ok());
    // An org id that does not parse is an org id that does not match.
    let org = match org {
        Some(Some(id)) => Some(id),
        Some(None) => Some(u64::MAX),
        None => None,
    };
    if !options.continues_trace_of(org) {
        return None;
    }
    fill_sample_rand(&mut incoming, &mut entries);
    let upstream = upstream_dsc(&entries, &incoming).map(Box::new);
    Some((incoming, upstream))
}

/// Reads (or makes up) the trace's `sample_rand` and the upstream rate from the `baggage`
/// entries, unless they belong to another trace; an invalid `sample_rand` (not a number in
/// `[0, 1)`) is replaced, as sentry-python does, rather than failing the whole context.
fn fill_sample_rand(incoming: &mut IncomingTrace, entries: &mut Vec<(String, String)>) {
    let value = |key: &str| entries.iter().position(|(k, _)| k == key);
    let other_trace =
        value("trace_id").is_some_and(|i| entries[i].1.trim() != incoming.trace_id.to_string());
    let number = |i: Option<usize>| {
        i.and_then(|i| entries[i].1.trim().parse::<f64>().ok())
            .filter(|v| (0.0..=1.0).contains(v))
    };
    let rand_at = value("sample_rand");
    let forwardable = value("trace_id").is_some() && value("public_key").is_some();
    let (rate, rand) = match other_trace {
        true => (None, None),
        false => (
            number(value("sample_rate")),
            number(rand_at).filter(|v| *v < 1.0),
        ),
    };
    incoming.sample_rate = rate;
    let rand = rand.unwrap_or_else(|| {
        let (lower, upper) = match (incoming.sampled, rate) {
            (Some(true), Some(rate)) => (0.0, rate),
            (Some(false), Some(rate)) => (rate, 1.0),
            _ => (0.0, 1.0),
        };
        let made_up = sample_rand_within(incoming.trace_id, lower, upper);
        // Written into the entries only where they make a sampling context to forward.
        if !other_trace && forwardable {
            let text = format!("{made_up:.6}");
            match rand_at {
                Some(i) => entries[i].1 = text,
                None => entries.push(("sample_rand".to_owned(), text)),
            }
        }
        made_up
    });
    incoming.sample_rand = Some(rand);
}

/// The upstream sampling context, when it is complete enough for Relay (trace id and public
/// key) and belongs to the same trace.
fn upstream_dsc(
    entries: &[(String, String)],
    incoming: &IncomingTrace,
) -> Option<DynamicSamplingContext> {
    if entries.is_empty() {
        return None;
    }
    let object: serde_json::Map<String, serde_json::Value> = entries
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let trace_id = object.get("trace_id")?.as_str()?;
    object.get("public_key")?;
    if trace_id != incoming.trace_id.to_string() {
        return None;
    }
    serde_json::from_value(serde_json::Value::Object(object)).ok()
}
