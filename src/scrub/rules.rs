//! What counts as a secret: the default patterns (Relay's server-side defaults and more) and
//! the user's additions and removals.

use std::borrow::Cow;

use super::patterns::Patterns;
use super::text::may_hold_secret;

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
/// the request interface in canonical case).
fn is_plain_header(name: &str) -> bool {
    PLAIN_HEADERS
        .iter()
        .any(|plain| eq_lower(name.as_bytes(), plain.as_bytes()))
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
    header_parts: Patterns,
    key_parts: Patterns,
    exact_keys: Vec<Cow<'static, str>>,
    cookies: Vec<Cow<'static, str>>,
    pub(super) credit_cards: bool,
    /// No header pattern matches a name of `PLAIN_HEADERS`, so those need no search.
    plain_shortcut: bool,
}

impl Default for ScrubRules {
    fn default() -> Self {
        let own = |list: &[&'static str]| list.iter().map(|s| Cow::Borrowed(*s)).collect();
        ScrubRules {
            header_parts: Patterns::new(DEFAULT_HEADER_PARTS),
            key_parts: Patterns::new(DEFAULT_KEY_PARTS),
            exact_keys: own(DEFAULT_EXACT_KEYS),
            cookies: own(DEFAULT_COOKIES),
            credit_cards: true,
            plain_shortcut: false,
        }
        .with_plain_shortcut()
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
        self.key_parts = self.key_parts.add(part.into());
        self
    }

    /// Headers whose name contains `part` are scrubbed.
    pub fn sensitive_header(mut self, part: impl Into<String>) -> Self {
        self.header_parts = self.header_parts.add(part.into());
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
        self.key_parts = self.key_parts.remove(pattern);
        self.exact_keys.retain(|p| !p.eq_ignore_ascii_case(pattern));
        self
    }

    /// Removes a header pattern (as listed in the defaults, e.g. `"key"`).
    pub fn allow_header(mut self, pattern: &str) -> Self {
        self.header_parts = self.header_parts.remove(pattern);
        self.with_plain_shortcut()
    }

    /// Decides whether the common headers can skip the pattern search: only when no header
    /// pattern would match one of them (a rule for `referer` must be honoured).
    fn with_plain_shortcut(mut self) -> Self {
        self.plain_shortcut = !PLAIN_HEADERS
            .iter()
            .any(|name| self.header_parts.found_in(name));
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
        self.header_parts.found_in(name)
    }

    pub(crate) fn is_sensitive_key(&self, key: &str) -> bool {
        self.exact_keys.iter().any(|k| k.eq_ignore_ascii_case(key)) || self.key_parts.found_in(key)
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
    fn plain_headers_are_matched_in_any_case() {
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
