//! Finding the request a `tracing` span belongs to: a request's own span (made by the layer
//! around each poll of a sampled request) holds its scope, and a recorded span holds its
//! scope and id, so an event or a span on another thread finds its request by walking up its
//! span's ancestors.

use std::sync::Arc;

use ::tracing::Metadata;
use sentry_types::protocol::v7::SpanId;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use super::spans::SpanState;
use crate::scope::{self, RequestScope};

/// What a request's own span keeps in its extensions.
pub(super) struct RequestSpan {
    pub(super) scope: Arc<RequestScope>,
}

/// Whether `metadata` is a request's own span.
#[inline]
pub(super) fn is_request_span(metadata: &Metadata<'_>) -> bool {
    metadata.name() == scope::REQUEST_SPAN && metadata.target() == "lighttrace"
}

/// Ties a request's own span to the request current on this thread (the layer makes the span
/// with its scope current).
pub(super) fn on_new_request_span<'a, S>(span: &SpanRef<'a, S>)
where
    S: LookupSpan<'a>,
{
    if let Some(scope) = scope::with_current_ref(Arc::clone) {
        span.extensions_mut().insert(RequestSpan { scope });
    }
}

/// The request `span` or its nearest ancestor belongs to, and the span that is the parent of
/// what happens in it: a recorded span's, else the request's root.
pub(super) fn request_of<'a, S>(span: SpanRef<'a, S>) -> Option<(Arc<RequestScope>, SpanId)>
where
    S: LookupSpan<'a>,
{
    span.scope().find_map(|s| {
        let extensions = s.extensions();
        if let Some(state) = extensions.get::<SpanState>() {
            return Some((state.scope().clone(), state.id()));
        }
        extensions
            .get::<RequestSpan>()
            .map(|r| (r.scope.clone(), r.scope.trace.span_id))
    })
}
