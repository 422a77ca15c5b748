//! The tower glue: [`TrackingLayer`], [`TrackingService`] and [`ResponseFuture`].
//!
//! One layer does everything: it opens a scope per request, names the transaction after the
//! matched route, catches panics (while building the handler's future and while polling it),
//! reports failed responses with their real error, and sends the transaction.

mod body;
mod classify;
mod error;
mod future;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use http::{HeaderMap, Method, Request, Response, Uri};
use sentry_types::Dsn;
use tower_layer::Layer;
use tower_service::Service;

pub use body::RequestBody;
pub use classify::{ClassifyResponse, ServerErrors};
pub use error::{HandlerError, ReportedError};
pub use future::ResponseFuture;

use crate::client::{Client, ConfigError, Options, SamplingContext};
use crate::event::{BodyCapture, BodyKind, RequestSnapshot, Route, TraceIds};
use crate::scope::RequestScope;
use future::{Kind, Tracking};

type NameFn = dyn Fn(&RequestInfo<'_>) -> Option<String> + Send + Sync;

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
/// real error when the handler returned a [`HandlerError`].
///
/// Panics are caught by unwinding: with `panic = "abort"` in your profile nothing can catch them.
#[derive(Clone)]
pub struct TrackingLayer {
    shared: Arc<Shared>,
}

#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) classifier: Arc<dyn ClassifyResponse>,
    name_fn: Option<Arc<NameFn>>,
    event_id_header: Option<http::HeaderName>,
}

impl fmt::Debug for TrackingLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackingLayer")
            .field("client", &self.shared.client)
            .finish_non_exhaustive()
    }
}

impl TrackingLayer {
    /// Reports to `dsn` over HTTP, with default options plus release and environment from
    /// `SENTRY_RELEASE` and `SENTRY_ENVIRONMENT`.
    ///
    /// ```
    /// let dsn: lighttrace::Dsn = "https://public_key@errors.example.com/1".parse().unwrap();
    /// let layer = lighttrace::TrackingLayer::new(dsn);
    /// ```
    pub fn new(dsn: Dsn) -> Self {
        Self::with_options(Options::new().dsn(dsn).env_release_and_environment())
    }

    /// Like [`new`](Self::new), parsing the DSN first: an invalid one is an error that names the
    /// problem.
    ///
    /// ```
    /// assert!(lighttrace::TrackingLayer::try_new("no-scheme@host").is_err());
    /// ```
    pub fn try_new(dsn: &str) -> Result<Self, ConfigError> {
        Ok(Self::new(crate::client::parse_dsn(dsn)?))
    }

    /// Configured from the environment ([`Options::from_env`]). With no DSN set anywhere the
    /// layer still works (panics still become 500s) and sends nothing.
    ///
    /// ```
    /// let layer = lighttrace::TrackingLayer::from_env().expect("a valid DSN, or none");
    /// ```
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
        crate::scope::install_hook();
        TrackingLayer {
            shared: Arc::new(Shared {
                client,
                classifier: Arc::new(ServerErrors),
                name_fn: None,
                event_id_header: None,
            }),
        }
    }

    /// Replaces the failure classification (default: [`ServerErrors`], every 5xx).
    #[must_use]
    pub fn classify(mut self, classifier: impl ClassifyResponse) -> Self {
        Arc::make_mut(&mut self.shared).classifier = Arc::new(classifier);
        self
    }

    /// Names transactions yourself; return `None` to keep the default (`METHOD /route/{template}`).
    ///
    /// ```
    /// use lighttrace::{Options, TrackingLayer};
    /// let layer = TrackingLayer::with_options(Options::new()).transaction_name(|req| {
    ///     req.uri().path().starts_with("/static/").then(|| "GET /static/*".to_owned())
    /// });
    /// ```
    #[must_use]
    pub fn transaction_name<F>(mut self, name: F) -> Self
    where
        F: Fn(&RequestInfo<'_>) -> Option<String> + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.shared).name_fn = Some(Arc::new(name));
        self
    }

    /// Puts the event id on responses that produced an error event, under this header name,
    /// so a user can quote it in a support ticket. Off by default. The id is that of the event
    /// handed to the pipeline; `before_send` or sampling may still drop the event.
    ///
    /// ```
    /// let layer = lighttrace::TrackingLayer::with_options(lighttrace::Options::new())
    ///     .event_id_header(http::HeaderName::from_static("x-event-id"));
    /// ```
    #[must_use]
    pub fn event_id_header(mut self, name: http::HeaderName) -> Self {
        Arc::make_mut(&mut self.shared).event_id_header = Some(name);
        self
    }

    /// The client this layer reports through, e.g. to [`flush`](Client::flush) at shutdown.
    pub fn client(&self) -> &Client {
        &self.shared.client
    }
}

