//! Filters: what never becomes a transaction or an error event. Each is checked before
//! anything is built, and what it drops is counted in client reports as `event_processor`, as
//! `sentry-python` does.

use std::sync::Arc;

use sentry_types::protocol::v7::Event;

use super::Options;

impl Options {
    /// Requests that never become transactions: exact transaction names (`"GET /health"`) or
    /// route templates (`"/health"`, any method). Checked when the request arrives, before
    /// anything is recorded; errors of those requests are still reported. (`sentry-python`:
    /// `ignore_transactions`.)
    ///
    /// ```
    /// let options = lighttrace::Options::new().ignore_transactions(["/health", "GET /metrics"]);
    /// ```
    pub fn ignore_transactions<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ignore_transactions = names.into_iter().map(Into::into).collect();
        self
    }

    /// The request methods that are traced (default: all but `HEAD` and `OPTIONS`, whose CORS
    /// preflights and health probes would crowd out real traffic). Requests with other methods
    /// record no transaction; their errors are still reported. (`sentry-python`:
    /// `http_methods_to_capture`.)
    ///
    /// ```
    /// let options = lighttrace::Options::new()
    ///     .http_methods_to_capture([http::Method::GET, http::Method::POST]);
    /// ```
    pub fn http_methods_to_capture(
        mut self,
        methods: impl IntoIterator<Item = http::Method>,
    ) -> Self {
        self.http_methods_to_capture = Some(methods.into_iter().collect());
        self
    }

    /// Response statuses whose transactions are dropped (e.g. 404 for scanners), counted as
    /// `event_processor` with their spans; never reported as errors. (`sentry-python`:
    /// `trace_ignore_status_codes`.)
    ///
    /// ```
    /// let options = lighttrace::Options::new().trace_ignore_status_codes([404, 405]);
    /// ```
    pub fn trace_ignore_status_codes(mut self, codes: impl IntoIterator<Item = u16>) -> Self {
        self.trace_ignore_status_codes = codes.into_iter().collect();
        self
    }

    /// Errors that never become events, by type name, matched against every error of the
    /// `source()` chain as events show them (`"io::Error"`, `"DbError"`, `"sqlx::Error"`);
    /// `"panic"` matches panics. (`sentry-python`: `ignore_errors`, with class names.)
    ///
    /// ```
    /// let options = lighttrace::Options::new().ignore_errors(["ConnectionReset", "io::Error"]);
    /// ```
    pub fn ignore_errors<I, S>(mut self, type_names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ignore_errors = type_names.into_iter().map(Into::into).collect();
        self
    }

    /// Response statuses that never become error events, although the classifier calls them
    /// failures (e.g. 503 during planned maintenance). (`sentry-python`:
    /// `failed_request_status_codes` says the opposite: which statuses are failures.)
    ///
    /// ```
    /// let options = lighttrace::Options::new().ignore_error_statuses([503]);
    /// ```
    pub fn ignore_error_statuses(mut self, codes: impl IntoIterator<Item = u16>) -> Self {
        self.ignore_error_statuses = codes.into_iter().collect();
        self
    }

    /// Decides the sample rate of each error event (0.0 to 1.0), in place of
    /// [`sample_rate`](Self::sample_rate): keep every rare error, a tenth of a noisy one. It sees
    /// the event as built, before scrubbing and `before_send`, on the client's worker; if it
    /// panics the event is kept. (`sentry-python`: `error_sampler`.)
    ///
    /// ```
    /// let options = lighttrace::Options::new().error_sampler(|event| {
    ///     let noisy = event.exception.values.iter().any(|e| e.ty == "TimeoutError");
    ///     if noisy { 0.1 } else { 1.0 }
    /// });
    /// ```
    pub fn error_sampler<F>(mut self, sampler: F) -> Self
    where
        F: Fn(&Event<'static>) -> f32 + Send + Sync + 'static,
    {
        self.error_sampler = Some(Arc::new(sampler));
        self
    }

    /// Whether a request with this method and route is traced at all.
    pub(crate) fn traces_request(&self, method: &http::Method, route: Option<&str>) -> bool {
        let method_ok = match &self.http_methods_to_capture {
            Some(methods) => methods.contains(method),
            None => *method != http::Method::HEAD && *method != http::Method::OPTIONS,
        };
        method_ok && !self.ignores_transaction(method, route)
    }

    /// Whether `ignore_transactions` names this request, without formatting its name.
    pub(crate) fn ignores_transaction(&self, method: &http::Method, route: Option<&str>) -> bool {
        let route = route.unwrap_or(crate::event::UNMATCHED_ROUTE);
        self.ignore_transactions
            .iter()
            .any(|entry| match entry.split_once(' ') {
                Some((m, r)) => m == method.as_str() && r == route,
                None => entry == route,
            })
    }

    /// Whether any error type is ignored.
    pub(crate) fn ignores_errors(&self) -> bool {
        !self.ignore_errors.is_empty()
    }

    /// Whether an error whose chain has these type names is ignored.
    pub(crate) fn ignores_error<'a>(&self, mut types: impl Iterator<Item = &'a str>) -> bool {
        !self.ignore_errors.is_empty() && types.any(|t| self.ignore_errors.iter().any(|i| i == t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn methods_and_transactions_are_filtered_by_name_or_template() {
        let o = Options::new().ignore_transactions(["/health", "POST /hooks/{id}"]);
        assert!(!o.traces_request(&Method::GET, Some("/health")));
        assert!(!o.traces_request(&Method::POST, Some("/hooks/{id}")));
        assert!(o.traces_request(&Method::GET, Some("/hooks/{id}")));
        assert!(
            !o.traces_request(&Method::HEAD, Some("/users")),
            "HEAD is off by default"
        );
        assert!(!o.traces_request(&Method::OPTIONS, Some("/users")));
        assert!(o.traces_request(&Method::GET, None));
        let o = Options::new().http_methods_to_capture([Method::HEAD]);
        assert!(o.traces_request(&Method::HEAD, Some("/users")));
        assert!(!o.traces_request(&Method::GET, Some("/users")));
        let o = Options::new().ignore_transactions(["GET <unmatched>"]);
        assert!(!o.traces_request(&Method::GET, None));
    }

    #[test]
    fn errors_are_ignored_by_any_type_of_their_chain() {
        let o = Options::new().ignore_errors(["io::Error", "panic"]);
        assert!(o.ignores_error(["DbError", "io::Error"].into_iter()));
        assert!(o.ignores_error(["panic"].into_iter()));
        assert!(!o.ignores_error(["DbError"].into_iter()));
        assert!(!Options::new().ignores_error(["io::Error"].into_iter()));
    }
}
