//! Scrubbing free-form text: bearer tokens, credentials and sensitive parameters of URLs, and
//! card numbers (Luhn).

use super::request::scrub_query;
use super::ScrubRules;
use crate::event::FILTERED;
use crate::util::words::{self, any_word, equal};

impl ScrubRules {
    /// Whether `value` can be taken as a user id: short, one word, and nothing a credential
    /// or other secret looks like.
    pub(crate) fn plausible_user_id(&self, value: &str) -> bool {
        let lower = value.to_ascii_lowercase();
        let jwt = value.starts_with("eyJ") && value.matches('.').count() == 2;
        !value.is_empty()
            && value.len() <= 64
            && !value.contains(char::is_whitespace)
            && !lower.starts_with("bearer")
            && !lower.starts_with("basic")
            && !jwt
            && self.scrub_text(value).is_none()
    }

    /// A free-form string with bearer tokens, URL credentials and sensitive query parameters
    /// (a `Referer`, an error that prints the URL it failed on) and card numbers removed, if
    /// it had any.
    pub(crate) fn scrub_text(&self, value: &str) -> Option<String> {
        if !may_hold_secret(value.as_bytes(), self.credit_cards) {
            return None;
        }
        if has_bearer(value) {
            return Some(FILTERED.to_owned());
        }
        let urls = self.scrub_urls(value);
        let text = urls.as_deref().unwrap_or(value);
        let cards = if self.credit_cards {
            scrub_cards(text)
        } else {
            None
        };
        cards.or(urls)
    }

    /// Userinfo and sensitive query parameters of every `scheme://…` URL in `text`.
    fn scrub_urls(&self, text: &str) -> Option<String> {
        if !text.contains("://") {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut changed = false;
        while let Some(pos) = rest.find("://") {
            let after = &rest[pos + 3..];
            let end = url_end(after);
            let (url, tail) = after.split_at(end);
            out.push_str(&rest[..pos + 3]);
            let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
            let (authority, path) = url.split_at(authority_end);
            let host = match authority.rsplit_once('@') {
                Some((_, host)) => {
                    changed = true;
                    host
                }
                None => authority,
            };
            out.push_str(host);
            match path.split_once('?') {
                Some((before, query)) => {
                    let (query, fragment) = match query.split_once('#') {
                        Some((q, f)) => (q, Some(f)),
                        None => (query, None),
                    };
                    let clean = scrub_query(query, self);
                    changed |= clean != query;
                    out.push_str(before);
                    out.push('?');
                    out.push_str(&clean);
                    if let Some(f) = fragment {
                        out.push('#');
                        out.push_str(f);
                    }
                }
                None => out.push_str(path),
            }
            rest = tail;
        }
        out.push_str(rest);
        changed.then_some(out)
    }

    /// Scrubs `value` in place; true when it changed.
    pub(super) fn scrub_string(&self, value: &mut String) -> bool {
        match self.scrub_text(value) {
            Some(clean) => {
                *value = clean;
                true
            }
            None => false,
        }
    }
}

/// Where a URL in running text ends: at whitespace, a quote, a closing bracket or a comma, but
/// not inside a `[Filtered]` marker a previous scrub left in its query.
fn url_end(text: &str) -> usize {
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        if rest.starts_with(FILTERED) {
            at += FILTERED.len();
            continue;
        }
        let Some(c) = rest.chars().next() else {
            break;
        };
        if c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | ']' | '}' | ',') {
            return at;
        }
        at += c.len_utf8();
    }
    text.len()
}

/// Whether `haystack` contains the lower-case ASCII `needle`, ignoring ASCII case, without
/// allocating a lower-cased copy.
pub(super) fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    let Some((&first, rest)) = n.split_first() else {
        return true;
    };
    if h.len() < n.len() {
        return false;
    }
    // Only where the first byte matches is the rest compared.
    let first = first.to_ascii_lowercase();
    h[..=h.len() - n.len()].iter().enumerate().any(|(i, b)| {
        b.to_ascii_lowercase() == first && h[i + 1..i + n.len()].eq_ignore_ascii_case(rest)
    })
}

/// One pass over `value` for what any of the scrubbers looks for: `bearer ` (any case), a
/// `://`, or (with `cards`) 13 digits. `false` means none of them can change it; most header
/// values are answered here without the searches. Eight bytes at a time: only where a word
/// holds a `:` or a `b` is a marker looked for.
pub(crate) fn may_hold_secret(value: &[u8], cards: bool) -> bool {
    let mut digits = 0usize;
    let marked = any_word(value, |at, word| {
        digits += words::count(words::digits(word)) as usize;
        let mut marks = equal(word, b':') | equal(word | 0x2020_2020_2020_2020, b'b');
        while marks != 0 {
            let rest = &value[at + words::first(marks)..];
            marks &= marks - 1;
            if rest.starts_with(b"://")
                || rest
                    .get(..7)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"bearer "))
            {
                return true;
            }
        }
        false
    });
    marked || (cards && digits >= 13)
}

/// `Bearer <token>` anywhere in a value.
pub(super) fn has_bearer(value: &str) -> bool {
    contains_ignore_case(value, "bearer ")
}

