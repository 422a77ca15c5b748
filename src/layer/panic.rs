//! The panic hook that records a panic's location and stack trace before unwinding destroys the
//! stack, for panics inside a tracked request only.

use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use crate::event::PanicDetails;

thread_local! {
    /// Non-zero while this thread runs a tracked request's code.
    static TRACKED: Cell<u32> = const { Cell::new(0) };
    /// What the hook recorded for the latest tracked panic on this thread.
    static LAST: RefCell<Option<PanicDetails>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// Installs the hook once per process, chaining whatever hook was there before (so panics are
/// still printed as usual).
pub(crate) fn install_hook() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if TRACKED.with(Cell::get) > 0 {
                let location = info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
                let details = PanicDetails {
                    message: PanicDetails::message_of(info.payload()),
                    location,
                    // Capturing walks the stack; symbols are resolved later, and only if sent.
                    backtrace: Some(Backtrace::force_capture()),
                };
                LAST.with(|last| *last.borrow_mut() = Some(details));
            }
            previous(info);
        }));
    });
}

/// Runs `f` as tracked request code, catching a panic. On panic, returns what the hook recorded
/// (or at least the message, when another hook replaced ours).
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, PanicDetails> {
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
        let recorded = LAST.with(|last| last.borrow_mut().take());
        let message = PanicDetails::message_of(&*payload);
        match recorded {
            Some(details) if details.message == message => details,
            _ => PanicDetails {
                message,
                location: None,
                backtrace: None,
            },
        }
    })
}
