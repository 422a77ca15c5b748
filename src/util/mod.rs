//! Small helpers any module may use: percent-decoding, DSN redaction (`redact`), containing
//! user code and unwinding (`unwind`), marking the crate's own threads (`internal`), scanning
//! bytes eight at a time (`words`), and reading SQL statements (`sql`).

pub(crate) mod internal;
mod redact;
pub(crate) mod sql;
pub(crate) mod unwind;
pub(crate) mod words;

pub(crate) use redact::RedactedDsn;

/// Decodes `%XX` sequences (and `+` as a space when `plus_is_space`); invalid sequences are kept
/// as they are, and invalid UTF-8 is replaced, so any input is accepted.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn decodes_and_survives_garbage() {
        assert_eq!(percent_decode("pass%77ord+x", true), "password x");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("%", true), "%");
        assert_eq!(percent_decode("%4", true), "%4");
        assert_eq!(percent_decode("%zz%é", true), "%zz%é");
        assert_eq!(percent_decode("%e9", true), "\u{fffd}");
    }
}
