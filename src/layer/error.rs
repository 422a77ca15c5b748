//! Handler errors that reach the event with their real error chain instead of a bare "HTTP 500".

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use http::StatusCode;

use crate::event::ErrorValue;

/// The error type for handlers: return `Result<T, HandlerError>` and use `?` on any error.
///
/// The client gets a plain `500 Internal Server Error` (or the status you chose) without the
/// error's text; the error event gets the error itself and its `source()` chain.
///
/// ```
/// use axum::{routing::get, Router};
/// use lighttrace::{HandlerError, Options, TrackingLayer};
///
/// async fn read_config() -> Result<String, HandlerError> {
///     let text = std::fs::read_to_string("/definitely/missing.toml")?; // io::Error → HandlerError
///     Ok(text)
/// }
///
/// let app: Router = Router::new()
///     .route("/config", get(read_config))
///     .layer(TrackingLayer::with_options(Options::new()));
/// ```
pub struct HandlerError {
    reported: ReportedError,
    status: StatusCode,
}

impl<E> From<E> for HandlerError
where
    E: StdError + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        HandlerError::new(error)
    }
}

impl HandlerError {
    /// Wraps an error; the response status is 500.
    pub fn new<E>(error: E) -> Self
    where
        E: StdError + Send + Sync + 'static,
    {
        HandlerError {
            reported: ReportedError::new(error),
            status: StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Responds with another status, e.g. 502 or 503. Statuses the layer's classifier does not
    /// count as failures (by default, below 500) produce no error event.
    ///
    /// ```
    /// let err = lighttrace::HandlerError::new(std::io::Error::other("upstream timed out"))
    ///     .with_status(http::StatusCode::GATEWAY_TIMEOUT);
    /// assert_eq!(err.status(), 504);
    /// ```
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The response status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The wrapped error.
    pub fn error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.reported.value.error
    }

    /// A response for plain tower services: the status, an empty body, and the error in an
    /// extension for the layer to report.
    ///
    /// ```
    /// let err = lighttrace::HandlerError::new(std::io::Error::other("disk full"));
    /// let res: http::Response<String> = err.into_response();
    /// assert_eq!(res.status(), 500);
    /// assert!(res.extensions().get::<lighttrace::ReportedError>().is_some());
    /// ```
    pub fn into_response<B: Default>(self) -> http::Response<B> {
        let mut res = http::Response::new(B::default());
        *res.status_mut() = self.status;
        res.extensions_mut().insert(self.reported);
        res
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.reported.value.error, f)
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.reported.value.error, f)
    }
}

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for HandlerError {
    fn into_response(self) -> axum::response::Response {
        let text = self.status.canonical_reason().unwrap_or("Error");
        let mut res = (self.status, text).into_response();
        res.extensions_mut().insert(self.reported);
        res
    }
}

/// An error attached to a response as an extension, so the layer reports the real error.
///
/// [`HandlerError`] attaches one for you; insert one yourself from a custom error type's
/// `IntoResponse`:
///
/// ```
/// use lighttrace::ReportedError;
///
/// let mut res = http::Response::new(String::from("service unavailable"));
/// *res.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
/// res.extensions_mut().insert(ReportedError::new(std::io::Error::other("pool exhausted")));
/// ```
#[derive(Clone)]
pub struct ReportedError {
    value: ErrorValue,
}

impl ReportedError {
    /// Wraps an error.
    pub fn new<E>(error: E) -> Self
    where
        E: StdError + Send + Sync + 'static,
    {
        ReportedError {
            value: ErrorValue {
                error: Arc::new(error),
                type_name: Some(std::any::type_name::<E>()),
                #[cfg(feature = "anyhow")]
                anyhow: None,
            },
        }
    }

    /// The wrapped error.
    pub fn error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.value.error
    }

    /// The error as the worker reports it.
    pub(crate) fn into_value(self) -> ErrorValue {
        self.value
    }
}

#[cfg(feature = "anyhow")]
impl ReportedError {
    /// Wraps an `anyhow::Error`, keeping its context chain and the backtrace it captured
    /// (symbolicated only if the event is sent).
    pub fn from_anyhow(error: anyhow::Error) -> Self {
        let error = Arc::new(error);
        ReportedError {
            value: ErrorValue {
                error: Arc::new(AnyhowRef(error.clone())),
                type_name: None,
                anyhow: Some(error),
            },
        }
    }
}

/// Lets an `Arc<anyhow::Error>` stand where a `dyn Error` is expected, chain included.
#[cfg(feature = "anyhow")]
struct AnyhowRef(Arc<anyhow::Error>);

#[cfg(feature = "anyhow")]
impl fmt::Debug for AnyhowRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(AsRef::<dyn StdError + Send + Sync>::as_ref(&*self.0), f)
    }
}

#[cfg(feature = "anyhow")]
impl fmt::Display for AnyhowRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(AsRef::<dyn StdError + Send + Sync>::as_ref(&*self.0), f)
    }
}

#[cfg(feature = "anyhow")]
impl StdError for AnyhowRef {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        (AsRef::<dyn StdError + Send + Sync>::as_ref(&*self.0)).source()
    }
}

#[cfg(feature = "anyhow")]
impl HandlerError {
    /// Wraps an `anyhow::Error` (feature `anyhow`), keeping its context chain and the
    /// backtrace it captured. (`?` cannot convert it by itself: `anyhow::Error` is not a
    /// `std::error::Error`, and Rust's coherence rules forbid a second `From` impl.)
    ///
    /// ```
    /// use anyhow::Context;
    /// use lighttrace::HandlerError;
    ///
    /// async fn handler() -> Result<String, HandlerError> {
    ///     std::fs::read_to_string("/no/such/config.toml")
    ///         .context("loading config")
    ///         .map_err(HandlerError::from_anyhow)
    /// }
    /// ```
    pub fn from_anyhow(error: anyhow::Error) -> Self {
        HandlerError {
            reported: ReportedError::from_anyhow(error),
            status: StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl fmt::Debug for ReportedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReportedError")
            .field(&self.value.error)
            .finish()
    }
}
