//! The tower glue: [`TrackingLayer`], [`TrackingService`] and
//! [`ResponseFuture`](future::ResponseFuture).
//!
//! One layer does everything: it opens a scope per request, names the transaction after the
//! matched route (a gRPC call after its method), catches panics (while building the handler's
//! future, while polling it, and while polling the response's body), reports failed responses
//! with their real error, and sends the transaction when the response's body has ended.

mod body;
mod classify;
mod ending;
mod error;
mod finish;
pub(crate) mod future;
mod grpc;
mod meter;
#[doc(hidden)]
#[cfg(feature = "probe")]
pub(crate) mod probe;
mod request_info;
mod response_body;
mod service;

use std::fmt;
use std::sync::Arc;

#[cfg(feature = "http-sink")]
use sentry_types::Dsn;
use tower_layer::Layer;

pub use body::RequestBody;
pub use classify::{ClassifyFailure, ServerErrors};
pub use error::{HandlerError, ReportedError};
pub use request_info::RequestInfo;
pub use response_body::ResponseBody;
pub use service::TrackingService;

use crate::client::Client;
#[cfg(feature = "http-sink")]
use crate::options::ConfigError;
use crate::options::Options;
use sentry_types::protocol::v7::User;

pub(crate) type NameFn = dyn Fn(&RequestInfo<'_>) -> Option<String> + Send + Sync;
pub(crate) type UserFn = dyn Fn(&RequestInfo<'_>) -> Option<User> + Send + Sync;

/// Tracks errors, panics and latency of every request, and reports them to a Sentry-protocol
/// server.
///
/// Add it with `Router::layer` so it sees axum's `MatchedPath`: transactions are then named after
/// the route template, e.g. `GET /users/{user_id}`.
///
/// ```
/// use axum::{routing::get, Router};
/// use lighttrace::TrackingLayer;
///
/// # fn main() -> Result<(), lighttrace::ConfigError> {
/// let app: Router = Router::new()
///     .route("/users/{user_id}", get(|| async { "ok" }))
///     .layer(TrackingLayer::try_new("https://public_key@errors.example.com/1")?);
/// # Ok(()) }
/// ```
///
/// A panic becomes a `500` response (the server keeps serving) and a fatal error event; a
/// response the classifier calls a failure (by default any 5xx) becomes an error event, with the
/// real error when the handler returned a [`HandlerError`]. The request is recorded when its
/// response's body ends (see [`ResponseBody`]): a stream is measured to its last byte.
///
/// gRPC calls (tonic's `Server::builder().layer(..)`, or any gRPC server) are recognised by
/// their content type: named `package.Service/Method` (op `grpc.server`), judged by their gRPC
/// status (from the head, or the trailers at the end of a stream; see
/// [`ClassifyFailure::is_grpc_failure`]), and a panic is answered with `grpc-status: 13`
/// (`INTERNAL`) instead of an HTTP 500.
///
/// Panics are caught by unwinding: with `panic = "abort"` in your profile nothing can catch them.
#[derive(Clone)]
#[must_use]
pub struct TrackingLayer {
    config: Arc<LayerConfig>,
}

/// What the layer hands every service and response future: the client and the layer's own
/// settings, shared (one reference count per request instead of one per setting).
#[derive(Clone)]
pub(crate) struct LayerConfig {
    pub(crate) client: Client,
    /// The user's classifier (`None`: [`ServerErrors`], which needs no containing).
    pub(crate) classifier: Option<Arc<dyn ClassifyFailure>>,
    pub(crate) name_fn: Option<Arc<NameFn>>,
    pub(crate) user_fn: Option<Arc<UserFn>>,
    /// Where to put the event id on responses that produced an event, if anywhere.
    pub(crate) event_id_header: Option<http::HeaderName>,
    /// Where to put the trace id on every response, if anywhere.
    pub(crate) trace_response_header: Option<http::HeaderName>,
}

/// W3C's name for the response header that carries the trace id
/// (see [`TrackingLayer::trace_response_header`]).
pub const TRACERESPONSE: http::HeaderName = http::HeaderName::from_static("traceresponse");

impl fmt::Debug for TrackingLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackingLayer")
            .field("client", &self.config.client)
            .finish_non_exhaustive()
    }
}

