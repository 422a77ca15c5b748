//! Integrations with other crates, each behind its own feature, each feeding the same records
//! hand-made instrumentation does (spans and breadcrumbs of the current request).

#[cfg(feature = "reqwest")]
mod reqwest;

#[cfg(feature = "reqwest")]
pub use reqwest::TracedRequest;
