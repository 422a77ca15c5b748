//! `RequestBodySize`: how much of a request body error events show, in sentry-python's levels.

/// How much of a JSON, form or text request body an error event shows, in sentry-python's
/// levels ([`Options::max_request_body_size`](crate::Options::max_request_body_size)); a byte
/// limit of your own is [`Options::max_request_body_bytes`](crate::Options::max_request_body_bytes).
///
/// ```
/// use lighttrace::RequestBodySize;
/// assert_eq!(RequestBodySize::Never.bytes(), 0);
/// assert_eq!(RequestBodySize::Small.bytes(), 1_000);
/// assert_eq!(RequestBodySize::Medium.bytes(), 10_000);
/// assert_eq!(RequestBodySize::Always.bytes(), 1024 * 1024);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestBodySize {
    /// No body.
    Never,
    /// Up to 1,000 bytes.
    Small,
    /// Up to 10,000 bytes (the default, as in sentry-python).
    #[default]
    Medium,
    /// Up to 1 MiB: every body an event can carry (Relay drops larger events), without copying
    /// an upload of any size.
    Always,
}

impl RequestBodySize {
    /// The byte limit of this level.
    pub fn bytes(self) -> usize {
        match self {
            RequestBodySize::Never => 0,
            RequestBodySize::Small => 1_000,
            RequestBodySize::Medium => 10_000,
            RequestBodySize::Always => 1024 * 1024,
        }
    }
}
