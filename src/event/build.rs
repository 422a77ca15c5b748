//! Pure builders of protocol values: empty events and transactions, and the error event and
//! transaction of a finished request or a capture, assembled from plain data.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::SystemTime;

use sentry_types::protocol::v7::{Context, Event, Level, Request, ResponseContext, Transaction};

use super::ids::new_event_id;
use super::{
    panic_exception, Capture, Captured, DscInput, Failure, Finished, RequestSnapshot, TraceIds,
};
use crate::stacktrace::InApp;

/// An empty event with a fresh id. `Event::default()` would also make a v4 id, from the
/// system's random source; ours come from the fast thread-local generator.
pub(crate) fn new_event(level: Level, timestamp: SystemTime) -> Event<'static> {
    event_with_id(level, timestamp, new_event_id())
}

/// An empty event with the id it was promised under (a failed request's, given out in its
/// response).
fn event_with_id(
    level: Level,
    timestamp: SystemTime,
    event_id: sentry_types::Uuid,
) -> Event<'static> {
    Event {
        event_id,
        level,
        fingerprint: Cow::Borrowed(DEFAULT_FINGERPRINT),
        culprit: None,
        transaction: None,
        message: None,
        logentry: None,
        logger: None,
        modules: BTreeMap::new(),
        platform: Cow::Borrowed("native"),
        timestamp,
        server_name: None,
        release: None,
        dist: None,
        environment: None,
        user: None,
        request: None,
        contexts: BTreeMap::new(),
        breadcrumbs: Default::default(),
        exception: Default::default(),
        stacktrace: None,
        template: None,
        threads: Default::default(),
        tags: BTreeMap::new(),
        extra: BTreeMap::new(),
        debug_meta: Default::default(),
        sdk: None,
    }
}

const DEFAULT_FINGERPRINT: &[Cow<'static, str>] = &[Cow::Borrowed("{{ default }}")];

/// An empty transaction with a fresh id (see [`new_event`] for why not `Default`).
pub(crate) fn new_transaction(
    name: String,
    start_timestamp: SystemTime,
    timestamp: SystemTime,
) -> Transaction<'static> {
    Transaction {
        event_id: new_event_id(),
        name: Some(name),
        release: None,
        environment: None,
        user: None,
        tags: BTreeMap::new(),
        extra: BTreeMap::new(),
        sdk: None,
        platform: Cow::Borrowed("native"),
        timestamp: Some(timestamp),
        start_timestamp,
        spans: Vec::new(),
        contexts: BTreeMap::new(),
        request: None,
        server_name: None,
    }
}

/// The `response` context, so `before_send` can filter on the status code.
pub(crate) fn response_context(status: u16) -> Context {
    Context::Response(Box::new(ResponseContext {
        status_code: Some(u64::from(status)),
        ..Default::default()
    }))
}

/// Static SDK identity, shared by every event.
pub(crate) fn sdk_info() -> Cow<'static, sentry_types::protocol::v7::ClientSdkInfo> {
    use std::sync::OnceLock;
    static SDK: OnceLock<sentry_types::protocol::v7::ClientSdkInfo> = OnceLock::new();
    Cow::Borrowed(
        SDK.get_or_init(|| sentry_types::protocol::v7::ClientSdkInfo {
            name: crate::SDK_NAME.to_owned(),
            version: crate::SDK_VERSION.to_owned(),
            integrations: vec!["tower".to_owned()],
            packages: vec![sentry_types::protocol::v7::ClientSdkPackage {
                name: format!("cargo:{}", crate::SDK_NAME),
                version: crate::SDK_VERSION.to_owned(),
            }],
        }),
    )
}

/// The error event of a failed request, and the input of its sampling context.
///
/// Boxed once it is assembled: an `Event` is over a kilobyte, the envelope item holds it boxed,
/// and on its way there (sampler, defaults, scrubbing, hook) it would otherwise be copied whole
/// at every step. (Boxed before it is filled, the large block was taken from the allocator
/// while the many small ones were being freed and reused, which sent it down malloc's slow
/// path with a consolidation: 3.3k instructions more per event.)
/// `interface` is the request's `request` interface, built scrubbed by the client; the event's
/// breadcrumbs are every candidate, for the client to bound and pass through its hook.
pub(crate) fn failure_event(
    finished: &Finished,
    failure: &Failure,
    in_app: &InApp<'_>,
    interface: Request,
) -> (Box<Event<'static>>, DscInput) {
    // One event, filled in place: built in each arm, it was copied out of the arm as well.
    let (level, event_id) = match failure {
        Failure::Response { event_id, .. } => (Level::Error, *event_id),
        Failure::Panic { event_id, .. } => (Level::Fatal, *event_id),
        Failure::Grpc { event_id, .. } => (Level::Error, *event_id),
    };
    let mut event = event_with_id(level, finished.finished, event_id);
    match failure {
        Failure::Response { error, .. } => {
            match error {
                Some(error) => {
                    event.exception = error.exceptions("lighttrace.handler", in_app).into();
                }
                None => {
                    // The same title for the same status and route: identical failures group.
                    let name = finished.request.transaction_name();
                    event.message = Some(format!("HTTP {} on {name}", finished.status));
                }
            }
        }
        Failure::Panic { details, .. } => {
            event.exception = vec![panic_exception(details, in_app)].into();
            crate::stacktrace::attach_images(&mut event);
        }
        Failure::Grpc {
            code,
            message,
            exceptions,
            ..
        } => {
            // The same title for the same code and method: identical failures group; the
            // status's own message goes beside it.
            let name = finished.request.transaction_name();
            let code_name = super::grpc::code_name(i64::from(*code)).unwrap_or("UNKNOWN");
            event.message = Some(format!("gRPC {code_name} on {name}"));
            if let Some(exceptions) = exceptions {
                event.exception = exceptions.clone().into();
            }
            let mut grpc = BTreeMap::new();
            grpc.insert("status_code".to_owned(), (*code).into());
            if let Some(message) = message {
                grpc.insert("message".to_owned(), message.as_str().into());
            }
            event.contexts.insert("grpc".into(), Context::Other(grpc));
        }
    }
    apply_request(
        &mut event,
        &finished.request,
        interface,
        Some(finished.status),
    );
    let leading = Some(finished.request.breadcrumb());
    super::apply_to_event(finished.data.as_deref(), &mut event, leading);
    event.contexts.insert(
        "trace".into(),
        finished.trace.trace_context(finished.op(), None),
    );
    // The name `apply_request` gave the event, copied rather than composed again.
    let name = event
        .transaction
        .clone()
        .unwrap_or_else(|| finished.request.transaction_name());
    let dsc = DscInput::for_trace(&finished.trace, Some(name), finished.upstream_dsc.clone());
    (Box::new(event), dsc)
}

