//! DSN parsing, with errors that name the part that is wrong and never echo the key.

use sentry_types::Dsn;

use super::ConfigError;

/// Parses a DSN, with an error that names the part that is wrong but never echoes the string
/// (it holds a key).
///
/// ```
/// let dsn = lighttrace::parse_dsn("https://public@errors.example.com/42").unwrap();
/// assert_eq!(dsn.project_id().to_string(), "42");
///
/// let err = lighttrace::parse_dsn("https://errors.example.com/42").unwrap_err();
/// assert!(err.to_string().contains("the DSN has no public key"), "{err}");
/// let err = lighttrace::parse_dsn("ftp://key@errors.example.com/42").unwrap_err();
/// assert!(err.to_string().contains("unsupported scheme `ftp`"), "{err}");
/// ```
pub fn parse_dsn(dsn: &str) -> Result<Dsn, ConfigError> {
    parse_dsn_from(dsn, "code")
}

/// [`parse_dsn`], naming where the string came from.
pub(crate) fn parse_dsn_from(dsn: &str, origin: &'static str) -> Result<Dsn, ConfigError> {
    let dsn = dsn.trim();
    dsn.parse().map_err(|source| ConfigError::InvalidDsn {
        origin,
        problem: diagnose(dsn),
        source,
    })
}

/// What is wrong with a DSN that did not parse, in words that name the part. Only the scheme
/// (never a key, a host or a path) is quoted.
fn diagnose(dsn: &str) -> String {
    if dsn.is_empty() {
        return "the DSN is empty".to_owned();
    }
    let Some((scheme, rest)) = dsn.split_once("://") else {
        return "the DSN has no scheme (it must start with https:// or http://)".to_owned();
    };
    if !matches!(scheme, "http" | "https") {
        // Quoted only when it cannot be a key pasted in the wrong place: a few letters.
        if !scheme.is_empty()
            && scheme.len() <= 8
            && scheme.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return format!("unsupported scheme `{scheme}` (use https or http)");
        }
        return "unsupported scheme (use https or http)".to_owned();
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (Some(userinfo), host),
        None => (None, authority),
    };
    let public_key = userinfo.map(|u| u.split(':').next().unwrap_or(""));
    if public_key.is_none_or(str::is_empty) {
        return "the DSN has no public key (the part before `@`)".to_owned();
    }
    let hostname = host.rsplit_once(':').map_or(host, |(h, _)| h);
    if hostname.is_empty() {
        return "the DSN has no host".to_owned();
    }
    if let Some((_, port)) = host.rsplit_once(':') {
        if !port.is_empty() && port.parse::<u16>().is_err() && !host.ends_with(']') {
            return "the DSN's port is not a number from 0 to 65535".to_owned();
        }
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    let project = path.trim_matches('/').rsplit('/').next().unwrap_or("");
    if project.is_empty() {
        return "the DSN has no project id (the last part of its path)".to_owned();
    }
    "the DSN is not a valid URL".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_named_without_echoing_a_key() {
        let cases = [
            ("", "the DSN is empty"),
            ("supersecretkey@host/1", "has no scheme"),
            ("ftp://supersecretkey@host/1", "unsupported scheme `ftp`"),
            ("https://host.example.com/1", "has no public key"),
            (
                "https://:supersecretkey@host.example.com/1",
                "has no public key",
            ),
            ("https://supersecretkey@/1", "has no host"),
            (
                "https://supersecretkey@host.example.com",
                "has no project id",
            ),
            (
                "https://supersecretkey@host.example.com/",
                "has no project id",
            ),
            ("https://supersecretkey@host.example.com:99999/1", "port"),
        ];
        for (dsn, expected) in cases {
            let err = parse_dsn(dsn).expect_err(dsn);
            let msg = err.to_string();
            assert!(msg.starts_with("invalid DSN (code): "), "{msg}");
            assert!(msg.contains(expected), "{dsn:?}: {msg}");
            assert!(!msg.contains("supersecretkey"), "{msg}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Any string: an answer, never a panic, and a key that appears in it (hex, as keys
        /// are) never appears in the error.
        #[test]
        fn no_input_panics_or_leaks_its_key(
            before in ".{0,12}",
            key in "[0-9a-f]{8,32}",
            after in ".{0,24}",
        ) {
            let dsn = format!("{before}{key}{after}");
            if let Err(err) = parse_dsn(&dsn) {
                proptest::prop_assert!(!err.to_string().contains(&key), "{err}");
            }
        }
    }

    #[test]
    fn valid_dsns_parse_with_or_without_a_secret() {
        assert!(parse_dsn(" https://key@host.example.com:8443/path/7 ").is_ok());
        assert!(parse_dsn("http://key:secret@127.0.0.1:9000/1").is_ok());
    }
}
