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
    // Test code may reach anywhere: it is left out, and so are comments.
    let code: String = test_code_left_out(text)
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
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
    // No arrow back up to the entry file: what commands share (`Failure`)
    // lives in a file named for it, not in `main.rs`.
    let main = code_only(&std::fs::read_to_string(bin.join("main.rs")).unwrap());
    let defined: Vec<String> = main
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l
                .strip_prefix("pub ")
                .or_else(|| l.strip_prefix("pub(crate) "))
                .unwrap_or(l);
            ["fn ", "struct ", "enum ", "const ", "type "]
                .iter()
                .find_map(|k| l.strip_prefix(k))
                .map(|r| {
                    r.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect()
                })
        })
        .collect();
    for file in files.values().flatten() {
        let code = code_only(&std::fs::read_to_string(file).unwrap());
        for name in &defined {
            assert!(
                !code.contains(&format!("crate::{name}")),
                "{} takes `{name}` from main.rs: move it to a file of its own",
                file.display()
            );
        }
    }
}

/// ARCHITECTURE.md's diagram of the layers names every top-level module.
#[test]
fn the_layer_diagram_is_drawn_from_the_imports() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let doc = std::fs::read_to_string(src.join("../../ARCHITECTURE.md")).unwrap();
    let layers = doc.split("## Layers").nth(1).unwrap();
    let diagram = layers.split("```").nth(1).unwrap();
    let modules = modules(&src);
    // A row: the modules it opens with, then what they are for.
    let rows: Vec<Vec<&str>> = diagram
        .lines()
        .map(|line| {
            line.split_whitespace()
                .take_while(|w| modules.contains_key(*w))
                .collect::<Vec<_>>()
        })
        .filter(|row| !row.is_empty())
        .collect();
    let bottom = rows.len();
    let shown: BTreeMap<&str, usize> = rows
        .iter()
        .enumerate()
        .flat_map(|(i, row)| row.iter().map(move |m| (*m, bottom - i)))
        .collect();
    let missing: Vec<&String> = modules
        .keys()
        .filter(|m| !shown.contains_key(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's layer diagram leaves out {missing:?}"
    );
    // Each module's row is one above the highest of what it imports (the
    // bottom row imports nothing of swarm's).
    let edges = edges(&modules);
    fn height<'a>(
        m: &'a str,
        edges: &'a BTreeMap<&'a str, BTreeMap<String, PathBuf>>,
        memo: &mut BTreeMap<&'a str, usize>,
    ) -> usize {
        if let Some(h) = memo.get(m) {
            return *h;
        }
        let h = 1 + edges[m]
            .keys()
            .map(|d| height(d, edges, memo))
            .max()
            .unwrap_or(0);
        memo.insert(m, h);
        h
    }
    let mut memo = BTreeMap::new();
    let wrong: Vec<String> = modules
        .keys()
        .filter_map(|m| {
            let (drawn, is) = (shown[m.as_str()], height(m, &edges, &mut memo));
            (drawn != is).then(|| {
                format!("{m}: drawn in row {drawn} from the bottom, imports put it in row {is}")
            })
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "ARCHITECTURE.md's layer diagram is not the imports':\n{}",
        wrong.join("\n")
    );
}

/// `text` with its comments, string literals and character literals blanked
/// out (their newlines kept, so lines still count), for scans that count
/// braces: a `'{'` or a `"}"` is no block.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && matches!(next, Some('"') | Some('#'))
            && !chars
                .get(i.wrapping_sub(1))
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            // A raw string: `r"..."`, `r#"..."#`.
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            out.push('"');
            i += 2 + hashes;
            while i < chars.len() && !chars[i..].iter().collect::<String>().starts_with(&close) {
                out.push(blank(chars[i]));
                i += 1;
            }
            out.push('"');
            i += close.chars().count();
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if let Some(&s) = chars.get(i) {
                    out.push(blank(s));
                }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A character literal (a lifetime has no closing quote).
            let end = (i + 2..chars.len())
                .find(|&j| chars[j] == '\'' && chars[j - 1] != '\\' || j > i + 10)
                .unwrap_or(chars.len() - 1);
            out.push_str("' '");
            i = end + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

