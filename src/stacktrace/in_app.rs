//! Which frames are the application's own. Servers group issues and pick the culprit by in-app
//! frames, so this decides whether one bug is one issue.
//!
//! In order: the SDK's own frames never are; the user's `in_app_include`/`in_app_exclude`
//! prefixes decide next; then where the code lives (the Rust toolchain's sources and Cargo's
//! registry and git checkouts are libraries, anything else with a file is the application's,
//! path dependencies in its workspace included); and only for a frame without a file, the
//! crate its function belongs to, read from the qualified name.

/// Crates whose functions are libraries, for frames without a file.
const LIBRARY_CRATES: &[&str] = &[
    "std",
    "core",
    "alloc",
    "tokio",
    "tower",
    "tower_service",
    "tower_layer",
    "tower_http",
    "hyper",
    "hyper_util",
    "axum",
    "axum_core",
    "futures",
    "futures_util",
    "futures_core",
    "futures_executor",
    "http",
    "http_body",
    "http_body_util",
    "backtrace",
    "test",
    "tracing",
    "tracing_core",
    "tracing_subscriber",
];

/// Symbols of the C runtime and the unwinder, for frames without a file.
const RUNTIME_SYMBOLS: &[&str] = &[
    "__rust",
    "rust_begin_unwind",
    "__libc",
    "_start",
    "start_thread",
    "clone",
    "clone3",
    "__clone",
];

/// Which frames are the application's own (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct InApp<'a> {
    pub(crate) include: &'a [String],
    pub(crate) exclude: &'a [String],
}

impl InApp<'_> {
    /// Whether a frame of `function`, in `file` if known, is the application's.
    pub(crate) fn is_in_app(&self, function: &str, file: Option<&str>) -> bool {
        let krate = crate_of(function);
        if krate == Some("lighttrace") {
            return false;
        }
        let bare = function.trim_start_matches('<');
        if self.include.iter().any(|p| bare.starts_with(p.as_str())) {
            return true;
        }
        if self.exclude.iter().any(|p| bare.starts_with(p.as_str())) {
            return false;
        }
        if let Some(file) = file.filter(|f| !f.is_empty()) {
            return !is_library_path(file);
        }
        if function == "<unknown>" || RUNTIME_SYMBOLS.iter().any(|s| function.starts_with(s)) {
            return false;
        }
        !krate.is_some_and(|k| LIBRARY_CRATES.contains(&k))
    }
}

/// Whether a source path is a library's: the toolchain's sources (`/rustc/<hash>/…` in release
/// toolchains, `…/rustlib/src/rust/…` with the `rust-src` component), a crate Cargo fetched
/// (`…/registry/src/…`, `…/git/checkouts/…` under any `CARGO_HOME`), or code that is not Rust
/// (the C runtime's, the system's).
pub(crate) fn is_library_path(file: &str) -> bool {
    let file = file.replace('\\', "/");
    // Not Rust: the C runtime and system libraries (glibc's `sysdeps/…/clone3.S`, …).
    if !file.ends_with(".rs") || file.starts_with("/usr/") {
        return true;
    }
    if file.starts_with("/rustc/") || file.contains("/rustlib/src/rust/") {
        return true;
    }
    if file.contains("/registry/src/") || file.contains("/git/checkouts/") {
        return true;
    }
    let cargo_homes = [
        std::env::var("CARGO_HOME").ok(),
        option_env!("CARGO_HOME").map(str::to_owned),
    ];
    cargo_homes
        .iter()
        .flatten()
        .filter(|home| !home.is_empty())
        .any(|home| file.starts_with(home.trim_end_matches('/')))
}

/// The crate a function belongs to, from its demangled, qualified name:
/// `myapp::handler::{{closure}}` → `myapp`; `<myapp::Order as core::fmt::Display>::fmt` →
/// `myapp` (the implementing type's crate); `<usize as core::slice::index::SliceIndex<[T]>>::index`
/// or `<F as axum::handler::Handler<T,S>>::call` → `core`, `axum` (a primitive or a generic
/// parameter has no crate: the trait's); `<alloc::vec::Vec<T> as Drop>::drop` → `alloc`.
pub(crate) fn crate_of(function: &str) -> Option<&str> {
    let Some(rest) = function.strip_prefix('<') else {
        return first_segment(function);
    };
    // `<Type as Trait>::f`: split at the top-level ` as ` (types may nest `<...>`).
    let mut depth = 0usize;
    let bytes = rest.as_bytes();
    let mut split = None;
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'<' | b'[' | b'(' => depth += 1,
            b'>' | b']' | b')' if depth == 0 => break,
            b'>' | b']' | b')' => depth -= 1,
            b' ' if depth == 0 && rest[i..].starts_with(" as ") => {
                split = Some(i);
                break;
            }
            _ => {}
        }
    }
    let (ty, tr) = match split {
        Some(i) => (&rest[..i], Some(&rest[i + 4..])),
        None => (rest, None),
    };
    let ty = ty
        .trim_start_matches(['&', '*', '(', '['])
        .trim_start_matches("mut ");
    let ty = ty.trim_start_matches("dyn ").trim_start_matches('<');
    if ty.contains("::") {
        return first_segment(ty);
    }
    tr.and_then(first_segment)
}

