//! Per-request state, and the free functions that reach it from handlers and middleware.
//!
//! Each request's [`RequestScope`] is owned by that request's response future, which sets it as a
//! `tokio` task-local around every poll of the inner service. Free functions such as
//! [`add_breadcrumb`] therefore reach the scope of the request they run in and no other: there
//! is no thread-local hub to bind, and concurrent requests cannot see each other's state.

#[cfg(feature = "reqwest")]
mod outgoing;
mod panic;
mod propagate;
mod span;
mod task;

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::error::Error as StdError;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use sentry_types::protocol::v7::{
    Breadcrumb, DynamicSamplingContext, Event, Exception, Level, Span, User, Value,
};
use sentry_types::Uuid;

use crate::client::{Client, TraceHeader};
use crate::event::{self, PanicDetails, RequestSnapshot, TraceIds};
use sentry_types::protocol::v7::client_report::{Category, Reason};

#[cfg(feature = "reqwest")]
pub use outgoing::TracedRequest;
pub use panic::capture_panics;
pub(crate) use panic::{catch, install_hook, Caught};
pub use propagate::inject_trace_headers;
pub(crate) use propagate::{incoming_trace, is_trace_header};
pub use span::{start_span, SpanGuard};
pub use task::{spawn, spawn_named, FutureExt, InScope, InSpan, ReportErrors};

thread_local! {
    /// The scope of the request whose future (or a task forked from it) is being polled on this
    /// thread; set only for the length of that poll. It does what a tokio task-local does, but
    /// through a guard instead of a closure: the closure moved the request and the inner future
    /// in and out on every call and poll, which showed up as `memcpy` in the hot path.
    static CURRENT: RefCell<Option<Arc<RequestScope>>> = const { RefCell::new(None) };
}

/// The current request's scope, if code runs inside one. The borrow ends before it returns, so
/// whatever the caller then runs may enter other scopes.
pub(crate) fn current() -> Option<Arc<RequestScope>> {
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// Keeps a scope current until dropped, then restores the one before it (also on unwind).
/// Not `Send`: it must be dropped on the thread whose scope it set.
pub(crate) struct Entered {
    prev: Option<Arc<RequestScope>>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let prev = self.prev.take();
        // The replaced scope is dropped after the borrow has ended.
        let _ = CURRENT.try_with(|c| c.replace(prev));
    }
}

/// The state of one request: its trace ids, the request snapshot, and what handlers added (user,
/// tags, extra data, breadcrumbs, spans).
pub(crate) struct RequestScope {
    pub(crate) client: Client,
    pub(crate) request: Option<RequestSnapshot>,
    pub(crate) trace: TraceIds,
    /// Whether spans started in this scope are recorded (a sampled request's own scope).
    pub(crate) records_spans: bool,
    /// The sampling context an upstream service froze, forwarded unchanged (boxed: it is rare,
    /// and the scope is allocated per request).
    pub(crate) frozen_dsc: Option<Box<DynamicSamplingContext>>,
    /// Allocated on first change: most requests never touch it, and an empty one still cost
    /// its size in every request's allocation and a drop of each collection.
    state: Mutex<Option<Box<ScopeState>>>,
}

/// What handlers can change. Also used, process-wide, for captures outside any request.
#[derive(Clone)]
pub(crate) struct ScopeState {
    /// Boxed: most requests set none, and the scope is allocated per request.
    user: Option<Box<User>>,
    tags: BTreeMap<String, String>,
    extra: BTreeMap<String, Value>,
    breadcrumbs: VecDeque<Breadcrumb>,
    /// Finished child spans.
    spans: Vec<Span>,
    /// Open child spans, innermost last: the parent of a new span.
    open_spans: Vec<sentry_types::protocol::v7::SpanId>,
    spans_dropped: u32,
    fingerprint: Option<Vec<String>>,
}

impl ScopeState {
    const fn new() -> Self {
        ScopeState {
            user: None,
            tags: BTreeMap::new(),
            extra: BTreeMap::new(),
            breadcrumbs: VecDeque::new(),
            spans: Vec::new(),
            open_spans: Vec::new(),
            spans_dropped: 0,
            fingerprint: None,
        }
    }
}

/// Scope for captures outside any request, used with the global client.
static PROCESS_SCOPE: Mutex<Option<Box<ScopeState>>> = Mutex::new(None);

