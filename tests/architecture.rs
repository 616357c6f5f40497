//! The layering rules of ARCHITECTURE.md, checked on the source: which top-level
//! modules a module may use, and no import cycles between the files of one folder.
//!
//! References are read from the non-test code of each file (everything before its
//! `#[cfg(test)]`): `crate::a::b` paths and `super::` paths, `use` lines included.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/` with its non-test text.
fn files() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.path());
        for e in entries {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                let code = match text.find("#[cfg(test)]") {
                    Some(i) => text[..i].to_string(),
                    None => text,
                };
                out.push((p, code));
            }
        }
    }
    let mut out = Vec::new();
    walk(&src(), &mut out);
    out
}

/// `src/a/b.rs` → `a`; `src/lm.rs` → `lm`.
fn top_module(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel.iter().next().unwrap().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// Identifiers following `prefix` in `code` (e.g. `crate::` → `runtime`).
fn idents_after<'a>(code: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        // Skip comments: only count a prefix on a line that is not a comment.
        let line_start = rest[..i].rfind('\n').map(|j| j + 1).unwrap_or(0);
        let is_comment = rest[line_start..i].trim_start().starts_with("//");
        let after = &rest[i + prefix.len()..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if !is_comment && end > 0 {
            out.push(&after[..end]);
        }
        rest = &after[end..];
    }
    out
}

/// Top-level module → the other top-level modules its code names.
fn top_level_edges() -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, code) in files() {
        let from = top_module(&path);
        for to in idents_after(&code, "crate::") {
            // `crate::Error` / `crate::Result`: the root's re-exports of `error`.
            let to = if to.starts_with(char::is_uppercase) {
                "error"
            } else {
                to
            };
            if to != from {
                edges
                    .entry(from.clone())
                    .or_default()
                    .insert(to.to_string());
            }
        }
    }
    edges
}

fn uses(edges: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    edges.get(from).cloned().unwrap_or_default()
}

#[test]
fn the_model_interface_depends_on_nothing_but_the_error_type() {
    let edges = top_level_edges();
    let used = uses(&edges, "lm");
    let extra: Vec<_> = used.iter().filter(|m| *m != "error").collect();
    assert!(extra.is_empty(), "src/lm.rs uses {extra:?}");
}

/// The rows of ARCHITECTURE.md's picture, bottom = 0: a module may use only
/// modules of a lower row.
const LAYERS: &[(&str, u8)] = &[
    ("error", 0),
    ("paths", 0),
    ("progress", 0),
    ("setup", 1),
    ("lm", 1),
    ("score", 2),
    ("model", 3),
    ("data", 3),
    ("runtime", 4),
    ("transform", 5),
    ("train", 5),
    ("attack", 6),
    ("eval", 6),
    ("campaign", 7),
    ("report", 8),
    ("serve", 8),
    ("cli", 9),
    ("main", 9),
    ("lib", 9),
];

fn layer(m: &str) -> u8 {
    LAYERS.iter().find(|(n, _)| *n == m).map(|(_, l)| *l).unwrap_or_else(|| {
        panic!("module `{m}` has no row: add it to ARCHITECTURE.md and to LAYERS in tests/architecture.rs")
    })
}

#[test]
fn arrows_point_down() {
    let edges = top_level_edges();
    let mut broken = Vec::new();
    for (from, tos) in &edges {
        for to in tos {
            if layer(to) >= layer(from) {
                broken.push(format!(
                    "{from} (row {}) -> {to} (row {})",
                    layer(from),
                    layer(to)
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "arrows pointing up or sideways: {broken:#?}"
    );
}

#[test]
fn the_checker_judges_text_only() {
    let used = uses(&top_level_edges(), "score");
    let extra: Vec<_> = used.iter().filter(|m| *m != "error").collect();
    assert!(extra.is_empty(), "src/score uses {extra:?}");
}

/// The sibling files (not `mod.rs`) of each folder that a file names, through
/// `super::NAME`, `crate::path::NAME`, or a name `mod.rs` re-exports from a sibling.
fn sibling_edges() -> BTreeMap<PathBuf, BTreeMap<String, BTreeSet<String>>> {
    let all = files();
    let mut by_dir: BTreeMap<PathBuf, Vec<(String, String)>> = BTreeMap::new();
    for (p, code) in &all {
        let dir = p.parent().unwrap().to_path_buf();
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        by_dir.entry(dir).or_default().push((stem, code.clone()));
    }
    let mut out = BTreeMap::new();
    for (dir, members) in by_dir {
        let siblings: BTreeSet<String> = members
            .iter()
            .map(|(s, _)| s.clone())
            .filter(|s| s != "mod" && s != "lib" && s != "main")
            .collect();
        // Names re-exported by mod.rs: `pub use sib::{A, B}` → A, B belong to sib.
        let mut reexport: BTreeMap<String, String> = BTreeMap::new();
        if let Some((_, code)) = members.iter().find(|(s, _)| s == "mod") {
            for line in code.lines() {
                let l = line.trim();
                if let Some(rest) = l.strip_prefix("pub use ") {
                    let (module, names) = rest.split_once("::").unwrap_or(("", ""));
                    if siblings.contains(module) {
                        for n in names
                            .trim_end_matches(';')
                            .trim_matches(['{', '}'])
                            .split(',')
                        {
                            let n = n.trim();
                            if !n.is_empty() {
                                reexport.insert(n.to_string(), module.to_string());
                            }
                        }
                    }
                }
            }
        }
        let rel = dir.strip_prefix(src()).unwrap();
        let crate_path: String = rel
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("::");
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (stem, code) in &members {
            if !siblings.contains(stem) {
                continue;
            }
            let mut named: Vec<&str> = idents_after(code, "super::");
            // `use super::{A, B}` groups.
            let mut rest = code.as_str();
            while let Some(i) = rest.find("super::{") {
                let after = &rest[i + 8..];
                let end = after.find('}').unwrap_or(after.len());
                named.extend(after[..end].split(',').map(|s| s.trim()));
                rest = &after[end..];
            }
            if !crate_path.is_empty() {
                named.extend(idents_after(code, &format!("crate::{crate_path}::")));
            }
            let targets = graph.entry(stem.clone()).or_default();
            for n in named {
                let n = n.split("::").next().unwrap_or(n);
                let target = if siblings.contains(n) {
                    Some(n.to_string())
                } else {
                    reexport.get(n).cloned()
                };
                if let Some(t) = target
                    && t != *stem
                {
                    targets.insert(t);
                }
            }
        }
        out.insert(dir, graph);
    }
    out
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut c = stack[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        if let Some(c) = visit(n, graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_import_cycles_between_files_of_one_folder() {
    let mut cycles = Vec::new();
    for (dir, graph) in sibling_edges() {
        if let Some(c) = find_cycle(&graph) {
            cycles.push(format!("{}: {}", dir.display(), c.join(" -> ")));
        }
    }
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    // The check above is only worth something if it can fail.
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("spec".into()).or_default().insert("exec".into());
    g.entry("exec".into()).or_default().insert("spec".into());
    assert!(find_cycle(&g).is_some());
    g.get_mut("exec").unwrap().clear();
    assert!(find_cycle(&g).is_none());
}
