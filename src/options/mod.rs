//! `Options`: everything a [`Client`](crate::Client) can be configured with.
//!
//! The struct and its defaults are here, with the getters; every builder method is in one
//! `impl` in `builders`; the environment variables are read in `env`; DSNs are parsed in
//! `dsn`; `decide` holds what the options decide about a request or an error; the sampler's
//! view of a request is `SamplingContext`.

mod body_size;
mod builders;
mod decide;
mod dsn;
mod env;
mod error;
mod sampling_context;
mod targets;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use sentry_types::protocol::v7::{Breadcrumb, Event, Transaction};
use sentry_types::Dsn;

pub use body_size::RequestBodySize;
pub use dsn::parse_dsn;
pub(crate) use dsn::parse_dsn_from;
pub use error::ConfigError;
pub use sampling_context::SamplingContext;
pub(crate) use targets::Targets;

use crate::scrub::ScrubRules;
use crate::sink::Sink;

/// A hook that may change or drop an error event before it is sent.
pub(crate) type BeforeSend = Arc<dyn Fn(Event<'static>) -> Option<Event<'static>> + Send + Sync>;
/// A hook that may change or drop a transaction before it is sent.
pub(crate) type BeforeSendTransaction =
    Arc<dyn Fn(Transaction<'static>) -> Option<Transaction<'static>> + Send + Sync>;
/// Decides the trace sample rate of a request.
pub(crate) type TracesSampler = Arc<dyn Fn(&SamplingContext<'_>) -> f32 + Send + Sync>;
/// A hook that may change or drop a breadcrumb when it is recorded.
pub(crate) type BeforeBreadcrumb = Arc<dyn Fn(Breadcrumb) -> Option<Breadcrumb> + Send + Sync>;
/// Decides the sample rate of an error event.
pub(crate) type ErrorSampler = Arc<dyn Fn(&Event<'static>) -> f32 + Send + Sync>;

/// Configuration for a [`Client`](crate::Client). Start from [`Options::new`] (nothing from the
/// environment) or [`Options::from_env`], then chain setters.
///
/// ```
/// use lighttrace::{MemorySink, Options};
///
/// let options = Options::new()
///     .environment("production")
///     .release("api@1.2.3")
///     .traces_sample_rate(0.2)
///     .sink(MemorySink::new());
/// assert_eq!(options.release_ref(), Some("api@1.2.3"));
/// ```
#[derive(Clone)]
#[must_use]
pub struct Options {
    pub(crate) dsn: Option<Dsn>,
    pub(crate) environment: Option<String>,
    pub(crate) release: Option<String>,
    pub(crate) server_name: Option<String>,
    pub(crate) sample_rate: f32,
    /// `None`: tracing is off unless a `traces_sampler` is set.
    pub(crate) traces_sample_rate: Option<f32>,
    pub(crate) max_breadcrumbs: usize,
    pub(crate) send_default_pii: bool,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) before_send: Option<BeforeSend>,
    pub(crate) before_send_transaction: Option<BeforeSendTransaction>,
    pub(crate) before_breadcrumb: Option<BeforeBreadcrumb>,
    pub(crate) sink: Option<Arc<dyn Sink>>,
    /// How the HTTP sink a DSN makes is tuned.
    #[cfg(feature = "http-sink")]
    pub(crate) http_sink: crate::sink::HttpSinkOptions,
    pub(crate) traces_sampler: Option<TracesSampler>,
    /// Whether the trace rate is lowered while the sink cannot keep up.
    pub(crate) backpressure: bool,
    /// How often the sink's health is checked for it.
    pub(crate) backpressure_interval: std::time::Duration,
    pub(crate) max_spans: usize,
    pub(crate) max_queue_bytes: usize,
    pub(crate) trace_propagation_targets: Option<Targets>,
    pub(crate) propagate_traceparent: bool,
    pub(crate) strict_trace_continuation: bool,
    pub(crate) org_id: Option<u64>,
    pub(crate) ignore_transactions: Vec<String>,
    /// `None`: every method but HEAD and OPTIONS.
    pub(crate) http_methods_to_capture: Option<Vec<http::Method>>,
    pub(crate) trace_ignore_status_codes: Vec<u16>,
    pub(crate) ignore_errors: Vec<String>,
    pub(crate) ignore_error_statuses: Vec<u16>,
    pub(crate) error_sampler: Option<ErrorSampler>,
    pub(crate) max_request_body_size: usize,
    pub(crate) scrub_rules: ScrubRules,
    pub(crate) in_app_include: Vec<String>,
    pub(crate) in_app_exclude: Vec<String>,
    pub(crate) track_latency: bool,
    pub(crate) max_latency_routes: usize,
    pub(crate) spotlight: Option<http::Uri>,
    /// Performance problems looked for in sampled requests' spans.
    pub(crate) detectors: crate::event::performance::Detectors,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dsn: None,
            environment: None,
            release: None,
            server_name: None,
            sample_rate: 1.0,
            traces_sample_rate: None,
            max_breadcrumbs: 100,
            send_default_pii: false,
            tags: BTreeMap::new(),
            before_send: None,
            before_send_transaction: None,
            before_breadcrumb: None,
            sink: None,
            #[cfg(feature = "http-sink")]
            http_sink: Default::default(),
            traces_sampler: None,
            backpressure: true,
            backpressure_interval: std::time::Duration::from_secs(10),
            max_spans: 1000,
            max_queue_bytes: 8 * 1024 * 1024,
            trace_propagation_targets: None,
            propagate_traceparent: false,
            strict_trace_continuation: false,
            org_id: None,
            ignore_transactions: Vec::new(),
            http_methods_to_capture: None,
            trace_ignore_status_codes: Vec::new(),
            ignore_errors: Vec::new(),
            ignore_error_statuses: Vec::new(),
            error_sampler: None,
            max_request_body_size: RequestBodySize::Medium.bytes(),
            scrub_rules: ScrubRules::default(),
            in_app_include: Vec::new(),
            in_app_exclude: Vec::new(),
            track_latency: true,
            max_latency_routes: 200,
            spotlight: None,
            detectors: crate::event::performance::Detectors {
                n_plus_one: None,
                slow_db_query: None,
            },
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("dsn", &self.dsn.as_ref().map(crate::util::RedactedDsn))
            .field("environment", &self.environment)
            .field("release", &self.release)
            .field("sample_rate", &self.sample_rate)
            .field("traces_sample_rate", &self.traces_sample_rate)
            .field("max_breadcrumbs", &self.max_breadcrumbs)
            .field("send_default_pii", &self.send_default_pii)
            .field("before_send", &self.before_send.is_some())
            .field("sink", &self.sink.is_some())
            .finish_non_exhaustive()
    }
}

impl Options {
    /// Where the Spotlight sidecar is, when envelopes go to it.
    pub fn spotlight_ref(&self) -> Option<&http::Uri> {
        self.spotlight.as_ref()
    }

    pub(crate) fn in_app(&self) -> crate::stacktrace::InApp<'_> {
        crate::stacktrace::InApp {
            include: &self.in_app_include,
            exclude: &self.in_app_exclude,
        }
    }

    /// The configured DSN, if any.
    pub fn dsn_ref(&self) -> Option<&Dsn> {
        self.dsn.as_ref()
    }

    /// The configured release, if any.
    pub fn release_ref(&self) -> Option<&str> {
        self.release.as_deref()
    }

    /// The configured environment, if any.
    pub fn environment_ref(&self) -> Option<&str> {
        self.environment.as_deref()
    }

    /// Whether requests are traced at all: a [`traces_sample_rate`](Self::traces_sample_rate)
    /// or a [`traces_sampler`](Self::traces_sampler) was set, as in Sentry's SDKs.
    pub fn tracing_enabled(&self) -> bool {
        self.traces_sample_rate.is_some() || self.traces_sampler.is_some()
    }

    /// Whether [backpressure handling](Self::enable_backpressure_handling) is on.
    pub fn backpressure_handling(&self) -> bool {
        self.backpressure
    }

    /// How often the sink's health is checked for backpressure handling.
    pub fn backpressure_interval(&self) -> std::time::Duration {
        self.backpressure_interval
    }
}

pub(crate) fn clamp_rate(rate: f32) -> f32 {
    if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_clamped() {
        let o = Options::new().sample_rate(7.0).traces_sample_rate(f32::NAN);
        assert_eq!(o.sample_rate, 1.0);
        assert_eq!(o.traces_sample_rate, Some(0.0));
    }

    #[test]
    fn debug_redacts_the_dsn_key() {
        let o =
            Options::new().dsn(crate::parse_dsn("https://abcdef0123456789@example.com/3").unwrap());
        let dbg = format!("{o:?}");
        assert!(!dbg.contains("abcdef0123456789"), "{dbg}");
        assert!(dbg.contains("example.com"));
    }
}
