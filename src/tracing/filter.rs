//! What a `tracing` event becomes: an error event, a breadcrumb, a structured log, several of
//! them, or nothing.

use ::tracing::{Level, Metadata};

/// What a `tracing` event becomes. Combine with `|`:
///
/// ```
/// use lighttrace::tracing::EventFilter;
///
/// let both = EventFilter::BREADCRUMB | EventFilter::LOG;
/// assert!(both.contains(EventFilter::LOG));
/// assert!(!both.contains(EventFilter::EVENT));
/// assert!(EventFilter::IGNORE.is_ignore());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EventFilter(u8);

impl EventFilter {
    /// Nothing: the event is not looked at.
    pub const IGNORE: EventFilter = EventFilter(0);
    /// A breadcrumb on the scope it ran in.
    pub const BREADCRUMB: EventFilter = EventFilter(1);
    /// An error event (with an exception list when the event has an error field).
    pub const EVENT: EventFilter = EventFilter(2);
    /// A structured log (sent only when the layer's logs are [on](super::TracingLayer::logs)).
    pub const LOG: EventFilter = EventFilter(4);

    /// Whether every kind in `other` is in `self`.
    pub fn contains(self, other: EventFilter) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// `self` without the kinds in `other`.
    pub(crate) fn without(self, other: EventFilter) -> EventFilter {
        EventFilter(self.0 & !other.0)
    }

    /// Whether the event becomes nothing at all.
    pub fn is_ignore(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for EventFilter {
    type Output = EventFilter;

    fn bitor(self, other: EventFilter) -> EventFilter {
        EventFilter(self.0 | other.0)
    }
}

impl std::ops::BitOrAssign for EventFilter {
    fn bitor_assign(&mut self, other: EventFilter) {
        self.0 |= other.0;
    }
}

/// The default: `ERROR` becomes an error event, `WARN` and `INFO` breadcrumbs, `DEBUG` and
/// `TRACE` nothing.
///
/// ```
/// use lighttrace::tracing::{default_event_filter, EventFilter};
///
/// # fn main() {
/// let error = tracing::Level::ERROR;
/// # let _ = error;
/// // Inside a custom filter, fall back to the default for everything else:
/// let filter = |meta: &tracing::Metadata<'_>| {
///     if meta.target().starts_with("hyper") {
///         EventFilter::IGNORE
///     } else {
///         default_event_filter(meta)
///     }
/// };
/// # let _ = filter;
/// # }
/// ```
pub fn default_event_filter(metadata: &Metadata<'_>) -> EventFilter {
    match *metadata.level() {
        Level::ERROR => EventFilter::EVENT,
        Level::WARN | Level::INFO => EventFilter::BREADCRUMB,
        _ => EventFilter::IGNORE,
    }
}

/// The default span filter: spans at `INFO` or more severe (`#[instrument]`'s default level)
/// become spans; the `DEBUG` and `TRACE` spans libraries open do not.
pub fn default_span_filter(metadata: &Metadata<'_>) -> bool {
    *metadata.level() <= Level::INFO
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_combine() {
        let mut f = EventFilter::IGNORE;
        assert!(f.is_ignore());
        assert!(!f.contains(EventFilter::IGNORE));
        f |= EventFilter::EVENT;
        assert!(f.contains(EventFilter::EVENT));
        assert!(!f.contains(EventFilter::EVENT | EventFilter::LOG));
        assert!((f | EventFilter::LOG).contains(EventFilter::EVENT | EventFilter::LOG));
    }
}
