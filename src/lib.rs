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
//! # How it is built
//!
//! The crate is laid out as the path an event takes, one concept per folder, and its modules
//! import only along the edges `tests/it/architecture.rs` states (it fails on any other):
//!
//! - **layer** ([`TrackingLayer`], [`TrackingService`], [`future::ResponseFuture`],
//!   [`ResponseBody`]): tower glue, response classification (gRPC status included), panic
//!   catching, and the request's end when its response's body ends.
//! - **scope**: per-request state, reached by the free functions ([`add_breadcrumb`],
//!   [`set_user`], [`capture_error`], [`start_span`], ...). The response future makes the
//!   request's scope current around each poll (a thread-local set through a guard); each future
//!   that opens spans keeps its own current span the same way. When the request ends, the scope
//!   finishes into plain data.
//! - **client** ([`Client`]): sampling, then, on one worker thread per client, the preparation
//!   of events and transactions (filters, defaults, scrubbing, the user's hooks, each
//!   contained, the envelope) and the client-report accounting.
//! - **sink** ([`sink::Sink`], [`HttpSink`], [`MemorySink`], [`FileSink`]) and **transport**
//!   (the HTTP delivery behind [`HttpSink`]): delivery.
//! - Beside the flow: **options** ([`Options`], the environment, DSNs), **propagation** (trace
//!   headers in and out), **scrub** ([`ScrubRules`], the one scrubbed request interface),
//!   **wire** (envelope bytes), **metrics** (per-route latency, release health), **monitor**
//!   ([`Monitor`]), and the front ends **tracing** and **integrations**.
//! - **event**: the vocabulary all of them share (the request snapshot, trace ids, scope data,
//!   the finished request, gRPC's status codes, and pure builders of protocol values); it
//!   imports none of them but **stacktrace** (panic and error stacks as Sentry frames, in-app
//!   marking, the loaded images), a leaf of its own.
//!
//! Nothing user-written runs on the request task when it can run on the worker: `before_send`,
//! `before_send_transaction` and `before_breadcrumb` run on the worker, and the closures that
//! must run on the request path (`traces_sampler`, `transaction_name`, `classify`) are contained
//! like the hooks: a panic in any of them is counted or falls back to the default, and never
//! reaches the request.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

mod client;
mod event;
mod integrations;
mod layer;
mod metrics;
mod monitor;
mod options;
mod propagation;
mod scope;
mod scrub;
pub mod sink;
mod stacktrace;
#[cfg(feature = "tracing")]
pub mod tracing;
#[cfg(feature = "http-sink")]
mod transport;
mod util;
mod wire;

pub use client::Client;
#[cfg(feature = "diesel")]
pub use integrations::DieselInstrumentation;
#[cfg(feature = "reqwest-middleware")]
pub use integrations::ReqwestMiddleware;
#[cfg(feature = "reqwest")]
pub use integrations::TracedRequest;
pub use integrations::{OutgoingBody, OutgoingLayer, OutgoingService};
/// The futures of the crate's services and future adapters.
pub mod future {
    pub use crate::integrations::OutgoingFuture;
    pub use crate::layer::future::{InScope, InSpan, ReportErrors, ResponseFuture};
}
pub use layer::{
    ClassifyFailure, HandlerError, ReportedError, RequestBody, RequestInfo, ResponseBody,
    ServerErrors, TrackingLayer, TrackingService, TRACERESPONSE,
};
pub use monitor::{JobFailure, Monitor};
pub use options::{parse_dsn, ConfigError, Options, RequestBodySize, SamplingContext};
pub use scope::{
    add_breadcrumb, capture_error, capture_message, capture_panics, current_trace_id,
    inject_trace_headers, set_extra, set_fingerprint, set_tag, set_user, spawn, spawn_blocking,
    spawn_named, start_span, CapturableError, FutureTraceExt, SpanGuard,
};
pub use scrub::ScrubRules;
/// The unit of [`Monitor::interval`], re-exported from the protocol types.
pub use sentry_types::protocol::v7::MonitorIntervalUnit;
pub use sink::{FileSink, MemorySink, Sink};
#[cfg(feature = "http-sink")]
pub use sink::{HttpSink, HttpSinkOptions};

pub use sentry_types::protocol::v7::{Breadcrumb, Level, SpanStatus, User};
pub use sentry_types::{Dsn, Uuid};

/// Per-route latency, from every request: what [`Client::latency`] returns, and the bucket
/// bounds of its Prometheus text.
pub mod latency {
    pub use crate::metrics::latency::{LatencyReport, RouteLatency, BOUNDS};
}

/// For benchmarks and load-test tools only (feature `probe`); not part of the API, may change
/// at any time.
#[cfg(feature = "probe")]
#[doc(hidden)]
pub mod __probe {
    pub use crate::layer::probe::Probe;
    /// The *ring* crypto provider the HTTP sink uses when the application installed none, for
    /// tools that must give another client a provider.
    #[cfg(feature = "http-sink")]
    pub use crate::transport::ring_crypto_provider;
}

/// The Sentry protocol types events are made of, re-exported from `sentry-types`.
pub mod protocol {
    pub use sentry_types::protocol::v7::*;
}

/// The SDK name sent with every event.
pub(crate) const SDK_NAME: &str = "lighttrace";
/// The SDK version sent with every event.
pub(crate) const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
