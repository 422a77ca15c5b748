//! Exceptions: an error's `source()` chain, and panics with their location and stack trace.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::collections::BTreeMap;
use std::error::Error as StdError;

use sentry_types::protocol::v7::{Exception, Frame, Mechanism, Stacktrace};

/// Frames whose function starts with one of these are library or runtime code, not the user's.
const NOT_IN_APP: &[&str] = &[
    "std::",
    "core::",
    "alloc::",
    "tokio::",
    "tower::",
    "tower_service::",
    "tower_layer::",
    "tower_http::",
    "hyper::",
    "hyper_util::",
    "axum::",
    "axum_core::",
    "futures::",
    "futures_util::",
    "futures_core::",
    "futures_executor::",
    "http_body::",
    "http_body_util::",
    "lighttrace::",
    "backtrace::",
    "test::",
    "__rust",
    "rust_begin_unwind",
    "__libc",
    "_start",
    "start_thread",
    "clone",
];

/// Frames of the panic machinery itself, trimmed from the top of a panic's stack.
const PANIC_MACHINERY: &[&str] = &[
    "std::panicking::",
    "core::panicking::",
    "std::sys::backtrace::__rust_end_short_backtrace",
    "rust_begin_unwind",
    "__rustc::rust_begin_unwind",
];

/// At most this many frames are sent; the innermost ones are kept.
const MAX_FRAMES: usize = 200;

/// What the panic hook recorded, before unwinding destroyed the stack.
#[derive(Debug)]
pub(crate) struct PanicDetails {
    pub(crate) message: String,
    pub(crate) location: Option<String>,
    /// Captured but not yet symbolicated: resolving symbols is the expensive part and happens only
    /// when the event is built for sending.
    pub(crate) backtrace: Option<Backtrace>,
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
        .and_then(|bt| stacktrace_from(bt, in_app, true));
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

/// The exception list for an error and its `source()` chain, outermost last as Sentry expects.
///
/// `outer_type` is the concrete type name of `err` when the caller knew it statically.
pub(crate) fn error_chain(
    err: &(dyn StdError + 'static),
    outer_type: Option<&str>,
    mechanism: &str,
    handled: bool,
) -> Vec<Exception> {
    let mut chain = Vec::new();
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
    let base = full.split('<').next().unwrap_or(full);
    let segments: Vec<&str> = base.split("::").collect();
    let last = segments.last().copied().unwrap_or(base);
    if segments.len() >= 2 && matches!(last, "Error" | "Errors") {
        // The type is called `Error`: qualify it with the nearest meaningful module.
        let module = segments[..segments.len() - 1]
            .iter()
            .rev()
            .find(|s| !matches!(**s, "error" | "errors"))
            .copied();
        if let Some(m) = module {
            return format!("{m}::{last}");
        }
    }
    last.to_owned()
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

/// Symbolicates a captured backtrace into Sentry frames (caller first), with the panic machinery
/// trimmed and `in_app` marked.
/// `from_panic` trims the panic machinery on top of a panic's stack; a backtrace captured
/// elsewhere (such as by `anyhow`) has none.
pub(crate) fn stacktrace_from(
    backtrace: &Backtrace,
    in_app: &InApp<'_>,
    from_panic: bool,
) -> Option<Stacktrace> {
    if backtrace.status() != BacktraceStatus::Captured {
        return None;
    }
    let rendered = backtrace.to_string();
    let mut frames = parse_backtrace(&rendered, in_app);
    if from_panic {
        trim_panic_machinery(&mut frames);
    }
    frames.truncate(MAX_FRAMES);
    Stacktrace::from_frames_reversed(frames)
}

fn is_panic_machinery(frame: &Frame) -> bool {
    let function = frame.function.as_deref().unwrap_or("");
    PANIC_MACHINERY.iter().any(|p| function.starts_with(p))
}

/// Drops the frames above the panicking code: the capture itself, the hook, and the run of
/// panic machinery that called it. Frames further down (such as `catch_unwind`) stay.
fn trim_panic_machinery(frames: &mut Vec<Frame>) {
    // The machinery sits right on top (below the capture and the hook); deeper frames named
    // `std::panicking::catch_unwind` belong to whoever caught the unwind and stay.
    let Some(mut last) = frames.iter().take(16).position(is_panic_machinery) else {
        return;
    };
    while frames.get(last + 1).is_some_and(is_panic_machinery) {
        last += 1;
    }
    frames.drain(..=last);
}

/// Parses std's `Backtrace` display format (innermost first):
///
/// ```text
///    0: myapp::handler
///              at ./src/main.rs:10:5
/// ```
fn parse_backtrace(rendered: &str, in_app: &InApp<'_>) -> Vec<Frame> {
    let mut frames: Vec<Frame> = Vec::new();
    for line in rendered.lines() {
        let trimmed = line.trim_start();
        if let Some(location) = trimmed.strip_prefix("at ") {
            if let Some(frame) = frames.last_mut() {
                apply_location(frame, location);
            }
            continue;
        }
        let symbol = match trimmed.split_once(": ") {
            Some((index, rest))
                if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) =>
            {
                rest
            }
            _ => trimmed,
        };
        if symbol.is_empty() {
            continue;
        }
        frames.push(frame_for_symbol(symbol, in_app));
    }
    frames
}

fn frame_for_symbol(symbol: &str, rules: &InApp<'_>) -> Frame {
    let function = strip_hash(symbol);
    let in_app = rules.is_in_app(function);
    Frame {
        function: Some(function.to_owned()),
        module: module_of(function),
        in_app: Some(in_app),
        ..Default::default()
    }
}

/// Which frames are the application's own: the user's prefixes win, then the crate's list of
/// library and runtime code.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct InApp<'a> {
    pub(crate) include: &'a [String],
    pub(crate) exclude: &'a [String],
}

impl InApp<'_> {
    fn is_in_app(&self, function: &str) -> bool {
        let f = function.trim_start_matches('<');
        if self.include.iter().any(|p| f.starts_with(p.as_str())) {
            return true;
        }
        if self.exclude.iter().any(|p| f.starts_with(p.as_str())) {
            return false;
        }
        !is_library_function(function)
    }
}

