//! Rate limits the server asked for: `X-Sentry-Rate-Limits` on any response, `Retry-After` or
//! a bare 429.
//!
//! Only the categories this SDK can send are kept (a fixed slot each), so a server that names
//! new categories on every response cannot grow the state.

use std::time::{Duration, Instant};

#[cfg(test)]
use http::HeaderMap;
use sentry_types::protocol::v7::client_report::Category;

/// The categories an envelope of ours can carry, by the names servers use for them.
const KNOWN: [(&str, Category); 8] = [
    ("error", Category::Error),
    ("transaction", Category::Transaction),
    ("span", Category::Span),
    ("session", Category::Session),
    ("attachment", Category::Attachment),
    ("monitor", Category::Monitor),
    ("log_item", Category::LogItem),
    ("log_byte", Category::LogByte),
];

fn slot(category: Category) -> Option<usize> {
    KNOWN.iter().position(|(_, c)| *c == category)
}

/// Until when each category (and everything) is limited.
#[derive(Default, Debug)]
pub(super) struct RateLimits {
    all: Option<Instant>,
    categories: [Option<Instant>; KNOWN.len()],
}

impl RateLimits {
    /// Whether any limit is in force (a cheap check before looking at each item).
    pub(super) fn any_active(&self, now: Instant) -> bool {
        self.all.is_some_and(|t| t > now) || self.categories.iter().flatten().any(|t| *t > now)
    }

    pub(super) fn is_limited(&self, category: Category, now: Instant) -> bool {
        if self.all.is_some_and(|t| t > now) {
            return true;
        }
        slot(category)
            .and_then(|i| self.categories[i])
            .is_some_and(|t| t > now)
    }

    /// Whether the server asked for nothing at all to be sent right now.
    pub(super) fn all_limited(&self, now: Instant) -> bool {
        self.all.is_some_and(|t| t > now)
    }

    /// Applies `X-Sentry-Rate-Limits` (on any status), else `Retry-After` on a 429, else 60 s
    /// for a bare 429.
    #[cfg(test)]
    pub(super) fn update(&mut self, headers: &HeaderMap, status: u16, now: Instant) {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        self.update_from(
            text("x-sentry-rate-limits"),
            text("retry-after"),
            status,
            now,
        );
    }

    /// `update` from the headers' text.
    pub(super) fn update_from(
        &mut self,
        sentry: Option<&str>,
        retry_after: Option<&str>,
        status: u16,
        now: Instant,
    ) {
        if let Some(value) = sentry {
            self.apply_sentry_header(value, now);
        } else if status == 429 {
            let secs = retry_after
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or(60.0);
            extend(&mut self.all, now + secs_duration(secs));
        }
    }

    /// `retry_after:cat1;cat2:scope:reason, …`; no categories means all. The longest limit
    /// wins; categories we never send are ignored.
    pub(super) fn apply_sentry_header(&mut self, value: &str, now: Instant) {
        for quota in value.split(',') {
            let mut parts = quota.trim().split(':');
            let Some(secs) = parts
                .next()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
            else {
                continue;
            };
            let until = now + secs_duration(secs);
            let categories = parts.next().unwrap_or("").trim();
            if categories.is_empty() {
                extend(&mut self.all, until);
                continue;
            }
            for name in categories.split(';').map(str::trim) {
                if let Some(i) = KNOWN.iter().position(|(n, _)| *n == name) {
                    extend(&mut self.categories[i], until);
                }
            }
        }
    }
}

fn secs_duration(secs: f64) -> Duration {
    // Cap absurd values at a day (and keep `Instant` arithmetic from overflowing).
    Duration::from_secs_f64(secs.min(86_400.0))
}

fn extend(slot: &mut Option<Instant>, until: Instant) {
    if slot.is_none_or(|t| t < until) {
        *slot = Some(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bugsink_style_limits() {
        let mut limits = RateLimits::default();
        let now = Instant::now();
        limits.apply_sentry_header("86400:transaction;span:organization", now);
        assert!(limits.is_limited(Category::Transaction, now));
        assert!(limits.is_limited(Category::Span, now));
        assert!(!limits.is_limited(Category::Error, now));
    }

    #[test]
    fn empty_categories_mean_all_and_longest_wins() {
        let mut limits = RateLimits::default();
        let now = Instant::now();
        limits.apply_sentry_header("60::key, 10:error:project, garbage, :x", now);
        assert!(limits.is_limited(Category::Error, now + Duration::from_secs(30)));
        assert!(limits.is_limited(Category::Session, now + Duration::from_secs(59)));
        assert!(!limits.is_limited(Category::Session, now + Duration::from_secs(61)));
        limits.apply_sentry_header("5:error", now);
        assert!(limits.is_limited(Category::Error, now + Duration::from_secs(9)));
    }

    #[test]
    fn retry_after_and_bare_429() {
        let now = Instant::now();
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        let mut limits = RateLimits::default();
        limits.update(&headers, 429, now);
        assert!(limits.is_limited(Category::Error, now + Duration::from_secs(6)));
        assert!(!limits.is_limited(Category::Error, now + Duration::from_secs(8)));

        let mut limits = RateLimits::default();
        limits.update(&HeaderMap::new(), 429, now);
        assert!(limits.is_limited(Category::Transaction, now + Duration::from_secs(59)));

        let mut limits = RateLimits::default();
        limits.update(&HeaderMap::new(), 200, now);
        assert!(!limits.any_active(now));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

        /// Whatever a server sends, including absurd numbers: a limit of at most a day, never a
        /// panic.
        #[test]
        fn any_header_is_survived(
            sentry in proptest::option::of(".*|[0-9.e+-]{1,24}:[a-z_;]{0,20}:[a-z]{0,8}"),
            retry_after in proptest::option::of(".*|-?[0-9.e+]{1,24}|NaN|inf"),
            status in 100u16..600,
        ) {
            let now = Instant::now();
            let mut limits = RateLimits::default();
            limits.update_from(sentry.as_deref(), retry_after.as_deref(), status, now);
            let day = now + Duration::from_secs(86_400 + 1);
            proptest::prop_assert!(!limits.any_active(day));
        }
    }

    #[test]
    fn unknown_categories_take_no_room() {
        let mut limits = RateLimits::default();
        let now = Instant::now();
        for i in 0..10_000 {
            limits.apply_sentry_header(&format!("60:made_up_{i};error"), now);
        }
        assert!(limits.is_limited(Category::Error, now));
        assert!(!limits.is_limited(Category::Transaction, now));
    }
}
