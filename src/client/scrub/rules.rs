//! What counts as a secret: the default patterns (Relay's server-side defaults and more) and
//! the user's additions and removals.

use std::borrow::Cow;

use super::text::{contains_ignore_case, may_hold_secret};

const DEFAULT_HEADER_PARTS: &[&str] = &[
    "auth",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "key",
    "jwt",
    "bearer",
    "sso",
    "saml",
    "csrf",
    "xsrf",
    "credentials",
    "session",
    "cookie",
];

const DEFAULT_KEY_PARTS: &[&str] = &[
    "password",
    "secret",
    "passwd",
    "api_key",
    "api-key",
    "apikey",
    "auth",
    "credentials",
    "mysql_pwd",
    "privatekey",
    "private_key",
    "private-key",
    "token",
    "key",
    "session",
    "csrf",
    "xsrf",
    "jwt",
];

const DEFAULT_EXACT_KEYS: &[&str] = &["otp", "two_factor", "two-factor", "pwd", "pass"];

const DEFAULT_COOKIES: &[&str] = &[
    "session",
    "sessionid",
    "__session",
    "user_session",
    "phpsessid",
    "jsessionid",
    "asp.net_sessionid",
    "connect.sid",
    "csrf",
    "xsrf",
    "_csrf",
    "csrftoken",
    "csrf_token",
    "xsrf-token",
    "remember_token",
];

/// Headers that carry the client's address: personal data unless `send_default_pii` is on.
pub(super) const IP_HEADERS: &[&str] = &[
    "x-forwarded-for",
    "x-real-ip",
    "forwarded",
    "true-client-ip",
    "cf-connecting-ip",
];

/// Common headers that never carry secrets under the default rules: a lower-case name among
/// them is answered without a search per pattern, unless a pattern of the rules matches one of
/// them (see `ScrubRules::plain_shortcut`).
const PLAIN_HEADERS: &[&str] = &[
    "host",
    "accept",
    "accept-encoding",
    "accept-language",
    "user-agent",
    "content-type",
    "content-length",
    "content-encoding",
    "connection",
    "cache-control",
    "pragma",
    "origin",
    "referer",
    "x-request-id",
    "traceparent",
    "sentry-trace",
    "baggage",
];

/// Whether `name` is one of `PLAIN_HEADERS`, in any case (`http` keeps names in lower case,
/// the request interface in canonical case): only the names of its length are compared.
fn is_plain_header(name: &str) -> bool {
    let candidates: &[&str] = match name.len() {
        4 => &["host"],
        6 => &["accept", "pragma", "origin"],
        7 => &["referer", "baggage"],
        10 => &["user-agent", "connection"],
        11 => &["traceparent"],
        12 => &["content-type", "x-request-id", "sentry-trace"],
        13 => &["cache-control"],
        14 => &["content-length"],
        15 => &["accept-encoding", "accept-language"],
        16 => &["content-encoding"],
        _ => &[],
    };
    candidates
        .iter()
        .any(|c| eq_lower(name.as_bytes(), c.as_bytes()))
}

/// `name` equals `lower` (lower-case letters and `-` only) ignoring ASCII case: a byte matches
/// its own letter or that letter's upper case, nothing else.
#[inline]
fn eq_lower(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len()
        && name
            .iter()
            .zip(lower)
            .all(|(&n, &l)| n == l || (n | 0x20 == l && l.is_ascii_lowercase()))
}

/// What counts as a secret. The defaults cover Relay's server-side defaults and more; add or
/// remove rules to fit your data. Patterns match case-insensitively: key and header patterns
/// anywhere in the name, cookie names and exact keys as a whole.
///
/// ```
/// use lighttrace::{Options, ScrubRules};
///
/// let rules = ScrubRules::new()
///     .sensitive_key("ssn")           // also scrub `ssn`, `customer_ssn`, ...
///     .sensitive_header("x-tenant")   // and this header's value
///     .allow_key("key");              // but a key named like `sort_key` is fine here
/// let options = Options::new().scrub_rules(rules);
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct ScrubRules {
    header_parts: Vec<Cow<'static, str>>,
    key_parts: Vec<Cow<'static, str>>,
    exact_keys: Vec<Cow<'static, str>>,
    cookies: Vec<Cow<'static, str>>,
    pub(super) credit_cards: bool,
    /// No header pattern matches a name of `PLAIN_HEADERS`, so those need no search.
    plain_shortcut: bool,
    /// The first bytes of `key_parts`, as a 256-bit set: a key is only searched for patterns
    /// where one of them starts.
    key_firsts: [u64; 4],
}

