//! The crate's imports run one way: layer → scope → client → sink (the `tracing` integration is
//! a front end beside the layer), and any stage may use `event` and `util`, which use nothing
//! but themselves (see the crate docs). This test
//! reads every `crate::…` path under `src/` (root re-exports resolved to the module they come
//! from) and fails on a path that reaches back up the flow.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The stages in flow order; `event` and `util` are leaves anyone may use.
const FLOW: [&str; 4] = ["layer", "scope", "client", "sink"];

fn rank(stage: &str) -> Option<usize> {
    match stage {
        // A front end beside the layer: it feeds scopes as the layer does.
        "tracing" => Some(0),
        _ => FLOW.iter().position(|s| *s == stage),
    }
}

/// Whether code in `from` may name an item of `to`.
fn allowed(from: &str, to: &str) -> bool {
    match (from, to) {
        (_, "util") => true,
        ("util", _) => false,
        (_, "event") => true,
        ("event", _) => false,
        _ => match (rank(from), rank(to)) {
            (Some(a), Some(b)) => a <= b,
            _ => true,
        },
    }
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
        let Some(rest) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let module = rest.split("::").next().unwrap_or("").trim();
        if rank(module).is_none() && !matches!(module, "event" | "util") {
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
        if rank(&first).is_some() || matches!(first.as_str(), "event" | "util") {
            out.push(first.clone());
        } else if let Some(module) = reexports.get(&first) {
            out.push(module.clone());
        } else if let Some(braced) = after.strip_prefix('{') {
            // `use crate::{a, b}`: each name.
            let inner = braced.split('}').next().unwrap_or("");
            for name in inner.split(',') {
                let name = name.trim().split("::").next().unwrap_or("").trim();
                if rank(name).is_some() || matches!(name, "event" | "util") {
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

#[test]
fn imports_run_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let reexports = root_reexports(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    assert!(
        reexports.get("Client").map(String::as_str) == Some("client")
            && reexports.get("TrackingLayer").map(String::as_str) == Some("layer"),
        "the root re-exports were not understood: {reexports:?}"
    );
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut back_edges = Vec::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let Some(stage) = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs").to_owned())
        else {
            continue;
        };
        if stage == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for (line_no, line) in code_lines(&text) {
            for target in targets(&line, &reexports) {
                checked += 1;
                if !allowed(&stage, &target) {
                    back_edges.push(format!(
                        "{}:{line_no}: {stage} → {target}: {}",
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
        back_edges.is_empty(),
        "imports that reach back up the flow (layer → scope → client → sink; event and util \
         are leaves):\n{}",
        back_edges.join("\n")
    );
}

#[test]
fn the_checker_catches_back_edges() {
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
    assert!(allowed("layer", "sink"));
    assert!(allowed("scope", "event"));
    assert!(allowed("tracing", "scope"));
    assert!(!allowed("client", "tracing"));
    assert!(code_lines("// use crate::layer::X;").is_empty());
}