/// What an untouched state reads as.
static EMPTY: ScopeState = ScopeState::new();

/// A locked scope state: reads see an empty state until the first change allocates it.
pub(crate) struct StateGuard<'a>(MutexGuard<'a, Option<Box<ScopeState>>>);

impl std::ops::Deref for StateGuard<'_> {
    type Target = ScopeState;

    fn deref(&self) -> &ScopeState {
        self.0.as_deref().unwrap_or(&EMPTY)
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut ScopeState {
        self.0.get_or_insert_with(|| Box::new(ScopeState::new()))
    }
}

impl StateGuard<'_> {
    /// Takes the finished spans and the count of those dropped over the cap, without
    /// allocating a state that was never touched.
    fn take_spans(&mut self) -> (Vec<Span>, u32) {
        match self.0.as_deref_mut() {
            Some(state) => (
                std::mem::take(&mut state.spans),
                std::mem::take(&mut state.spans_dropped),
            ),
            None => (Vec::new(), 0),
        }
    }
}

fn lock(m: &Mutex<Option<Box<ScopeState>>>) -> StateGuard<'_> {
    StateGuard(m.lock().unwrap_or_else(|e| e.into_inner()))
}

impl RequestScope {
    pub(crate) fn new(
        client: Client,
        request: Option<RequestSnapshot>,
        trace: TraceIds,
        frozen_dsc: Option<Box<DynamicSamplingContext>>,
    ) -> Self {
        RequestScope {
            client,
            request,
            records_spans: trace.sampled,
            trace,
            frozen_dsc,
            state: Mutex::new(None),
        }
    }

    /// A copy for spawned work: the same request and trace, and the user, tags and breadcrumbs
    /// as they are now. Changes on either side do not reach the other, and the copy records no
    /// spans (the request's transaction may be long gone when the work finishes).
    pub(crate) fn fork(&self, task: Option<&str>) -> RequestScope {
        // An untouched state stays unallocated in the copy too.
        let mut state = self.state().0.as_deref().cloned().map(Box::new);
        if let Some(state) = state.as_deref_mut() {
            state.spans = Vec::new();
            state.open_spans = Vec::new();
        }
        if let Some(task) = task {
            let state = state.get_or_insert_with(|| Box::new(ScopeState::new()));
            state.tags.insert("task".into(), task.to_owned());
        }
        RequestScope {
            client: self.client.clone(),
            request: self.request.clone(),
            // Same trace and sampling decision (outgoing calls from the task propagate them),
            // but no spans: the request's transaction may be long gone.
            trace: self.trace,
            records_spans: false,
            frozen_dsc: self.frozen_dsc.clone(),
            state: Mutex::new(state),
        }
    }

    pub(crate) fn set_tag(&self, key: &str, value: &str) {
        self.state().tags.insert(key.to_owned(), value.to_owned());
    }

    /// The envelope trace header for this scope's trace.
    fn trace_header<'a>(&'a self, transaction: Option<&'a str>) -> TraceHeader<'a> {
        TraceHeader {
            trace_id: self.trace.trace_id,
            transaction,
            sampled: self.trace.sampled,
            sample_rate: Some(self.trace.sample_rate),
            frozen: self.frozen_dsc.as_deref(),
        }
    }

    /// Reports a panic caught in this scope, off the request task: symbolicating the stack
    /// trace can take milliseconds.
    pub(crate) fn report_panic(self: &Arc<Self>, details: PanicDetails, status: Option<u16>) {
        let scope = self.clone();
        let timestamp = SystemTime::now();
        self.client.defer(&[Category::Error], move || {
            scope.send_panic(&details, status, timestamp, None);
        });
    }

    /// Builds and sends a panic event (the expensive part: symbolication).
    pub(crate) fn send_panic(
        &self,
        details: &PanicDetails,
        status: Option<u16>,
        at: SystemTime,
        event_id: Option<Uuid>,
    ) {
        // Decided before symbolicating: a dropped panic costs no symbol lookups.
        if !self.client.sample_error() {
            return;
        }
        let mut event = exception_event(
            vec![event::panic_exception(
                details,
                &self.client.options_ref().in_app(),
            )],
            Level::Fatal,
        );
        event.timestamp = at;
        if let Some(id) = event_id {
            event.event_id = id;
        }
        self.send_sampled_event(event, status);
    }