impl Default for ScrubRules {
    fn default() -> Self {
        let own = |list: &[&'static str]| list.iter().map(|s| Cow::Borrowed(*s)).collect();
        ScrubRules {
            header_parts: own(DEFAULT_HEADER_PARTS),
            key_parts: own(DEFAULT_KEY_PARTS),
            exact_keys: own(DEFAULT_EXACT_KEYS),
            cookies: own(DEFAULT_COOKIES),
            credit_cards: true,
            plain_shortcut: false,
            key_firsts: [0; 4],
        }
        .with_plain_shortcut()
        .with_key_firsts()
    }
}

impl ScrubRules {
    /// The default rules.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keys (query parameters, JSON and form fields at any depth, extra and breadcrumb data)
    /// containing `part` are scrubbed.
    pub fn sensitive_key(mut self, part: impl Into<String>) -> Self {
        self.key_parts
            .push(Cow::Owned(part.into().to_ascii_lowercase()));
        self.with_key_firsts()
    }

    /// Headers whose name contains `part` are scrubbed.
    pub fn sensitive_header(mut self, part: impl Into<String>) -> Self {
        self.header_parts
            .push(Cow::Owned(part.into().to_ascii_lowercase()));
        self.with_plain_shortcut()
    }

    /// The cookie named `name` is scrubbed (cookies are only sent with `send_default_pii`).
    pub fn sensitive_cookie(mut self, name: impl Into<String>) -> Self {
        self.cookies
            .push(Cow::Owned(name.into().to_ascii_lowercase()));
        self
    }

    /// Removes a key pattern or exact key (as listed in the defaults, e.g. `"key"` or `"otp"`).
    pub fn allow_key(mut self, pattern: &str) -> Self {
        self.key_parts.retain(|p| !p.eq_ignore_ascii_case(pattern));
        self.exact_keys.retain(|p| !p.eq_ignore_ascii_case(pattern));
        self.with_key_firsts()
    }

    /// Removes a header pattern (as listed in the defaults, e.g. `"key"`).
    pub fn allow_header(mut self, pattern: &str) -> Self {
        self.header_parts
            .retain(|p| !p.eq_ignore_ascii_case(pattern));
        self.with_plain_shortcut()
    }

    /// Indexes the key patterns by first byte (an empty pattern, which matches every key,
    /// marks every byte).
    fn with_key_firsts(mut self) -> Self {
        let mut firsts = [0u64; 4];
        for part in &self.key_parts {
            match part.as_bytes().first() {
                Some(&b) => firsts[usize::from(b >> 6)] |= 1 << (b & 63),
                None => firsts = [u64::MAX; 4],
            }
        }
        self.key_firsts = firsts;
        self
    }

    /// Decides whether the common headers can skip the pattern search: only when no header
    /// pattern would match one of them (a rule for `referer` must be honoured).
    fn with_plain_shortcut(mut self) -> Self {
        self.plain_shortcut = !PLAIN_HEADERS.iter().any(|name| {
            self.header_parts
                .iter()
                .any(|p| contains_ignore_case(name, p))
        });
        self
    }

    /// Whether numbers that pass the Luhn check (card numbers) are scrubbed in string values
    /// (default on).
    pub fn credit_cards(mut self, on: bool) -> Self {
        self.credit_cards = on;
        self
    }

    pub(crate) fn is_sensitive_header(&self, name: &str) -> bool {
        if self.plain_shortcut && is_plain_header(name) {
            return false;
        }
        self.header_parts
            .iter()
            .any(|p| contains_ignore_case(name, p))
    }

    pub(crate) fn is_sensitive_key(&self, key: &str) -> bool {
        self.exact_keys.iter().any(|k| k.eq_ignore_ascii_case(key)) || self.has_key_part(key)
    }

    /// Whether `key` contains one of `key_parts` (ASCII case ignored): one pass over the key,
    /// the patterns compared only where one of them starts.
    fn has_key_part(&self, key: &str) -> bool {
        if self.key_parts.iter().any(|p| p.is_empty()) {
            return true;
        }
        let h = key.as_bytes();
        h.iter().enumerate().any(|(i, b)| {
            let b = b.to_ascii_lowercase();
            self.key_firsts[usize::from(b >> 6)] >> (b & 63) & 1 == 1
                && self.key_parts.iter().any(|p| {
                    let p = p.as_bytes();
                    p.first() == Some(&b)
                        && h.get(i..i + p.len())
                            .is_some_and(|w| w.eq_ignore_ascii_case(p))
                })
        })
    }

    /// Whether scrubbing `text` as free-form text (`scrub_text`) could change it: `false` is
    /// the common answer, found in one pass eight bytes at a time.
    #[inline]
    pub(crate) fn may_change_text(&self, text: &[u8]) -> bool {
        may_hold_secret(text, self.credit_cards)
    }

