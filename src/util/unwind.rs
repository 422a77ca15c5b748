//! Catching unwinds, and telling the process panic hook what kind of code was running.
//!
//! The innermost region wins: a user hook run inside a request is `Contained` (its panic is
//! the hook's failure, not the request's), and a request served inside a disabled layer's
//! `Quiet` region is `Tracked` again.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What the code running on this thread is, as the panic hook sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Not inside any region: the hook may report the panic itself (`capture_panics`).
    Untracked,
    /// A request or a scoped task: the hook records the panic's details for the code that
    /// catches the unwind to report.
    Tracked,
    /// Caught where nothing will be reported (a layer with nothing to send to), or user code
    /// whose panic is counted as a discard: the hook records nothing and reports nothing.
    Quiet,
}

thread_local! {
    static MODE: Cell<Mode> = const { Cell::new(Mode::Untracked) };
}

/// The mode of the innermost region running on this thread.
pub(crate) fn mode() -> Mode {
    MODE.try_with(Cell::get).unwrap_or(Mode::Untracked)
}

/// Runs `f` as a region of `mode`, catching a panic. The mode before is restored either way.
#[inline]
pub(crate) fn catch_in<R>(mode: Mode, f: impl FnOnce() -> R) -> std::thread::Result<R> {
    struct Restore(Mode);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = MODE.try_with(|m| m.set(self.0));
        }
    }
    let previous = MODE
        .try_with(|m| m.replace(mode))
        .unwrap_or(Mode::Untracked);
    let _restore = Restore(previous);
    catch_unwind(AssertUnwindSafe(f))
}

/// Runs user code (a hook, a sampler, a namer, a classifier): `None` if it panicked. The panic
/// is the user's bug to see on stderr (the previous panic hook still prints it); lighttrace
/// neither records a stack for it nor reports it as an event.
#[inline]
pub(crate) fn contain<R>(f: impl FnOnce() -> R) -> Option<R> {
    catch_in(Mode::Quiet, f).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_innermost_region_wins_and_the_outer_mode_comes_back() {
        assert_eq!(mode(), Mode::Untracked);
        let seen = catch_in(Mode::Tracked, || {
            let inner = contain(mode);
            (mode(), inner)
        })
        .unwrap();
        assert_eq!(seen, (Mode::Tracked, Some(Mode::Quiet)));
        assert_eq!(mode(), Mode::Untracked);
    }

    #[test]
    fn a_contained_panic_is_none_and_restores_the_mode() {
        let outer = catch_in(Mode::Tracked, || {
            let caught = contain(|| -> u8 { panic!("user hook bug") });
            (caught, mode())
        })
        .unwrap();
        assert_eq!(outer, (None, Mode::Tracked));
    }
}