    /// Makes this scope the current one until the guard is dropped.
    #[inline]
    pub(crate) fn entered(self: &Arc<Self>) -> Entered {
        let prev = CURRENT
            .try_with(|c| c.replace(Some(self.clone())))
            .ok()
            .flatten();
        Entered {
            prev,
            _not_send: std::marker::PhantomData,
        }
    }

    /// Runs `f` with this scope as the current one.
    #[inline]
    pub(crate) fn enter<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> R {
        let _entered = self.entered();
        f()
    }

    pub(crate) fn state(&self) -> StateGuard<'_> {
        lock(&self.state)
    }

    pub(crate) fn transaction_name(&self) -> Option<String> {
        self.request.as_ref().map(RequestSnapshot::transaction_name)
    }

    /// Fills an event with everything the scope knows, and sends it.
    pub(crate) fn send_event(&self, event: Event<'static>, status: Option<u16>) -> Option<Uuid> {
        if !self.client.sample_error() {
            return None;
        }
        self.send_sampled_event(event, status)
    }

    fn send_sampled_event(&self, mut event: Event<'static>, status: Option<u16>) -> Option<Uuid> {
        let name = self.transaction_name();
        if event.transaction.is_none() {
            event.transaction = name.clone();
        }
        let mut breadcrumbs = Vec::new();
        if let Some(request) = &self.request {
            event.request = Some(request.to_request_interface());
            breadcrumbs.push(request.breadcrumb());
        }
        let client_ip = self.request.as_ref().and_then(|r| r.client_ip);
        {
            let state = self.state();
            apply_state(&state, &mut event, breadcrumbs);
        }
        if let Some(ip) = client_ip {
            // Only collected with `send_default_pii`.
            let user = event.user.get_or_insert_with(Default::default);
            user.ip_address.get_or_insert(ip.into());
        }
        event.contexts.insert(
            "trace".into(),
            self.trace.trace_context("http.server", None),
        );
        if let Some(status) = status {
            event
                .contexts
                .insert("response".into(), event::response_context(status));
        }
        self.client
            .send_sampled_event(event, self.trace_header(name.as_deref()))
    }

    /// Counts the request's transaction as dropped for `reason` without building it, as a sink
    /// would count it: the transaction, and its spans (the root one included); spans already
    /// over the cap stay `buffer_overflow`.
    pub(crate) fn discard_transaction(&self, reason: Reason) {
        let (spans, over) = self.state().take_spans();
        if over > 0 {
            self.client
                .record_discard(Reason::BufferOverflow, Category::Span, over);
        }
        self.client.record_discard(reason, Category::Transaction, 1);
        let spans = u32::try_from(spans.len() + 1).unwrap_or(u32::MAX);
        self.client.record_discard(reason, Category::Span, spans);
    }

    /// Builds and sends the request's transaction. Only called for sampled requests.
    pub(crate) fn send_transaction(&self, status: u16, finished: SystemTime) {
        let Some(request) = &self.request else {
            return;
        };
        if let Some(reason) = self.client.sink_would_drop(Category::Transaction) {
            // Not built at all: the sink would throw it away.
            self.discard_transaction(reason);
            return;
        }
        let name = request.transaction_name();
        let span_status = event::span_status_for(status);
        let (user, tags, extra, spans) = {
            let mut state = self.state();
            let (spans, dropped) = state.take_spans();
            if dropped > 0 {
                self.client
                    .record_discard(Reason::BufferOverflow, Category::Span, dropped);
            }
            (
                state.user.as_deref().cloned(),
                state.tags.clone(),
                state.extra.clone(),
                spans,
            )
        };
        let mut contexts = BTreeMap::new();
        contexts.insert(
            "trace".into(),
            self.trace.trace_context("http.server", Some(span_status)),
        );
        contexts.insert("response".into(), event::response_context(status));
        let mut tx = event::new_transaction(name.clone(), request.started, finished);
        tx.user = user;
        tx.tags = tags;
        tx.extra = extra;
        tx.spans = spans;
        tx.contexts = contexts;
        tx.request = Some(request.to_request_interface());
        self.client
            .send_transaction(tx, self.trace_header(Some(&name)));
    }
}

