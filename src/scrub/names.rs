//! The header-name verdict cache: a name's canonical spelling (`Accept-Encoding`) and what the
//! scrub rules say of it, worked out once per name and kept in a small direct-mapped table.
//!
//! A service sees the same few dozen names on every request; spelling each one and matching it
//! against every sensitive pattern again was a third of writing the request interface. The
//! table belongs to one client (its rules never change) and is bounded: a client sending
//! endless made-up names only evicts entries, reusing their buffers.

use super::ScrubRules;
use crate::event::push_canonical_header_name;

const SLOTS: usize = 64;

/// What a header name is, for the request interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeaderKind {
    /// Shown, its value scrubbed as text.
    Plain,
    /// Shown as `[Filtered]`.
    Sensitive,
    /// The client's address: shown only with `send_default_pii`, and then filtered if a rule
    /// calls it sensitive.
    Address { sensitive: bool },
    /// `Cookie`: never a header of the interface (it has `cookies`).
    Cookie,
}

impl HeaderKind {
    /// Whether the request interface shows a header of this kind (the cookie goes to
    /// `cookies`; the client's address only with `send_default_pii`).
    pub(crate) fn shown(self, pii: bool) -> bool {
        match self {
            HeaderKind::Plain | HeaderKind::Sensitive => true,
            HeaderKind::Address { .. } => pii,
            HeaderKind::Cookie => false,
        }
    }

    /// Whether a shown header's value is replaced by `[Filtered]`.
    pub(crate) fn filtered(self) -> bool {
        matches!(
            self,
            HeaderKind::Sensitive | HeaderKind::Address { sensitive: true }
        )
    }
}

/// One cached name.
#[derive(Default)]
struct CachedName {
    name: String,
    /// `"Canonical-Name":`: the canonical spelling as the request interface shows it, quoted
    /// and followed by a colon so a JSON writer appends it as an object key in one go (header
    /// names are tokens: nothing in them needs escaping).
    quoted: String,
    kind: Option<HeaderKind>,
}

/// The table.
pub(crate) struct HeaderNames {
    slots: Vec<CachedName>,
}

impl HeaderNames {
    pub(crate) fn new() -> Self {
        HeaderNames {
            slots: (0..SLOTS).map(|_| CachedName::default()).collect(),
        }
    }

    /// The spelling and the kind of `name` (a lower-case header name, as `http` keeps them).
    #[inline]
    pub(crate) fn get(&mut self, name: &str, rules: &ScrubRules) -> (Spelling<'_>, HeaderKind) {
        let entry = &mut self.slots[slot(name)];
        match entry.kind {
            Some(kind) if entry.name == name => (Spelling(&entry.quoted), kind),
            _ => {
                let kind = kind_of(name, rules);
                entry.name.clear();
                entry.name.push_str(name);
                let mut spelt = std::mem::take(&mut entry.quoted).into_bytes();
                spelt.clear();
                spelt.push(b'"');
                push_canonical_header_name(name, &mut spelt);
                spelt.extend_from_slice(b"\":");
                // Header-name (ASCII token) characters only.
                entry.quoted = String::from_utf8(spelt).unwrap_or_default();
                entry.kind = Some(kind);
                (Spelling(&entry.quoted), kind)
            }
        }
    }
}

/// A header name's canonical spelling (`Accept-Encoding`), kept quoted for JSON writers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spelling<'a>(&'a str);

impl<'a> Spelling<'a> {
    /// A spelling already quoted (`"Accept-Encoding":`).
    pub(crate) fn quoted(quoted: &'a str) -> Self {
        Spelling(quoted)
    }

    /// `Accept-Encoding`.
    pub(crate) fn canonical(self) -> &'a str {
        self.0
            .get(1..self.0.len().saturating_sub(2))
            .unwrap_or_default()
    }

    /// `"Accept-Encoding":`, an object key ready to append.
    pub(crate) fn json_key(self) -> &'a [u8] {
        self.0.as_bytes()
    }

    /// `"Accept-Encoding":` as text.
    pub(crate) fn as_quoted(self) -> &'a str {
        self.0
    }
}