#[test]
fn code_only_blanks_braces_in_strings_chars_and_comments() {
    let text = "fn f() { let a = '{'; let b = \"}}\\\"{\"; // {\n let c = r#\"{\"#; /* { */ let d: &'static str = \"\"; }\n";
    let code = code_only(text);
    assert_eq!(code.matches('{').count(), 1, "{code}");
    assert_eq!(code.matches('}').count(), 1, "{code}");
    assert_eq!(code.lines().count(), 2);
}

/// Where the bracket at `open` of `code` (as `code_only` leaves it: no
/// brackets in strings or comments) closes, counting only its own kind.
fn closing(code: &[u8], open: usize) -> Option<usize> {
    let (opens, closes) = match code.get(open)? {
        b'{' => (b'{', b'}'),
        b'(' => (b'(', b')'),
        _ => return None,
    };
    let mut depth = 0usize;
    (open..code.len()).find(|&j| {
        if code[j] == opens {
            depth += 1;
        } else if code[j] == closes {
            depth -= 1;
        }
        depth == 0
    })
}

/// Every function of `text` longer than `limit` lines (from its `fn` line
/// to its closing brace), as "name (lines)".
fn long_functions(text: &str, limit: usize) -> Vec<String> {
    let code = code_only(text);
    let bytes = code.as_bytes();
    let line_of = |at: usize| code[..at].matches('\n').count();
    let mut long = Vec::new();
    for (at, _) in code.match_indices("fn ") {
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let name: String = code[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue; // a `fn(...)` type
        }
        // Its body: the first `{` before any `;` (a declaration has none).
        let Some(open) = code[at..].find(['{', ';']).map(|o| at + o) else {
            continue;
        };
        if bytes[open] == b';' {
            continue;
        }
        let Some(close) = closing(bytes, open) else {
            continue;
        };
        let lines = line_of(close) - line_of(at) + 1;
        if lines > limit {
            long.push(format!("{name} ({lines} lines)"));
        }
    }
    long
}

#[test]
fn long_functions_counts_from_fn_to_its_closing_brace() {
    let body = "    let x = \"}\";\n".repeat(5);
    let text = format!(
        "fn short() {{\n}}\nfn long(a: fn(u32) -> u32) -> u32 {{\n{body}    if true {{ 1 }} else {{ 2 }}\n}}\ntrait T {{ fn f(&self); }}\n"
    );
    assert_eq!(long_functions(&text, 7), vec!["long (8 lines)".to_string()]);
    assert!(long_functions(&text, 8).is_empty());
}

/// The first names of what a path takes after its prefix (`rest`, the code
/// after `super::` or `crate::run::`): each item of a `{...}` group, or the
/// one name.
fn taken(rest: &str) -> Vec<&str> {
    match rest.strip_prefix('{') {
        Some(group) => top_items(group)
            .into_iter()
            .map(|item| item.trim().split("::").next().unwrap_or_default())
            .collect(),
        None => vec![
            rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or_default(),
        ],
    }
}

