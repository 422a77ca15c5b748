//! Exceptions: an error's `source()` chain, and panics with their location and stack trace.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::sync::Arc;

use sentry_types::protocol::v7::{Exception, Frame, Mechanism, Stacktrace};

use crate::stacktrace::{stacktrace_of, InApp};

/// What the panic hook recorded, before unwinding destroyed the stack.
#[derive(Debug)]
pub(crate) struct PanicDetails {
    pub(crate) message: String,
    pub(crate) location: Option<String>,
    /// Captured but not yet symbolicated: resolving symbols is the expensive part and happens only
    /// when the event is built for sending.
    pub(crate) backtrace: Option<backtrace::Backtrace>,
}

impl PanicDetails {
    /// The message of a panic payload caught by `catch_unwind`.
    pub(crate) fn message_of(payload: &(dyn std::any::Any + Send)) -> String {
        if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "Box<dyn Any>".to_owned()
        }
    }
}

/// The exception for a panic: type `panic`, the message (no thread id, so identical panics group),
/// mechanism `panic` with `handled: false`, and the stack trace.
pub(crate) fn panic_exception(details: &PanicDetails, in_app: &InApp<'_>) -> Exception {
    let mut stacktrace = details
        .backtrace
        .as_ref()
        .and_then(|bt| stacktrace_of(bt, in_app));
    if stacktrace.is_none() {
        // No backtrace (the hook was replaced by someone else): at least show where it happened.
        if let Some(location) = &details.location {
            stacktrace = Some(Stacktrace {
                frames: vec![location_frame(location)],
                ..Default::default()
            });
        }
    }
    let mut data = BTreeMap::new();
    if let Some(location) = &details.location {
        data.insert("location".to_owned(), location.clone().into());
    }
    Exception {
        ty: "panic".to_owned(),
        value: Some(details.message.clone()),
        stacktrace,
        mechanism: Some(Mechanism {
            ty: "panic".to_owned(),
            handled: Some(false),
            data,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn location_frame(location: &str) -> Frame {
    // `file:line:col`
    let mut parts = location.rsplitn(3, ':');
    let col = parts.next().and_then(|c| c.parse().ok());
    let line = parts.next().and_then(|l| l.parse().ok());
    let file = parts.next().unwrap_or(location);
    Frame {
        filename: Some(file.to_owned()),
        lineno: line,
        colno: col,
        in_app: Some(true),
        ..Default::default()
    }
}

/// An error kept whole for the worker: the exception list is made from it (its `source()`
/// chain, and an `anyhow` backtrace) only if the event is built.
#[derive(Clone)]
pub(crate) struct ErrorValue {
    pub(crate) error: Arc<dyn StdError + Send + Sync + 'static>,
    /// The concrete type's name, when it was known statically.
    pub(crate) type_name: Option<&'static str>,
    /// The backtrace an `anyhow::Error` captured, shown on the outermost exception.
    #[cfg(feature = "anyhow")]
    pub(crate) anyhow: Option<Arc<anyhow::Error>>,
}

impl ErrorValue {
    /// The type names of the chain, outermost first, as the exception list would show them
    /// (without building it).
    pub(crate) fn type_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut current: Option<&(dyn StdError + 'static)> = Some(&*self.error);
        while let Some(e) = current {
            names.push(match (names.is_empty(), self.type_name) {
                (true, Some(t)) => readable_type_name(t),
                _ => debug_type_name(e),
            });
            current = e.source();
            if names.len() >= 32 {
                break;
            }
        }
        names
    }

    /// The exception list, outermost last, with `mechanism` on the outermost.
    pub(crate) fn exceptions(&self, mechanism: &str, in_app: &InApp<'_>) -> Vec<Exception> {
        #[allow(unused_mut)]
        let mut chain = error_chain(&*self.error, self.type_name, mechanism, true);
        #[cfg(feature = "anyhow")]
        if let (Some(anyhow), Some(outermost)) = (&self.anyhow, chain.last_mut()) {
            outermost.stacktrace =
                crate::stacktrace::stacktrace_from_std(anyhow.backtrace(), in_app);
        }
        #[cfg(not(feature = "anyhow"))]
        let _ = in_app;
        chain
    }
}

impl std::fmt::Debug for ErrorValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.error, f)
    }
}

/// The exception list for an error and its `source()` chain, outermost last as Sentry expects.
///
/// `outer_type` is the concrete type name of `err` when the caller knew it statically.
pub(crate) fn error_chain(
    err: &(dyn StdError + 'static),
    outer_type: Option<&str>,
    mechanism: &str,
    handled: bool,
) -> Vec<Exception> {
    // Sized first: an exception is large, and growing from empty would ask for four.
    let mut depth = 1;
    let mut below = err.source();
    while let (Some(e), true) = (below, depth < 32) {
        depth += 1;
        below = e.source();
    }
    let mut chain = Vec::with_capacity(depth);
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    let mut first = true;
    while let Some(e) = current {
        let ty = match (first, outer_type) {
            (true, Some(t)) => readable_type_name(t),
            _ => debug_type_name(e),
        };
        chain.push(Exception {
            ty,
            value: Some(e.to_string()),
            ..Default::default()
        });
        first = false;
        current = e.source();
        if chain.len() >= 32 {
            break; // a cyclic or absurdly deep chain
        }
    }
    chain.reverse();
    if let Some(outermost) = chain.last_mut() {
        outermost.mechanism = Some(Mechanism {
            ty: mechanism.to_owned(),
            handled: Some(handled),
            ..Default::default()
        });
    }
    chain
}

/// `std::io::error::Error` → `io::Error`, `myapp::db::DbError` → `DbError`,
/// `serde_json::error::Error` → `serde_json::Error`.
pub(crate) fn readable_type_name(full: &str) -> String {
    // Generic arguments are dropped; the path is read from its end, segment by segment.
    let base = full.split_once('<').map_or(full, |(base, _)| base);
    let mut segments = Segments { rest: base };
    let last = segments.next().unwrap_or(base);
    if matches!(last, "Error" | "Errors") {
        // The type is called `Error`: qualify it with the nearest meaningful module.
        if let Some(module) = segments.find(|s| !matches!(*s, "error" | "errors")) {
            let mut name = String::with_capacity(module.len() + 2 + last.len());
            name.push_str(module);
            name.push_str("::");
            name.push_str(last);
            return name;
        }
    }
    last.to_owned()
}

/// The `::`-separated segments of a path, last first.
struct Segments<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        let bytes = self.rest.as_bytes();
        let cut = (1..bytes.len())
            .rev()
            .find(|&i| bytes[i - 1] == b':' && bytes[i] == b':');
        match cut {
            // `::` is ASCII: both sides are on character boundaries.
            Some(i) => {
                let segment = self.rest.get(i + 1..).unwrap_or_default();
                self.rest = self.rest.get(..i - 1).unwrap_or_default();
                Some(segment)
            }
            None => Some(std::mem::take(&mut self.rest)),
        }
    }
}

