//! Per-route latency of every request, sampled or not, kept in process: a histogram per route
//! and status class, read as a [`LatencyReport`] (a table, or Prometheus' text format).
//!
//! The request path finds its route's slot in a small per-thread cache (no lock shared by
//! requests; the registry's lock is taken once per route and thread) and records with one
//! relaxed atomic addition. Routes are capped ([`Options::max_latency_routes`](crate::Options::max_latency_routes)); past the cap
//! requests are counted under `<other>`.

mod histogram;
mod prometheus;
mod report;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use http::Method;

pub use prometheus::BOUNDS;
pub use report::{LatencyReport, RouteLatency};

use crate::event::{Route, UNMATCHED_ROUTE};
use histogram::Histogram;

/// The name of the bucket that gathers routes past the cap.
pub(crate) const OTHER: &str = "<other>";
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One route's histograms, one per status class, allocated on first use (about 10 KiB each).
struct RouteStats {
    name: String,
    method: String,
    route: String,
    classes: [OnceLock<Histogram>; 5],
}

/// The latency registry of one client.
pub(crate) struct Latency {
    /// Tells this registry's entries apart in the per-thread caches (never reused).
    id: u64,
    max_routes: usize,
    /// `max_routes` slots, then `<other>`.
    routes: Box<[OnceLock<Box<RouteStats>>]>,
    index: Mutex<HashMap<Key, u32>>,
    since: Mutex<SystemTime>,
}

#[derive(Hash, PartialEq, Eq)]
struct Key {
    method: Method,
    route: Box<str>,
}

static IDS: AtomicU64 = AtomicU64::new(1);

impl Latency {
    pub(crate) fn new(max_routes: usize) -> Self {
        Latency {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            max_routes,
            routes: (0..=max_routes).map(|_| OnceLock::new()).collect(),
            index: Mutex::new(HashMap::new()),
            since: Mutex::new(SystemTime::now()),
        }
    }

    /// The slot of a request's route: from this thread's cache, or registered.
    pub(crate) fn slot(&self, method: &Method, route: Option<&Route>) -> u32 {
        let at = cache_position(self.id, method, route);
        let cached = CACHE.try_with(|cache| {
            let cache = cache.try_borrow().ok()?;
            let entry = cache[at].as_ref()?;
            entry.matches(self.id, method, route).then_some(entry.slot)
        });
        if let Ok(Some(slot)) = cached {
            return slot;
        }
        let slot = self.register(method, route);
        let _ = CACHE.try_with(|cache| {
            if let Ok(mut cache) = cache.try_borrow_mut() {
                cache[at] = Some(Entry {
                    registry: self.id,
                    method: method.clone(),
                    route: Cached::of(route),
                    slot,
                });
            }
        });
        slot
    }

    fn register(&self, method: &Method, route: Option<&Route>) -> u32 {
        let text = route.map_or(UNMATCHED_ROUTE, Route::as_str);
        let key = Key {
            method: method.clone(),
            route: text.into(),
        };
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = index.get(&key) {
            return *slot;
        }
        let slot = index.len().min(self.max_routes);
        self.routes[slot].get_or_init(|| {
            Box::new(if slot < self.max_routes {
                let name = format!("{method} {text}");
                RouteStats::new(name, method.to_string(), text.to_owned())
            } else {
                RouteStats::new(OTHER.to_owned(), "*".to_owned(), OTHER.to_owned())
            })
        });
        let slot = u32::try_from(slot).unwrap_or(u32::MAX);
        if (slot as usize) < self.max_routes {
            index.insert(key, slot);
        }
        slot
    }

    /// BucketCounts a request that took `elapsed` and ended with `status`.
    pub(crate) fn record(&self, slot: u32, status: u16, elapsed: Duration) {
        let Some(stats) = self.routes.get(slot as usize).and_then(OnceLock::get) else {
            return;
        };
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        // No 128-bit arithmetic: 2^64 ns is 584 years.
        let ns = elapsed
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(elapsed.subsec_nanos()));
        stats.classes[class].get_or_init(Histogram::new).record(ns);
    }

    pub(crate) fn report(&self, reset: bool) -> LatencyReport {
        let since = {
            let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
            let was = *since;
            if reset {
                *since = SystemTime::now();
            }
            was
        };
        let mut routes: Vec<RouteLatency> = self
            .routes
            .iter()
            .filter_map(OnceLock::get)
            .filter_map(|stats| {
                let classes: Vec<_> = CLASSES
                    .iter()
                    .zip(&stats.classes)
                    .filter_map(|(class, h)| Some((*class, h.get()?.read(reset))))
                    .collect();
                let route = RouteLatency::new(
                    stats.name.clone(),
                    stats.method.clone(),
                    stats.route.clone(),
                    classes,
                );
                (route.count > 0).then_some(route)
            })
            .collect();
        routes.sort_by(|a, b| b.p95.cmp(&a.p95).then_with(|| a.name.cmp(&b.name)));
        LatencyReport {
            routes,
            since,
            max_routes: self.max_routes,
        }
    }
}