impl TrackingLayer {
    /// Reports to `dsn` over HTTP ([`HttpSink`](crate::HttpSink)), with default options:
    /// errors, release health and latency; no transactions until a
    /// [`traces_sample_rate`](Options::traces_sample_rate) is set. Reads nothing from the
    /// environment ([`from_env`](Self::from_env) does). Only with the `http-sink` feature (on by
    /// default): without it, give [`with_options`](Self::with_options) a sink.
    ///
    /// ```
    /// let dsn: lighttrace::Dsn = "https://public_key@errors.example.com/1".parse().unwrap();
    /// let layer = lighttrace::TrackingLayer::new(dsn);
    /// assert!(layer.client().is_enabled());
    /// ```
    #[cfg(feature = "http-sink")]
    pub fn new(dsn: Dsn) -> Self {
        Self::with_options(Options::new().dsn(dsn))
    }

    /// Like [`new`](Self::new), parsing the DSN first: an invalid one is an error that names the
    /// problem.
    ///
    /// ```
    /// assert!(lighttrace::TrackingLayer::try_new("no-scheme@host").is_err());
    /// ```
    #[cfg(feature = "http-sink")]
    pub fn try_new(dsn: &str) -> Result<Self, ConfigError> {
        Ok(Self::new(crate::options::parse_dsn(dsn)?))
    }