    pub(super) fn is_sensitive_cookie(&self, name: &str) -> bool {
        self.cookies.iter().any(|c| c.eq_ignore_ascii_case(name)) || self.is_sensitive_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::super::text::has_bearer;
    use super::*;

    fn rules() -> ScrubRules {
        ScrubRules::default()
    }

    #[test]
    fn case_insensitive_matching() {
        let r = rules();
        assert!(r.is_sensitive_header("X-API-KEY"));
        assert!(r.is_sensitive_header("x-Auth-Token"));
        assert!(!r.is_sensitive_header("Accept"));
        assert!(!r.is_sensitive_header("X-Forwarded-Proto"));
        assert!(r.is_sensitive_key("DB_Password"));
        assert!(r.is_sensitive_key("OTP"));
        assert!(!r.is_sensitive_key("page"));
        assert!(has_bearer("x BeArEr abc"));
        assert!(!has_bearer("bear"));
    }

    /// The indexed key search against a search per pattern, on keys built from pieces of
    /// the patterns, with the default rules and with rules changed every way.
    #[test]
    fn the_key_index_agrees_with_a_search_per_pattern() {
        let variants = [
            ScrubRules::new(),
            ScrubRules::new().sensitive_key("SSN").allow_key("key"),
            ScrubRules::new().sensitive_key("é_id").sensitive_key("x"),
            ScrubRules::new().sensitive_key(""),
        ];
        let pieces = [
            "pass", "word", "_", "-", "API", "key", "tok", "en", "ssn", "é", "_id", "X", "sort",
            "jwt", "a",
        ];
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut key = String::new();
            for k in 0..(rng % 5) {
                key.push_str(pieces[(rng >> (8 * k + 8)) as usize % pieces.len()]);
            }
            for rules in &variants {
                let slow = rules
                    .key_parts
                    .iter()
                    .any(|p| contains_ignore_case(&key, p));
                assert_eq!(rules.has_key_part(&key), slow, "{key:?}");
            }
        }
    }

    #[test]
    fn the_lower_case_compare_is_ascii_case_insensitive() {
        for lower in PLAIN_HEADERS {
            for name in [
                lower.to_string(),
                lower.to_ascii_uppercase(),
                {
                    let mut canonical = Vec::new();
                    crate::event::push_canonical_header_name(lower, &mut canonical);
                    String::from_utf8(canonical).unwrap()
                },
                lower.replace('-', "\r"),
                lower.replace('-', "_"),
                format!("{lower}-"),
                lower[1..].to_string(),
            ] {
                assert_eq!(
                    eq_lower(name.as_bytes(), lower.as_bytes()),
                    name.eq_ignore_ascii_case(lower),
                    "{name:?} {lower}"
                );
            }
        }
    }

    #[test]
    fn the_plain_header_match_is_the_list() {
        for name in PLAIN_HEADERS {
            assert!(is_plain_header(name), "{name}");
            assert!(!is_plain_header(&format!("{name}x")));
            assert!(is_plain_header(&name.to_ascii_uppercase()));
        }
        let listed = |n: &str| PLAIN_HEADERS.iter().any(|p| p.eq_ignore_ascii_case(n));
        for name in [
            "authorization",
            "cookie",
            "x-api-key",
            "",
            "hos",
            "x-forwarded-for",
        ] {
            assert_eq!(is_plain_header(name), listed(name), "{name}");
        }
    }

    #[test]
    fn rules_can_be_added_and_removed() {
        let r = ScrubRules::new()
            .sensitive_key("ssn")
            .allow_key("key")
            .sensitive_header("X-Tenant");
        assert!(r.is_sensitive_key("customer_SSN"));
        assert!(!r.is_sensitive_key("sort_key"));
        assert!(r.is_sensitive_key("api_key"), "api_key is its own pattern");
        assert!(r.is_sensitive_header("x-tenant-id"));
        assert!(
            ScrubRules::new().plain_shortcut,
            "the defaults keep the shortcut"
        );
        assert!(!ScrubRules::new().is_sensitive_header("referer"));
        let r = ScrubRules::new().sensitive_header("Referer");
        assert!(
            r.is_sensitive_header("referer"),
            "a rule for a common header is honoured"
        );
        assert!(r.is_sensitive_header("Referer"));
        assert!(ScrubRules::new()
            .sensitive_header("origin")
            .is_sensitive_header("origin"));
        assert!(ScrubRules::new().is_sensitive_header("x-api-key"));
        assert!(ScrubRules::new()
            .credit_cards(false)
            .scrub_text("4111111111111111")
            .is_none());
    }
}