fn first_segment(path: &str) -> Option<&str> {
    let path = path.trim_start_matches('<');
    let (head, _) = path.split_once("::")?;
    let valid = !head.is_empty() && head.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    valid.then_some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> InApp<'static> {
        InApp::default()
    }

    #[test]
    fn qualified_names_name_their_crate() {
        let cases = [
            ("myapp::routes::panic::{{closure}}", Some("myapp")),
            ("<myapp::Order as core::fmt::Display>::fmt", Some("myapp")),
            (
                "<usize as core::slice::index::SliceIndex<[T]>>::index",
                Some("core"),
            ),
            ("<F as axum::handler::Handler<((),),S>>::call", Some("axum")),
            (
                "<alloc::vec::Vec<T,A> as core::ops::drop::Drop>::drop",
                Some("alloc"),
            ),
            (
                "<&mut serde_json::de::Deserializer<R> as serde::de::Deserializer>::f",
                Some("serde_json"),
            ),
            ("<[T] as core::fmt::Debug>::fmt", Some("core")),
            ("<tokio::task::JoinHandle<T>>::abort", Some("tokio")),
            ("main", None),
            ("__libc_start_main", None),
        ];
        for (function, expected) in cases {
            assert_eq!(crate_of(function), expected, "{function}");
        }
    }

    #[test]
    fn where_the_code_lives_decides() {
        let r = rules();
        // The toolchain's sources.
        assert!(!r.is_in_app(
            "<usize as core::slice::index::SliceIndex<[T]>>::index",
            Some("/rustc/4eb161250e340c8f48f66e2b929ef4a5bed7c181/library/core/src/slice/index.rs")
        ));
        assert!(!r.is_in_app(
            "std::panicking::try",
            Some("/home/dev/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/lib/rustlib/src/rust/library/std/src/panicking.rs")
        ));
        // Registry crates, named in no list here, under the default and a custom CARGO_HOME.
        for (function, file) in [
            ("<F as axum::handler::Handler<T,S>>::call", "/home/dev/.cargo/registry/src/index-6f17d22bba15001f/axum-0.8.9/src/handler/mod.rs"),
            ("sqlx_core::pool::inner::PoolInner::acquire", "/home/dev/.cargo/registry/src/index-6f17d22bba15001f/sqlx-core-0.8.2/src/pool/inner.rs"),
            ("rust_decimal::ops::add::add_impl", "/opt/cargo/registry/src/index-1949cf8c6b5b557f/rust_decimal-1.36.0/src/ops/add.rs"),
            ("zeroize_like::wipe", "/srv/ci/cargo-home/git/checkouts/zeroize-like-91a2c6b07dc19e7a/1a2b3c4/src/lib.rs"),
        ] {
            assert!(!r.is_in_app(function, Some(file)), "{function}");
        }
        // The application's own code: relative paths, and absolute ones in its workspace,
        // a path dependency included, even when its crate shares a library's name prefix.
        assert!(r.is_in_app(
            "quickstart::panic_route::{{closure}}",
            Some("examples/quickstart.rs")
        ));
        assert!(r.is_in_app(
            "myapp::handlers::checkout",
            Some("/home/dev/myapp/src/handlers.rs")
        ));
        assert!(r.is_in_app(
            "billing::invoice::total",
            Some("/home/dev/myapp/crates/billing/src/invoice.rs")
        ));
        assert!(r.is_in_app(
            "tokio_util_local::x",
            Some("/home/dev/myapp/crates/tokio-util-local/src/lib.rs")
        ));
    }

    #[test]
    fn without_a_file_the_function_name_decides() {
        let r = rules();
        assert!(!r.is_in_app("<F as axum::handler::Handler<T,S>>::call", None));
        assert!(!r.is_in_app("tokio::runtime::task::harness::poll_future", None));
        assert!(!r.is_in_app(
            "clone3",
            Some("misc/../sysdeps/unix/sysv/linux/x86_64/clone3.S")
        ));
        assert!(!r.is_in_app("start_thread", Some("./nptl/pthread_create.c")));
        assert!(!r.is_in_app("__libc_start_call_main", None));
        assert!(!r.is_in_app("<unknown>", None));
        assert!(r.is_in_app("myapp::handler", None));
        assert!(r.is_in_app("<myapp::Order as core::fmt::Display>::fmt", None));
    }

    #[test]
    fn the_sdk_is_never_in_app_and_user_prefixes_come_next() {
        assert!(!rules().is_in_app("lighttrace::scope::panic::hook", Some("src/scope/panic.rs")));
        let include = vec!["axum::".to_owned()];
        let exclude = vec!["myapp::vendored".to_owned()];
        let r = InApp {
            include: &include,
            exclude: &exclude,
        };
        assert!(r.is_in_app(
            "axum::routing::x",
            Some("/home/dev/.cargo/registry/src/i/axum-0.8.9/src/x.rs")
        ));
        assert!(!r.is_in_app("myapp::vendored::f", Some("src/vendored.rs")));
        assert!(r.is_in_app("myapp::handler", Some("src/main.rs")));
    }
}