/// `code` without its test code: a `#[cfg(test)]` item (the line after
/// the attribute) and an inline test module (to the end of the file).
fn test_code_left_out(code: &str) -> String {
    let mut kept = String::new();
    let mut lines = code.lines().peekable();
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
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

/// Every file of a crate's source (`src`, test files left out) by its
/// module path (`run::local::task`; `run` for `run/mod.rs` and `run.rs`),
/// the crate root left out.
fn crate_files(src: &Path) -> BTreeMap<String, PathBuf> {
    rust_files(src)
        .into_iter()
        .filter_map(|file| {
            let rel = file.strip_prefix(src).ok()?.with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            let last = parts.last()?;
            // (`run/local/tests.rs` is a module of its own: read; a
            // `*_tests.rs` file is its neighbour's unit tests.)
            let skip = last.ends_with("_tests")
                || (parts.len() == 1 && matches!(last.as_str(), "lib" | "main"))
                || parts.first().is_some_and(|p| p == "bin");
            (!skip).then(|| (parts.join("::"), file))
        })
        .collect()
}

/// The files of `files` (by module path, see [`crate_files`]) that the
/// code of the file of module `module` uses: every `crate::`, `super::`
/// and `self::` path, and a path starting at one of the module's own
/// children (`queue::Queue` in `dispatch.rs`), each to the deepest module
/// it goes through. A folder's `mod.rs` is its face: what it takes of its
/// own folder's files is no arrow (as `farm-studio look` draws it).
fn file_named(module: &str, text: &str, files: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let code = test_code_left_out(&code_only(text));
    let face = files[module].ends_with("mod.rs");
    let parent: Vec<&str> = module.split("::").collect();
    let deepest = |full: &[&str]| {
        (1..=full.len())
            .rev()
            .map(|n| full[..n].join("::"))
            .find(|m| files.contains_key(m))
    };
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices(|c: char| c.is_alphabetic() || c == '_') {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '.')) {
            continue;
        }
        let rest = &code[at..];
        let (base, after): (Vec<&str>, &str) = if let Some(r) = rest.strip_prefix("crate::") {
            (Vec::new(), r)
        } else if rest.starts_with("super::") {
            let mut r = rest;
            let mut base = parent[..parent.len() - 1].to_vec();
            while let Some(next) = r.strip_prefix("super::") {
                r = next;
                if r.starts_with("super::") {
                    base.pop();
                }
            }
            (base, r)
        } else if let Some(r) = rest.strip_prefix("self::") {
            (parent.clone(), r)
        } else {
            // A path through one of the module's own children.
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let child = format!("{module}::{name}");
            if !rest[name.len()..].starts_with("::") || !files.contains_key(&child) {
                continue;
            }
            (parent.clone(), rest)
        };
        for path in paths(after) {
            let mut full = base.clone();
            full.extend(path.split("::").filter(|s| !s.is_empty()));
            let own = |t: &String| face && t.starts_with(&format!("{module}::"));
            if let Some(target) = deepest(&full).filter(|t| t != module && !own(t)) {
                found.insert(target);
            }
        }
    }
    found
}

#[test]
fn file_named_reads_crate_super_self_and_child_paths() {
    let files: BTreeMap<String, PathBuf> = [
        ("run", "run/mod.rs"),
        ("run::dispatch", "run/dispatch.rs"),
        ("run::dispatch::queue", "run/dispatch/queue.rs"),
        ("run::error", "run/error.rs"),
        ("run::writer", "run/writer.rs"),
        ("plan", "plan/mod.rs"),
    ]
    .into_iter()
    .map(|(m, f)| (m.to_string(), PathBuf::from(f)))
    .collect();
    let text = "use super::{error::RunError, writer};\nuse crate::plan::Plan;\nfn f() { queue::Queue::new(); x.queue::<u8>(); self::queue::Y; }\n#[cfg(test)]\nmod tests {\n use super::super::writer;\n}\n";
    assert_eq!(
        file_named("run::dispatch", text, &files),
        BTreeSet::from(
            ["run::error", "run::writer", "plan", "run::dispatch::queue"].map(String::from)
        )
    );
    // A child's `super::` is its parent; `mod.rs` names its own files as
    // a face does, other places as any file.
    assert_eq!(
        file_named(
            "run::dispatch::queue",
            "use super::Dispatcher; use super::super::error::E;",
            &files
        ),
        BTreeSet::from(["run::dispatch", "run::error"].map(String::from))
    );
    assert_eq!(
        file_named(
            "run",
            "mod dispatch; use dispatch::Dispatcher; use crate::plan::Plan;",
            &files
        ),
        BTreeSet::from(["plan".to_string()])
    );
}

