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

/// An event's breadcrumbs (oldest first) bounded to the newest `max_breadcrumbs`, each passed
/// through `before_breadcrumb`: newest first, so the hook runs on no more breadcrumbs than the
/// event can carry.
pub(crate) fn bound_breadcrumbs(options: &Options, crumbs: &mut Vec<Breadcrumb>) {
    let max = options.max_breadcrumbs;
    if options.before_breadcrumb.is_none() {
        let over = crumbs.len().saturating_sub(max);
        crumbs.drain(..over);
        return;
    }
    let mut kept = Vec::with_capacity(crumbs.len().min(max));
    while kept.len() < max {
        let Some(crumb) = crumbs.pop() else { break };
        if let Some(crumb) = before_breadcrumb(options, crumb) {
            kept.push(crumb);
        }
    }
    kept.reverse();
    *crumbs = kept;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crumbs(messages: &[&str]) -> Vec<Breadcrumb> {
        messages
            .iter()
            .map(|m| Breadcrumb {
                message: Some((*m).to_owned()),
                ..Default::default()
            })
            .collect()
    }

    fn messages(crumbs: &[Breadcrumb]) -> Vec<String> {
        crumbs.iter().map(|c| c.message.clone().unwrap()).collect()
    }

    #[test]
    fn the_newest_are_kept_and_the_hook_runs_only_on_what_can_be_carried() {
        let mut list = crumbs(&["request", "c0", "c1", "c2", "own"]);
        bound_breadcrumbs(&Options::new().max_breadcrumbs(3), &mut list);
        assert_eq!(messages(&list), ["c1", "c2", "own"]);

        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        let options = Options::new()
            .max_breadcrumbs(3)
            .before_breadcrumb(move |c| {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Some(c)
            });
        let mut list = crumbs(&["request", "c0", "c1", "c2", "own"]);
        bound_breadcrumbs(&options, &mut list);
        assert_eq!(messages(&list), ["c1", "c2", "own"]);
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 3);

        let options = Options::new()
            .max_breadcrumbs(10)
            .before_breadcrumb(|c| (c.message.as_deref() != Some("c1")).then_some(c));
        let mut list = crumbs(&["request", "c0", "c1", "c2"]);
        bound_breadcrumbs(&options, &mut list);
        assert_eq!(messages(&list), ["request", "c0", "c2"]);
    }
}
