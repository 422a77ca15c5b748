//! The crate's shape, checked: imports between its top-level modules follow exactly the
//! edges stated in [`EDGES`] (the flow layer → scope → client → sink → transport, with the
//! folders beside it and the leaves `event` and `util`); no folder outgrows ~2.5k lines and no
//! file ~450 (tests excluded, exceptions named); no two types share a name. Every `crate::…`
//! path under `src/` is read, root re-exports resolved to the module they come from.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Every import edge between the crate's top-level modules, and why it runs that way. An edge
/// that is not here fails the test; so does one here that the code no longer has.
const EDGES: &[(&str, &[&str])] = &[
    // The flow an event takes.
    (
        "layer",
        &["scope", "client", "options", "propagation", "event", "util"],
    ),
    (
        "scope",
        &["client", "options", "propagation", "event", "util"],
    ),
    (
        "client",
        &[
            "sink", "wire", "scrub", "metrics", "options", "event", "util",
        ],
    ),
    ("sink", &["transport", "wire", "util"]),
    ("transport", &["wire", "util"]),
    // Front ends that feed scopes as the layer does.
    ("tracing", &["scope", "client", "event", "util"]),
    ("integrations", &["scope", "scrub", "event"]),
    ("monitor", &["scope", "client", "options", "event"]),
    // Beside the flow: used by it, using only each other and the leaves.
    ("options", &["sink", "scrub", "event", "stacktrace", "util"]),
    ("propagation", &["options", "event", "util"]),
    ("wire", &["scrub", "event", "util"]),
    ("scrub", &["event", "util"]),
    ("metrics", &["event"]),
    // Leaves: the shared vocabulary, which uses only util's pure helpers (SQL text) and the
    // stack traces its exceptions carry; stack traces (frames, in-app marking, loaded images);
    // util.
    ("event", &["stacktrace", "util"]),
    ("stacktrace", &[]),
    ("util", &[]),
];

/// Files allowed past ~450 lines (tests excluded), and why.
const LONG_FILES: &[(&str, &str)] = &[(
    "options/builders.rs",
    "every builder of Options in one impl: the options' reference, each with its example",
)];

const MAX_FILE_LINES: usize = 450;
const MAX_FOLDER_LINES: usize = 2500;

fn allowed(from: &str, to: &str) -> bool {
    from == to
        || EDGES
            .iter()
            .any(|(f, targets)| *f == from && targets.contains(&to))
}

fn is_module(name: &str) -> bool {
    EDGES.iter().any(|(m, _)| *m == name)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments (doc links may name anything).
fn code_lines(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let code = match line.find("//") {
                Some(pos) if !line[..pos].contains('"') => &line[..pos],
                _ => line,
            };
            (!code.trim().is_empty()).then(|| (i + 1, code.to_owned()))
        })
        .collect()
}

/// Root re-exports (`pub use client::{Client, …};` in lib.rs): name → the module it comes from.
fn root_reexports(lib: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let code: String = code_lines(lib)
        .into_iter()
        .map(|(_, l)| l)
        .collect::<Vec<_>>()
        .join("\n");
    for statement in code.split(';') {
        // A statement after a block (`pub mod future { … }`) starts with its closing brace.
        let statement = statement.trim().trim_start_matches('}').trim();
        let Some(rest) = statement.strip_prefix("pub use ") else {
            continue;
        };
        let module = rest.split("::").next().unwrap_or("").trim();
        if !is_module(module) {
            continue;
        }
        let names = rest
            .split_once('{')
            .map(|(_, names)| names.trim_end_matches('}').to_owned())
            .unwrap_or_else(|| rest.rsplit("::").next().unwrap_or("").to_owned());
        for name in names.split(',') {
            let name = name.trim();
            if !name.is_empty() {
                map.insert(name.to_owned(), module.to_owned());
            }
        }
    }
    map
}

/// The module every `crate::…` path on a line names.
fn targets(line: &str, reexports: &HashMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(pos) = rest.find("crate::") {
        let after = &rest[pos + "crate::".len()..];
        let first: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if is_module(&first) {
            out.push(first.clone());
        } else if let Some(module) = reexports.get(&first) {
            out.push(module.clone());
        } else if let Some(braced) = after.strip_prefix('{') {
            // `use crate::{a, b}`: each name.
            let inner = braced.split('}').next().unwrap_or("");
            for name in inner.split(',') {
                let name = name.trim().split("::").next().unwrap_or("").trim();
                if is_module(name) {
                    out.push(name.to_owned());
                } else if let Some(module) = reexports.get(name) {
                    out.push(module.clone());
                }
            }
        }
        rest = after;
    }
    out
}

/// The top-level module a file under `src/` belongs to (`None` for `lib.rs`).
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let module = first.trim_end_matches(".rs");
    (module != "lib").then(|| module.to_owned())
}

/// A file's lines before its `#[cfg(test)]` module; none for a file of tests.
fn non_test_lines(relative: &Path, text: &str) -> usize {
    if relative
        .file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with("tests.rs"))
    {
        return 0;
    }
    text.lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .count()
}

fn sources() -> (PathBuf, Vec<PathBuf>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    (src, files)
}

