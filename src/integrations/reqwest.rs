//! Outgoing HTTP with reqwest, one call at a time: [`TracedRequest::send_traced`].

use std::future::Future;

use super::http_call::{Ended, HttpCall};

/// Sends a reqwest request as part of the current request's trace: it carries the trace headers
/// (within [`trace_propagation_targets`](crate::Options::trace_propagation_targets)), and is
/// recorded as an `http.client` span with the method, the URL (without query string or
/// credentials) and the response status, and an `http` breadcrumb. To trace every call a
/// client makes without changing each one, build it with [`ReqwestMiddleware`](crate::ReqwestMiddleware)
/// (feature `reqwest-middleware`).
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
            let call = start(&mut request);
            // Dropped before the response (cancelled), the span is recorded as cancelled.
            let result = client.execute(request).await;
            finish(call, result.as_ref().map(reqwest::Response::status));
            result
        }
    }
}

/// Starts recording `request`, putting the trace on its headers.
pub(super) fn start(request: &mut reqwest::Request) -> Option<HttpCall> {
    let uri: http::Uri = request.url().as_str().parse().ok()?;
    let method = request.method().clone();
    Some(HttpCall::start(&method, &uri, request.headers_mut()))
}

/// Ends the recording of a call with what reqwest answered.
pub(super) fn finish(call: Option<HttpCall>, result: Result<http::StatusCode, &reqwest::Error>) {
    let Some(call) = call else {
        return;
    };
    match result {
        Ok(status) => call.finish(Ended::Status(status), None),
        Err(error) => call.finish(
            Ended::Failed {
                timed_out: error.is_timeout(),
                reason: &error.to_string(),
            },
            None,
        ),
    }
}
