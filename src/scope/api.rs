//! The free functions handlers call: breadcrumbs, user, tags, extra data, fingerprints and
//! captures, on the current request's scope (or, outside requests, on the process-wide scope of
//! the [global client](crate::Client::install_global)).
//!
//! None of them runs user code or builds an event on the calling task: captures copy the scope
//! and queue the work for the client's worker.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::SystemTime;

use sentry_types::protocol::v7::{Breadcrumb, Level, User, Value};
use sentry_types::Uuid;

use super::{current, current_span, process, with_current, RequestScope};
use crate::client::Client;
use crate::event::{self, Capture, Captured, Crumb, ScopeData};

/// Changes the current request's state, or the process-wide state when a global client exists.
fn with_data(f: impl FnOnce(&mut ScopeData, &Client)) {
    if let Some(scope) = current() {
        scope.with_data(|data| f(data, &scope.client));
    } else if let Some(client) = Client::global() {
        process::with_data(|data| f(data, &client));
    }
}

/// Queues a capture with the current request's scope, or the global client's process scope.
pub(super) fn capture(
    what: Captured,
    level: Level,
    origin_tag: Option<(&'static str, String)>,
) -> Option<Uuid> {
    capture_in(current().as_ref(), what, level, origin_tag)
}

/// Queues a capture with `scope`, or (without one) the global client's process scope.
pub(crate) fn capture_in(
    scope: Option<&Arc<RequestScope>>,
    what: Captured,
    level: Level,
    origin_tag: Option<(&'static str, String)>,
) -> Option<Uuid> {
    let (client, context) = match scope {
        Some(scope) => {
            // An error `ignore_errors` drops does not make the request errored.
            if !scope.client.options_ref().ignores_captured(&what) {
                scope.note_capture(level);
            }
            (scope.client.clone(), scope.capture_context(current_span()))
        }
        None => (Client::global()?, process::capture_context(true)),
    };
    client.capture(Capture {
        event_id: event::new_event_id(),
        level,
        timestamp: SystemTime::now(),
        what,
        origin_tag,
        context,
    })
}

/// Records a breadcrumb on the current request (or, outside requests, on the process-wide scope
/// of the global client). An event carries the newest
/// [`max_breadcrumbs`](crate::Options::max_breadcrumbs), the request's own included;
/// [`before_breadcrumb`](crate::Options::before_breadcrumb) sees them when the event is built.
///
/// ```
/// use axum::{routing::get, Router};
/// use lighttrace::{add_breadcrumb, Breadcrumb, Level, MemorySink, Options, TrackingLayer};
/// use tower::ServiceExt;
///
/// async fn checkout() -> &'static str {
///     add_breadcrumb(Breadcrumb {
///         category: Some("payment".into()),
///         message: Some("Payment processing started".into()),
///         level: Level::Info,
///         data: [("amount".to_owned(), 29.99.into())].into_iter().collect(),
///         ..Default::default()
///     });
///     lighttrace::capture_message("card declined", Level::Warning);
///     "declined"
/// }
///
/// # #[tokio::main] async fn main() {
/// let sink = MemorySink::new();
/// let app = Router::new()
///     .route("/checkout", get(checkout))
///     .layer(TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone())));
/// let req = http::Request::get("/checkout").body(axum::body::Body::empty()).unwrap();
/// app.oneshot(req).await.unwrap();
///
/// assert!(sink.wait_for_events(1, std::time::Duration::from_secs(5)).await);
/// let crumbs = &sink.events()[0].breadcrumbs.values;
/// assert_eq!(crumbs[0].message.as_deref(), Some("GET /checkout")); // the request's own
/// assert_eq!(crumbs[1].category.as_deref(), Some("payment"));
/// # }
/// ```
pub fn add_breadcrumb(breadcrumb: Breadcrumb) {
    with_data(|data, client| {
        data.push_breadcrumb(breadcrumb.into(), client.options_ref().max_breadcrumbs);
    });
}

/// Records a breadcrumb on `scope`, or (without one) on the global client's process scope.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn breadcrumb_in(scope: Option<&Arc<RequestScope>>, breadcrumb: Crumb) {
    match scope {
        Some(scope) => {
            let max = scope.client.options_ref().max_breadcrumbs;
            scope.with_data(|data| data.push_breadcrumb(breadcrumb, max));
        }
        None => {
            if let Some(client) = Client::global() {
                let max = client.options_ref().max_breadcrumbs;
                process::with_data(|data| data.push_breadcrumb(breadcrumb, max));
            }
        }
    }
}

/// Sets (or, with `None`, clears) the user of the current request. It is sent as given:
/// explicitly set data is never scrubbed away.
///
/// ```
/// use axum::{routing::get, Router};
/// use lighttrace::{MemorySink, Options, TrackingLayer, User};
/// use tower::ServiceExt;
///
/// async fn profile() -> http::StatusCode {
///     lighttrace::set_user(Some(User { id: Some("42".into()), ..Default::default() }));
///     http::StatusCode::SERVICE_UNAVAILABLE
/// }
///
/// # #[tokio::main] async fn main() {
/// let sink = MemorySink::new();
/// let app = Router::new()
///     .route("/me", get(profile))
///     .layer(TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone())));
/// let req = http::Request::get("/me").body(axum::body::Body::empty()).unwrap();
/// app.oneshot(req).await.unwrap();
///
/// assert!(sink.wait_for_events(1, std::time::Duration::from_secs(5)).await);
/// assert_eq!(sink.events()[0].user.as_ref().unwrap().id.as_deref(), Some("42"));
/// # }
/// ```
pub fn set_user(user: Option<User>) {
    with_data(|data, _| data.user = user.map(Box::new));
}

/// Groups the current request's events by this fingerprint instead of Sentry's default
/// grouping (`None` restores it). `"{{ default }}"` keeps the default grouping as one part.
/// An event built with its own fingerprint keeps it.
///
/// ```
/// use axum::{routing::get, Router};
/// use lighttrace::{Level, MemorySink, Options, TrackingLayer};
/// use tower::ServiceExt;
///
/// async fn pay() -> &'static str {
///     // All timeouts of one upstream are one issue, whatever the message says.
///     lighttrace::set_fingerprint(Some(vec!["{{ default }}".into(), "payments-timeout".into()]));
///     lighttrace::capture_message("payments timed out after 30s", Level::Error);
///     "later"
/// }
///
/// # #[tokio::main] async fn main() {
/// let sink = MemorySink::new();
/// let app = Router::new()
///     .route("/pay", get(pay))
///     .layer(TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone())));
/// app.oneshot(http::Request::get("/pay").body(axum::body::Body::empty()).unwrap()).await.unwrap();
///
/// assert!(sink.wait_for_events(1, std::time::Duration::from_secs(5)).await);
/// assert_eq!(sink.events()[0].fingerprint[1], "payments-timeout");
/// # }
/// ```
pub fn set_fingerprint(fingerprint: Option<Vec<String>>) {
    with_data(|data, _| data.fingerprint = fingerprint);
}

/// Sets a tag on the current request's events and transaction.
///
/// ```
/// use axum::{routing::get, Router};
/// use lighttrace::{MemorySink, Options, TrackingLayer};
/// use tower::ServiceExt;
///
/// # #[tokio::main] async fn main() {
/// let sink = MemorySink::new();
/// let app = Router::new()
///     .route("/orders", get(|| async { lighttrace::set_tag("tenant", "acme"); "ok" }))
///     .layer(TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone())));
/// app.oneshot(http::Request::get("/orders").body(axum::body::Body::empty()).unwrap()).await.unwrap();
///
/// assert!(sink.wait_for_transactions(1, std::time::Duration::from_secs(5)).await);
/// assert_eq!(sink.transactions()[0].tags["tenant"], "acme");
/// # }
/// ```
pub fn set_tag(key: impl Into<String>, value: impl Into<String>) {
    let (key, value) = (key.into(), value.into());
    with_data(|data, _| {
        data.tags.insert(key, value);
    });
}

/// Attaches arbitrary data to the current request's events and transaction (scrubbed like
/// everything else).
///
/// ```
/// use axum::{routing::get, Router};
/// use lighttrace::{MemorySink, Options, TrackingLayer};
/// use tower::ServiceExt;
///
/// async fn cart() -> &'static str {
///     lighttrace::set_extra("cart_items", 3.into());
///     lighttrace::set_extra("api_token", "tok_live_123".into()); // a sensitive key: scrubbed
///     "ok"
/// }
///
/// # #[tokio::main] async fn main() {
/// let sink = MemorySink::new();
/// let app = Router::new()
///     .route("/cart", get(cart))
///     .layer(TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone())));
/// app.oneshot(http::Request::get("/cart").body(axum::body::Body::empty()).unwrap()).await.unwrap();
///
/// assert!(sink.wait_for_transactions(1, std::time::Duration::from_secs(5)).await);
/// let extra = &sink.transactions()[0].extra;
/// assert_eq!(extra["cart_items"], 3);
/// assert_eq!(extra["api_token"], "[Filtered]");
/// # }
/// ```
pub fn set_extra(key: impl Into<String>, value: Value) {
    let key = key.into();
    with_data(|data, _| {
        data.extra.insert(key, value);
    });
}

/// Reports an error, with its `source()` chain, in the context of the current request.
///
/// Only the error's chain is read here (its `Display` and type names); the event is built,
/// scrubbed and passed to `before_send` on the client's worker. Returns the event's id when it
/// was queued (the client is enabled and `sample_rate` kept it); `before_send` may still drop
/// it.
///
/// ```
/// use axum::{routing::get, Router};
/// use lighttrace::{MemorySink, Options, TrackingLayer};
/// use tower::ServiceExt;
///
/// async fn handler() -> &'static str {
///     let err = std::io::Error::other("cache unreachable");
///     let id = lighttrace::capture_error(&err); // report it, then degrade gracefully
///     assert!(id.is_some());
///     "served without the cache"
/// }
///
/// # #[tokio::main] async fn main() {
/// let sink = MemorySink::new();
/// let app = Router::new()
///     .route("/", get(handler))
///     .layer(TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone())));
/// app.oneshot(http::Request::get("/").body(axum::body::Body::empty()).unwrap()).await.unwrap();
///
/// assert!(sink.wait_for_events(1, std::time::Duration::from_secs(5)).await);
/// let event = &sink.events()[0];
/// let exception = event.exception.values.last().unwrap();
/// assert_eq!(exception.ty, "io::Error");
/// assert_eq!(exception.value.as_deref(), Some("cache unreachable"));
/// assert_eq!(event.transaction.as_deref(), Some("GET /"));
/// # }
/// ```
pub fn capture_error<E>(error: &E) -> Option<Uuid>
where
    E: CapturableError + ?Sized,
{
    // Nothing to send to: do not even walk the chain.
    if current().is_none() && Client::global().is_none() {
        return None;
    }
    let exceptions = event::error_chain(error.as_error(), error.type_name(), "generic", true);
    capture(Captured::Exceptions(exceptions), Level::Error, None)
}

/// Anything [`capture_error`] takes: every `Error + 'static` type, and `dyn Error` itself (so
/// `&*boxed_error` works too).
pub trait CapturableError {
    /// The error as a trait object, to walk its `source()` chain.
    fn as_error(&self) -> &(dyn StdError + 'static);
    /// The concrete type's name, when known statically.
    fn type_name(&self) -> Option<&'static str>;
}

impl<E: StdError + 'static> CapturableError for E {
    fn as_error(&self) -> &(dyn StdError + 'static) {
        self
    }
    fn type_name(&self) -> Option<&'static str> {
        Some(std::any::type_name::<E>())
    }
}

