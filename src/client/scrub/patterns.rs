//! A list of case-insensitive substrings to look for in a name, indexed by their first bytes so
//! that a name is read once and patterns are compared only where one of them starts.

use std::borrow::Cow;

/// Lower-case patterns and the set of their first bytes.
#[derive(Clone, Debug)]
pub(super) struct Patterns {
    parts: Vec<Cow<'static, str>>,
    /// The first bytes of `parts`, as a 256-bit set (every bit when a pattern is empty, as an
    /// empty pattern is found in every name).
    firsts: [u64; 4],
}

impl Patterns {
    pub(super) fn new(defaults: &[&'static str]) -> Self {
        Patterns::indexed(defaults.iter().map(|s| Cow::Borrowed(*s)).collect())
    }

    fn indexed(parts: Vec<Cow<'static, str>>) -> Self {
        let mut firsts = [0u64; 4];
        for part in &parts {
            match part.as_bytes().first() {
                Some(&b) => firsts[usize::from(b >> 6)] |= 1 << (b & 63),
                None => firsts = [u64::MAX; 4],
            }
        }
        Patterns { parts, firsts }
    }

    /// Adds a pattern (lower-cased).
    pub(super) fn add(self, part: String) -> Self {
        let mut parts = self.parts;
        parts.push(Cow::Owned(part.to_ascii_lowercase()));
        Patterns::indexed(parts)
    }

    /// Removes a pattern, in any case.
    pub(super) fn remove(self, pattern: &str) -> Self {
        let mut parts = self.parts;
        parts.retain(|p| !p.eq_ignore_ascii_case(pattern));
        Patterns::indexed(parts)
    }

    /// Whether `name` contains one of the patterns, ASCII case ignored.
    pub(super) fn found_in(&self, name: &str) -> bool {
        let h = name.as_bytes();
        if self.parts.iter().any(|p| p.is_empty()) {
            return true;
        }
        h.iter().enumerate().any(|(i, b)| {
            let b = b.to_ascii_lowercase();
            self.firsts[usize::from(b >> 6)] >> (b & 63) & 1 == 1
                && self.parts.iter().any(|p| {
                    let p = p.as_bytes();
                    p.first() == Some(&b)
                        && h.get(i..i + p.len())
                            .is_some_and(|w| w.eq_ignore_ascii_case(p))
                })
        })
    }

    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().map(|p| &**p)
    }
}

#[cfg(test)]
mod tests {
    use super::super::text::contains_ignore_case;
    use super::*;

    /// The indexed search against a search per pattern, on names built from pieces of the
    /// patterns, for lists changed every way.
    #[test]
    fn the_index_agrees_with_a_search_per_pattern() {
        let lists = [
            Patterns::new(&["password", "api_key", "key", "token", "auth", "jwt"]),
            Patterns::new(&["key", "token"])
                .add("SSN".into())
                .remove("KEY"),
            Patterns::new(&["auth"]).add("é_id".into()).add("x".into()),
            Patterns::new(&["auth"]).add(String::new()),
            Patterns::new(&[]),
        ];
        let pieces = [
            "pass", "word", "_", "-", "API", "key", "tok", "en", "ssn", "é", "_id", "X", "sort",
            "jwt", "a", "Auth",
        ];
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut name = String::new();
            for k in 0..(rng % 5) {
                name.push_str(pieces[(rng >> (8 * k + 8)) as usize % pieces.len()]);
            }
            for list in &lists {
                let slow = list.iter().any(|p| contains_ignore_case(&name, p));
                assert_eq!(list.found_in(&name), slow, "{name:?}");
            }
        }
    }
}
