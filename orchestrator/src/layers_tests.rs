//! The library's top-level modules form no import cycle (ARCHITECTURE.md,
//! "Layers"): each may use only modules below it, so any one can be read,
//! tested and replaced with what is under it alone. Read from the source
//! (every `crate::<module>` a module's code names, comments left out), so
//! a new import that closes a circle fails here, naming the files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every top-level module of the library, with its files.
fn modules(src: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "bin" || name == "lib.rs" || name.ends_with("_tests.rs") {
            continue;
        }
        let (module, files) = match name.strip_suffix(".rs") {
            Some(module) => (module.to_string(), vec![path]),
            None if path.is_dir() => (name, rust_files(&path)),
            None => continue,
        };
        modules.entry(module).or_insert_with(Vec::new).extend(files);
    }
    modules
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The top-level modules `text` names as `crate::<module>` (or inside
/// `crate::{...}`), outside comments and test code.
fn named(text: &str, modules: &BTreeMap<String, Vec<PathBuf>>) -> BTreeSet<String> {
    // Test code may reach anywhere: a `#[cfg(test)]` item (the line after
    // the attribute) and an inline test module (from its attribute to the
    // end of the file, where modules keep them) are left out.
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            match lines.next() {
                Some(item)
                    if item.trim_start().starts_with("mod ") && item.trim_end().ends_with('{') =>
                {
                    break;
                }
                _ => continue,
            }
        }
        code.push_str(line.split("//").next().unwrap_or_default());
        code.push('\n');
    }
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        for path in paths(&code[at + "crate::".len()..]) {
            // The longest module the path goes through (`commands::land`
            // of `commands::land::LandArgs`; `run` of `run::local::x` when
            // only top-level modules are keys).
            let segments: Vec<&str> = path.split("::").collect();
            let module = (1..=segments.len())
                .rev()
                .map(|n| segments[..n].join("::"))
                .find(|m| modules.contains_key(m));
            found.extend(module);
        }
    }
    found
}

/// The paths a `crate::` names, from the text after it, every group
/// expanded: `a::{b, c::{d}}, e}` gives `a::b` and `a::c::d`.
fn paths(rest: &str) -> Vec<String> {
    let head: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    let prefix = head.trim_end_matches(':');
    match rest[head.len()..].strip_prefix('{') {
        Some(group) if head.is_empty() || head.ends_with("::") => top_items(group)
            .into_iter()
            .flat_map(|item| paths(item.trim()))
            .map(|path| match prefix.is_empty() {
                true => path,
                false => format!("{prefix}::{path}"),
            })
            .collect(),
        _ => vec![prefix.to_string()],
    }
}

/// The items of a `{...}` group whose `{` is already taken: split at the
/// commas outside nested groups, up to the `}` that closes it
/// (`a::{b, c}, d}` gives `a::{b, c}` and `d`).
fn top_items(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items
}

/// A nested group hides no module: every top-level item of `crate::{...}`
/// is read, after one with braces of its own too (this stopped at the
/// first `}` and missed `run` here).
#[test]
fn a_nested_use_group_names_every_module_in_it() {
    let modules: BTreeMap<String, Vec<PathBuf>> = ["git", "ids", "run", "plan"]
        .into_iter()
        .map(|m| (m.to_string(), Vec::new()))
        .collect();
    let text = "use crate::{git::{Repo, Oid}, ids::TaskId,\n    run::{self, x::{y}}};\nfn f() { crate::plan::parse(); }\n";
    let found = named(text, &modules);
    assert_eq!(
        found,
        BTreeSet::from(["git", "ids", "run", "plan"].map(String::from))
    );
}

/// In the binary, files are keyed by their module path: a group under
/// `crate::commands::` names the commands in it, and a path through a
/// command names that command, not `commands` (which imports nothing).
#[test]
fn a_path_names_the_deepest_module_it_goes_through() {
    let modules: BTreeMap<String, Vec<PathBuf>> =
        ["commands", "commands::land", "commands::validate", "drive"]
            .into_iter()
            .map(|m| (m.to_string(), Vec::new()))
            .collect();
    let text = "use crate::commands::{land, validate::ValidateArgs};\nuse crate::{drive::Drive, Failure};\n";
    assert_eq!(
        named(text, &modules),
        BTreeSet::from(["commands::land", "commands::validate", "drive"].map(String::from))
    );
}