/// What the rules say of a name, uncached.
fn kind_of(name: &str, rules: &ScrubRules) -> HeaderKind {
    if name.eq_ignore_ascii_case(http::header::COOKIE.as_str()) {
        return HeaderKind::Cookie;
    }
    // gRPC's binary metadata (`*-bin`, base64 of arbitrary bytes: serialized protos, tokens)
    // is never shown raw.
    let bytes = name.as_bytes();
    let binary = bytes.len() > 4 && bytes[bytes.len() - 4..].eq_ignore_ascii_case(b"-bin");
    let sensitive = binary || rules.is_sensitive_header(name);
    if super::is_ip_header(name) {
        HeaderKind::Address { sensitive }
    } else if sensitive {
        HeaderKind::Sensitive
    } else {
        HeaderKind::Plain
    }
}

/// The slot of a name: its length and its first and last bytes tell most names apart.
#[inline]
fn slot(name: &str) -> usize {
    let bytes = name.as_bytes();
    let (first, last) = match bytes {
        [] => (0, 0),
        [first, .., last] => (*first, *last),
        [only] => (*only, *only),
    };
    let mix = (bytes.len() as u32)
        .wrapping_mul(0x9e37_79b1)
        .wrapping_add(u32::from(first) << 8 | u32::from(last))
        .wrapping_mul(0x85eb_ca6b);
    (mix >> 26) as usize % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_grpc_metadata_is_never_shown_raw() {
        let rules = ScrubRules::new();
        let mut names = HeaderNames::new();
        assert_eq!(
            names.get("grpc-status-details-bin", &rules).1,
            HeaderKind::Sensitive
        );
        assert_eq!(names.get("x-trace-BIN", &rules).1, HeaderKind::Sensitive);
        assert_eq!(names.get("-bin", &rules).1, HeaderKind::Plain);
        assert_eq!(names.get("x-binary", &rules).1, HeaderKind::Plain);
    }

    #[test]
    fn names_are_spelt_and_judged_as_the_rules_say_whatever_was_cached_before() {
        let rules = ScrubRules::new().sensitive_header("x-tenant");
        let forwarded = ScrubRules::new().sensitive_header("forwarded");
        assert_eq!(
            HeaderNames::new().get("x-forwarded-for", &forwarded).1,
            HeaderKind::Address { sensitive: true },
            "an address header a rule calls sensitive stays sensitive"
        );
        let mut names = HeaderNames::new();
        let expect = |names: &mut HeaderNames, name: &str, key: &str, kind: HeaderKind| {
            let (k, found) = names.get(name, &rules);
            assert_eq!((k.canonical(), found), (key, kind), "{name}");
            assert_eq!(k.json_key(), format!("\"{key}\":").as_bytes());
        };
        // Twice each, and after a flood of other names that evicts everything.
        for _ in 0..2 {
            expect(
                &mut names,
                "accept-encoding",
                "Accept-Encoding",
                HeaderKind::Plain,
            );
            expect(
                &mut names,
                "authorization",
                "Authorization",
                HeaderKind::Sensitive,
            );
            expect(
                &mut names,
                "x-tenant-id",
                "X-Tenant-Id",
                HeaderKind::Sensitive,
            );
            expect(
                &mut names,
                "x-forwarded-for",
                "X-Forwarded-For",
                HeaderKind::Address { sensitive: false },
            );
            expect(
                &mut names,
                "x-real-ip",
                "X-Real-Ip",
                HeaderKind::Address { sensitive: false },
            );
            expect(&mut names, "cookie", "Cookie", HeaderKind::Cookie);
            expect(&mut names, "x", "X", HeaderKind::Plain);
            for i in 0..500 {
                let name = format!("x-made-up-{i}");
                let (_, kind) = names.get(&name, &rules);
                assert_eq!(kind, HeaderKind::Plain);
            }
        }
        // The table stays its size.
        assert_eq!(names.slots.len(), SLOTS);
    }
}