impl RouteStats {
    fn new(name: String, method: String, route: String) -> Self {
        RouteStats {
            name,
            method,
            route,
            classes: Default::default(),
        }
    }
}

/// Entries per thread: a direct-mapped cache, so a lookup is one hash and one comparison.
const SLOTS: usize = 64;

thread_local! {
    static CACHE: RefCell<[Option<Entry>; SLOTS]> = const { RefCell::new([const { None }; SLOTS]) };
}

struct Entry {
    registry: u64,
    method: Method,
    route: Cached,
    slot: u32,
}

/// The route an entry is for. axum's matched path is compared by address: the entry holds a
/// clone, so the address cannot be reused by another path while it is cached.
enum Cached {
    #[cfg(feature = "axum")]
    Matched(axum::extract::MatchedPath),
    /// A gRPC method, compared by its text (each call has its own copy).
    Grpc(http::uri::PathAndQuery),
    Unmatched,
}

impl Cached {
    fn of(route: Option<&Route>) -> Self {
        match route {
            #[cfg(feature = "axum")]
            Some(Route::Axum(path)) => Cached::Matched(path.clone()),
            Some(Route::Grpc(path)) => Cached::Grpc(path.clone()),
            None => Cached::Unmatched,
        }
    }
}

impl Entry {
    fn matches(&self, registry: u64, method: &Method, route: Option<&Route>) -> bool {
        if self.registry != registry || self.method != *method {
            return false;
        }
        match (&self.route, route) {
            #[cfg(feature = "axum")]
            (Cached::Matched(a), Some(Route::Axum(b))) => {
                std::ptr::eq(a.as_str(), b.as_str()) || a.as_str() == b.as_str()
            }
            (Cached::Grpc(a), Some(Route::Grpc(b))) => a.path() == b.path(),
            (Cached::Unmatched, None) => true,
            _ => false,
        }
    }
}

/// Where a route's entry lives in the per-thread cache.
fn cache_position(registry: u64, method: &Method, route: Option<&Route>) -> usize {
    let route_hash = match route {
        #[cfg(feature = "axum")]
        Some(Route::Axum(path)) => path.as_str().as_ptr() as u64 >> 3,
        // Its length and last bytes: a service's methods differ at the end.
        Some(Route::Grpc(path)) => {
            let path = path.path().as_bytes();
            let tail = path.iter().rev().take(4);
            tail.fold(path.len() as u64, |h, b| h << 8 | u64::from(*b))
        }
        None => 0x5bd1_e995,
    };
    let m = method.as_str().as_bytes();
    let method_hash = (u64::from(m.first().copied().unwrap_or(0)) << 8) | m.len() as u64;
    let h =
        (route_hash ^ registry.rotate_left(32) ^ method_hash).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> (64 - SLOTS.trailing_zeros())) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_past_the_cap_are_counted_together() {
        let latency = Latency::new(2);
        let a = latency.slot(&Method::GET, None);
        let b = latency.slot(&Method::POST, None);
        let c = latency.slot(&Method::PUT, None);
        let d = latency.slot(&Method::DELETE, None);
        assert_eq!((a, b), (0, 1));
        assert_eq!((c, d), (2, 2), "both past the cap");
        assert_eq!(latency.slot(&Method::GET, None), a, "cached");
        for slot in [a, b, c, d] {
            latency.record(slot, 200, Duration::from_millis(1));
        }
        let report = latency.report(false);
        let other = report.route(OTHER).unwrap();
        assert_eq!(other.count, 2);
        assert_eq!(report.count(), 4);
        assert!(report.to_string().contains("past the first 2"));
    }

    #[test]
    fn the_same_route_from_many_threads_is_one_route() {
        let latency = std::sync::Arc::new(Latency::new(10));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let latency = latency.clone();
                std::thread::spawn(move || {
                    for i in 0..1000u64 {
                        let slot = latency.slot(&Method::GET, None);
                        latency.record(slot, 500, Duration::from_micros(i));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let report = latency.report(true);
        assert_eq!(report.routes().len(), 1);
        let r = &report.routes()[0];
        assert_eq!(
            (r.name.as_str(), r.count, r.errors),
            ("GET <unmatched>", 4000, 4000)
        );
        assert_eq!(latency.report(false).count(), 0);
    }
}
