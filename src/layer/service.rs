//! [`TrackingService`]: opens a scope for each request and wraps the inner service's future.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use http::{Method, Request, Response};
use tower_service::Service;

use super::finish::Tracking;
use super::future::{Kind, ResponseFuture};
use super::meter::Meter;
use super::{grpc, LayerConfig, NameFn, RequestBody, RequestInfo, ResponseBody};
use crate::event::{BodyCapture, BodyKind, RequestSnapshot, Route, TraceIds};
use crate::options::SamplingContext;
use crate::scope::{self, RequestScope};
use crate::util::unwind::contain;

/// The service [`TrackingLayer`](super::TrackingLayer) wraps around yours.
///
/// ```
/// use lighttrace::{Options, RequestBody, TrackingLayer};
/// use tower::{service_fn, Layer};
///
/// let inner = service_fn(|_req: http::Request<RequestBody<String>>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// });
/// let mut service = TrackingLayer::with_options(Options::new()).layer(inner);
/// let _inner: &_ = service.get_ref();
/// let _inner_mut: &mut _ = service.get_mut();
/// let _inner = service.into_inner();
/// ```
#[derive(Clone)]
pub struct TrackingService<S> {
    inner: S,
    config: Arc<LayerConfig>,
}

impl<S> TrackingService<S> {
    pub(super) fn new(inner: S, config: Arc<LayerConfig>) -> Self {
        TrackingService { inner, config }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
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
    ResBody: http_body::Body + Default,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let config = &self.config;
        if !config.client.is_enabled() {
            let grpc = grpc::is_grpc(&req);
            // Nothing can be sent: keep panics from taking the connection down, and count
            // the request's latency.
            let meter = config.client.options_ref().track_latency.then(|| {
                let route = route_of(&req, grpc);
                let slot = config.client.latency_slot(req.method(), route.as_ref());
                slot.map(|slot| Meter::new(config.client.clone(), slot, SystemTime::now()))
            });
            let req = req.map(|body| RequestBody::new(body, None));
            let kind = Kind::from_call(scope::catch(false, || self.inner.call(req)));
            return ResponseFuture::new(kind, None, None, grpc).metered(meter.flatten());
        }
        let started = SystemTime::now();
        let options = config.client.options_ref();
        let client_ip = if options.send_default_pii {
            client_ip(&req)
        } else {
            None
        };
        // One pass over the headers: the copy, whether any carries an incoming trace, and the
        // content type (a gRPC call's, or a body worth capturing).
        let mut traced = false;
        let mut content_type = None;
        let mut headers = Vec::with_capacity(req.headers().len());
        for (name, value) in req.headers() {
            traced |= crate::propagation::is_trace_header(name);
            if name == http::header::CONTENT_TYPE {
                content_type = Some(value);
            }
            headers.push((name.clone(), value.clone()));
        }
        let grpc = req.method() == Method::POST
            && content_type.is_some_and(crate::event::grpc::is_grpc_content_type);
        let body = match grpc {
            true => None,
            false => body_capture(req.method(), content_type, options.max_request_body_size),
        };
        let route = route_of(&req, grpc);
        let slot = config.client.latency_slot(req.method(), route.as_ref());
        // A gRPC call is named after its method (its route), as Sentry's and OpenTelemetry's
        // RPC spans are, unless the user names it.
        let name = config.name_fn.as_deref().and_then(|f| name_of(&req, f));
        let snapshot = RequestSnapshot {
            body: body.clone(),
            client_ip,
            route,
            name,
            grpc,
            method: req.method().clone(),
            uri: req.uri().clone(),
            headers,
            started,
        };
        let incoming = if traced {
            crate::propagation::incoming_trace(req.headers(), options)
        } else {
            None
        };
        let (incoming, upstream) = incoming.unzip();
        let trace_id = incoming
            .as_ref()
            .map_or_else(crate::event::new_trace_id, |i| i.trace_id);
        let sample_rand = incoming
            .as_ref()
            .and_then(|i| i.sample_rand)
            .unwrap_or_else(|| crate::event::sample_rand_of(trace_id));
        let decision = config.client.sample_trace(&SamplingContext {
            method: req.method(),
            route: snapshot.route(),
            name: snapshot.name(),
            headers: req.headers(),
            parent_sampled: incoming.as_ref().and_then(|i| i.sampled),
            parent_sample_rate: incoming.as_ref().and_then(|i| i.sample_rate),
            sample_rand,
        });
        let mut trace = TraceIds::start(
            trace_id,
            incoming.as_ref(),
            decision.sampled,
            decision.rate,
            sample_rand,
        );
        if !options.tracing_enabled() {
            // Nothing is recorded here; the caller's decision still travels on.
            trace.decision = incoming.as_ref().and_then(|i| i.sampled);
        }
        let upstream = crate::client::Client::applied_rate(
            upstream.flatten(),
            &decision,
            incoming.as_ref().and_then(|i| i.sample_rate),
        );
        let scope = Arc::new(RequestScope::new(
            config.client.clone(),
            snapshot,
            trace,
            upstream,
        ));
        if let Some(user_fn) = &config.user_fn {
            // A closure that panics sets no user.
            if let Some(user) = contain(|| user_fn(&info_of(&req))).flatten() {
                scope.with_data(|data| data.user = Some(Box::new(user)));
            }
        }
        let call = grpc.then(|| grpc::call_of(&req));
        let inner = &mut self.inner;
        let req = req.map(|b| RequestBody::new(b, body));
        let mut span = None;
        let kind = Kind::from_call(scope::catch(true, || {
            scope.enter(&mut span, || inner.call(req))
        }));
        let tracking = Tracking::new(scope, config.clone(), slot, started, call);
        ResponseFuture::new(kind, Some(tracking), span, grpc)
    }
}

/// What the layer's closures see of a request.
fn info_of<B>(req: &Request<B>) -> RequestInfo<'_> {
    RequestInfo {
        method: req.method(),
        uri: req.uri(),
        headers: req.headers(),
        extensions: req.extensions(),
        #[cfg(feature = "axum")]
        route: req
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map(|m| m.as_str()),
        #[cfg(not(feature = "axum"))]
        route: None,
    }
}

/// A capture buffer for bodies worth showing (JSON, form, text) of methods that carry one.
fn body_capture(
    method: &Method,
    content_type: Option<&http::HeaderValue>,
    limit: usize,
) -> Option<Arc<BodyCapture>> {
    if limit == 0 || matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let kind = BodyKind::from_content_type(content_type?.to_str().ok()?)?;
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

/// The route template axum matched, if any; a gRPC call's method.
pub(super) fn route_of<B>(req: &Request<B>, grpc: bool) -> Option<Route> {
    if grpc {
        let path = req.uri().path_and_query().cloned();
        return path.map(Route::Grpc);
    }
    #[cfg(feature = "axum")]
    if let Some(path) = req.extensions().get::<axum::extract::MatchedPath>() {
        return Some(Route::Axum(path.clone()));
    }
    #[cfg(not(feature = "axum"))]
    let _ = req;
    None
}

/// The user's name for the request's transaction (a namer that panics counts as having no
/// opinion).
fn name_of<B>(req: &Request<B>, name_fn: &NameFn) -> Option<String> {
    contain(|| name_fn(&info_of(req))).flatten()
}
