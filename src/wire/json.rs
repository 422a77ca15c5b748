//! Writing JSON straight into a buffer: objects key by key, strings escaped as `serde_json`
//! escapes them, timestamps in RFC 3339.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::util::words::{any_word, below, equal};

/// A JSON object being written: keys are separated as they come, `end` closes it.
pub(super) struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    #[inline]
    pub(super) fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, first: true }
    }

    /// Writes `"key":` (escaped) and returns the buffer for the value.
    #[inline]
    pub(super) fn key(&mut self, key: &str) -> &mut Vec<u8> {
        self.comma();
        string(self.out, key);
        self.out.push(b':');
        self.out
    }

    /// Writes `"key":` for a key that needs no escaping (a protocol field name).
    #[inline]
    pub(super) fn field(&mut self, key: &'static str) -> &mut Vec<u8> {
        debug_assert!(!key.contains(['"', '\\']) && key.is_ascii());
        self.comma();
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    /// The buffer, to go on writing the value of the last field.
    #[inline]
    pub(super) fn value(&mut self) -> &mut Vec<u8> {
        self.out
    }

    /// Splices fields already written (`"a":1,"b":2`, no braces); nothing if empty.
    #[inline]
    pub(super) fn fields(&mut self, fields: &[u8]) {
        if !fields.is_empty() {
            self.comma();
            self.out.extend_from_slice(fields);
        }
    }

    /// A field whose value is a string.
    #[inline]
    pub(super) fn str(&mut self, key: &'static str, value: &str) {
        let out = self.field(key);
        string(out, value);
    }

    /// A field whose value is a string that needs no escaping (hex ids, numbers as text).
    #[inline]
    pub(super) fn plain(&mut self, key: &'static str, value: &[u8]) {
        let out = self.field(key);
        out.push(b'"');
        out.extend_from_slice(value);
        out.push(b'"');
    }

    /// A field whose value is written as JSON by `serde_json` (numbers, enums, maps).
    pub(super) fn json(&mut self, key: &'static str, value: &impl serde_json_value::Json) {
        let out = self.field(key);
        value.write(out);
    }

    #[inline]
    fn comma(&mut self) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
    }

    #[inline]
    pub(super) fn end(self) {
        self.out.push(b'}');
    }
}

/// What `Object::json` takes: types `serde_json` writes, without naming `serde` here.
pub(super) mod serde_json_value {
    use sentry_types::protocol::v7::{SpanStatus, User, Value};
    use std::collections::BTreeMap;

    /// A value `serde_json` can write.
    pub(in crate::wire) trait Json {
        fn write(&self, out: &mut Vec<u8>);
    }

    macro_rules! by_serde_json {
        ($($t:ty),*) => {$(
            impl Json for $t {
                fn write(&self, out: &mut Vec<u8>) {
                    // Writing these into a Vec cannot fail (non-finite floats become null).
                    let _ = serde_json::to_writer(&mut *out, self);
                }
            }
        )*};
    }

    by_serde_json!(
        u16,
        f64,
        SpanStatus,
        User,
        Value,
        BTreeMap<String, Value>,
        sentry_types::protocol::v7::DynamicSamplingContext
    );
}

