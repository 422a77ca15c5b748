//! The user's hooks, each run contained: a hook that panics drops what it was given, which is
//! counted as an `event_processor` discard, and nothing else is affected.

use sentry_types::protocol::v7::{Breadcrumb, Event, Transaction};

use crate::options::Options;
use crate::util::unwind::contain;

/// What a hook made of its input.
pub(crate) enum Verdict<T> {
    /// Send this (the hook's return value, or the input when there is no hook).
    Keep(T),
    /// The hook returned `None`: counted as `before_send`.
    Dropped,
    /// The hook panicked: counted as `event_processor`.
    Panicked,
}

fn verdict<T>(outcome: Option<Option<T>>) -> Verdict<T> {
    match outcome {
        Some(Some(kept)) => Verdict::Keep(kept),
        Some(None) => Verdict::Dropped,
        None => Verdict::Panicked,
    }
}

/// `before_send`, contained. The event stays boxed when there is no hook to hand it to.
pub(crate) fn before_send(
    options: &Options,
    event: Box<Event<'static>>,
) -> Verdict<Box<Event<'static>>> {
    match &options.before_send {
        Some(hook) => verdict(contain(|| hook(*event).map(Box::new))),
        None => Verdict::Keep(event),
    }
}

/// `before_send_transaction`, contained.
pub(crate) fn before_send_transaction(
    options: &Options,
    tx: Transaction<'static>,
) -> Verdict<Transaction<'static>> {
    match &options.before_send_transaction {
        Some(hook) => verdict(contain(|| hook(tx))),
        None => Verdict::Keep(tx),
    }
}

/// `before_breadcrumb`, contained: a breadcrumb whose hook panics is left out.
pub(crate) fn before_breadcrumb(options: &Options, crumb: Breadcrumb) -> Option<Breadcrumb> {
    match &options.before_breadcrumb {
        Some(hook) => contain(|| hook(crumb)).flatten(),
        None => Some(crumb),
    }
}
