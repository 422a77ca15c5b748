//! Stack traces: std's captured backtraces turned into Sentry frames, with the panic machinery
//! trimmed and the application's own frames marked `in_app`.

use std::backtrace::{Backtrace, BacktraceStatus};

use sentry_types::protocol::v7::{Frame, Stacktrace};

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
}
