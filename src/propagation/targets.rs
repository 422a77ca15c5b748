//! `trace_propagation_targets`: which outgoing requests carry the trace.

use crate::options::Options;

/// Whether an outgoing request to `url` gets trace headers.
pub(crate) fn propagates_to(options: &Options, url: &str) -> bool {
    match &options.trace_propagation_targets {
        None => true,
        Some(targets) => targets.iter().any(|t| target_matches(t, url)),
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
        assert!(propagates_to(&o, "http://api.internal/users"));
        assert!(propagates_to(&o, "https://eu.api.internal:9000/x"));
        assert!(propagates_to(&o, "https://payments.example.com/v2/charge"));
        assert!(propagates_to(&o, "http://localhost:8443/"));
        assert!(!propagates_to(&o, "http://localhost:8080/"));
        assert!(!propagates_to(&o, "https://payments.example.com/v1/charge"));
        assert!(!propagates_to(
            &o,
            "https://evil.example/?next=http://api.internal/"
        ));
        assert!(!propagates_to(&o, "https://notapi.internal/"));
        assert!(!propagates_to(&o, "https://api.internal.evil.com/"));
        let none = Options::new().trace_propagation_targets(Vec::<String>::new());
        assert!(!propagates_to(&none, "http://api.internal/"));
        assert!(propagates_to(&Options::new(), "https://anywhere.example/"));
    }
}
