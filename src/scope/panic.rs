//! Panic capture: one process-wide hook, chained to whatever hook was there before.
//!
//! Inside tracked code (a request, or a task run `in_current_scope`) the hook only records the
//! panic's location and an unresolved stack trace; the code that catches the unwind reports it.
//! Outside tracked code it reports the panic itself through the global client, but only after
//! [`capture_panics`] opted in. It never flushes and never waits on I/O.

use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use sentry_types::protocol::v7::Level;

use crate::client::Client;
use crate::event::{self, PanicDetails};

thread_local! {
    /// Non-zero while this thread runs tracked code.
    static TRACKED: Cell<u32> = const { Cell::new(0) };
    /// What the hook recorded for the latest tracked panic on this thread.
    static LAST: RefCell<Option<PanicDetails>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();
static CAPTURE_UNTRACKED: AtomicBool = AtomicBool::new(false);

/// A panic payload that was already reported: re-raised so a `JoinHandle` still sees the panic,
/// without a second event from an outer layer.
pub(crate) struct Reported(pub(crate) String);

/// Installs the hook once per process, chaining the previous one (so panics are still printed).
pub(crate) fn install_hook() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            let message = message_of(info.payload());
            if TRACKED.with(Cell::get) > 0 {
                let details = PanicDetails {
                    message,
                    location,
                    // Walking the stack is cheap enough; symbols are resolved only if sent.
                    backtrace: Some(Backtrace::force_capture()),
                };
                LAST.with(|last| *last.borrow_mut() = Some(details));
            } else if CAPTURE_UNTRACKED.load(Ordering::Relaxed) {
                report_untracked(PanicDetails {
                    message,
                    location,
                    backtrace: Some(Backtrace::force_capture()),
                });
            }
            previous(info);
        }));
    });
}

/// Reports a panic outside any request or scoped task through the global client.
fn report_untracked(details: PanicDetails) {
    let Some(client) = Client::global() else {
        return;
    };
    let mut event = super::exception_event(
        vec![event::panic_exception(
            &details,
            &client.options_ref().in_app(),
        )],
        Level::Fatal,
    );
    if let Some(name) = std::thread::current().name() {
        event.tags.insert("thread".into(), name.to_owned());
    }
    // `send` only queues: a hung collector cannot freeze the panicking thread.
    super::send_outside(&client, event);
}

/// Reports panics on any thread or task outside a request (where the layer and scoped tasks
/// already report them) through the [global client](crate::Client::install_global), with their
/// location and stack trace. Call it once at startup; the hook that was installed before (such as
/// the default one that prints the panic) keeps running.
///
/// The hook never flushes or waits: a hung collector cannot freeze the process. Flush the client
/// before exiting to deliver what the hook queued.
///
/// ```
/// let client = lighttrace::Client::new(lighttrace::Options::new());
/// client.install_global();
/// lighttrace::capture_panics();
/// ```
pub fn capture_panics() {
    install_hook();
    CAPTURE_UNTRACKED.store(true, Ordering::Relaxed);
}

/// The message of a panic payload.
pub(crate) fn message_of(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(Reported(message)) = payload.downcast_ref::<Reported>() {
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

/// Runs `f` as tracked code, catching a panic.
#[inline]
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Caught> {
    struct Exit;
    impl Drop for Exit {
        fn drop(&mut self) {
            TRACKED.with(|t| t.set(t.get().saturating_sub(1)));
        }
    }
    TRACKED.with(|t| t.set(t.get() + 1));
    let exit = Exit;
    let result = catch_unwind(AssertUnwindSafe(f));
    drop(exit);
    result.map_err(|payload| {
        if payload.is::<Reported>() {
            return Caught::AlreadyReported;
        }
        let recorded = LAST.with(|last| last.borrow_mut().take());
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