/// Best effort for a `dyn Error` whose type is unknown: the leading identifier of its `Debug`
/// output when that looks like a type name, else `Error`.
fn debug_type_name(err: &(dyn StdError + 'static)) -> String {
    // Common std errors whose Debug output names a variant, not the type.
    if err.is::<std::io::Error>() {
        return "io::Error".to_owned();
    }
    if err.is::<std::num::ParseIntError>() {
        return "ParseIntError".to_owned();
    }
    if err.is::<std::str::Utf8Error>() || err.is::<std::string::FromUtf8Error>() {
        return "Utf8Error".to_owned();
    }
    let debug = format!("{err:?}");
    let ident: String = debug
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    let ident = ident.trim_end_matches(':');
    if ident.starts_with(|c: char| c.is_ascii_uppercase())
        && !matches!(ident, "Custom" | "Os" | "Simple" | "SimpleMessage")
    {
        ident.to_owned()
    } else {
        "Error".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("loading the user failed")
        }
    }
    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn chain_is_outermost_last_with_display_values() {
        let err = Outer(std::io::Error::other("connection refused"));
        let chain = error_chain(&err, Some(std::any::type_name::<Outer>()), "test", true);
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[1].ty, "Outer");
        assert_eq!(chain[1].value.as_deref(), Some("loading the user failed"));
        assert_eq!(chain[0].value.as_deref(), Some("connection refused"));
        assert_eq!(chain[1].mechanism.as_ref().unwrap().handled, Some(true));
        assert!(chain[0].mechanism.is_none());
    }

    #[test]
    fn type_names_are_readable() {
        assert_eq!(readable_type_name("std::io::error::Error"), "io::Error");
        assert_eq!(
            readable_type_name("serde_json::error::Error"),
            "serde_json::Error"
        );
        assert_eq!(readable_type_name("myapp::db::DbError"), "DbError");
        assert_eq!(readable_type_name("myapp::Wrapper<u8>"), "Wrapper");
        assert_eq!(readable_type_name("Error"), "Error");
        assert_eq!(readable_type_name("error::Error"), "Error");
        assert_eq!(readable_type_name("a::errors::Errors"), "a::Errors");
        assert_eq!(readable_type_name("x::Error<std::io::Error>"), "x::Error");
        assert_eq!(readable_type_name(""), "");
        assert_eq!(readable_type_name("a::::b"), "b");
        assert_eq!(readable_type_name("::Error"), "Error");
    }

    #[test]
    fn panic_exception_is_unhandled_with_location_fallback() {
        let details = PanicDetails {
            message: "boom".into(),
            location: Some("src/main.rs:10:5".into()),
            backtrace: None,
        };
        let exc = panic_exception(&details, &InApp::default());
        assert_eq!(exc.ty, "panic");
        assert_eq!(exc.value.as_deref(), Some("boom"));
        let mech = exc.mechanism.unwrap();
        assert_eq!((mech.ty.as_str(), mech.handled), ("panic", Some(false)));
        let frame = &exc.stacktrace.unwrap().frames[0];
        assert_eq!(frame.filename.as_deref(), Some("src/main.rs"));
        assert_eq!(frame.lineno, Some(10));
    }
}
