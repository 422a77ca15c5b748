//! Error and latency tracking for axum and tower services, reporting to any server that speaks
//! the Sentry protocol (LightTrace, Sentry, self-hosted Sentry, GlitchTip, Bugsink).
//!
//! Add one layer and every panic, every 5xx response and every request's latency is reported,
//! with the request, the user and the breadcrumbs that led there, and no secret in it:
//!
//! ```
//! use axum::{routing::get, Router};
//! use lighttrace::{HandlerError, Options, TrackingLayer};
//!
//! async fn get_user() -> Result<String, HandlerError> {
//!     lighttrace::add_breadcrumb(lighttrace::Breadcrumb {
//!         category: Some("db".into()),
//!         message: Some("loading user".into()),
//!         ..Default::default()
//!     });
//!     Ok("ann".to_owned())
//! }
//!
//! # fn main() -> Result<(), lighttrace::ConfigError> {
//! let layer = TrackingLayer::with_options(
//!     Options::from_env()? // LIGHTTRACE_DSN / SENTRY_DSN; none set: nothing is sent
//!         .environment("production")
//!         .release("api@1.2.3")
//!         .traces_sample_rate(1.0),
//! );
//! let app: Router = Router::new()
//!     .route("/users/{user_id}", get(get_user))
//!     .layer(layer);
//! # Ok(()) }
//! ```
//!
//! The crate is laid out as the path an event takes: [`layer`](TrackingLayer) (tower glue and
//! panic catching) → scope (per-request state, reached by the free functions) → event (protocol
//! values) → [`Client`] (sampling, scrubbing, hooks, envelopes) → [`sink`] (delivery).
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

mod client;
mod event;
mod layer;
mod scope;
pub mod sink;
mod util;

pub use client::{parse_dsn, Client, ConfigError, Options, SamplingContext, ScrubRules};
pub use layer::{
    ClassifyResponse, HandlerError, ReportedError, RequestBody, RequestInfo, ResponseFuture,
    ServerErrors, TrackingLayer, TrackingService,
};
#[cfg(feature = "reqwest")]
pub use scope::TracedRequest;
pub use scope::{
    add_breadcrumb, capture_error, capture_message, capture_panics, current_trace_id,
    inject_trace_headers, set_extra, set_fingerprint, set_tag, set_user, spawn, spawn_named,
    start_span, CapturableError, FutureExt, InScope, InSpan, ReportErrors, SpanGuard,
};
pub use sink::{FileSink, MemorySink, Sink};
#[cfg(feature = "http-sink")]
pub use sink::{HttpSink, HttpSinkOptions};

pub use sentry_types::protocol::v7::{Breadcrumb, Level, SpanStatus, User};
pub use sentry_types::{Dsn, Uuid};

/// The Sentry protocol types events are made of, re-exported from `sentry-types`.
pub mod protocol {
    pub use sentry_types::protocol::v7::*;
}

/// The SDK name sent with every event.
pub(crate) const SDK_NAME: &str = "lighttrace";
/// The SDK version sent with every event.
pub(crate) const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