impl CapturableError for dyn StdError + 'static {
    fn as_error(&self) -> &(dyn StdError + 'static) {
        self
    }
    fn type_name(&self) -> Option<&'static str> {
        None
    }
}

impl CapturableError for dyn StdError + Send + Sync + 'static {
    fn as_error(&self) -> &(dyn StdError + 'static) {
        self
    }
    fn type_name(&self) -> Option<&'static str> {
        None
    }
}

/// Reports a message in the context of the current request. Like [`capture_error`], the event
/// is built off the request task; returns its id when it was queued.
///
/// ```
/// use axum::{routing::get, Router};
/// use lighttrace::{Level, MemorySink, Options, TrackingLayer};
/// use tower::ServiceExt;
///
/// # #[tokio::main] async fn main() {
/// let sink = MemorySink::new();
/// let app = Router::new()
///     .route("/warm", get(|| async {
///         lighttrace::capture_message("cache miss storm", Level::Warning);
///         "ok"
///     }))
///     .layer(TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(sink.clone())));
/// app.oneshot(http::Request::get("/warm").body(axum::body::Body::empty()).unwrap()).await.unwrap();
///
/// assert!(sink.wait_for_events(1, std::time::Duration::from_secs(5)).await);
/// assert_eq!(sink.events()[0].message.as_deref(), Some("cache miss storm"));
/// assert_eq!(sink.events()[0].level, Level::Warning);
/// # }
/// ```
pub fn capture_message(message: impl Into<String>, level: Level) -> Option<Uuid> {
    capture(Captured::Message(message.into()), level, None)
}

/// The trace id of the current request, e.g. to log it or return it to a client.
///
/// ```
/// use axum::{routing::get, Router};
/// use lighttrace::{MemorySink, Options, TrackingLayer};
/// use tower::ServiceExt;
///
/// # #[tokio::main] async fn main() {
/// assert!(lighttrace::current_trace_id().is_none()); // outside any request
/// let app = Router::new()
///     .route("/", get(|| async { lighttrace::current_trace_id().unwrap_or_default() }))
///     .layer(TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(MemorySink::new())));
/// let res = app.oneshot(http::Request::get("/").body(axum::body::Body::empty()).unwrap()).await.unwrap();
/// let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
/// assert_eq!(body.len(), 32); // 32 hex digits
/// # }
/// ```
pub fn current_trace_id() -> Option<String> {
    with_current(|scope| scope.trace.trace_id.to_string())
}