/// No files of the library's crates import one another in a circle, in
/// any folder or across folders (issue 80; ARCHITECTURE.md, "Layers"):
/// each file reads with what is below it alone. The binary's files are
/// held by their own test.
#[test]
fn no_files_of_the_library_crates_import_in_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for src in ["src", "../sandbox/src", "../worker/src", "../protocol/src"] {
        let files = crate_files(&root.join(src));
        assert!(files.len() > 3, "{src}: {files:?}");
        let mut edges: BTreeMap<&str, BTreeMap<String, PathBuf>> = BTreeMap::new();
        for (module, path) in &files {
            let text = std::fs::read_to_string(path).unwrap();
            let out = edges.entry(module).or_default();
            for other in file_named(module, &text, &files) {
                out.insert(other, path.clone());
            }
        }
        if let Some(why) = cycle(&edges) {
            panic!(
                "{src}: files import in a circle:\n{why}\nmove the shared item into a file of its own below both"
            );
        }
    }
}

/// The fields of every struct of `text` with more than `limit` of them,
/// as "name (fields)".
fn wide_structs(text: &str, limit: usize) -> Vec<String> {
    let code = code_only(text);
    let mut wide = Vec::new();
    for (at, _) in code.match_indices("struct ") {
        if at > 0 && code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[at + "struct ".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let Some(open) = rest.find(['{', ';', '(']) else {
            continue;
        };
        if !rest[open..].starts_with('{') {
            continue;
        }
        // A field: a line opening with `name:` at the body's own depth.
        let (mut depth, mut fields) = (0usize, 0);
        for line in rest[open..].lines() {
            let trimmed = line.trim_start();
            let trimmed = trimmed
                .strip_prefix("pub")
                .map(|r| match r.trim_start().strip_prefix('(') {
                    Some(scoped) => scoped.split_once(')').map_or("", |(_, r)| r),
                    None => r,
                })
                .unwrap_or(trimmed)
                .trim_start();
            let ident: String = trimmed
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if depth == 1 && !ident.is_empty() && trimmed[ident.len()..].starts_with(':') {
                fields += 1;
            }
            for c in line.chars() {
                match c {
                    '{' | '(' | '<' | '[' => depth += 1,
                    '}' | ')' | ']' => depth = depth.saturating_sub(1),
                    '>' if !line.contains("->") && !line.contains("=>") => {
                        depth = depth.saturating_sub(1)
                    }
                    _ => {}
                }
            }
            if depth == 0 {
                break;
            }
        }
        if fields > limit {
            wide.push(format!("{name} ({fields} fields)"));
        }
    }
    wide
}

#[test]
fn wide_structs_counts_the_fields_of_a_struct_body() {
    let text = "struct A<'o> {\n    a: u8,\n    pub b: Vec<(u8,\n        u8)>,\n    pub(super) c: &'o mut (dyn FnMut(&E) + Send),\n    /// d: no field\n    d: std::collections::HashMap<u8, u8>,\n}\nstruct B(u8);\nstruct C;\n";
    assert_eq!(wide_structs(text, 3), vec!["A (4 fields)".to_string()]);
    assert!(wide_structs(text, 4).is_empty());
}

/// The dispatcher's state is grouped by meaning (replanning, the merge
/// cursor, ...): no struct of it holds more than 25 fields.
#[test]
fn the_dispatcher_holds_at_most_25_fields() {
    let run = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/run");
    let mut files = rust_files(&run.join("dispatch"));
    files.push(run.join("dispatch.rs"));
    let mut wide = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        wide.extend(
            wide_structs(&text, 25)
                .into_iter()
                .map(|s| format!("  {}: {s}", file.display())),
        );
    }
    assert!(
        wide.is_empty(),
        "the dispatcher's structs over 25 fields:\n{}\ngroup related fields",
        wide.join("\n")
    );
}

/// The non-test source files of the library and the binary, each with
/// its path under `src/` (test files, `*_tests.rs` and `tests.rs`, left
/// out).
fn library_sources() -> Vec<(String, PathBuf)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    rust_files(&src)
        .into_iter()
        .map(|file| (file.strip_prefix(&src).unwrap().display().to_string(), file))
        .filter(|(name, _)| !name.ends_with("_tests.rs") && !name.ends_with("/tests.rs"))
        .collect()
}

