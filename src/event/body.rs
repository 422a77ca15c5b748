//! What the request path keeps of a request body: the first bytes, for error events.

use std::sync::Mutex;

/// The kinds of body worth showing in an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Json,
    Form,
    Text,
}

impl BodyKind {
    /// From a `Content-Type` value; other types (binary uploads, multipart) are not captured.
    pub(crate) fn from_content_type(value: &str) -> Option<BodyKind> {
        let essence = value.split(';').next().unwrap_or("").trim();
        let ends_with = |suffix: &str| {
            essence.len() >= suffix.len()
                && essence.as_bytes()[essence.len() - suffix.len()..]
                    .eq_ignore_ascii_case(suffix.as_bytes())
        };
        let starts_with = |prefix: &str| {
            essence.len() >= prefix.len()
                && essence.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        };
        if essence.eq_ignore_ascii_case("application/json") || ends_with("+json") {
            Some(BodyKind::Json)
        } else if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            Some(BodyKind::Form)
        } else if starts_with("text/") {
            Some(BodyKind::Text)
        } else {
            None
        }
    }
}

/// The first `limit` bytes of a body as the handler read it, and how long it was in all.
#[derive(Debug)]
pub(crate) struct BodyCapture {
    kind: BodyKind,
    limit: usize,
    state: Mutex<(Vec<u8>, u64)>,
    /// Set when a frame's bytes could not all be copied (a buffer of many chunks): the
    /// capture has a gap, so only a summary can be shown.
    gap: std::sync::atomic::AtomicBool,
}