/// The event of a capture (boxed, as [`failure_event`]'s), and the input of its sampling
/// context.
pub(crate) fn capture_event(
    capture: Capture,
    in_app: &InApp<'_>,
    interface: Option<Request>,
) -> (Box<Event<'static>>, DscInput) {
    let Capture {
        event_id,
        level,
        timestamp,
        what,
        origin_tag,
        context,
    } = capture;
    let mut event = match what {
        Captured::Event(event) => event,
        Captured::Message(message) => {
            let mut event = Box::new(new_event(level, timestamp));
            event.message = Some(message);
            event
        }
        Captured::Exceptions(exceptions) => {
            let mut event = Box::new(new_event(level, timestamp));
            event.exception = exceptions.into();
            event
        }
        Captured::Panic(details) => {
            let mut event = Box::new(new_event(level, timestamp));
            event.exception = vec![panic_exception(&details, in_app)].into();
            crate::stacktrace::attach_images(&mut event);
            event
        }
    };
    event.event_id = event_id;
    if let Some((key, value)) = origin_tag {
        event.tags.insert(key.to_owned(), value);
    }
    let leading = match (context.request.as_ref(), interface) {
        (Some(request), Some(interface)) => {
            apply_request(&mut event, request, interface, None);
            Some(request.breadcrumb())
        }
        _ => None,
    };
    super::apply_to_event(context.data.as_deref(), &mut event, leading);
    let trace = context
        .trace
        .unwrap_or_else(|| TraceIds::new_root(false, 0.0));
    let op = if context.request.is_some() {
        "http.server"
    } else {
        "default"
    };
    if !event.contexts.contains_key("trace") {
        let mut ctx = trace.trace_context(op, None);
        if let (Context::Trace(t), Some(span_id)) = (&mut ctx, context.span_id) {
            // The span the capture happened in; its parent is unknown here.
            t.span_id = span_id;
            t.parent_span_id = None;
        }
        event.contexts.insert("trace".into(), ctx);
    }
    let dsc = match &context.request {
        Some(request) => DscInput::for_trace(
            &trace,
            Some(request.transaction_name()),
            context.upstream_dsc,
        ),
        None => DscInput::unsampled(trace.trace_id),
    };
    (event, dsc)
}

/// The request interface (`interface`, made of `request`), the transaction name, the client's
/// address (only collected with `send_default_pii`) and the response context of a request's
/// event.
pub(super) fn apply_request(
    event: &mut Event<'static>,
    request: &RequestSnapshot,
    interface: Request,
    status: Option<u16>,
) {
    if event.transaction.is_none() {
        event.transaction = Some(request.transaction_name());
    }
    event.request = Some(interface);
    if let Some(ip) = request.client_ip {
        let user = event.user.get_or_insert_with(Default::default);
        user.ip_address.get_or_insert(ip.into());
    }
    if let Some(status) = status {
        event
            .contexts
            .insert("response".into(), response_context(status));
    }
}

/// The transaction of a finished, sampled request, and the input of its sampling context.
///
/// Everything is copied out of `finished` rather than moved: what the request thread
/// allocated goes back to it to be freed (see the client's worker), so the allocator's free
/// lists are not fought over between threads.
/// `interface` is the request's `request` interface, built scrubbed by the client.
pub(crate) fn transaction(
    finished: &Finished,
    interface: Request,
) -> (Transaction<'static>, DscInput) {
    let server = finished;
    let Finished {
        request,
        trace,
        upstream_dsc,
        data,
        status,
        finished,
        ..
    } = finished;
    let name = request.transaction_name();
    let mut tx = new_transaction(name.clone(), request.started, *finished);
    if let Some(data) = data {
        tx.user = data.user.as_deref().cloned();
        tx.tags = data.tags.clone();
        tx.extra = data.extra.clone();
        tx.spans = data
            .spans
            .iter()
            .map(|s| s.to_span(trace.trace_id))
            .collect();
    }
    let mut trace_context = trace.trace_context(server.op(), Some(server.span_status()));
    if let Context::Trace(t) = &mut trace_context {
        for (key, value) in server.span_data() {
            t.data.insert(key.into(), value);
        }
    }
    tx.contexts.insert("trace".into(), trace_context);
    tx.contexts
        .insert("response".into(), response_context(*status));
    tx.request = Some(interface);
    let dsc = DscInput::for_trace(trace, Some(name), upstream_dsc.clone());
    (tx, dsc)
}