/// One fold (ARCHITECTURE.md, "One fold of events"): no code of the
/// library but `fold.rs` reads a task's status out of its events (binds
/// `status` in a pattern of `task_finished`) or keeps its own count of
/// tasks done; the live view, `swarm status` and the reports read
/// `RunFold`.
#[test]
fn only_the_fold_reads_task_statuses_from_events() {
    let mut found = Vec::new();
    for (name, file) in library_sources() {
        if name == "fold.rs" {
            continue;
        }
        let code = test_code_left_out(&code_only(&std::fs::read_to_string(&file).unwrap()));
        for (at, _) in code.match_indices("EventBody::TaskFinished") {
            let rest = &code[at..];
            let Some(close) = rest.find('}') else {
                continue;
            };
            let after = rest[close + 1..].trim_start();
            let pattern =
                after.starts_with("=>") || after.starts_with("if ") || after.starts_with('|');
            let fields = &rest[..close];
            let binds_status = fields
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|w| w == "status");
            if pattern && binds_status {
                found.push(format!("{name}: binds `status` of task_finished"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "a second fold of task statuses (read them from `RunFold`):\n{}",
        found.join("\n")
    );
}

/// `run/mod.rs` is the folder's face: its module list, what it shows the
/// rest of the library, and the entry functions. Nothing inside `run/`
/// takes an item from it (an arrow back up, which would tie every file to
/// the entry file): shared types live in files named for them (`error.rs`,
/// `options.rs`, `prepared.rs`, `names.rs`) and are named there.
#[test]
fn nothing_inside_run_takes_an_item_from_its_mod_rs() {
    let run = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/run");
    let face = code_only(&std::fs::read_to_string(run.join("mod.rs")).unwrap());
    // The names `mod.rs` defines or shows (not its modules).
    let mut names = BTreeSet::new();
    for line in face.lines() {
        let line = line.trim_start();
        let rest = line
            .strip_prefix("pub ")
            .or_else(|| line.strip_prefix("pub(crate) "))
            .unwrap_or(line);
        for kind in ["fn ", "async fn ", "struct ", "enum ", "const ", "type "] {
            if let Some(r) = rest.strip_prefix(kind) {
                let name: String = r
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                names.insert(name);
            }
        }
        if let Some(r) = rest.strip_prefix("use ") {
            let list = r.split_once('{').map_or(r, |(_, l)| l);
            for item in list.split(',') {
                let item = item.trim().trim_end_matches(['}', ';']);
                let shown = item.rsplit(" as ").next().unwrap_or(item);
                let shown = shown.rsplit("::").next().unwrap_or(shown).trim();
                if !shown.is_empty() && !shown.contains(' ') {
                    names.insert(shown.to_string());
                }
            }
        }
    }
    // A module of the same name as an item (`resume`) is a module arrow.
    for line in face.lines() {
        let line = line.trim_start();
        let rest = line
            .strip_prefix("pub ")
            .or_else(|| line.strip_prefix("pub(crate) "))
            .unwrap_or(line);
        if let Some(m) = rest.strip_prefix("mod ") {
            names.remove(m.trim_end_matches(';').trim());
        }
    }
    assert!(
        names.contains("execute") && names.contains("RunError"),
        "{names:?}"
    );
    let mut back = Vec::new();
    for file in rust_files(&run) {
        let rel = file.strip_prefix(&run).unwrap().to_path_buf();
        if rel == Path::new("mod.rs") {
            continue;
        }
        let depth = rel.components().count() - usize::from(rel.ends_with("mod.rs"));
        let up = match depth {
            1 => "super::".to_string(),
            n => "super::".repeat(n),
        };
        let code = test_code_left_out(&code_only(&std::fs::read_to_string(&file).unwrap()));
        for prefix in ["crate::run::".to_string(), up] {
            for (at, _) in code.match_indices(&prefix) {
                if prefix.starts_with("super") && code[..at].ends_with("::") {
                    continue;
                }
                for name in taken(&code[at + prefix.len()..])
                    .into_iter()
                    .filter(|n| names.contains(*n))
                {
                    back.push(format!("  {}: {prefix}{name}", rel.display()));
                }
            }
        }
    }
    back.sort();
    back.dedup();
    assert!(
        back.is_empty(),
        "files of run/ take items from run/mod.rs (name them where they are defined):\n{}",
        back.join("\n")
    );
}

/// No non-test function of the library or the binary runs over 150 lines
/// (run/local is held to the same by its own test).
#[test]
fn no_function_of_the_library_is_over_150_lines() {
    let mut long = Vec::new();
    for (name, file) in library_sources() {
        let text = test_code_left_out(&std::fs::read_to_string(&file).unwrap());
        for f in long_functions(&text, 150) {
            long.push(format!("{name}: {f}"));
        }
    }
    long.sort();
    assert!(
        long.is_empty(),
        "functions over 150 lines (split them into named steps):\n{long:#?}"
    );
}

/// Every `.rs` file of the workspace's code and tests (not `target/`).
fn workspace_rust_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    ["orchestrator", "worker", "sandbox", "protocol", "tests"]
        .iter()
        .flat_map(|dir| rust_files(&root.join(dir)))
        .collect()
}

/// In `text` (code as `code_only` leaves it): the snapshot assertions
/// (`assert_snapshot!` and its kin) and the `assert!(...)` that hold a
/// `.contains(`.
fn assertion_counts(code: &str) -> (usize, usize) {
    let snapshots = [
        "assert_snapshot!",
        "assert_json_snapshot!",
        "assert_debug_snapshot!",
    ]
    .iter()
    .map(|m| code.matches(m).count())
    .sum();
    let bytes = code.as_bytes();
    let mut contains = 0;
    for (at, m) in code.match_indices("assert!(") {
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue; // `debug_assert!(`, `prop_assert!(`
        }
        let open = at + m.len() - 1;
        let close = closing(bytes, open);
        if close.is_some_and(|c| code[open..c].contains(".contains(")) {
            contains += 1;
        }
    }
    (snapshots, contains)
}

#[test]
fn assertion_counts_reads_nested_calls_and_skips_other_macros() {
    let code = code_only(
        "assert!(a.contains(&b(c)), \"{x}\");\nassert!(f(g(1)) == 2);\ndebug_assert!(s.contains(t));\ninsta::assert_snapshot!(x, @\"y\");\n",
    );
    assert_eq!(assertion_counts(&code), (1, 1));
}

/// At least this many snapshot assertions in the workspace's tests, and
/// at most this many `assert!(... .contains(...))`, and always more of the
/// first (issue 80: a test that checks what a person reads shows all of
/// it). Raise the first and lower the second as tests move to snapshots;
/// a new `.contains` over the ceiling fails here: write a snapshot
/// instead.
const SNAPSHOTS_AT_LEAST: usize = 527;
const CONTAINS_AT_MOST: usize = 463;

#[test]
fn tests_keep_to_their_snapshot_and_contains_counts() {
    let (mut snapshots, mut contains) = (0, 0);
    for file in workspace_rust_files() {
        let (s, c) = assertion_counts(&code_only(&std::fs::read_to_string(&file).unwrap()));
        snapshots += s;
        contains += c;
    }
    assert!(
        snapshots >= SNAPSHOTS_AT_LEAST && contains <= CONTAINS_AT_MOST && snapshots > contains,
        "{snapshots} snapshot assertions (at least {SNAPSHOTS_AT_LEAST}) and {contains} \
         `assert!(... .contains(...))` (at most {CONTAINS_AT_MOST}): check what a person \
         reads with a snapshot of all of it"
    );
    eprintln!("{snapshots} snapshot assertions, {contains} .contains assertions");
}
