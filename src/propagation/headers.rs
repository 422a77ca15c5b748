//! Trace propagation headers: `sentry-trace`, W3C `traceparent`, and the `sentry-` entries of
//! `baggage` (the dynamic sampling context). Malformed values are ignored, never an error.

use http::header::HeaderName;
use sentry_types::protocol::v7::{SpanId, TraceId};

use crate::event::IncomingTrace;

pub(crate) static SENTRY_TRACE: HeaderName = HeaderName::from_static("sentry-trace");
pub(crate) static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub(crate) static BAGGAGE: HeaderName = HeaderName::from_static("baggage");

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn trace_id(s: &str) -> Option<TraceId> {
    (s.len() == 32 && is_lower_hex(s) && s.bytes().any(|b| b != b'0'))
        .then(|| s.parse().ok())
        .flatten()
}

fn span_id(s: &str) -> Option<SpanId> {
    (s.len() == 16 && is_lower_hex(s) && s.bytes().any(|b| b != b'0'))
        .then(|| s.parse().ok())
        .flatten()
}

/// `sentry-trace: <32 hex>-<16 hex>[-0|1]`.
pub(crate) fn parse_sentry_trace(value: &str) -> Option<IncomingTrace> {
    let mut parts = value.trim().split('-');
    let trace_id = trace_id(parts.next()?)?;
    let parent_span_id = span_id(parts.next()?)?;
    let sampled = match parts.next() {
        None => None,
        Some("1") => Some(true),
        Some("0") => Some(false),
        Some(_) => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(IncomingTrace {
        trace_id,
        parent_span_id,
        sampled,
        sample_rand: None,
        sample_rate: None,
    })
}

/// W3C `traceparent: 00-<32 hex>-<16 hex>-<2 hex flags>`; lower case only, as the spec requires.
pub(crate) fn parse_traceparent(value: &str) -> Option<IncomingTrace> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    if version.len() != 2 || !is_lower_hex(version) || version == "ff" {
        return None;
    }
    let trace_id = trace_id(parts.next()?)?;
    let parent_span_id = span_id(parts.next()?)?;
    let flags = parts.next()?;
    if flags.len() != 2 || !is_lower_hex(flags) {
        return None;
    }
    // Version 00 has exactly four fields; later versions may append more.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let sampled = u8::from_str_radix(flags, 16).ok()? & 1 == 1;
    Some(IncomingTrace {
        trace_id,
        parent_span_id,
        sampled: Some(sampled),
        sample_rand: None,
        sample_rate: None,
    })
}

/// `sentry-`-prefixed baggage entries as `(key without prefix, decoded value)`; other vendors'
/// entries are left out.
pub(crate) fn sentry_baggage(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for member in value.split(',') {
        // Properties after `;` are not used by Sentry.
        let member = member.split(';').next().unwrap_or("").trim();
        let Some((key, val)) = member.split_once('=') else {
            continue;
        };
        if let Some(key) = key.trim().strip_prefix("sentry-") {
            if !key.is_empty() {
                out.push((
                    key.to_owned(),
                    crate::util::percent_decode(val.trim(), false),
                ));
            }
        }
    }
    out
}

/// Builds a `baggage` value: the existing one without its `sentry-` entries, plus ours.
pub(crate) fn merge_baggage(existing: Option<&str>, ours: &[(String, String)]) -> String {
    let mut parts: Vec<String> = existing
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|m| !m.is_empty() && !m.starts_with("sentry-"))
        .map(str::to_owned)
        .collect();
    for (k, v) in ours {
        parts.push(format!("sentry-{k}={}", percent_encode(v)));
    }
    parts.join(",")
}

/// `sentry-trace`; without a decision, the trailing flag is left out (deferred).
pub(crate) fn sentry_trace_value(
    trace_id: TraceId,
    span_id: SpanId,
    sampled: Option<bool>,
) -> String {
    match sampled {
        Some(sampled) => format!("{trace_id}-{span_id}-{}", u8::from(sampled)),
        None => format!("{trace_id}-{span_id}"),
    }
}