fn is_library_function(function: &str) -> bool {
    let f = function.trim_start_matches('<');
    f == "<unknown>" || NOT_IN_APP.iter().any(|p| f.starts_with(p))
}

fn strip_hash(symbol: &str) -> &str {
    match symbol.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head
        }
        _ => symbol,
    }
}

/// `myapp::routes::panic::{{closure}}` → `myapp::routes`.
fn module_of(function: &str) -> Option<String> {
    if function.starts_with('<') {
        return None;
    }
    let path: Vec<&str> = function
        .split("::")
        .take_while(|s| !s.starts_with('{') && !s.contains('<'))
        .collect();
    if path.len() < 2 {
        return None;
    }
    Some(path[..path.len() - 1].join("::"))
}

fn apply_location(frame: &mut Frame, location: &str) {
    let mut parts = location.rsplitn(3, ':');
    let col = parts.next();
    let line = parts.next();
    let file = parts.next();
    let (file, line, col) = match (file, line, col) {
        (Some(f), Some(l), Some(c)) => (f, l.parse().ok(), c.parse().ok()),
        _ => (location, None, None),
    };
    let relative = file.strip_prefix("./").unwrap_or(file);
    frame.filename = Some(relative.to_owned());
    if file.starts_with('/') {
        frame.abs_path = Some(file.to_owned());
    }
    frame.lineno = line;
    frame.colno = col;
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
    }

    const SAMPLE: &str = "   0: std::backtrace::Backtrace::force_capture
             at /rustc/abc/library/std/src/backtrace.rs:312:13
   1: lighttrace::layer::panic::hook
             at ./src/layer/panic.rs:40:9
   2: std::panicking::rust_panic_with_hook
             at /rustc/abc/library/std/src/panicking.rs:841:13
   3: core::panicking::panic_fmt
             at /rustc/abc/library/core/src/panicking.rs:75:14
   4: quickstart::panic_handler::{{closure}}
             at ./examples/quickstart.rs:88:5
   5: <axum::handler::HandlerService<H,T,S> as tower_service::Service<Req>>::call::h0123456789abcdef
   6: std::panic::catch_unwind
             at /rustc/abc/library/std/src/panic.rs:358:14
   7: tokio::runtime::task::harness::poll_future
             at /home/u/.cargo/tokio/src/runtime/task/harness.rs:473:19
";

    #[test]
    fn parses_trims_and_marks_in_app() {
        let mut frames = parse_backtrace(SAMPLE, &InApp::default());
        assert_eq!(frames.len(), 8);
        trim_panic_machinery(&mut frames);
        let st = Stacktrace::from_frames_reversed(frames).unwrap();
        // caller first: the handler is the last (innermost) frame
        let handler = st.frames.last().unwrap();
        assert_eq!(
            handler.function.as_deref(),
            Some("quickstart::panic_handler::{{closure}}")
        );
        assert_eq!(handler.module.as_deref(), Some("quickstart"));
        assert_eq!(handler.filename.as_deref(), Some("examples/quickstart.rs"));
        assert_eq!(handler.lineno, Some(88));
        assert_eq!(handler.in_app, Some(true));
        assert_eq!(st.frames.len(), 4, "machinery trimmed, catch_unwind kept");
        let axum = &st.frames[st.frames.len() - 2];
        assert_eq!(axum.in_app, Some(false));
        assert!(!axum.function.as_deref().unwrap().contains("::h0123"));
        assert_eq!(st.frames[0].in_app, Some(false));
    }

    #[test]
    fn user_prefixes_decide_in_app() {
        let include = vec!["axum::".to_owned()];
        let exclude = vec!["quickstart::vendored".to_owned()];
        let rules = InApp {
            include: &include,
            exclude: &exclude,
        };
        assert!(rules.is_in_app("axum::routing::x"));
        assert!(!rules.is_in_app("quickstart::vendored::f"));
        assert!(rules.is_in_app("quickstart::handler"));
        assert!(!rules.is_in_app("tokio::runtime::x"));
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
