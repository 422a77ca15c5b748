//! Panic capture: one process-wide hook, chained to whatever hook was there before.
//!
//! Inside tracked code (a request, or a task run `in_current_scope`) the hook only records the
//! panic's message, location and an unresolved stack; the code that catches the unwind reports
//! it. Outside tracked code it reports the panic itself through the global client, but only
//! after [`capture_panics`] opted in, and only by queueing: symbolication, scrubbing and
//! `before_send` run on the client's worker, never inside the hook. Panics of user hooks run
//! contained (and of layers with nothing to send to) are neither recorded nor reported. The hook
//! never flushes and never waits on I/O.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::SystemTime;

use sentry_types::protocol::v7::Level;

use super::process;
use crate::client::Client;
use crate::event::{self, Capture, Captured, PanicDetails};
use crate::util::unwind::{self, Mode};

thread_local! {
    /// What the hook recorded for the latest tracked panic on this thread.
    static LAST: RefCell<Option<PanicDetails>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();
static CAPTURE_UNTRACKED: AtomicBool = AtomicBool::new(false);

/// The payload of a panic that was already reported, re-raised so a `JoinHandle` still sees
/// the panic without a second event from an outer layer.
pub(crate) struct PanicAlreadyReported(pub(crate) String);

/// Installs the hook once per process, chaining the previous one (so panics are still printed).
pub(crate) fn install_hook() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            match unwind::mode() {
                Mode::Quiet => {}
                Mode::Tracked => {
                    let details = details_of(info);
                    let _ = LAST.try_with(|last| *last.borrow_mut() = Some(details));
                }
                Mode::Untracked => {
                    if CAPTURE_UNTRACKED.load(Ordering::Relaxed) {
                        report_untracked(info);
                    }
                }
            }
            previous(info);
        }));
    });
}

/// The message, location and (unresolved) stack of a panic. Walking the stack is cheap
/// enough; symbols are resolved only if the event is sent.
fn details_of(info: &std::panic::PanicHookInfo<'_>) -> PanicDetails {
    PanicDetails {
        message: message_of(info.payload()),
        location: info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column())),
        // Addresses only: symbols are resolved on the worker, for events that are sent.
        backtrace: Some(backtrace::Backtrace::new_unresolved()),
    }
}

/// Queues a panic outside any request or scoped task for the global client's worker.
fn report_untracked(info: &std::panic::PanicHookInfo<'_>) {
    let Some(client) = Client::global().filter(Client::is_enabled) else {
        return;
    };
    let origin_tag = std::thread::current()
        .name()
        .map(|name| ("thread", name.to_owned()));
    client.capture(Capture {
        event_id: event::new_event_id(),
        level: Level::Fatal,
        timestamp: SystemTime::now(),
        what: Captured::Panic(details_of(info)),
        origin_tag,
        // This thread may hold the process scope's lock: never wait for it here.
        context: process::capture_context(false),
    });
}

/// Reports panics on any thread or task outside a request (where the layer and scoped tasks
/// already report them) through the [global client](crate::Client::install_global), with their
/// location and stack trace. Call it once at startup; the hook that was installed before (such as
/// the default one that prints the panic) keeps running.
///
/// The hook only queues the panic: its stack is symbolicated, scrubbed and passed to
/// `before_send` on the client's worker, so a panicking `before_send` cannot abort the process
/// and a hung collector cannot freeze it. Flush the client before exiting to deliver what the
/// hook queued.
///
/// ```
/// # #[tokio::main] async fn main() {
/// let sink = lighttrace::MemorySink::new();
/// let client = lighttrace::Client::new(lighttrace::Options::new().sink(sink.clone()));
/// client.install_global();
/// lighttrace::capture_panics();
///
/// let _ = std::thread::Builder::new()
///     .name("importer".into())
///     .spawn(|| panic!("bad row 17"))
///     .unwrap()
///     .join();
/// assert!(client.flush(std::time::Duration::from_secs(5)).await);
/// let event = &sink.events()[0];
/// assert_eq!(event.exception.values[0].value.as_deref(), Some("bad row 17"));
/// assert_eq!(event.tags["thread"], "importer");
/// # }
/// ```
pub fn capture_panics() {
    install_hook();
    CAPTURE_UNTRACKED.store(true, Ordering::Relaxed);
}

/// The message of a panic payload.
pub(crate) fn message_of(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(PanicAlreadyReported(message)) = payload.downcast_ref::<PanicAlreadyReported>() {
        message.clone()
    } else {
        PanicDetails::message_of(payload)
    }
}

/// How tracked code ended in a panic.
pub(crate) enum Caught {
    /// Not reported yet: what the hook recorded (or at least the message).
    Fresh(PanicDetails),
    /// Reported further in (a scoped task awaited inline); only the 500 is left to do.
    AlreadyReported,
}

/// Runs `f` catching a panic: as tracked code when `tracked` (the hook records the panic's
/// stack for the caller to report), else quietly (nothing will report it: only the message is
/// kept).
#[inline]
pub(crate) fn catch<R>(tracked: bool, f: impl FnOnce() -> R) -> Result<R, Caught> {
    let mode = if tracked { Mode::Tracked } else { Mode::Quiet };
    unwind::catch_in(mode, f).map_err(|payload| {
        if payload.is::<PanicAlreadyReported>() {
            return Caught::AlreadyReported;
        }
        let recorded = LAST
            .try_with(|last| last.borrow_mut().take())
            .ok()
            .flatten();
        let message = message_of(&*payload);
        Caught::Fresh(match recorded {
            Some(details) if details.message == message => details,
            _ => PanicDetails {
                message,
                location: None,
                backtrace: None,
            },
        })
    })
}