impl<S> Layer<S> for TrackingLayer {
    type Service = TrackingService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TrackingService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// What a [`transaction_name`](TrackingLayer::transaction_name) closure sees of a request.
#[derive(Debug)]
pub struct RequestInfo<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    route: Option<&'a str>,
}

impl<'a> RequestInfo<'a> {
    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request URI.
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The matched route template (axum's `MatchedPath`), if any.
    pub fn route(&self) -> Option<&'a str> {
        self.route
    }
}

/// The service [`TrackingLayer`] wraps around yours.
#[derive(Clone)]
pub struct TrackingService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for TrackingService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackingService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for TrackingService<S>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        if !shared.client.is_enabled() {
            // Nothing can be sent: only keep panics from taking the connection down.
            let req = req.map(|body| RequestBody::new(body, None));
            let kind = Kind::from_call(crate::scope::catch(|| self.inner.call(req)));
            return ResponseFuture::new(kind, None);
        }
        let started = SystemTime::now();
        let options = shared.client.options_ref();
        let body = body_capture(&req, options.max_request_body_size);
        let client_ip = if options.send_default_pii {
            client_ip(&req)
        } else {
            None
        };
        // One pass over the headers: the copy, and whether any carries an incoming trace.
        let mut traced = false;
        let mut headers = Vec::with_capacity(req.headers().len());
        for (name, value) in req.headers() {
            traced |= crate::scope::is_trace_header(name);
            headers.push((name.clone(), value.clone()));
        }
        let snapshot = RequestSnapshot {
            body: body.clone(),
            client_ip,
            route: route_of(&req, shared.name_fn.as_deref()),
            method: req.method().clone(),
            uri: req.uri().clone(),
            headers,
            started,
        };
        let incoming = if traced {
            crate::scope::incoming_trace(req.headers())
        } else {
            None
        };
        let (sampled, rate) = shared.client.sample_trace(&SamplingContext {
            method: req.method(),
            route: snapshot.route(),
            headers: req.headers(),
            parent_sampled: incoming.as_ref().and_then(|(i, _)| i.sampled),
        });
        let (trace, frozen) = match incoming {
            Some((incoming, frozen)) => (TraceIds::continuing(&incoming, sampled, rate), frozen),
            None => (TraceIds::new_root(sampled, rate), None),
        };
        let scope = Arc::new(RequestScope::new(
            shared.client.clone(),
            Some(snapshot),
            trace,
            frozen,
        ));
        let inner = &mut self.inner;
        let req = req.map(|b| RequestBody::new(b, body));
        let kind = Kind::from_call(crate::scope::catch(|| scope.enter(|| inner.call(req))));
        ResponseFuture::new(
            kind,
            Some(Tracking {
                scope,
                classifier: shared.classifier.clone(),
                event_id_header: shared.event_id_header.clone(),
            }),
        )
    }
}

/// A capture buffer for bodies worth showing (JSON, form, text) of methods that carry one.
fn body_capture<B>(req: &Request<B>, limit: usize) -> Option<Arc<BodyCapture>> {
    if limit == 0 || matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let kind = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(BodyKind::from_content_type)?;
    Some(Arc::new(BodyCapture::new(kind, limit)))
}

/// The client's address: the first `X-Forwarded-For` entry, else the peer from axum's
/// `ConnectInfo`.
fn client_ip<B>(req: &Request<B>) -> Option<std::net::IpAddr> {
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|ip| ip.trim().parse().ok());
    #[cfg(feature = "axum")]
    let forwarded = forwarded.or_else(|| {
        req.extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
    });
    forwarded
}

fn route_of<B>(req: &Request<B>, name_fn: Option<&NameFn>) -> Option<Route> {
    #[cfg(feature = "axum")]
    let matched = req.extensions().get::<axum::extract::MatchedPath>();
    if let Some(name_fn) = name_fn {
        let info = RequestInfo {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
            #[cfg(feature = "axum")]
            route: matched.map(|m| m.as_str()),
            #[cfg(not(feature = "axum"))]
            route: None,
        };
        if let Some(name) = name_fn(&info) {
            return Some(Route::Named(name));
        }
    }
    #[cfg(feature = "axum")]
    if let Some(path) = matched {
        return Some(Route::Axum(path.clone()));
    }
    None
}