    /// Configured from the environment ([`Options::from_env`]). With no DSN set anywhere the
    /// layer still works (panics still become 500s) and sends nothing. Only with the
    /// `http-sink` feature (on by default), which delivers to the DSN.
    ///
    /// ```
    /// let layer = lighttrace::TrackingLayer::from_env().expect("a valid DSN, or none");
    /// ```
    #[cfg(feature = "http-sink")]
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::with_options(Options::from_env()?))
    }

    /// Configured by `options`.
    ///
    /// ```
    /// use lighttrace::{Options, TrackingLayer};
    /// let layer = TrackingLayer::with_options(
    ///     Options::new().environment("staging").traces_sample_rate(0.1),
    /// );
    /// ```
    pub fn with_options(options: Options) -> Self {
        Self::with_client(Client::new(options))
    }

    /// Reports through an existing client, e.g. one shared by several routers.
    ///
    /// ```
    /// use lighttrace::{Client, Options, TrackingLayer};
    /// let client = Client::new(Options::new());
    /// let public = TrackingLayer::with_client(client.clone());
    /// let admin = TrackingLayer::with_client(client);
    /// ```
    pub fn with_client(client: Client) -> Self {
        // A client with nothing to send to needs no stacks: panics are still caught (and
        // answered with a 500), but the hook is not installed for them.
        if client.is_enabled() {
            crate::scope::install_hook();
        }
        TrackingLayer {
            config: Arc::new(LayerConfig {
                client,
                classifier: None,
                name_fn: None,
                user_fn: None,
                event_id_header: None,
                trace_response_header: None,
            }),
        }
    }

    /// Replaces the failure classification (default: [`ServerErrors`], every 5xx). The
    /// classifier runs on the request path; if it panics, the default classification is used.
    pub fn classify(mut self, classifier: impl ClassifyFailure) -> Self {
        Arc::make_mut(&mut self.config).classifier = Some(Arc::new(classifier));
        self
    }

    /// Names transactions yourself; return `None` to keep the default (`METHOD /route/{template}`).
    /// The closure runs on the request path, before the handler; if it panics, the default
    /// name is used.
    ///
    /// ```
    /// use lighttrace::{Options, TrackingLayer};
    /// let layer = TrackingLayer::with_options(Options::new()).transaction_name(|req| {
    ///     req.uri().path().starts_with("/static/").then(|| "GET /static/*".to_owned())
    /// });
    /// ```
    pub fn transaction_name<F>(mut self, name: F) -> Self
    where
        F: Fn(&RequestInfo<'_>) -> Option<String> + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.config).name_fn = Some(Arc::new(name));
        self
    }

    /// Sets the user of every request from this header, before the handler runs (a handler's
    /// own [`set_user`](crate::set_user) still wins). The value must look like an id: one that
    /// looks like a credential (a `Bearer` or `Basic` value, a JWT, a card number, a URL with a
    /// password, anything longer than 64 characters or with spaces) or a header marked
    /// sensitive is not trusted, and no user is set.
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use lighttrace::{MemorySink, Options, TrackingLayer};
    /// use tower::ServiceExt;
    ///
    /// # #[tokio::main] async fn main() {
    /// let sink = MemorySink::new();
    /// let app = Router::new()
    ///     .route("/orders", get(|| async { http::StatusCode::BAD_GATEWAY }))
    ///     .layer(TrackingLayer::with_options(Options::new().sink(sink.clone()))
    ///         .user_from_header(http::HeaderName::from_static("x-user-id")));
    /// let req = http::Request::get("/orders")
    ///     .header("x-user-id", "42")
    ///     .body(axum::body::Body::empty())
    ///     .unwrap();
    /// app.oneshot(req).await.unwrap();
    /// assert!(sink.wait_for_events(1, std::time::Duration::from_secs(5)).await);
    /// assert_eq!(sink.events()[0].user.as_ref().unwrap().id.as_deref(), Some("42"));
    /// # }
    /// ```
    pub fn user_from_header(self, name: http::HeaderName) -> Self {
        let rules = self.config.client.options_ref().scrub_rules.clone();
        self.user_from(move |req: &RequestInfo<'_>| {
            let value = req.headers().get(&name)?;
            if value.is_sensitive() {
                return None;
            }
            let id = value.to_str().ok()?.trim();
            rules.plausible_user_id(id).then(|| User {
                id: Some(id.to_owned()),
                ..Default::default()
            })
        })
    }

    /// Sets the user of every request from what a closure makes of it (its headers, its
    /// extensions, such as the claims an authentication middleware put there), before the
    /// handler runs. The closure runs on the request path, so keep it cheap; if it panics, no
    /// user is set.
    ///
    /// ```
    /// use lighttrace::{Options, TrackingLayer, User};
    ///
    /// #[derive(Clone)]
    /// struct Claims { subject: String }
    ///
    /// let layer = TrackingLayer::with_options(Options::new()).user_from(|req| {
    ///     let claims = req.extensions().get::<Claims>()?;
    ///     Some(User { id: Some(claims.subject.clone()), ..Default::default() })
    /// });
    /// ```
    pub fn user_from<F>(mut self, user: F) -> Self
    where
        F: Fn(&RequestInfo<'_>) -> Option<User> + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.config).user_fn = Some(Arc::new(user));
        self
    }

    /// Puts the event id on responses that produced an error event, under this header name,
    /// so a user can quote it in a support ticket. Off by default. The header is set when the
    /// event was kept by `sample_rate` and queued; `before_send` may still drop it.
    ///
    /// ```
    /// let layer = lighttrace::TrackingLayer::with_options(lighttrace::Options::new())
    ///     .event_id_header(http::HeaderName::from_static("x-event-id"));
    /// ```
    pub fn event_id_header(mut self, name: http::HeaderName) -> Self {
        Arc::make_mut(&mut self.config).event_id_header = Some(name);
        self
    }

    /// Puts the request's trace id on every response, failed or not, under this header name
    /// ([`TRACERESPONSE`], W3C's `traceresponse`, or your own), so a support ticket can quote
    /// it: `00-<trace id>-<span id>-<flags>`, the span being the request's transaction and the
    /// flags `01` when it was sampled (its transaction was sent), else `00`. Off by default.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// use axum::{routing::get, Router};
    /// use lighttrace::{MemorySink, Options, TrackingLayer, TRACERESPONSE};
    /// use tower::ServiceExt;
    ///
    /// let layer = TrackingLayer::with_options(Options::new().traces_sample_rate(1.0).sink(MemorySink::new()))
    ///     .trace_response_header(TRACERESPONSE);
    /// let app = Router::new().route("/", get(|| async { "ok" })).layer(layer);
    /// let req = http::Request::get("/").body(axum::body::Body::empty()).unwrap();
    /// let res = app.oneshot(req).await.unwrap();
    /// let value = res.headers()["traceresponse"].to_str().unwrap();
    /// let parts: Vec<&str> = value.split('-').collect();
    /// assert_eq!(parts.len(), 4);
    /// assert_eq!((parts[0], parts[1].len(), parts[2].len(), parts[3]), ("00", 32, 16, "01"));
    /// # }
    /// ```
    pub fn trace_response_header(mut self, name: http::HeaderName) -> Self {
        Arc::make_mut(&mut self.config).trace_response_header = Some(name);
        self
    }

    /// The client this layer reports through, e.g. to [`flush`](Client::flush) at shutdown.
    pub fn client(&self) -> &Client {
        &self.config.client
    }
}

impl<S> Layer<S> for TrackingLayer {
    type Service = TrackingService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TrackingService::new(inner, self.config.clone())
    }
}
