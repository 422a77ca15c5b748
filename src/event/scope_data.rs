//! What handlers add to a scope (user, tags, extra data, breadcrumbs, fingerprint, spans), as
//! plain data, and how it is applied to an event.

use std::collections::{BTreeMap, VecDeque};

use sentry_types::protocol::v7::{Breadcrumb, Event, User, Value};

use super::{Crumb, SpanRecord};

/// The mutable part of a scope. A request's scope allocates it on first change; the process-wide
/// scope (captures outside requests) has one too.
#[derive(Clone, Debug, Default)]
pub(crate) struct ScopeData {
    /// Boxed: most requests set none.
    pub(crate) user: Option<Box<User>>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) extra: BTreeMap<String, Value>,
    /// The newest `max_breadcrumbs`, oldest first, not yet passed through `before_breadcrumb`
    /// (which runs off the request task, when an event carrying them is built).
    pub(crate) breadcrumbs: VecDeque<Crumb>,
    pub(crate) fingerprint: Option<Vec<String>>,
    /// Finished child spans of the request's transaction.
    pub(crate) spans: Vec<SpanRecord>,
    /// Spans dropped over `max_spans`, to be counted with the transaction.
    pub(crate) spans_dropped: u32,
}

impl ScopeData {
    /// Keeps `crumb`, dropping the oldest so that at most `max` are kept.
    pub(crate) fn push_breadcrumb(&mut self, crumb: Crumb, max: usize) {
        if max == 0 {
            return;
        }
        while self.breadcrumbs.len() >= max {
            self.breadcrumbs.pop_front();
        }
        if self.breadcrumbs.capacity() == 0 {
            // One allocation for a request's usual handful, instead of growing through 4 and 8.
            self.breadcrumbs.reserve_exact(max.min(16));
        }
        self.breadcrumbs.push_back(crumb);
    }

    /// A copy for an event or for spawned work: everything but the spans, which belong to the
    /// request's transaction alone.
    pub(crate) fn without_spans(&self) -> ScopeData {
        ScopeData {
            user: self.user.clone(),
            tags: self.tags.clone(),
            extra: self.extra.clone(),
            breadcrumbs: self.breadcrumbs.clone(),
            fingerprint: self.fingerprint.clone(),
            spans: Vec::new(),
            spans_dropped: 0,
        }
    }

    /// An estimate of the heap bytes this keeps alive, for bounding queues by memory: the
    /// containers' own sizes, and a flat allowance per breadcrumb and span (walking every
    /// value would cost each traced request more than the estimate is worth).
    pub(crate) fn retained_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.tags.len() * 96
            + self.extra.len() * 128
            + self.breadcrumbs.capacity() * std::mem::size_of::<Crumb>()
            + self.breadcrumbs.len() * 128
            + self.spans.capacity() * std::mem::size_of::<SpanRecord>()
            + self.spans.len() * 96
    }
}

/// Copies user, fingerprint, tags and extra data into an event (fields the event already has
/// win), and sets its breadcrumbs: `leading` (such as the request's own), then the scope's, then
/// the event's own, each passed through `keep` (the `before_breadcrumb` hook), of which the
/// newest `max` are kept.
pub(crate) fn apply_to_event(
    data: Option<&ScopeData>,
    event: &mut Event<'static>,
    leading: Option<Breadcrumb>,
) {
    if let Some(data) = data {
        if event.user.is_none() {
            event.user = data.user.as_deref().cloned();
        }
        if let Some(fingerprint) = &data.fingerprint {
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
        for (k, v) in &data.tags {
            event.tags.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in &data.extra {
            event.extra.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    // Every candidate, oldest first: the request's own, the scope's, then the event's. The
    // client bounds them and runs `before_breadcrumb` over them, newest first.
    let own = std::mem::take(&mut event.breadcrumbs.values);
    let scoped = data.into_iter().flat_map(|d| d.breadcrumbs.iter());
    let mut all: Vec<Breadcrumb> =
        Vec::with_capacity(own.len() + 1 + data.map_or(0, |d| d.breadcrumbs.len()));
    all.extend(leading);
    all.extend(scoped.map(|c| c.clone().into_breadcrumb()));
    all.extend(own);
    event.breadcrumbs = all.into();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crumb(message: &str) -> Breadcrumb {
        Breadcrumb {
            message: Some(message.to_owned()),
            ..Default::default()
        }
    }

    fn messages(event: &Event<'static>) -> Vec<String> {
        event
            .breadcrumbs
            .values
            .iter()
            .map(|c| c.message.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn the_ring_keeps_the_newest() {
        let mut data = ScopeData::default();
        for i in 0..5 {
            data.push_breadcrumb(crumb(&i.to_string()).into(), 3);
        }
        let kept: Vec<_> = data
            .breadcrumbs
            .iter()
            .map(|c| c.clone().into_breadcrumb().message)
            .collect();
        assert_eq!(kept, [Some("2".into()), Some("3".into()), Some("4".into())]);
        data.push_breadcrumb(crumb("x").into(), 0);
        assert_eq!(data.breadcrumbs.len(), 3);
    }

    #[test]
    fn an_event_gets_every_candidate_breadcrumb_oldest_first() {
        let mut data = ScopeData::default();
        for i in 0..3 {
            data.push_breadcrumb(crumb(&format!("c{i}")).into(), 3);
        }
        let mut event = Event::new();
        event.breadcrumbs = vec![crumb("own")].into();
        apply_to_event(Some(&data), &mut event, Some(crumb("request")));
        assert_eq!(messages(&event), ["request", "c0", "c1", "c2", "own"]);
    }

    #[test]
    fn event_fields_win_over_scope_data() {
        let mut data = ScopeData::default();
        data.tags.insert("a".into(), "scope".into());
        data.tags.insert("b".into(), "scope".into());
        data.fingerprint = Some(vec!["fp".into()]);
        let mut event = Event::new();
        event.tags.insert("a".into(), "event".into());
        apply_to_event(Some(&data), &mut event, None);
        assert_eq!(event.tags["a"], "event");
        assert_eq!(event.tags["b"], "scope");
        assert_eq!(event.fingerprint[0], "fp");
    }
}
