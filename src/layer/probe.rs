//! For benchmarks only: what the layer adds to a request to count it (its route's latency slot,
//! the clock read at its end, the histogram and release-health counters), run alone so its cost
//! can be measured apart from the request's. Not part of the API; may change at any time.

use std::time::SystemTime;

use http::{Method, Request};

use super::service::route_of;
use crate::client::{Client, Health};
use crate::event::Route;

/// A request's counting, replayed (see the module docs).
#[doc(hidden)]
pub struct Probe {
    client: Client,
    method: Method,
    route: Option<Route>,
}

impl Probe {
    /// The counting of `req` (its method and matched route) by `client`.
    pub fn new<B>(client: &Client, req: &Request<B>) -> Self {
        Probe {
            client: client.clone(),
            method: req.method().clone(),
            route: route_of(req, false),
        }
    }

    /// Counts the request once more, as started at `started` (the layer's own clock read) and
    /// ended with `status`: exactly the calls the layer makes for every request beyond what it
    /// makes without counting.
    pub fn count(&self, started: SystemTime, status: u16) {
        let slot = self.client.latency_slot(&self.method, self.route.as_ref());
        let health = self.client.counts_sessions().then_some(Health::Exited);
        self.client.request_ended(slot, started, status, health);
    }
}
