//! Panics' stack traces turned into Sentry frames, from the `backtrace` crate's structured
//! frames (symbols, files, lines, columns and instruction addresses), with the panic machinery
//! trimmed and the application's own frames marked `in_app`.

use sentry_types::protocol::v7::{Addr, Frame, Stacktrace};

use super::InApp;

/// Frames of the panic machinery itself, trimmed from the top of a panic's stack.
const PANIC_MACHINERY: &[&str] = &[
    "std::panicking::",
    "core::panicking::",
    "std::sys::backtrace::__rust_end_short_backtrace",
    "rust_begin_unwind",
    "__rustc::rust_begin_unwind",
];

/// At most this many frames are sent; the innermost ones are kept.
pub(super) const MAX_FRAMES: usize = 200;

/// Symbolicates a panic's backtrace (captured unresolved on the panicking thread) into Sentry
/// frames, caller first, with the panic machinery trimmed and `in_app` marked. Every frame
/// carries its instruction address, so a server with the debug files can symbolicate a stripped
/// build; an inlined call shares its caller's address.
pub(crate) fn stacktrace_of(
    backtrace: &backtrace::Backtrace,
    in_app: &InApp<'_>,
) -> Option<Stacktrace> {
    let mut resolved = backtrace.clone();
    resolved.resolve();
    let mut frames = Vec::new();
    for frame in resolved.frames() {
        let addr = Some(Addr(frame.ip() as u64));
        let symbols = frame.symbols();
        if symbols.is_empty() {
            frames.push(Frame {
                instruction_addr: addr,
                in_app: Some(false),
                ..Default::default()
            });
        }
        // Innermost (inlined) first, as the frames are.
        for symbol in symbols {
            let function = symbol.name().map(|n| format!("{n:#}"));
            let file = symbol.filename().map(|p| p.to_string_lossy().into_owned());
            let mut out = Frame {
                instruction_addr: addr,
                symbol_addr: symbol.addr().map(|a| Addr(a as u64)),
                lineno: symbol.lineno().map(u64::from),
                colno: symbol.colno().map(u64::from),
                ..Default::default()
            };
            if let Some(file) = &file {
                set_file(&mut out, file);
            }
            let name = function.as_deref().unwrap_or("<unknown>");
            out.in_app = Some(in_app.is_in_app(name, file.as_deref()));
            out.module = function.as_deref().and_then(module_of);
            out.function = function;
            frames.push(out);
        }
    }
    trim_panic_machinery(&mut frames);
    frames.truncate(MAX_FRAMES);
    Stacktrace::from_frames_reversed(frames)
}

fn is_panic_machinery(frame: &Frame) -> bool {
    let function = frame.function.as_deref().unwrap_or("");
    PANIC_MACHINERY.iter().any(|p| function.starts_with(p))
}

/// Drops the frames above the panicking code: the capture itself, the hook, and the run of
/// panic machinery that called it. Frames further down (such as `catch_unwind`) stay.
pub(super) fn trim_panic_machinery(frames: &mut Vec<Frame>) {
    // The machinery sits right on top (below the capture and the hook); deeper frames named
    // `std::panicking::catch_unwind` belong to whoever caught the unwind and stay.
    let Some(mut last) = frames.iter().take(32).position(is_panic_machinery) else {
        return;
    };
    while frames.get(last + 1).is_some_and(is_panic_machinery) {
        last += 1;
    }
    frames.drain(..=last);
}

/// `filename` relative as the compiler saw it, `abs_path` when absolute.
pub(super) fn set_file(frame: &mut Frame, file: &str) {
    let relative = file.strip_prefix("./").unwrap_or(file);
    frame.filename = Some(relative.to_owned());
    if file.starts_with('/') {
        frame.abs_path = Some(file.to_owned());
    }
}

/// `myapp::routes::panic::{{closure}}` → `myapp::routes`.
pub(super) fn module_of(function: &str) -> Option<String> {
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
