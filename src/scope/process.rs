//! The process-wide scope: what `set_tag`, `add_breadcrumb` and friends change outside any
//! request (when a global client is installed), and what captures outside requests carry.

use std::sync::{Mutex, OnceLock};

use sentry_types::protocol::v7::TraceId;

use crate::event::{CaptureContext, ScopeData};

static PROCESS: Mutex<Option<Box<ScopeData>>> = Mutex::new(None);

/// Changes the process-wide scope.
pub(super) fn with_data(f: impl FnOnce(&mut ScopeData)) {
    let mut data = PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    f(data.get_or_insert_with(Default::default));
}

/// A copy of the process-wide scope for a capture outside any request. With `wait == false`
/// (inside the panic hook, where this thread may already hold the lock) a busy lock gives an
/// empty copy instead of a deadlock.
pub(crate) fn capture_context(wait: bool) -> CaptureContext {
    let copy = |data: &Option<Box<ScopeData>>| data.as_deref().map(|d| Box::new(d.without_spans()));
    let data = if wait {
        copy(&PROCESS.lock().unwrap_or_else(|e| e.into_inner()))
    } else {
        match PROCESS.try_lock() {
            Ok(guard) => copy(&guard),
            Err(std::sync::TryLockError::Poisoned(e)) => copy(&e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    };
    CaptureContext {
        data,
        ..Default::default()
    }
}

#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
/// The trace that logs outside any request belong to: one per process, as a request's logs
/// share its trace.
pub(crate) fn trace_id() -> TraceId {
    static TRACE: OnceLock<TraceId> = OnceLock::new();
    *TRACE.get_or_init(|| TraceId::from(fastrand::u128(1..).to_be_bytes()))
}
