//! What [`Client::latency`](crate::Client::latency) returns: per-route counts and percentiles,
//! printable as a table.

use std::fmt;
use std::time::{Duration, SystemTime};

use super::histogram::BucketCounts;

/// The latency of every route since the client started or since the last
/// [`reset_latency`](crate::Client::reset_latency), from every request (sampled or not).
///
/// `Display` prints a table, slowest P95 first:
///
/// ```text
/// route                            count  errors      p50      p75      p95      p99      max
/// GET /users/{id}                    120       0   1.02ms   1.31ms   2.87ms   4.10ms   5.22ms
/// POST /checkout                      14       2   43.1ms   51.0ms    204ms    204ms    204ms
/// ```
///
/// Percentiles are within 1.6 % of the true value (see [`RouteLatency`]).
#[derive(Clone, Debug)]
pub struct LatencyReport {
    pub(crate) routes: Vec<RouteLatency>,
    pub(crate) since: SystemTime,
    pub(crate) max_routes: usize,
}

/// One route's requests: how many, how many failed, and how long they took.
///
/// Durations run from the request reaching the layer to its response (head) leaving it. The
/// percentiles are the midpoints of log-linear buckets 1/32 wide, so each is within 1.6 % of
/// the true value; `max` is exact.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RouteLatency {
    /// The transaction name: `GET /users/{id}`, `GET <unmatched>`, or the user's name for the
    /// route; `<other>` gathers the routes past the cap.
    pub name: String,
    /// The request method (`*` for `<other>`).
    pub method: String,
    /// The route template (or the user's name for the route).
    pub route: String,
    /// Requests that ended (answered, panicked or cancelled).
    pub count: u64,
    /// Of them, answered with a 5xx (panics included).
    pub errors: u64,
    /// The median duration.
    pub p50: Duration,
    /// The 75th percentile.
    pub p75: Duration,
    /// The 95th percentile.
    pub p95: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The longest request.
    pub max: Duration,
    /// Per status class (`1xx` to `5xx`): the counters, for the Prometheus text.
    pub(crate) classes: Vec<(&'static str, BucketCounts)>,
}

impl RouteLatency {
    pub(crate) fn new(
        name: String,
        method: String,
        route: String,
        classes: Vec<(&'static str, BucketCounts)>,
    ) -> Self {
        let mut all = BucketCounts::default();
        for (_, counts) in &classes {
            all.merge(counts);
        }
        let errors = classes
            .iter()
            .filter(|(class, _)| *class == "5xx")
            .map(|(_, c)| c.total())
            .sum();
        let at = |q| Duration::from_nanos(all.quantile(q));
        RouteLatency {
            name,
            method,
            route,
            count: all.total(),
            errors,
            p50: at(0.50),
            p75: at(0.75),
            p95: at(0.95),
            p99: at(0.99),
            max: Duration::from_nanos(all.max_ns),
            classes,
        }
    }
}

impl LatencyReport {
    /// Every route that saw a request, slowest P95 first.
    pub fn routes(&self) -> &[RouteLatency] {
        &self.routes
    }

    /// The route with this transaction name (`GET /users/{id}`), if it saw a request.
    pub fn route(&self, name: &str) -> Option<&RouteLatency> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// When counting started: the client's start, or the last reset.
    pub fn since(&self) -> SystemTime {
        self.since
    }

    /// Requests counted, over all routes.
    pub fn count(&self) -> u64 {
        self.routes.iter().map(|r| r.count).sum()
    }
}

impl fmt::Display for LatencyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .routes
            .iter()
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(5, 60);
        writeln!(
            f,
            "{:<width$} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "route", "count", "errors", "p50", "p75", "p95", "p99", "max"
        )?;
        for r in &self.routes {
            let name: String = if r.name.chars().count() > width {
                let cut: String = r.name.chars().take(width - 1).collect();
                format!("{cut}…")
            } else {
                r.name.clone()
            };
            writeln!(
                f,
                "{:<width$} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
                name,
                r.count,
                r.errors,
                Short(r.p50),
                Short(r.p75),
                Short(r.p95),
                Short(r.p99),
                Short(r.max)
            )?;
        }
        if self.routes.iter().any(|r| r.name == super::OTHER) {
            writeln!(
                f,
                "(`<other>`: requests to routes past the first {})",
                self.max_routes
            )?;
        }
        Ok(())
    }
}

/// A duration in three significant digits and the unit that fits: `812µs`, `1.02ms`, `3.40s`.
struct Short(Duration);

impl fmt::Display for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.as_nanos() as f64;
        let (value, unit) = if ns < 1e3 {
            (ns, "ns")
        } else if ns < 1e6 {
            (ns / 1e3, "µs")
        } else if ns < 1e9 {
            (ns / 1e6, "ms")
        } else {
            (ns / 1e9, "s")
        };
        let text = if value >= 100.0 || unit == "ns" {
            format!("{value:.0}{unit}")
        } else if value >= 10.0 {
            format!("{value:.1}{unit}")
        } else {
            format!("{value:.2}{unit}")
        };
        f.pad(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_in_three_digits() {
        let s = |ns| Short(Duration::from_nanos(ns)).to_string();
        assert_eq!(s(812), "812ns");
        assert_eq!(s(812_000), "812µs");
        assert_eq!(s(1_024_000), "1.02ms");
        assert_eq!(s(43_100_000), "43.1ms");
        assert_eq!(s(3_400_000_000), "3.40s");
        assert_eq!(
            format!("{:>8}", Short(Duration::from_micros(5))),
            "  5.00µs"
        );
    }
}
