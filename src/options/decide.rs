//! What the options decide: which requests are traced, which errors are ignored, which
//! incoming traces are continued. Each filter is checked before anything is built, and what it
//! drops is counted in client reports as `event_processor`, as `sentry-python` does.

use super::Options;
use crate::event::Captured;

impl Options {
    /// Whether a request with this method, route template and (user-given) transaction name
    /// is traced at all.
    pub(crate) fn traces_request(
        &self,
        method: &http::Method,
        route: Option<&str>,
        name: Option<&str>,
    ) -> bool {
        let method_ok = match &self.http_methods_to_capture {
            Some(methods) => methods.contains(method),
            None => *method != http::Method::HEAD && *method != http::Method::OPTIONS,
        };
        method_ok && !self.ignores_transaction(method, route, name)
    }

    /// Whether `ignore_transactions` names this request: by its transaction name (the
    /// user's, else `METHOD route`, compared without formatting it) or by its route template.
    pub(crate) fn ignores_transaction(
        &self,
        method: &http::Method,
        route: Option<&str>,
        name: Option<&str>,
    ) -> bool {
        let route = route.unwrap_or(crate::event::UNMATCHED_ROUTE);
        self.ignore_transactions
            .iter()
            .any(|entry| match (name, entry.split_once(' ')) {
                (Some(name), _) if entry == name => true,
                (None, Some((m, r))) => m == method.as_str() && r == route,
                (_, None) => entry == route,
                (Some(_), Some(_)) => false,
            })
    }

    /// Whether any error type is ignored.
    pub(crate) fn ignores_errors(&self) -> bool {
        !self.ignore_errors.is_empty()
    }

    /// Whether `ignore_errors` drops a captured error (a message never is).
    pub(crate) fn ignores_captured(&self, what: &Captured) -> bool {
        if self.ignore_errors.is_empty() {
            return false;
        }
        match what {
            Captured::Exceptions(list) => self.ignores_error(list.iter().map(|e| e.ty.as_str())),
            Captured::Event(e) => {
                self.ignores_error(e.exception.values.iter().map(|e| e.ty.as_str()))
            }
            Captured::Panic(_) => self.ignores_error(["panic"].into_iter()),
            Captured::Message(_) => false,
        }
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
        assert!(!o.traces_request(&Method::GET, Some("/health"), None));
        assert!(!o.traces_request(&Method::POST, Some("/hooks/{id}"), None));
        assert!(o.traces_request(&Method::GET, Some("/hooks/{id}"), None));
        assert!(
            !o.traces_request(&Method::HEAD, Some("/users"), None),
            "HEAD is off by default"
        );
        assert!(!o.traces_request(&Method::OPTIONS, Some("/users"), None));
        assert!(o.traces_request(&Method::GET, None, None));
        let o = Options::new().http_methods_to_capture([Method::HEAD]);
        assert!(o.traces_request(&Method::HEAD, Some("/users"), None));
        assert!(!o.traces_request(&Method::GET, Some("/users"), None));
        let o = Options::new().ignore_transactions(["GET <unmatched>"]);
        assert!(!o.traces_request(&Method::GET, None, None));
        // A name from `transaction_name` is matched as a whole; its route still by template.
        let o = Options::new().ignore_transactions(["GET /static/*", "/assets/{file}"]);
        assert!(!o.traces_request(&Method::GET, None, Some("GET /static/*")));
        assert!(o.traces_request(&Method::GET, Some("/static/*"), Some("GET /elsewhere")));
        assert!(!o.traces_request(&Method::GET, Some("/assets/{file}"), Some("assets")));
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
