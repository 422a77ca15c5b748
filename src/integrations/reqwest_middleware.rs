//! [`ReqwestMiddleware`]: every call of a `reqwest_middleware::ClientWithMiddleware` traced,
//! with no change at the call sites.

use http::Extensions;
use reqwest_middleware::{Middleware, Next, Result};

/// A `reqwest-middleware` middleware (feature `reqwest-middleware`): each call the client makes
/// carries the trace headers (within
/// [`trace_propagation_targets`](crate::Options::trace_propagation_targets)) and is recorded
/// as an `http.client` span of the current request (method, URL without credentials or query,
/// the scrubbed query, the status) and an `http` breadcrumb, sampled request or not.
///
/// ```no_run
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(lighttrace::ReqwestMiddleware::new())
///     .build();
/// # async fn use_it(client: reqwest_middleware::ClientWithMiddleware) {
/// let res = client.get("http://inventory.internal/items").send().await;
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
#[must_use]
pub struct ReqwestMiddleware {
    _private: (),
}

impl ReqwestMiddleware {
    /// The middleware.
    pub fn new() -> Self {
        ReqwestMiddleware::default()
    }
}

#[async_trait::async_trait]
impl Middleware for ReqwestMiddleware {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<reqwest::Response> {
        let call = super::reqwest::start(&mut req);
        let result = next.run(req, extensions).await;
        match &result {
            Ok(response) => super::reqwest::finish(call, Ok(response.status())),
            Err(reqwest_middleware::Error::Reqwest(error)) => {
                super::reqwest::finish(call, Err(error));
            }
            Err(error) => {
                if let Some(call) = call {
                    let reason = error.to_string();
                    call.failed(&reason);
                }
            }
        }
        result
    }
}
