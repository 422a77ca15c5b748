//! A DSN shown without its keys, for logs and `Debug` output.

use std::fmt;

use sentry_types::Dsn;

/// Shows a DSN as `scheme://abcd…@host:port/project`: only the first four characters of the
/// public key, and never the secret key.
pub(crate) struct RedactedDsn<'a>(pub(crate) &'a Dsn);

impl fmt::Debug for RedactedDsn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for RedactedDsn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.0.public_key();
        let shown: String = key.chars().take(4).collect();
        write!(
            f,
            "{}://{}…@{}:{}/{}",
            self.0.scheme(),
            shown,
            self.0.host(),
            self.0.port(),
            self.0.project_id()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_neither_key() {
        let dsn: Dsn = "https://0123456789abcdef:topsecret@example.com:9000/7"
            .parse()
            .unwrap();
        let shown = RedactedDsn(&dsn).to_string();
        assert_eq!(shown, "https://0123…@example.com:9000/7");
        assert!(!shown.contains("topsecret"));
    }
}