/// Replaces runs of 13 to 19 digits (spaces and dashes allowed between them) that pass the
/// Luhn check. `None` when there is nothing to replace.
fn scrub_cards(value: &str) -> Option<String> {
    if value.bytes().filter(u8::is_ascii_digit).count() < 13 {
        return None;
    }
    let bytes = value.as_bytes();
    let mut out = String::with_capacity(value.len());
    let mut changed = false;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() || (i > 0 && bytes[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        // A run of digits with single separators.
        let start = i;
        let mut end = i;
        let mut digits = Vec::with_capacity(19);
        let mut j = i;
        while j < bytes.len() {
            let b = bytes[j];
            if b.is_ascii_digit() {
                digits.push(b - b'0');
                end = j + 1;
                j += 1;
            } else if matches!(b, b' ' | b'-')
                && j + 1 < bytes.len()
                && bytes[j + 1].is_ascii_digit()
            {
                j += 1;
            } else {
                break;
            }
        }
        if (13..=19).contains(&digits.len()) && luhn(&digits) {
            out.push_str(&value[copied..start]);
            out.push_str(FILTERED);
            copied = end;
            changed = true;
        }
        i = end.max(i + 1);
    }
    if !changed {
        return None;
    }
    out.push_str(&value[copied..]);
    Some(out)
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(*d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefilter_never_hides_what_the_scrubbers_find() {
        let rules = rules();
        let samples = [
            "Bearer x",
            "xBEARER y",
            "bearer",
            "https://u:p@h/x?token=1",
            "a:/b",
            "://",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "1234567890123",
            "123456789012",
            "plain",
            "",
            "b",
            "B:",
            "see http://h/?api_key=k",
            "é bearer é",
        ];
        for sample in samples {
            let found = has_bearer(sample)
                || rules.scrub_urls(sample).is_some()
                || scrub_cards(sample).is_some();
            if found {
                assert!(may_hold_secret(sample.as_bytes(), true), "{sample:?}");
            }
        }
        assert!(!may_hold_secret(b"application/json", true));
        assert!(!may_hold_secret(b"1234567890123", false));
    }

    /// The word-at-a-time prefilter against its definition, byte by byte, on generated text
    /// dense in markers, digits and word boundaries.
    #[test]
    fn the_prefilter_agrees_with_a_byte_by_byte_scan() {
        fn naive(bytes: &[u8], cards: bool) -> bool {
            let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
            let marker = (0..bytes.len()).any(|i| {
                bytes[i..].starts_with(b"://")
                    || bytes
                        .get(i..i + 7)
                        .is_some_and(|w| w.eq_ignore_ascii_case(b"bearer "))
            });
            marker || (cards && digits >= 13)
        }
        let alphabet: &[&[u8]] = &[
            b"b",
            b"B",
            b":",
            b"/",
            b"://",
            b"bearer ",
            b"BeArEr ",
            b"bearer",
            b"1",
            b"9",
            b"0",
            b"a",
            b" ",
            b"\xc3\xa9",
            b"\xff",
            b"\x00",
            b"\x7f",
        ];
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..50_000 {
            let mut text = Vec::new();
            for _ in 0..next() % 40 {
                text.extend_from_slice(alphabet[next() as usize % alphabet.len()]);
            }
            for cards in [true, false] {
                assert_eq!(
                    may_hold_secret(&text, cards),
                    naive(&text, cards),
                    "{text:?}"
                );
            }
        }
    }

    #[test]
    fn contains_ignore_case_agrees_with_a_plain_search() {
        let words = [
            "",
            "b",
            "Bearer ",
            "xBEARER y",
            "beare",
            "bearer",
            "token",
            "a-Token-b",
            "é",
        ];
        for h in words {
            for n in words {
                let expected = h.to_ascii_lowercase().contains(&n.to_ascii_lowercase());
                assert_eq!(contains_ignore_case(h, n), expected, "{h:?} {n:?}");
            }
        }
    }

    fn rules() -> ScrubRules {
        ScrubRules::default()
    }

    #[test]
    fn urls_inside_text_lose_credentials_and_sensitive_parameters() {
        let r = rules();
        assert_eq!(
            r.scrub_text("error sending request for url (https://api.example.com/v1?token=abc&page=2): timed out").as_deref(),
            Some("error sending request for url (https://api.example.com/v1?token=[Filtered]&page=2): timed out")
        );
        assert_eq!(
            r.scrub_text("https://bob:hunter2@db.internal:5432/x")
                .as_deref(),
            Some("https://db.internal:5432/x")
        );
        assert_eq!(r.scrub_text("see https://example.com/docs?page=2"), None);
        assert_eq!(r.scrub_text("no url here"), None);
    }

    #[test]
    fn card_numbers_pass_luhn_only() {
        assert_eq!(
            scrub_cards("paid with 4111 1111 1111 1111 today").as_deref(),
            Some("paid with [Filtered] today")
        );
        assert_eq!(
            scrub_cards("5500-0000-0000-0004").as_deref(),
            Some("[Filtered]")
        );
        assert_eq!(
            scrub_cards("378282246310005").as_deref(),
            Some("[Filtered]")
        );
        assert_eq!(scrub_cards("order 4111111111111112"), None, "fails Luhn");
        assert_eq!(scrub_cards("id 1234"), None);
        assert_eq!(scrub_cards("ts 1700000000000000000000"), None, "too long");
    }
}
