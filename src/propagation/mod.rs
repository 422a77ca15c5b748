//! Trace propagation: the trace headers of incoming requests, and those that outgoing requests
//! carry.

mod targets;

pub(crate) use targets::propagates_to;