/// module -> (module it names -> a file that names it), for `modules`.
fn edges(modules: &BTreeMap<String, Vec<PathBuf>>) -> BTreeMap<&str, BTreeMap<String, PathBuf>> {
    let mut edges: BTreeMap<&str, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for (module, files) in modules {
        let out = edges.entry(module).or_default();
        for file in files {
            let text = std::fs::read_to_string(file).unwrap();
            for other in named(&text, modules) {
                if &other != module {
                    out.entry(other).or_insert_with(|| file.clone());
                }
            }
        }
    }
    edges
}

/// A circle of imports among `edges`, each step with the file that makes
/// it, if there is one.
fn cycle(edges: &BTreeMap<&str, BTreeMap<String, PathBuf>>) -> Option<String> {
    // A depth-first walk; a module met again on the current path closes a
    // cycle.
    fn walk<'a>(
        at: &'a str,
        edges: &'a BTreeMap<&'a str, BTreeMap<String, PathBuf>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(start) = path.iter().position(|m| *m == at) {
            let mut cycle = path[start..].to_vec();
            cycle.push(at);
            return Some(cycle);
        }
        if !done.insert(at) {
            return None;
        }
        path.push(at);
        for next in edges.get(at).into_iter().flat_map(|e| e.keys()) {
            if let Some(cycle) = walk(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in edges.keys() {
        if let Some(cycle) = walk(module, edges, &mut Vec::new(), &mut done) {
            let why: Vec<String> = cycle
                .windows(2)
                .map(|w| format!("  {} -> {} ({})", w[0], w[1], edges[w[0]][w[1]].display()))
                .collect();
            return Some(why.join("\n"));
        }
    }
    None
}

#[test]
fn top_level_modules_form_no_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    assert!(modules.len() > 10, "{modules:?}");
    if let Some(why) = cycle(&edges(&modules)) {
        panic!(
            "the library's top-level modules import in a circle:\n{why}\nmove the shared name down (ids, layout) or the code up"
        );
    }
}

/// The binary's files (one per command, `common.rs` for what several
/// share) import one another in no circle, and never by a glob: where a
/// name lives is read in the `use` line.
#[test]
fn the_binarys_files_form_no_import_cycle_and_import_no_glob() {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin/swarm");
    // Each file by its module path: `cli`, `commands`, `commands::land`,
    // `commands::doctor::model`.
    let files: BTreeMap<String, Vec<PathBuf>> = rust_files(&bin)
        .into_iter()
        .filter_map(|f| {
            let relative = f.strip_prefix(&bin).ok()?.with_extension("");
            let mut parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            let module = parts.join("::");
            (module != "main").then_some((module, vec![f]))
        })
        .collect();
    assert!(files.len() > 10, "{files:?}");
    for file in files.values().flatten() {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            !text.lines().any(
                |l| l.trim_start().starts_with("use crate::") && l.trim_end().ends_with("::*;")
            ),
            "{} imports by a glob",
            file.display()
        );
    }
    if let Some(why) = cycle(&edges(&files)) {
        panic!("the binary's files import in a circle:\n{why}\nmove what both need into common.rs");
    }
}

/// ARCHITECTURE.md's diagram of the layers names every top-level module.
#[test]
fn the_layer_diagram_names_every_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let doc = std::fs::read_to_string(src.join("../../ARCHITECTURE.md")).unwrap();
    let layers = doc.split("## Layers").nth(1).unwrap();
    let diagram = layers.split("```").nth(1).unwrap();
    let shown: BTreeSet<&str> = diagram
        .lines()
        .flat_map(|line| line.split_whitespace().take_while(|w| !w.ends_with(';')))
        .collect();
    let missing: Vec<String> = modules(&src)
        .into_keys()
        .filter(|m| !shown.contains(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's layer diagram leaves out {missing:?}"
    );
}
