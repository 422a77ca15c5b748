//! The latency report in Prometheus' text format: one `http_server_request_duration_seconds`
//! histogram per method, route and status class.

use std::fmt::Write;

use super::report::LatencyReport;

/// The bucket bounds, in seconds: OpenTelemetry's recommendation for
/// `http.server.request.duration`.
pub const BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

const NAME: &str = "http_server_request_duration_seconds";

impl LatencyReport {
    /// The report in Prometheus' text exposition format (version 0.0.4): a histogram
    /// `http_server_request_duration_seconds` with the labels `method`, `route` and
    /// `status_class` (`2xx`, `5xx`, ...), and the bucket bounds of
    /// [`BOUNDS`]. Serve it with
    /// `content-type: text/plain; version=0.0.4`.
    ///
    /// The counters run from the client's start; a
    /// [`reset_latency`](crate::Client::reset_latency) resets them, which Prometheus reads as
    /// a counter reset. Durations are bucketed at 1/32 resolution first, so one within 3 % below
    /// a bound may be counted under the next bound.
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
    ///     .route("/metrics", get(move || async move { client.latency().prometheus() }))
    ///     .layer(layer);
    /// let req = |uri| http::Request::get(uri).body(axum::body::Body::empty()).unwrap();
    /// app.clone().oneshot(req("/users/7")).await.unwrap();
    /// let res = app.oneshot(req("/metrics")).await.unwrap();
    /// let text = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
    /// let text = std::str::from_utf8(&text).unwrap();
    /// assert!(text.contains(
    ///     r#"http_server_request_duration_seconds_count{method="GET",route="/users/{id}",status_class="2xx"} 1"#
    /// ));
    /// # }
    /// ```
    pub fn prometheus(&self) -> String {
        let mut out = String::with_capacity(256 + self.routes.len() * 1600);
        out.push_str(
            "# HELP http_server_request_duration_seconds Duration of HTTP server requests.\n",
        );
        out.push_str("# TYPE http_server_request_duration_seconds histogram\n");
        for route in &self.routes {
            for (class, counts) in &route.classes {
                let total = counts.total();
                if total == 0 {
                    continue;
                }
                let labels = format!(
                    "method=\"{}\",route=\"{}\",status_class=\"{}\"",
                    escape(&route.method),
                    escape(&route.route),
                    class
                );
                for bound in BOUNDS {
                    let n = counts.at_most((bound * 1e9) as u64);
                    let _ = writeln!(out, "{NAME}_bucket{{{labels},le=\"{bound}\"}} {n}");
                }
                let _ = writeln!(out, "{NAME}_bucket{{{labels},le=\"+Inf\"}} {total}");
                let sum = counts.sum_ns as f64 / 1e9;
                let _ = writeln!(out, "{NAME}_sum{{{labels}}} {sum}");
                let _ = writeln!(out, "{NAME}_count{{{labels}}} {total}");
            }
        }
        out
    }
}

/// A label value as the text format wants it: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
    }
}
