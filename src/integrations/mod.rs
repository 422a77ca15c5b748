//! Integrations with other crates and with other stacks, each feeding the same records
//! hand-made instrumentation does (spans and breadcrumbs of the current request): outgoing
//! HTTP through any tower client ([`OutgoingLayer`]), reqwest ([`TracedRequest`], feature
//! `reqwest`; [`ReqwestMiddleware`], feature `reqwest-middleware`), and diesel's queries
//! ([`DieselInstrumentation`], feature `diesel`).

#[cfg(feature = "diesel")]
mod diesel;
mod http_call;
mod outgoing_body;
#[cfg(feature = "reqwest")]
mod reqwest;
#[cfg(feature = "reqwest-middleware")]
mod reqwest_middleware;
mod tower_client;

#[cfg(feature = "diesel")]
pub use diesel::DieselInstrumentation;
pub use outgoing_body::OutgoingBody;
#[cfg(feature = "reqwest")]
pub use reqwest::TracedRequest;
#[cfg(feature = "reqwest-middleware")]
pub use reqwest_middleware::ReqwestMiddleware;
pub use tower_client::OutgoingFuture;
pub use tower_client::{OutgoingLayer, OutgoingService};
