//! `ConfigError`: why configuration failed.

use std::fmt;

/// Why configuration failed. Messages name the problem and never contain a DSN's keys.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// A DSN string did not parse.
    #[non_exhaustive]
    InvalidDsn {
        /// Where the DSN came from: `"code"` or the environment variable's name.
        origin: &'static str,
        /// What is wrong with it, e.g. "the DSN has no public key".
        problem: String,
        /// The parser's reason.
        source: sentry_types::ParseDsnError,
    },
    /// A monitor's crontab schedule did not parse.
    #[non_exhaustive]
    InvalidSchedule {
        /// The schedule as given.
        schedule: String,
    },
    /// A sample rate in the environment is not a number from 0 to 1.
    #[non_exhaustive]
    InvalidSampleRate {
        /// The variable, e.g. `SENTRY_TRACES_SAMPLE_RATE`.
        variable: &'static str,
        /// The value as given.
        value: String,
    },
    /// `SENTRY_SPOTLIGHT` is neither a switch nor a sidecar URL.
    #[non_exhaustive]
    InvalidSpotlight {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::InvalidDsn {
                origin, problem, ..
            } => write!(
                f,
                "invalid DSN ({origin}): {problem}; expected https://<public_key>@<host>/<project_id>"
            ),
            ConfigError::InvalidSchedule { schedule } => write!(
                f,
                "invalid crontab schedule `{schedule}`: expected five fields, such as `0 3 * * *`"
            ),
            ConfigError::InvalidSampleRate { variable, value } => write!(
                f,
                "invalid {variable} `{value}`: expected a number from 0 to 1, such as 0.2"
            ),
            ConfigError::InvalidSpotlight { value, problem } => write!(
                f,
                "invalid SENTRY_SPOTLIGHT `{value}`: {problem}; expected 1, 0 or a URL such as http://localhost:8969/stream"
            ),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::InvalidDsn { source, .. } => Some(source),
            ConfigError::InvalidSchedule { .. }
            | ConfigError::InvalidSpotlight { .. }
            | ConfigError::InvalidSampleRate { .. } => None,
        }
    }
}
