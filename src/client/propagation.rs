//! The options of distributed tracing: where outgoing requests carry the trace, and which
//! incoming traces are continued.

use super::Options;

impl Options {
    /// Outgoing requests ([`send_traced`](crate::TracedRequest::send_traced),
    /// [`inject_trace_headers`](crate::inject_trace_headers)) get `sentry-trace`, `baggage`
    /// (and `traceparent` when [on](Self::propagate_traceparent)) only when their URL matches one
    /// of these; the others are still recorded as spans. Default: every URL, as Sentry's SDKs do.
    /// An empty list turns propagation off.
    ///
    /// A target with a scheme (`https://api.example.com/v2`) matches URLs that start with it;
    /// a bare host (`api.internal`, `api.internal:8443`) matches that host and its subdomains,
    /// and never a URL that merely mentions it in its path or query.
    ///
    /// ```
    /// let options = lighttrace::Options::new()
    ///     .trace_propagation_targets(["https://api.internal.example.com", "localhost"]);
    /// ```
    pub fn trace_propagation_targets<I, S>(mut self, targets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.trace_propagation_targets = Some(targets.into_iter().map(Into::into).collect());
        self
    }

    /// Also send W3C `traceparent` on outgoing requests (default off).
    pub fn propagate_traceparent(mut self, on: bool) -> Self {
        self.propagate_traceparent = on;
        self
    }

    /// Continue an incoming trace only when it comes from the same Sentry organization: its
    /// `baggage` must carry the same `sentry-org_id` as this client's
    /// ([`org_id`](Self::org_id)), or neither has one. Off by default: then only a different
    /// organization id starts a new trace. Turn it on for a service that takes requests from
    /// outside, so a caller cannot make your requests part of its traces (or yours of theirs).
    ///
    /// ```
    /// let options = lighttrace::Options::new().org_id(42).strict_trace_continuation(true);
    /// ```
    pub fn strict_trace_continuation(mut self, on: bool) -> Self {
        self.strict_trace_continuation = on;
        self
    }

    /// The Sentry organization id, for trace continuation and outgoing `baggage`
    /// (`sentry-org_id`). By default it is read from the DSN's host when it has the
    /// `o<digits>.` form (`o123.ingest.sentry.io`).
    pub fn org_id(mut self, id: u64) -> Self {
        self.org_id = Some(id);
        self
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

    /// Whether an outgoing request to `url` gets trace headers.
    pub(crate) fn propagates_to(&self, url: &str) -> bool {
        match &self.trace_propagation_targets {
            None => true,
            Some(targets) => targets.iter().any(|t| target_matches(t, url)),
        }
    }
}

/// `target` against `url`: a prefix when the target has a scheme, else the URL's host (and
/// port) or a subdomain of it.
fn target_matches(target: &str, url: &str) -> bool {
    if target.contains("://") {
        return url.starts_with(target);
    }
    let Some(host) = host_of(url) else {
        return false;
    };
    let (t_host, t_port) = split_port(target);
    let (u_host, u_port) = split_port(host);
    let host_ok = u_host.eq_ignore_ascii_case(t_host)
        || (u_host.len() > t_host.len()
            && u_host[u_host.len() - t_host.len()..].eq_ignore_ascii_case(t_host)
            && u_host.as_bytes()[u_host.len() - t_host.len() - 1] == b'.');
    host_ok && (t_port.is_none() || t_port == u_port)
}

/// The `host[:port]` of an absolute URL, without userinfo.
fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(authority.rsplit_once('@').map_or(authority, |(_, h)| h))
}

fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            (host, Some(port))
        }
        _ => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_match_hosts_and_prefixes_not_mentions() {
        let o = Options::new().trace_propagation_targets([
            "api.internal",
            "https://payments.example.com/v2",
            "localhost:8443",
        ]);
        assert!(o.propagates_to("http://api.internal/users"));
        assert!(o.propagates_to("https://eu.api.internal:9000/x"));
        assert!(o.propagates_to("https://payments.example.com/v2/charge"));
        assert!(o.propagates_to("http://localhost:8443/"));
        assert!(!o.propagates_to("http://localhost:8080/"));
        assert!(!o.propagates_to("https://payments.example.com/v1/charge"));
        assert!(!o.propagates_to("https://evil.example/?next=http://api.internal/"));
        assert!(!o.propagates_to("https://notapi.internal/"));
        assert!(!o.propagates_to("https://api.internal.evil.com/"));
        assert!(!Options::new()
            .trace_propagation_targets(Vec::<String>::new())
            .propagates_to("http://api.internal/"));
        assert!(Options::new().propagates_to("https://anywhere.example/"));
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
