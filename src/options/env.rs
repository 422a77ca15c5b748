//! The environment variables the options read: the DSN, release, environment, trace sample
//! rate and Spotlight.

use super::{ConfigError, Options};

/// The sidecar's default address, as Sentry's SDKs use it.
pub(super) const SPOTLIGHT_URL: &str = "http://localhost:8969/stream";

/// Reads an environment variable, treating an empty value as unset.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Options {
    /// Defaults plus the environment: the DSN from `LIGHTTRACE_DSN`, else `SENTRY_DSN`; the release
    /// from `SENTRY_RELEASE`; the environment from `SENTRY_ENVIRONMENT`; the trace sample rate
    /// from `SENTRY_TRACES_SAMPLE_RATE`; the Spotlight sidecar from `SENTRY_SPOTLIGHT` (`1` or a
    /// URL, see [`spotlight`](Self::spotlight)). Setters called afterwards win over the
    /// environment.
    ///
    /// An invalid DSN, sample rate or `SENTRY_SPOTLIGHT` in the environment is an error that
    /// names the variable.
    ///
    /// ```
    /// # std::env::remove_var("LIGHTTRACE_DSN"); std::env::remove_var("SENTRY_DSN");
    /// let options = lighttrace::Options::from_env().unwrap();
    /// assert!(options.dsn_ref().is_none()); // nothing set: the client sends nothing
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut options = Self::new().env_release_and_environment();
        for var in ["LIGHTTRACE_DSN", "SENTRY_DSN"] {
            if let Some(value) = env_var(var) {
                options.dsn = Some(super::parse_dsn_from(&value, var)?);
                break;
            }
        }
        if let Some(value) = env_var("SENTRY_TRACES_SAMPLE_RATE") {
            let rate = value
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r));
            let rate = rate.ok_or_else(|| ConfigError::InvalidSampleRate {
                variable: "SENTRY_TRACES_SAMPLE_RATE",
                value: value.clone(),
            })?;
            options = options.traces_sample_rate(rate);
        }
        if let Some(value) = env_var("SENTRY_SPOTLIGHT") {
            options.spotlight = spotlight_from_env(&value)?;
        }
        Ok(options)
    }

    /// Fills release and environment from `SENTRY_RELEASE` and `SENTRY_ENVIRONMENT` where unset.
    pub(crate) fn env_release_and_environment(mut self) -> Self {
        if self.release.is_none() {
            self.release = env_var("SENTRY_RELEASE");
        }
        if self.environment.is_none() {
            self.environment = env_var("SENTRY_ENVIRONMENT");
        }
        self
    }
}

/// `SENTRY_SPOTLIGHT`: `1`, `true`, `yes` or `on` for the default address, `0`, `false`, `no` or
/// `off` for none, else the sidecar's URL.
fn spotlight_from_env(value: &str) -> Result<Option<http::Uri>, ConfigError> {
    let trimmed = value.trim();
    match trimmed.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => return Ok(Some(http::Uri::from_static(SPOTLIGHT_URL))),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_variable_takes_switches_and_urls() {
        for on in ["1", "true", "TRUE", " yes "] {
            assert_eq!(
                spotlight_from_env(on).unwrap().unwrap().to_string(),
                SPOTLIGHT_URL
            );
        }
        for off in ["0", "false", "off", ""] {
            assert!(spotlight_from_env(off).unwrap().is_none());
        }
        let url = spotlight_from_env("http://127.0.0.1:9000/stream")
            .unwrap()
            .unwrap();
        assert_eq!(url.port_u16(), Some(9000));
        let err = spotlight_from_env("ftp://x/stream")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SENTRY_SPOTLIGHT") && err.contains("http or https"),
            "{err}"
        );
        assert!(spotlight_from_env("not a url at all").is_err());
    }
}