/// An unsigned integer in decimal.
pub(super) fn uint(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// A JSON string, escaped.
#[inline]
pub(super) fn string(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    escape(out, value);
    out.push(b'"');
}

/// The contents of a JSON string: quotes, backslashes and control characters escaped as
/// `serde_json` escapes them, runs of anything else copied whole.
pub(super) fn escape(out: &mut Vec<u8>, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = value.as_bytes();
    if !needs_escaping(bytes) {
        out.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Whether any byte is a quote, a backslash or a control character, eight bytes at a time.
pub(super) fn needs_escaping(bytes: &[u8]) -> bool {
    any_word(bytes, |_, w| {
        equal(w, b'"') | equal(w, b'\\') | below(w, 0x20) != 0
    })
}

/// An RFC 3339 timestamp in UTC, quoted: `"2026-12-02T04:20:23.054068414Z"`, with as many
/// fraction digits as the nanoseconds need (none for a whole second). Composed on the stack
/// and appended once.
pub(super) fn rfc3339(out: &mut Vec<u8>, at: SystemTime) {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let nanos = since.subsec_nanos();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rest = secs % 86_400;
    // Quote, date and time at fixed places; the fraction is cut after its last non-zero digit
    // and `Z"` follows it (or the seconds, for a whole second).
    let mut text = *b"\"0000-00-00T00:00:00.000000000Z\"";
    let two = |text: &mut [u8; 32], at: usize, value: u64| {
        let pair = &PAIRS[(value % 100) as usize];
        text[at] = pair[0];
        text[at + 1] = pair[1];
    };
    two(&mut text, 6, month);
    two(&mut text, 9, day);
    two(&mut text, 12, rest / 3600);
    two(&mut text, 15, rest / 60 % 60);
    two(&mut text, 18, rest % 60);
    let mut end = 21;
    if nanos != 0 {
        let nanos = u64::from(nanos);
        text[21] = b'0' + (nanos / 100_000_000) as u8;
        two(&mut text, 22, nanos / 1_000_000);
        two(&mut text, 24, nanos / 10_000);
        two(&mut text, 26, nanos / 100);
        two(&mut text, 28, nanos);
        end = 30;
        while text[end - 1] == b'0' {
            end -= 1;
        }
        end += 1;
    }
    text[end - 1] = b'Z';
    text[end] = b'"';
    if year > 9999 {
        // Wider than the layout (and than any real clock).
        out.push(b'"');
        uint(out, year);
        out.extend_from_slice(&text[5..=end]);
    } else {
        two(&mut text, 1, year / 100);
        two(&mut text, 3, year % 100);
        out.extend_from_slice(&text[..=end]);
    }
}

/// `00` to `99`, to write two digits with one lookup.
static PAIRS: [[u8; 2]; 100] = {
    let mut pairs = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        pairs[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    pairs
};

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// What `sentry-types` writes for the same instant (a span's end).
    fn theirs(at: SystemTime) -> String {
        let span = sentry_types::protocol::v7::Span {
            timestamp: Some(at),
            ..Default::default()
        };
        serde_json::to_value(&span).unwrap()["timestamp"].to_string()
    }

    #[test]
    fn timestamps_are_written_as_sentry_types_writes_them() {
        let mut at = UNIX_EPOCH;
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for i in 0..20_000u64 {
            // Whole seconds, whole milliseconds, and any nanosecond, from 1970 to 2400.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let secs = rng % 13_600_000_000;
            let nanos = match i % 3 {
                0 => 0,
                1 => (rng >> 40) as u32 % 1000 * 1_000_000,
                _ => (rng >> 32) as u32 % 1_000_000_000,
            };
            at = UNIX_EPOCH + Duration::new(secs, nanos);
            let mut out = Vec::new();
            rfc3339(&mut out, at);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                theirs(at),
                "{secs}.{nanos}"
            );
        }
        let _ = at;
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut all: String = (0u8..128).map(char::from).collect();
        all.push_str("é ✓ \u{2028} 𝄞 plain");
        for s in [all.as_str(), "", "plain", "\"", "a\\b", "\u{1f}x"] {
            let mut out = Vec::new();
            string(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn the_word_scan_finds_every_byte_that_needs_escaping() {
        let naive = |b: &[u8]| b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\');
        let plain = |b: &[u8]| b.is_ascii() && !naive(b);
        for len in 0..20 {
            for at in 0..len {
                for fill in [b'a', 0xc3, 0x7f, b'!', b'#', 0x1f + 1] {
                    for special in 0u8..=255 {
                        let mut bytes = vec![fill; len];
                        bytes[at] = special;
                        assert_eq!(needs_escaping(&bytes), naive(&bytes), "{bytes:?}");
                        assert_eq!(
                            crate::util::words::is_plain_ascii(&bytes),
                            plain(&bytes),
                            "{bytes:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn objects_separate_and_escape() {
        let mut out = Vec::new();
        let mut object = Object::new(&mut out);
        object.str("a", "x\"y");
        object.key("k\n").push(b'1');
        object.json("n", &7u16);
        uint(object.field("u"), 0);
        uint(object.field("m"), u64::MAX);
        object.fields(b"");
        object.fields(b"\"f\":[1],\"g\":2");
        object.plain("p", b"ab12");
        object.end();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&out).unwrap(),
            serde_json::json!({"a": "x\"y", "k\n": 1, "n": 7, "u": 0, "m": u64::MAX, "f": [1], "g": 2, "p": "ab12"})
        );
    }
}
