//! The Spotlight options (`sentry-python`'s `spotlight`): every envelope also goes to the
//! sidecar of Sentry's local development UI.

use std::sync::Arc;

use super::config::ConfigError;
use super::Options;
use crate::sink::Sink;

/// The sidecar's default address, as Sentry's SDKs use it.
const DEFAULT_URL: &str = "http://localhost:8969/stream";

impl Options {
    /// Also sends every envelope to the Spotlight sidecar at its default address
    /// (`http://localhost:8969/stream`): run `npx @spotlightjs/spotlight` and watch errors,
    /// traces and breadcrumbs in its browser UI. Beside the DSN's server, or without one. The
    /// sidecar being absent costs nothing and fails nothing. `SENTRY_SPOTLIGHT=1` (read by
    /// [`from_env`](Self::from_env)) does the same. Needs the `http-sink` feature.
    ///
    /// ```
    /// let options = lighttrace::Options::new().spotlight(true);
    /// assert_eq!(
    ///     options.get_spotlight().map(|u| u.to_string()).as_deref(),
    ///     Some("http://localhost:8969/stream")
    /// );
    /// ```
    pub fn spotlight(mut self, on: bool) -> Self {
        self.spotlight = on.then(|| http::Uri::from_static(DEFAULT_URL));
        self
    }

    /// Like [`spotlight`](Self::spotlight), with the sidecar at `url`
    /// (`SENTRY_SPOTLIGHT=<url>` does the same).
    ///
    /// ```
    /// let url: http::Uri = "http://127.0.0.1:9000/stream".parse().unwrap();
    /// let options = lighttrace::Options::new().spotlight_url(url.clone());
    /// assert_eq!(options.get_spotlight(), Some(&url));
    /// ```
    pub fn spotlight_url(mut self, url: http::Uri) -> Self {
        self.spotlight = Some(url);
        self
    }

    /// Where the Spotlight sidecar is, when envelopes go to it.
    pub fn get_spotlight(&self) -> Option<&http::Uri> {
        self.spotlight.as_ref()
    }
}

/// `SENTRY_SPOTLIGHT`: `1`, `true`, `yes` or `on` for the default address, `0`, `false`, `no` or
/// `off` for none, else the sidecar's URL.
pub(crate) fn from_env_value(value: &str) -> Result<Option<http::Uri>, ConfigError> {
    let trimmed = value.trim();
    match trimmed.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => return Ok(Some(http::Uri::from_static(DEFAULT_URL))),
        "0" | "false" | "no" | "off" | "" => return Ok(None),
        _ => {}
    }
    let invalid = |problem: &str| ConfigError::InvalidSpotlight {
        value: trimmed.to_owned(),
        problem: problem.to_owned(),
    };
    let url: http::Uri = trimmed.parse().map_err(|_| invalid("not a URL"))?;
    if !matches!(url.scheme_str(), Some("http" | "https")) {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host().is_none() {
        return Err(invalid("the URL has no host"));
    }
    Ok(Some(url))
}

/// The client's sink with a Spotlight copy added, when asked for.
#[cfg(feature = "http-sink")]
pub(crate) fn with_spotlight(
    sink: Option<Arc<dyn Sink>>,
    options: &Options,
) -> Option<Arc<dyn Sink>> {
    let Some(spotlight) = options
        .spotlight
        .as_ref()
        .and_then(crate::sink::HttpSink::spotlight)
    else {
        return sink;
    };
    Some(Arc::new(crate::sink::spotlight::WithSpotlight::new(
        sink, spotlight,
    )))
}

/// Without the HTTP transport there is nothing to reach the sidecar with.
#[cfg(not(feature = "http-sink"))]
pub(crate) fn with_spotlight(
    sink: Option<Arc<dyn Sink>>,
    _options: &Options,
) -> Option<Arc<dyn Sink>> {
    sink
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_variable_takes_switches_and_urls() {
        for on in ["1", "true", "TRUE", " yes "] {
            assert_eq!(
                from_env_value(on).unwrap().unwrap().to_string(),
                DEFAULT_URL
            );
        }
        for off in ["0", "false", "off", ""] {
            assert!(from_env_value(off).unwrap().is_none());
        }
        let url = from_env_value("http://127.0.0.1:9000/stream")
            .unwrap()
            .unwrap();
        assert_eq!(url.port_u16(), Some(9000));
        let err = from_env_value("ftp://x/stream").unwrap_err().to_string();
        assert!(
            err.contains("SENTRY_SPOTLIGHT") && err.contains("http or https"),
            "{err}"
        );
        assert!(from_env_value("not a url at all").is_err());
    }
}
