//! Header names as the request interface writes them: the JSON key in canonical spelling
//! (`"Accept-Encoding":`) and what the scrub rules say of the name, worked out once per name
//! and kept in a small direct-mapped table.
//!
//! A service sees the same few dozen names on every request; spelling each one and matching it
//! against every sensitive pattern again was a third of writing the request interface. The
//! table belongs to one client (its rules never change) and is bounded: a client sending
//! endless made-up names only evicts entries, reusing their buffers.

use crate::client::scrub::{self, ScrubRules};
use crate::event::push_canonical_header_name;

const SLOTS: usize = 64;

/// What a header name is, for the request interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
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

impl Kind {
    /// Whether the request interface shows a header of this kind (the cookie goes to
    /// `cookies`; the client's address only with `send_default_pii`).
    pub(super) fn shown(self, pii: bool) -> bool {
        match self {
            Kind::Plain | Kind::Sensitive => true,
            Kind::Address { .. } => pii,
            Kind::Cookie => false,
        }
    }

    /// Whether a shown header's value is replaced by `[Filtered]`.
    pub(super) fn filtered(self) -> bool {
        matches!(self, Kind::Sensitive | Kind::Address { sensitive: true })
    }
}

/// One cached name.
#[derive(Default)]
struct Entry {
    name: String,
    /// `"Canonical-Name":`, ready to append.
    key: Vec<u8>,
    /// `Canonical-Name`, for the struct an event carries.
    canonical: String,
    kind: Option<Kind>,
}

/// The table.
pub(super) struct Names {
    slots: Vec<Entry>,
}

impl Names {
    pub(super) fn new() -> Self {
        Names {
            slots: (0..SLOTS).map(|_| Entry::default()).collect(),
        }
    }

    /// The JSON key and the kind of `name` (a lower-case header name, as `http` keeps them).
    #[inline]
    pub(super) fn get(&mut self, name: &str, rules: &ScrubRules) -> (&[u8], Kind) {
        let entry = &mut self.slots[slot(name)];
        match entry.kind {
            Some(kind) if entry.name == name => (&entry.key, kind),
            _ => {
                let kind = kind_of(name, rules);
                entry.name.clear();
                entry.name.push_str(name);
                entry.key.clear();
                entry.key.push(b'"');
                push_canonical_header_name(name, &mut entry.key);
                entry.key.extend_from_slice(b"\":");
                entry.canonical.clear();
                // The key is `"Canonical-Name":` of header-name (ASCII token) characters.
                entry.canonical.extend(
                    entry.key[1..entry.key.len() - 2]
                        .iter()
                        .map(|&b| char::from(b)),
                );
                entry.kind = Some(kind);
                (&entry.key, kind)
            }
        }
    }

    /// The canonical spelling (`Accept-Encoding`) and the kind of `name`, for the struct an
    /// event carries.
    #[inline]
    pub(super) fn canonical(&mut self, name: &str, rules: &ScrubRules) -> (&str, Kind) {
        let kind = self.get(name, rules).1;
        (&self.slots[slot(name)].canonical, kind)
    }
}

/// What the rules say of a name, uncached.
fn kind_of(name: &str, rules: &ScrubRules) -> Kind {
    if name.eq_ignore_ascii_case(http::header::COOKIE.as_str()) {
        return Kind::Cookie;
    }
    let sensitive = rules.is_sensitive_header(name);
    if scrub::is_ip_header(name) {
        Kind::Address { sensitive }
    } else if sensitive {
        Kind::Sensitive
    } else {
        Kind::Plain
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
    fn names_are_spelt_and_judged_as_the_rules_say_whatever_was_cached_before() {
        let rules = ScrubRules::new().sensitive_header("x-tenant");
        let forwarded = ScrubRules::new().sensitive_header("forwarded");
        assert_eq!(
            Names::new().get("x-forwarded-for", &forwarded).1,
            Kind::Address { sensitive: true },
            "an address header a rule calls sensitive stays sensitive"
        );
        let mut names = Names::new();
        let expect = |names: &mut Names, name: &str, key: &str, kind: Kind| {
            let (k, found) = names.get(name, &rules);
            assert_eq!(
                (std::str::from_utf8(k).unwrap(), found),
                (key, kind),
                "{name}"
            );
        };
        // Twice each, and after a flood of other names that evicts everything.
        for _ in 0..2 {
            expect(
                &mut names,
                "accept-encoding",
                "\"Accept-Encoding\":",
                Kind::Plain,
            );
            expect(
                &mut names,
                "authorization",
                "\"Authorization\":",
                Kind::Sensitive,
            );
            expect(
                &mut names,
                "x-tenant-id",
                "\"X-Tenant-Id\":",
                Kind::Sensitive,
            );
            expect(
                &mut names,
                "x-forwarded-for",
                "\"X-Forwarded-For\":",
                Kind::Address { sensitive: false },
            );
            expect(
                &mut names,
                "x-real-ip",
                "\"X-Real-Ip\":",
                Kind::Address { sensitive: false },
            );
            expect(&mut names, "cookie", "\"Cookie\":", Kind::Cookie);
            expect(&mut names, "x", "\"X\":", Kind::Plain);
            for i in 0..500 {
                let name = format!("x-made-up-{i}");
                let (_, kind) = names.get(&name, &rules);
                assert_eq!(kind, Kind::Plain);
            }
        }
        // The table stays its size.
        assert_eq!(names.slots.len(), SLOTS);
    }
}
