//! `trace_propagation_targets`: which outgoing requests carry the trace, matched as
//! sentry-python matches them (`should_propagate_trace` and `match_regex_list` with substring
//! matching): each target is a regular expression searched anywhere in the URL, the default is
//! `[".*"]` (every URL), and a request to the DSN's own host never carries it.

use crate::options::Options;

/// Whether an outgoing request to `url` gets trace headers.
pub(crate) fn propagates_to(options: &Options, url: &str) -> bool {
    if options
        .dsn
        .as_ref()
        .is_some_and(|dsn| host_of(url).is_some_and(|h| h.eq_ignore_ascii_case(dsn.host())))
    {
        return false;
    }
    match &options.trace_propagation_targets {
        None => true,
        Some(targets) => targets.matches(url),
    }
}

/// The host of an absolute URL, without userinfo or port.
fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sentry-python's own cases (tests/tracing/test_misc.py, `test_should_propagate_trace`,
    /// and tests/test_utils.py, `test_match_regex_list` with substring matching).
    #[test]
    fn targets_are_searched_in_the_url_as_sentry_python_does() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&[], "http://example.com", false),
            (&[".*"], "http://example.com", true),
            (&["example.com"], "http://example.com", true),
            (&["example.com"], "http://example.net", false),
            (&["example.com"], "https://www.example.com/path", true),
            (&["localhost:8443"], "http://localhost:8443/api", true),
            (&["localhost:8443"], "http://localhost:8080/api", false),
            (
                &[r"https://\w+\.example\.com"],
                "https://api.example.com/x",
                true,
            ),
            (&[r"^https://api\."], "http://api.example.com/x", false),
            (&["foo", "bar"], "https://bar.example/", true),
            // Substring matching: a target is found anywhere in the URL.
            (
                &["api.internal"],
                "https://evil.example/?next=http://api.internal/",
                true,
            ),
        ];
        for (targets, url, expected) in cases {
            let o = Options::new().trace_propagation_targets(targets.iter().copied());
            assert_eq!(propagates_to(&o, url), *expected, "{targets:?} on {url}");
        }
        assert!(propagates_to(&Options::new(), "https://anywhere.example/"));
    }

    #[test]
    fn an_invalid_pattern_is_plain_text_and_the_dsn_host_never_gets_headers() {
        let o = Options::new().trace_propagation_targets(["api(v2"]);
        assert!(propagates_to(&o, "https://example.com/api(v2/x"));
        assert!(!propagates_to(&o, "https://example.com/apiv2"));
        let dsn = crate::parse_dsn("https://key@o1.ingest.example.com/4").unwrap();
        let o = Options::new().dsn(dsn);
        assert!(!propagates_to(
            &o,
            "https://o1.ingest.example.com/api/4/envelope/"
        ));
        assert!(propagates_to(&o, "https://api.example.com/"));
    }
}
