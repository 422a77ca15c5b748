//! What the options decide: which requests are traced, which errors are ignored, which
//! incoming traces are continued. Each filter is checked before anything is built, and what it
//! drops is counted in client reports as `event_processor`, as `sentry-python` does.

use super::Options;

impl Options {
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

    /// The organization id in use: set, or read from the DSN's host.
    pub(crate) fn effective_org_id(&self) -> Option<u64> {
        self.org_id.or_else(|| {
            let host = self.dsn.as_ref()?.host();
            let first = host.split('.').next()?;
            let digits = first.strip_prefix('o')?;
            (host.contains('.') && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| digits.parse().ok())
                .flatten()
        })
    }

    /// Whether an incoming trace from organization `incoming` is continued.
    pub(crate) fn continues_trace_of(&self, incoming: Option<u64>) -> bool {
        match (self.effective_org_id(), incoming) {
            (Some(ours), Some(theirs)) => ours == theirs,
            (None, None) => true,
            _ => !self.strict_trace_continuation,
        }
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

    #[test]
    fn the_org_id_comes_from_the_dsn_and_decides_continuation() {
        let dsn = crate::parse_dsn("https://key@o123.ingest.sentry.io/4").unwrap();
        let o = Options::new().dsn(dsn);
        assert_eq!(o.effective_org_id(), Some(123));
        assert!(o.continues_trace_of(Some(123)));
        assert!(!o.continues_trace_of(Some(7)));
        assert!(o.continues_trace_of(None), "lenient by default");
        let strict = o.clone().strict_trace_continuation(true);
        assert!(!strict.continues_trace_of(None));
        assert_eq!(o.clone().org_id(9).effective_org_id(), Some(9));
        let plain =
            Options::new().dsn(crate::parse_dsn("https://key@errors.example.com/4").unwrap());
        assert_eq!(plain.effective_org_id(), None);
        assert!(plain
            .clone()
            .strict_trace_continuation(true)
            .continues_trace_of(None));
        assert!(!plain
            .strict_trace_continuation(true)
            .continues_trace_of(Some(1)));
    }
}
