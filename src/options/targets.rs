//! `trace_propagation_targets`, compiled: regular expressions searched in a URL (see
//! `propagation::propagates_to` for where they are used).

use regex::Regex;

/// The compiled targets. A target that is not a valid regular expression is matched as plain
/// text (sentry-python would raise on it when the first request is made).
#[derive(Clone, Debug)]
pub(crate) struct Targets(Vec<Regex>);

impl Targets {
    pub(crate) fn new<S: AsRef<str>>(targets: impl IntoIterator<Item = S>) -> Self {
        Targets(
            targets
                .into_iter()
                .filter_map(|t| {
                    let t = t.as_ref();
                    Regex::new(t)
                        .or_else(|_| Regex::new(&regex::escape(t)))
                        .ok()
                })
                .collect(),
        )
    }

    pub(crate) fn matches(&self, url: &str) -> bool {
        self.0.iter().any(|re| re.is_match(url))
    }
}
