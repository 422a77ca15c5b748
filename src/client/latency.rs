//! What the client reports of its per-route latency.

use std::time::SystemTime;

use super::Client;
use crate::metrics::latency::LatencyReport;

impl Client {
    /// The latency of every route, from every request (sampled or not) since the client
    /// started or since the last [`reset_latency`](Self::reset_latency): count, 5xx count,
    /// P50, P75, P95, P99 and max. Print it as a table, or serve its
    /// [Prometheus text](LatencyReport::prometheus). Empty when
    /// [`track_latency`](crate::Options::track_latency) is off.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// use axum::{routing::get, Router};
    /// use lighttrace::{MemorySink, Options, TrackingLayer};
    /// use tower::ServiceExt;
    ///
    /// let layer = TrackingLayer::with_options(Options::new().sink(MemorySink::new()));
    /// let client = layer.client().clone();
    /// let app = Router::new()
    ///     .route("/users/{id}", get(|| async { "ok" }))
    ///     .route("/fail", get(|| async { http::StatusCode::BAD_GATEWAY }))
    ///     .layer(layer);
    /// for uri in ["/users/1", "/users/2", "/fail"] {
    ///     let req = http::Request::get(uri).body(axum::body::Body::empty()).unwrap();
    ///     app.clone().oneshot(req).await.unwrap();
    /// }
    ///
    /// let report = client.latency();
    /// let users = report.route("GET /users/{id}").unwrap();
    /// assert_eq!((users.count, users.errors), (2, 0));
    /// assert!(users.p50 <= users.p99 && users.p99 <= users.max);
    /// assert_eq!(report.route("GET /fail").unwrap().errors, 1);
    /// assert_eq!(report.count(), 3);
    /// println!("{report}"); // a table, slowest P95 first
    ///
    /// let before = client.reset_latency();
    /// assert_eq!(before.count(), 3);
    /// assert_eq!(client.latency().count(), 0);
    /// assert!(client.latency().since() >= before.since());
    /// # }
    /// ```
    pub fn latency(&self) -> LatencyReport {
        self.latency_report(false)
    }

    /// Like [`latency`](Self::latency), and starts counting again from zero (each request is
    /// in exactly one report).
    pub fn reset_latency(&self) -> LatencyReport {
        self.latency_report(true)
    }

    fn latency_report(&self, reset: bool) -> LatencyReport {
        match &self.inner.core.latency {
            Some(latency) => latency.report(reset),
            None => LatencyReport {
                routes: Vec::new(),
                since: SystemTime::now(),
                max_routes: 0,
            },
        }
    }
}