/// `traceparent`, whose flags only say "sampled" or not.
pub(crate) fn traceparent_value(
    trace_id: TraceId,
    span_id: SpanId,
    sampled: Option<bool>,
) -> String {
    format!(
        "00-{trace_id}-{span_id}-0{}",
        u8::from(sampled == Some(true))
    )
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/' | b'@' | b':')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "771a43a4192642f0b136d5159a501700";
    const S: &str = "b0e6f15b45c36b12";

    #[test]
    fn sentry_trace_valid_forms() {
        let full = parse_sentry_trace(&format!("{T}-{S}-1")).unwrap();
        assert_eq!(full.trace_id.to_string(), T);
        assert_eq!(full.parent_span_id.to_string(), S);
        assert_eq!(full.sampled, Some(true));
        assert_eq!(
            parse_sentry_trace(&format!("{T}-{S}-0")).unwrap().sampled,
            Some(false)
        );
        // Missing flag: the downstream service decides.
        assert_eq!(
            parse_sentry_trace(&format!(" {T}-{S} ")).unwrap().sampled,
            None
        );
    }

    #[test]
    fn sentry_trace_malformed_is_ignored() {
        for bad in [
            String::new(),
            "garbage".to_owned(),
            T.to_string(),
            format!("{T}-"),
            format!("{}-{S}-1", &T[..31]),
            format!("{T}0-{S}-1"),
            format!("{T}-{}-1", &S[..15]),
            format!("{}-{S}-1", T.to_uppercase()),
            format!("{T}-{S}-2"),
            format!("{T}-{S}-1-extra"),
            format!("{}-{S}-1", "0".repeat(32)),
            format!("{T}-{}-1", "0".repeat(16)),
            format!("{}-{S}-1", "g".repeat(32)),
        ] {
            assert_eq!(parse_sentry_trace(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn traceparent_forms() {
        let tp = parse_traceparent(&format!("00-{T}-{S}-01")).unwrap();
        assert_eq!(tp.sampled, Some(true));
        assert_eq!(
            parse_traceparent(&format!("00-{T}-{S}-00"))
                .unwrap()
                .sampled,
            Some(false)
        );
        // A future version may carry more fields.
        assert!(parse_traceparent(&format!("01-{T}-{S}-01-what-ever")).is_some());
        for bad in [
            format!("00-{T}-{S}"),
            format!("00-{T}-{S}-01-extra"),
            format!("ff-{T}-{S}-01"),
            format!("00-{}-{S}-01", T.to_uppercase()),
            format!("00-{T}-{S}-1"),
            format!("0-{T}-{S}-01"),
            format!("00-{}-{S}-01", "0".repeat(32)),
            "00-garbage".to_owned(),
        ] {
            assert_eq!(parse_traceparent(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn baggage_survives_odd_percent_sequences() {
        let entries = sentry_baggage("sentry-release=%e9%,sentry-environment=%\u{e9}x,sentry-x=%4");
        assert_eq!(entries.len(), 3);
    }

    #[test]
    fn baggage_keeps_only_sentry_entries_decoded() {
        let entries = sentry_baggage(
            "other=1, sentry-trace_id=abc,sentry-release=api%401.2.3;prop=x, sentry-=x, junk, sentry-environment=prod",
        );
        assert_eq!(
            entries,
            [
                ("trace_id".to_owned(), "abc".to_owned()),
                ("release".to_owned(), "api@1.2.3".to_owned()),
                ("environment".to_owned(), "prod".to_owned()),
            ]
        );
    }

    #[test]
    fn merged_baggage_appends_and_replaces_sentry_entries() {
        let ours = vec![
            ("trace_id".to_owned(), T.to_owned()),
            ("transaction".to_owned(), "GET /users/{id}".to_owned()),
        ];
        let merged = merge_baggage(Some("vendor=a, sentry-trace_id=old"), &ours);
        assert_eq!(
            merged,
            format!("vendor=a,sentry-trace_id={T},sentry-transaction=GET%20/users/%7Bid%7D")
        );
        assert_eq!(sentry_baggage(&merged)[1].1, "GET /users/{id}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

        #[test]
        fn arbitrary_headers_never_panic(value in ".*") {
            let _ = parse_sentry_trace(&value);
            let _ = parse_traceparent(&value);
            let _ = sentry_baggage(&value);
            let _ = merge_baggage(Some(&value), &[("k".to_owned(), value.clone())]);
        }

        #[test]
        fn what_we_send_is_what_we_read(
            trace in 1u128..,
            span in 1u64..,
            sampled: Option<bool>,
            entries in proptest::collection::vec(("[a-z_]{1,12}", ".{0,24}"), 0..6),
            vendor in "[a-z]{1,6}=[a-z0-9]{0,6}",
        ) {
            let (t, s) = (TraceId::from(trace.to_be_bytes()), SpanId::from(span.to_be_bytes()));
            let parsed = parse_sentry_trace(&sentry_trace_value(t, s, sampled)).unwrap();
            proptest::prop_assert_eq!((parsed.trace_id, parsed.parent_span_id), (t, s));
            proptest::prop_assert_eq!(parsed.sampled, sampled);
            let w3c = parse_traceparent(&traceparent_value(t, s, sampled)).unwrap();
            proptest::prop_assert_eq!(w3c.sampled, Some(sampled == Some(true)));
            // Other vendors' entries stay; ours come back decoded, as they were.
            let merged = merge_baggage(Some(&vendor), &entries);
            proptest::prop_assert!(merged.starts_with(&vendor));
            proptest::prop_assert_eq!(sentry_baggage(&merged), entries);
        }
    }

    #[test]
    fn header_values_round_trip() {
        let t: TraceId = T.parse().unwrap();
        let s: SpanId = S.parse().unwrap();
        assert_eq!(
            parse_sentry_trace(&sentry_trace_value(t, s, Some(true)))
                .unwrap()
                .sampled,
            Some(true)
        );
        assert_eq!(
            parse_traceparent(&traceparent_value(t, s, Some(false)))
                .unwrap()
                .sampled,
            Some(false)
        );
    }
}