impl BodyCapture {
    pub(crate) fn new(kind: BodyKind, limit: usize) -> Self {
        BodyCapture {
            kind,
            limit,
            state: Mutex::new((Vec::new(), 0)),
            gap: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The bytes kept so far, plus the buffer's bookkeeping.
    pub(crate) fn retained_bytes(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0.capacity() + 64
    }

    /// Records a frame of `total_len` bytes given as its contiguous `chunks`.
    pub(crate) fn record(&self, chunks: &[&[u8]], total_len: usize) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (buf, total) = &mut *state;
        let room_before = self.limit.saturating_sub(buf.len());
        let seen: usize = chunks.iter().map(|c| c.len()).sum();
        for chunk in chunks {
            let room = self.limit.saturating_sub(buf.len());
            if room == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        // Bytes of this frame we were not shown, while there was still room for them.
        if seen < total_len && seen < room_before {
            self.gap.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        *total = total.saturating_add(total_len as u64);
    }

    /// The body for the `request.data` field: the text when it was read whole, a prefix of
    /// form and text bodies over the limit, and a one-line summary otherwise (a cut JSON
    /// document cannot be scrubbed reliably, and bytes that are not UTF-8 are not shown).
    pub(crate) fn data(&self) -> Option<String> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (buf, total) = &*state;
        if *total == 0 {
            return None;
        }
        if self.gap.load(std::sync::atomic::Ordering::Relaxed) {
            return Some(summary("body that could not be copied whole", *total));
        }
        let truncated = *total > buf.len() as u64;
        let Ok(text) = std::str::from_utf8(buf) else {
            // A cut can split a character: keep the valid part of a truncated text body.
            return match (
                truncated,
                self.kind,
                std::str::from_utf8(&buf[..valid_prefix(buf)]),
            ) {
                (true, BodyKind::Text | BodyKind::Form, Ok(prefix)) if !prefix.is_empty() => {
                    Some(self.prefix(prefix, *total))
                }
                _ => Some(summary("body that is not UTF-8", *total)),
            };
        };
        match (truncated, self.kind) {
            (false, _) => Some(text.to_owned()),
            (true, BodyKind::Json) => Some(summary("JSON body over the capture limit", *total)),
            (true, _) => Some(self.prefix(text, *total)),
        }
    }

    fn prefix(&self, text: &str, total: u64) -> String {
        let text = match self.kind {
            // Only whole `key=value` pairs, so a cut cannot turn a secret into an innocent key.
            BodyKind::Form => text.rsplit_once('&').map_or("", |(head, _)| head),
            _ => text,
        };
        format!("{text}{TRUNCATED_MARK}{total} bytes in all]")
    }
}

/// Marks a body shown only in part.
pub(crate) const TRUNCATED_MARK: &str = " [lighttrace: truncated, ";

/// Summaries start with this.
const SUMMARY_PREFIX: &str = "[lighttrace: ";

/// What a summary can say; anything else that looks like one came from the client.
const SUMMARIES: &[&str] = &[
    "body that is not UTF-8",
    "JSON body over the capture limit",
    "body that could not be copied whole",
];

fn summary(what: &str, total: u64) -> String {
    format!("{SUMMARY_PREFIX}{what}, {total} bytes]")
}

/// Whether `data` is exactly one of our summaries (a body that merely starts like one is
/// still scrubbed as a body).
pub(crate) fn is_summary(data: &str) -> bool {
    let Some(rest) = data.strip_prefix(SUMMARY_PREFIX) else {
        return false;
    };
    SUMMARIES.iter().any(|what| {
        rest.strip_prefix(what)
            .and_then(|r| r.strip_prefix(", "))
            .and_then(|r| r.strip_suffix(" bytes]"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

fn valid_prefix(buf: &[u8]) -> usize {
    match std::str::from_utf8(buf) {
        Ok(_) => buf.len(),
        Err(e) => e.valid_up_to(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Any bytes, in any frames, under any limit: a bounded answer, never a panic.
        #[test]
        fn arbitrary_bodies_are_survived(
            kind in proptest::sample::select(vec![BodyKind::Json, BodyKind::Form, BodyKind::Text]),
            limit in 0usize..64,
            frames in proptest::collection::vec(
                (proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..24), 0..3), 0usize..80),
                0..6,
            ),
            content_type in ".*",
        ) {
            let _ = BodyKind::from_content_type(&content_type);
            let capture = BodyCapture::new(kind, limit);
            for (chunks, extra) in &frames {
                let slices: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
                let seen: usize = slices.iter().map(|c| c.len()).sum();
                capture.record(&slices, seen + extra);
            }
            if let Some(data) = capture.data() {
                // The prefix kept, plus at most a summary or truncation note.
                proptest::prop_assert!(data.len() <= limit + 96, "{} bytes: {data:?}", data.len());
            }
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(
            BodyKind::from_content_type("application/json; charset=utf-8"),
            Some(BodyKind::Json)
        );
        assert_eq!(
            BodyKind::from_content_type("application/vnd.api+json"),
            Some(BodyKind::Json)
        );
        assert_eq!(
            BodyKind::from_content_type("application/x-www-form-urlencoded"),
            Some(BodyKind::Form)
        );
        assert_eq!(
            BodyKind::from_content_type("text/plain"),
            Some(BodyKind::Text)
        );
        assert_eq!(
            BodyKind::from_content_type("application/octet-stream"),
            None
        );
        assert_eq!(
            BodyKind::from_content_type("multipart/form-data; boundary=x"),
            None
        );
    }

    #[test]
    fn only_our_own_summaries_are_trusted() {
        assert!(is_summary(
            "[lighttrace: JSON body over the capture limit, 12 bytes]"
        ));
        assert!(!is_summary(
            "[lighttrace: JSON body over the capture limit, 12 bytes] {\"password\":1}"
        ));
        assert!(!is_summary("[lighttrace: password=hunter2, 1 bytes]"));
    }

    #[test]
    fn a_frame_shown_in_part_makes_a_summary() {
        let c = BodyCapture::new(BodyKind::Form, 100);
        c.record(&[b"a=1&pass"], 20);
        assert!(c.data().unwrap().contains("could not be copied whole"));
    }

    #[test]
    fn whole_bodies_are_kept_and_long_ones_capped() {
        let c = BodyCapture::new(BodyKind::Json, 16);
        c.record(&[b"{\"a\":1}"], 7);
        assert_eq!(c.data().as_deref(), Some("{\"a\":1}"));

        let c = BodyCapture::new(BodyKind::Json, 4);
        c.record(&[b"{\"password\":\"x\"}"], 16);
        let data = c.data().unwrap();
        assert!(
            data.starts_with(SUMMARY_PREFIX) && !data.contains("password"),
            "{data}"
        );

        let c = BodyCapture::new(BodyKind::Form, 20);
        c.record(&[b"user=ann&password=hunter2&x=1"], 29);
        let data = c.data().unwrap();
        assert!(
            data.starts_with("user=ann [lighttrace: truncated, 29 bytes"),
            "{data}"
        );

        let c = BodyCapture::new(BodyKind::Text, 4);
        c.record(&[b"hello ", b"world"], 11);
        c.record(&[b"more"], 4);
        assert_eq!(
            c.data().unwrap(),
            "hell [lighttrace: truncated, 15 bytes in all]"
        );

        let c = BodyCapture::new(BodyKind::Json, 10);
        c.record(&[&[0xff, 0xfe]], 2);
        assert!(c.data().unwrap().contains("not UTF-8"));
        assert_eq!(BodyCapture::new(BodyKind::Text, 10).data(), None);
    }
}