/// Copies user, tags, extra data and breadcrumbs into an event (fields already set win).
fn apply_state(state: &ScopeState, event: &mut Event<'static>, mut breadcrumbs: Vec<Breadcrumb>) {
    if event.user.is_none() {
        event.user = state.user.as_deref().cloned();
    }
    if let Some(fingerprint) = &state.fingerprint {
        let default = event.fingerprint.len() == 1 && event.fingerprint[0] == "{{ default }}";
        if default {
            event.fingerprint = fingerprint
                .iter()
                .cloned()
                .map(Into::into)
                .collect::<Vec<_>>()
                .into();
        }
    }
    for (k, v) in &state.tags {
        event.tags.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for (k, v) in &state.extra {
        event.extra.entry(k.clone()).or_insert_with(|| v.clone());
    }
    breadcrumbs.extend(state.breadcrumbs.iter().cloned());
    breadcrumbs.append(&mut event.breadcrumbs.values);
    event.breadcrumbs = breadcrumbs.into();
}

/// Runs `f` on the current request's scope, or returns `None` outside any request.
pub(crate) fn with_current<R>(f: impl FnOnce(&Arc<RequestScope>) -> R) -> Option<R> {
    current().map(|scope| f(&scope))
}

/// Changes the current request's state, or the process-wide state when a global client exists.
fn with_state(f: impl FnOnce(&mut ScopeState, &Client)) {
    if let Some(scope) = current() {
        f(&mut scope.state(), &scope.client);
    } else if let Some(client) = Client::global() {
        f(&mut lock(&PROCESS_SCOPE), &client);
    }
}

/// Sends an event through the current request's scope, or through the global client.
fn send(event: Event<'static>) -> Option<Uuid> {
    match current() {
        Some(scope) => scope.send_event(event, None),
        None => send_outside(&Client::global()?, event),
    }
}

/// Sends an event captured outside any request, with the process-wide scope's state.
pub(crate) fn send_outside(client: &Client, mut event: Event<'static>) -> Option<Uuid> {
    apply_state(&lock(&PROCESS_SCOPE), &mut event, Vec::new());
    let trace = TraceIds::new_root(false, 0.0);
    event
        .contexts
        .insert("trace".into(), trace.trace_context("default", None));
    client.send_event(event, TraceHeader::unsampled(trace.trace_id))
}

/// Records a breadcrumb on the current request (or, outside requests, on the process-wide scope
/// of the global client). The oldest breadcrumbs go once `max_breadcrumbs` is reached.
///
/// ```
/// use lighttrace::{add_breadcrumb, Breadcrumb, Level};
///
/// async fn checkout() {
///     add_breadcrumb(Breadcrumb {
///         category: Some("payment".into()),
///         message: Some("Payment processing started".into()),
///         level: Level::Info,
///         data: [("amount".to_owned(), 29.99.into()), ("currency".to_owned(), "USD".into())]
///             .into_iter()
///             .collect(),
///         ..Default::default()
///     });
/// }
/// ```
pub fn add_breadcrumb(breadcrumb: Breadcrumb) {
    let scope = current();
    let Some(client) = scope
        .as_ref()
        .map(|s| s.client.clone())
        .or_else(Client::global)
    else {
        return;
    };
    let max = client.options_ref().max_breadcrumbs;
    if max == 0 {
        return;
    }
    // The user's hook runs before any lock is taken: it may itself add breadcrumbs, capture,
    // or panic without deadlocking the scope.
    let Some(crumb) = client.process_breadcrumb(breadcrumb) else {
        return;
    };
    let mut state = match &scope {
        Some(scope) => scope.state(),
        None => lock(&PROCESS_SCOPE),
    };
    while state.breadcrumbs.len() >= max {
        state.breadcrumbs.pop_front();
    }
    state.breadcrumbs.push_back(crumb);
}

/// Sets (or, with `None`, clears) the user of the current request. It is sent as given:
/// explicitly set data is never scrubbed away.
///
/// ```
/// lighttrace::set_user(Some(lighttrace::User { id: Some("42".into()), ..Default::default() }));
/// ```
pub fn set_user(user: Option<User>) {
    with_state(|state, _| state.user = user.map(Box::new));
}

/// Groups the current request's events by this fingerprint instead of Sentry's default
/// grouping (`None` restores it). `"{{ default }}"` keeps the default grouping as one part.
/// An event built with its own fingerprint keeps it.
///
/// ```
/// // All timeouts of one upstream are one issue, whatever the message says.
/// lighttrace::set_fingerprint(Some(vec!["{{ default }}".into(), "payments-timeout".into()]));
/// ```
pub fn set_fingerprint(fingerprint: Option<Vec<String>>) {
    with_state(|state, _| state.fingerprint = fingerprint);
}

/// Sets a tag on the current request's events and transaction.
///
/// ```
/// lighttrace::set_tag("tenant", "acme");
/// ```
pub fn set_tag(key: impl Into<String>, value: impl Into<String>) {
    let (key, value) = (key.into(), value.into());
    with_state(|state, _| {
        state.tags.insert(key, value);
    });
}

/// Attaches arbitrary data to the current request's events (scrubbed like everything else).
///
/// ```
/// lighttrace::set_extra("cart_items", 3.into());
/// ```
pub fn set_extra(key: impl Into<String>, value: Value) {
    let key = key.into();
    with_state(|state, _| {
        state.extra.insert(key, value);
    });
}

/// Reports an error, with its `source()` chain, in the context of the current request. Returns
/// the event id when it was sent.
///
/// ```
/// # async fn load() -> Result<(), std::io::Error> { Ok(()) }
/// async fn handler() -> &'static str {
///     if let Err(err) = load().await {
///         lighttrace::capture_error(&err); // report it, then degrade gracefully
///     }
///     "ok"
/// }
/// ```
pub fn capture_error<E>(error: &E) -> Option<Uuid>
where
    E: CapturableError + ?Sized,
{
    let exceptions = event::error_chain(error.as_error(), error.type_name(), "generic", true);
    send(exception_event(exceptions, Level::Error))
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

pub(crate) fn exception_event(exceptions: Vec<Exception>, level: Level) -> Event<'static> {
    let mut event = event::new_event(level, SystemTime::now());
    event.exception = exceptions.into();
    event
}

/// Reports a message in the context of the current request. Returns the event id when it was
/// sent.
///
/// ```
/// lighttrace::capture_message("cache miss storm", lighttrace::Level::Warning);
/// ```
pub fn capture_message(message: impl Into<String>, level: Level) -> Option<Uuid> {
    let mut event = event::new_event(level, SystemTime::now());
    event.message = Some(message.into());
    send(event)
}

/// The trace id of the current request, e.g. to log it or return it to a client.
///
/// ```
/// assert!(lighttrace::current_trace_id().is_none()); // outside any request
/// ```
pub fn current_trace_id() -> Option<String> {
    with_current(|scope| scope.trace.trace_id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;

    fn scope() -> Arc<RequestScope> {
        let client = Client::new(Options::new());
        Arc::new(RequestScope::new(
            client,
            None,
            TraceIds::new_root(false, 0.0),
            None,
        ))
    }

    fn is_current(scope: &Arc<RequestScope>) -> bool {
        current().is_some_and(|c| Arc::ptr_eq(&c, scope))
    }

    #[test]
    fn entering_nests_and_restores_the_scope_before() {
        let (outer, inner) = (scope(), scope());
        assert!(current().is_none());
        outer.enter(|| {
            assert!(is_current(&outer));
            inner.enter(|| assert!(is_current(&inner)));
            assert!(is_current(&outer));
        });
        assert!(current().is_none());
    }

    #[test]
    fn reading_or_forking_an_untouched_scope_allocates_no_state() {
        let s = scope();
        assert!(s.state().breadcrumbs.is_empty());
        assert!(s.state().take_spans().0.is_empty());
        assert!(lock(&s.state).0.is_none());
        assert!(lock(&s.fork(None).state).0.is_none());
        let named = s.fork(Some("job"));
        assert_eq!(
            named.state().tags.get("task").map(String::as_str),
            Some("job")
        );
        s.set_tag("k", "v");
        assert_eq!(s.state().tags.get("k").map(String::as_str), Some("v"));
    }

    #[test]
    fn a_panic_inside_still_restores_the_scope_before() {
        let (outer, inner) = (scope(), scope());
        outer.enter(|| {
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                inner.enter(|| panic!("boom"))
            }));
            assert!(caught.is_err());
            assert!(is_current(&outer));
        });
        assert!(current().is_none());
        // Only the test's own handles are left: entering leaked no reference.
        assert_eq!(Arc::strong_count(&outer), 1);
        assert_eq!(Arc::strong_count(&inner), 1);
    }
}