#[test]
fn imports_follow_the_stated_edges_and_every_stated_edge_is_real() {
    let (src, files) = sources();
    let reexports = root_reexports(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    assert!(
        reexports.get("Client").map(String::as_str) == Some("client")
            && reexports.get("TrackingLayer").map(String::as_str) == Some("layer"),
        "the root re-exports were not understood: {reexports:?}"
    );
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        if let Some(module) = module_of(relative) {
            assert!(is_module(&module), "{module} is not in EDGES");
        }
    }
    let mut unexpected = Vec::new();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let Some(module) = module_of(relative) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (line_no, line) in code_lines(&text) {
            for target in targets(&line, &reexports) {
                checked += 1;
                if target == module {
                    continue;
                }
                seen.insert((module.clone(), target.clone()));
                if !allowed(&module, &target) {
                    unexpected.push(format!(
                        "{}:{line_no}: {module} → {target}: {}",
                        relative.display(),
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} crate paths found: is the parser broken?"
    );
    assert!(
        unexpected.is_empty(),
        "imports along no stated edge (see EDGES):\n{}",
        unexpected.join("\n")
    );
    let stale: Vec<String> = EDGES
        .iter()
        .flat_map(|(from, targets)| targets.iter().map(move |to| (*from, *to)))
        .filter(|(from, to)| !seen.contains(&(from.to_string(), to.to_string())))
        .map(|(from, to)| format!("{from} → {to}"))
        .collect();
    assert!(
        stale.is_empty(),
        "stated edges the code no longer has: {stale:?}"
    );
}

#[test]
fn the_stated_edges_have_no_cycle() {
    fn visit<'a>(node: &'a str, path: &mut Vec<&'a str>, done: &mut BTreeSet<&'a str>) {
        assert!(!path.contains(&node), "a cycle: {path:?} → {node}");
        if done.contains(node) {
            return;
        }
        path.push(node);
        for (_, targets) in EDGES.iter().filter(|(m, _)| *m == node) {
            for target in *targets {
                visit(target, path, done);
            }
        }
        path.pop();
        done.insert(node);
    }
    let mut done = BTreeSet::new();
    for (module, _) in EDGES {
        visit(module, &mut Vec::new(), &mut done);
    }
}

#[test]
fn folders_and_files_stay_small() {
    let (src, files) = sources();
    let mut folders: BTreeMap<String, usize> = BTreeMap::new();
    let mut long = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        let lines = non_test_lines(relative, &text);
        let name = relative.to_string_lossy().replace('\\', "/");
        if let Some(module) = module_of(relative) {
            *folders.entry(module).or_default() += lines;
        }
        if lines > MAX_FILE_LINES && !LONG_FILES.iter().any(|(f, _)| *f == name) {
            long.push(format!("{name}: {lines} lines"));
        }
    }
    assert!(
        long.is_empty(),
        "files past {MAX_FILE_LINES} lines: {long:?}"
    );
    let big: Vec<_> = folders
        .iter()
        .filter(|(_, lines)| **lines > MAX_FOLDER_LINES)
        .collect();
    assert!(
        big.is_empty(),
        "folders past {MAX_FOLDER_LINES} lines: {big:?}"
    );
}

#[test]
fn no_two_types_share_a_name() {
    let (src, files) = sources();
    let mut names: HashMap<String, Vec<String>> = HashMap::new();
    for file in &files {
        let relative = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        for (line_no, line) in code_lines(&text) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some(at) = words
                .iter()
                .position(|w| matches!(*w, "struct" | "enum" | "trait" | "union"))
            else {
                continue;
            };
            // Item declarations only: `pub(crate) struct X`, not a word in an expression.
            if !words[..at].iter().all(|w| w.starts_with("pub")) {
                continue;
            }
            let Some(name) = words.get(at + 1) else {
                continue;
            };
            let name: String = name
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names
                .entry(name)
                .or_default()
                .push(format!("{relative}:{line_no}"));
        }
    }
    let mut shared: Vec<_> = names.iter().filter(|(_, at)| at.len() > 1).collect();
    shared.sort();
    assert!(shared.is_empty(), "type names declared twice: {shared:?}");
    assert!(names.contains_key("TrackingLayer") && names.contains_key("SpanState"));
}

#[test]
fn the_checker_catches_unstated_edges() {
    let reexports = root_reexports("pub use layer::{TrackingLayer, TrackingService};");
    assert_eq!(
        targets("use crate::scope::RequestScope;", &reexports),
        ["scope"]
    );
    assert_eq!(
        targets("let l: crate::TrackingLayer;", &reexports),
        ["layer"]
    );
    assert_eq!(
        targets("use crate::{client::Client, TrackingService};", &reexports),
        ["client", "layer"]
    );
    assert!(!allowed("client", "scope"));
    assert!(!allowed("sink", "client"));
    assert!(!allowed("event", "client"));
    assert!(!allowed("util", "event"));
    assert!(!allowed("event", "scrub"));
    assert!(!allowed("client", "tracing"));
    assert!(!allowed("wire", "client"));
    assert!(!allowed("metrics", "client"));
    assert!(allowed("scope", "event"));
    assert!(allowed("tracing", "scope"));
    assert!(allowed("wire", "scrub"));
    assert!(code_lines("// use crate::layer::X;").is_empty());
}
