//! lighttrace's own threads (the client's worker, the sinks' delivery threads) mark
//! themselves, so that what libraries log on them (an HTTP client's `tracing` events, say) is
//! never reported back through lighttrace: that would be a loop.

use std::cell::Cell;

thread_local! {
    static INTERNAL: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as one of lighttrace's own.
pub(crate) fn mark_thread() {
    let _ = INTERNAL.try_with(|i| i.set(true));
}

/// Whether the calling thread is one of lighttrace's own.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn is_internal_thread() -> bool {
    INTERNAL.try_with(Cell::get).unwrap_or(false)
}
