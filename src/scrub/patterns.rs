//! A list of case-insensitive substrings to look for in a name, grouped by their first bytes so
//! that a name is read once and, at each byte, only the patterns starting with it are compared.

use std::borrow::Cow;

/// Lower-case patterns, grouped by their first bytes.
#[derive(Clone)]
pub(super) struct Patterns {
    /// Sorted by first byte.
    parts: Vec<Cow<'static, str>>,
    /// The patterns starting with byte `b` are `parts[starts[b]..starts[b + 1]]`.
    starts: Box<[u32; 257]>,
    /// An empty pattern is found in every name.
    any_empty: bool,
}

/// The patterns only: the index is derived from them.
impl std::fmt::Debug for Patterns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        list.entries(&self.parts);
        if self.any_empty {
            list.entry(&"");
        }
        list.finish()
    }
}

impl Patterns {
    pub(super) fn new(defaults: &[&'static str]) -> Self {
        Patterns::indexed(defaults.iter().map(|s| Cow::Borrowed(*s)).collect())
    }

    fn indexed(mut parts: Vec<Cow<'static, str>>) -> Self {
        let any_empty = parts.iter().any(|p| p.is_empty());
        parts.retain(|p| !p.is_empty());
        parts.sort_by_key(|p| p.as_bytes()[0]);
        let mut starts = Box::new([0u32; 257]);
        for part in &parts {
            let at = usize::from(part.as_bytes()[0]) + 1;
            starts[at] = starts[at].saturating_add(1);
        }
        for b in 1..257 {
            starts[b] = starts[b].saturating_add(starts[b - 1]);
        }
        Patterns {
            parts,
            starts,
            any_empty,
        }
    }

    /// Adds a pattern (lower-cased).
    pub(super) fn add(self, part: String) -> Self {
        let mut parts = self.with_empty();
        parts.push(Cow::Owned(part.to_ascii_lowercase()));
        Patterns::indexed(parts)
    }

    /// Removes a pattern, in any case.
    pub(super) fn remove(self, pattern: &str) -> Self {
        let mut parts = self.with_empty();
        parts.retain(|p| !p.eq_ignore_ascii_case(pattern));
        Patterns::indexed(parts)
    }

    /// The list as it was given (the empty pattern, kept aside, put back).
    fn with_empty(self) -> Vec<Cow<'static, str>> {
        let mut parts = self.parts;
        if self.any_empty {
            parts.push(Cow::Borrowed(""));
        }
        parts
    }

    /// Whether `name` contains one of the patterns, ASCII case ignored: each byte of `name`
    /// is compared only with the patterns that start with it.
    pub(super) fn found_in(&self, name: &str) -> bool {
        if self.any_empty {
            return true;
        }
        let h = name.as_bytes();
        h.iter().enumerate().any(|(i, b)| {
            let b = usize::from(b.to_ascii_lowercase());
            let group = self.starts[b] as usize..self.starts[b + 1] as usize;
            !group.is_empty()
                && self.parts.get(group).unwrap_or_default().iter().any(|p| {
                    h.get(i..i + p.len())
                        .is_some_and(|w| w.eq_ignore_ascii_case(p.as_bytes()))
                })
        })
    }

    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = &str> {
        self.parts
            .iter()
            .map(|p| &**p)
            .chain(self.any_empty.then_some(""))
    }
}

#[cfg(test)]
mod tests {
    use super::super::text::contains_ignore_case;
    use super::*;

    #[test]
    fn debug_shows_the_patterns_not_the_index() {
        let patterns = Patterns::new(&["token", "auth"]).add(String::new());
        assert_eq!(format!("{patterns:?}"), r#"["auth", "token", ""]"#);
    }

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
