//! Outgoing HTTP with reqwest: trace headers plus an `http.client` span.

use std::future::Future;

use sentry_types::protocol::v7::SpanStatus;

use crate::event::span_status_for;
use crate::scope::{inject_current, Running};

/// Sends a reqwest request as part of the current request's trace: it carries the trace headers
/// (within [`trace_propagation_targets`](crate::Options::trace_propagation_targets)), and is
/// recorded as an `http.client` span with the method, the URL (without query string or
/// credentials) and the response status.
///
/// ```no_run
/// use lighttrace::TracedRequest;
///
/// async fn handler(client: reqwest::Client) -> Result<String, lighttrace::HandlerError> {
///     let res = client.get("http://inventory.internal/items").send_traced().await?;
///     Ok(res.text().await?)
/// }
/// ```
pub trait TracedRequest {
    /// Sends the request like `RequestBuilder::send`, traced.
    fn send_traced(self) -> impl Future<Output = reqwest::Result<reqwest::Response>> + Send;
}

impl TracedRequest for reqwest::RequestBuilder {
    fn send_traced(self) -> impl Future<Output = reqwest::Result<reqwest::Response>> + Send {
        let (client, request) = self.build_split();
        async move {
            let mut request = request?;
            let mut url = request.url().clone();
            let full_url = url.to_string();
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            let method = request.method().to_string();
            let mut span = Running::start("http.client".to_owned(), format!("{method} {url}"));
            if let Some(span) = span.as_mut() {
                span.set_data("http.request.method", method.clone().into());
                span.set_data("url", url.to_string().into());
            }
            let parent = span.as_ref().and_then(Running::id);
            inject_current(&full_url, request.headers_mut(), parent);
            // Dropped before the response (cancelled), the span is recorded as cancelled.
            let result = client.execute(request).await;
            if let Some(mut span) = span {
                let status = match &result {
                    Ok(res) => {
                        let code = res.status().as_u16();
                        span.set_data("http.response.status_code", code.into());
                        span_status_for(code)
                    }
                    Err(e) if e.is_timeout() => SpanStatus::DeadlineExceeded,
                    Err(_) => SpanStatus::InternalError,
                };
                span.set_status(status);
                span.finish(SpanStatus::Ok);
            }
            result
        }
    }
}
