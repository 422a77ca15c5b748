//! `anyhow`'s stack traces: std's `Backtrace`, whose display text is the only view it gives,
//! parsed into Sentry frames (without instruction addresses).

use std::backtrace::{Backtrace, BacktraceStatus};

use sentry_types::protocol::v7::{Frame, Stacktrace};

use super::frames::{module_of, set_file, MAX_FRAMES};
use super::InApp;

/// The frames of std's `Backtrace` (as `anyhow` captures it), parsed from its text, caller
/// first, `in_app` marked. They carry no addresses.
pub(crate) fn stacktrace_from_std(backtrace: &Backtrace, in_app: &InApp<'_>) -> Option<Stacktrace> {
    if backtrace.status() != BacktraceStatus::Captured {
        return None;
    }
    let rendered = backtrace.to_string();
    let mut frames = parse_backtrace(&rendered, in_app);
    frames.truncate(MAX_FRAMES);
    Stacktrace::from_frames_reversed(frames)
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
        let function = strip_hash(symbol);
        frames.push(Frame {
            function: Some(function.to_owned()),
            module: module_of(function),
            ..Default::default()
        });
    }
    for frame in &mut frames {
        let function = frame.function.as_deref().unwrap_or("<unknown>");
        let file = frame.abs_path.as_deref().or(frame.filename.as_deref());
        frame.in_app = Some(in_app.is_in_app(function, file));
    }
    frames
}

fn strip_hash(symbol: &str) -> &str {
    match symbol.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head
        }
        _ => symbol,
    }
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
    set_file(frame, file);
    frame.lineno = line;
    frame.colno = col;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stacktrace::frames::trim_panic_machinery;

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
             at /home/u/.cargo/registry/src/index-abc/tokio-1.40.0/src/runtime/task/harness.rs:473:19
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
}
