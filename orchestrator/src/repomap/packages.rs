//! The repository's packages and the dependencies between them, from its
//! manifests (read by `read::manifests`: anywhere in the tree but vendored
//! directories).
//!
//! - Cargo: `[workspace] members` (globs) and `exclude`; each crate's name
//!   and directory; an edge where a dependency (of any kind or target) is a
//!   `path` dependency, or `workspace = true` whose
//!   `[workspace.dependencies]` entry has a `path`, leading to another
//!   crate of the repository.
//! - npm: `workspaces` (an array, or `{ "packages": [...] }`; `!` patterns
//!   exclude); each package's name and directory; an edge where
//!   `dependencies`, `devDependencies`, `peerDependencies` or
//!   `optionalDependencies` name another package of the same workspace, or,
//!   with a `file:`, `link:` or `workspace:` version, any package of the
//!   repository.
//! - Go: each `go.mod`'s module path; an edge where `require` names another
//!   module of the repository or `replace` points at one's directory.
//! - Python: `pyproject.toml`'s `[project] name` (or Poetry's); an edge
//!   where a dependency (`project.dependencies`, optional dependencies,
//!   dependency groups, Poetry's tables) names another package of the
//!   repository (names compared as PEP 503 normalises them).
//!
//! A manifest that does not parse is named in the map and otherwise
//! ignored: the map is never refused for the repository's content.

use std::collections::{BTreeSet, HashMap};

use globset::{GlobSet, GlobSetBuilder};
use serde_json::Value as Json;
use toml::{Table, Value as Toml};

use super::read::{Text, dir, name};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ecosystem {
    Cargo,
    Npm,
    Go,
    Python,
}

/// One package of the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Package {
    pub name: String,
    /// Its directory from the root, `""` for the root.
    pub dir: String,
    /// Names of the other packages of the repository it depends on, sorted.
    pub deps: Vec<String>,
}

/// Packages listed together: a workspace, or the packages of an ecosystem
/// outside any workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub ecosystem: Ecosystem,
    /// The workspace's manifest, `None` outside a workspace.
    pub workspace: Option<String>,
    /// Sorted by directory.
    pub packages: Vec<Package>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Packages {
    pub groups: Vec<Group>,
    /// Manifests that could not be read, with why.
    pub problems: Vec<String>,
}

/// The packages the manifests describe.
pub(crate) fn scan(manifests: &[Text]) -> Packages {
    let mut out = Packages::default();
    let named =
        |file: &str| -> Vec<&Text> { manifests.iter().filter(|m| name(&m.path) == file).collect() };
    out.groups
        .extend(cargo(&named("Cargo.toml"), &mut out.problems));
    out.groups
        .extend(npm(&named("package.json"), &mut out.problems));
    out.groups.extend(go(&named("go.mod")));
    out.groups
        .extend(python(&named("pyproject.toml"), &mut out.problems));
    out
}

/// `base` joined with the relative path `rel`, normalised; `None` if it
/// leaves the repository or is absolute.
pub(crate) fn join(base: &str, rel: &str) -> Option<String> {
    if rel.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// `path` relative to the directory `base` (`""`: the root), if inside it.
fn relative<'p>(base: &str, path: &'p str) -> Option<&'p str> {
    if base.is_empty() {
        Some(path)
    } else if path == base {
        Some("")
    } else {
        path.strip_prefix(base)?.strip_prefix('/')
    }
}

/// Glob patterns of workspace members, relative to the workspace (a path
/// separator is never matched by `*`).
fn globs<'a>(patterns: impl IntoIterator<Item = &'a str>) -> GlobSet {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let pattern = pattern.trim_start_matches("./").trim_end_matches('/');
        if let Ok(glob) = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
        {
            set.add(glob);
        }
    }
    set.build().unwrap_or_else(|_| GlobSet::empty())
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("").trim()
}

fn toml_table(text: &Text, problems: &mut Vec<String>) -> Option<Table> {
    match toml::from_str::<Table>(&text.text) {
        Ok(table) => Some(table),
        Err(e) => {
            problems.push(format!(
                "{}: not valid TOML ({})",
                text.path,
                first_line(e.message())
            ));
            None
        }
    }
}

fn str_at<'t>(table: &'t Table, path: &[&str]) -> Option<&'t str> {
    value_at(table, path)?.as_str()
}

fn value_at<'t>(table: &'t Table, path: &[&str]) -> Option<&'t Toml> {
    let (last, parents) = path.split_last()?;
    let mut table = table;
    for key in parents {
        table = table.get(*key)?.as_table()?;
    }
    table.get(*last)
}

struct Crate {
    name: String,
    dir: String,
    table: Table,
}

struct CargoWorkspace {
    manifest: String,
    dir: String,
    members: GlobSet,
    exclude: Vec<String>,
    deps: Table,
}

fn cargo(manifests: &[&Text], problems: &mut Vec<String>) -> Vec<Group> {
    let mut crates = Vec::new();
    let mut workspaces = Vec::new();
    for manifest in manifests {
        let Some(table) = toml_table(manifest, problems) else {
            continue;
        };
        let dir = dir(&manifest.path).to_string();
        if let Some(ws) = table.get("workspace").and_then(Toml::as_table) {
            let strings = |key: &str| -> Vec<String> {
                ws.get(key)
                    .and_then(Toml::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Toml::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let members = strings("members");
            workspaces.push(CargoWorkspace {
                manifest: manifest.path.clone(),
                dir: dir.clone(),
                members: globs(members.iter().map(String::as_str)),
                exclude: strings("exclude")
                    .iter()
                    .filter_map(|e| join("", e))
                    .collect(),
                deps: ws
                    .get("dependencies")
                    .and_then(Toml::as_table)
                    .cloned()
                    .unwrap_or_default(),
            });
        }
        if let Some(name) = str_at(&table, &["package", "name"]) {
            crates.push(Crate {
                name: name.to_string(),
                dir,
                table,
            });
        }
    }
    // A crate belongs to the deepest workspace around it that lists it.
    let workspace_of: Vec<Option<usize>> = crates
        .iter()
        .map(|c| {
            (0..workspaces.len())
                .filter(|&w| {
                    let ws = &workspaces[w];
                    relative(&ws.dir, &c.dir).is_some_and(|rel| {
                        rel.is_empty()
                            || ws.members.is_match(rel)
                                && !ws.exclude.iter().any(|e| relative(e, rel).is_some())
                    })
                })
                .max_by_key(|&w| workspaces[w].dir.len())
        })
        .collect();
    let by_dir: HashMap<&str, &str> = crates
        .iter()
        .map(|c| (c.dir.as_str(), c.name.as_str()))
        .collect();

    let mut packages: Vec<Package> = Vec::with_capacity(crates.len());
    for (i, c) in crates.iter().enumerate() {
        let mut deps = BTreeSet::new();
        let mut tables = vec![&c.table];
        if let Some(targets) = c.table.get("target").and_then(Toml::as_table) {
            tables.extend(targets.values().filter_map(Toml::as_table));
        }
        for table in tables {
            for kind in ["dependencies", "dev-dependencies", "build-dependencies"] {
                let Some(entries) = table.get(kind).and_then(Toml::as_table) else {
                    continue;
                };
                for (key, spec) in entries {
                    let Some(spec) = spec.as_table() else {
                        continue;
                    };
                    let target = if let Some(path) = spec.get("path").and_then(Toml::as_str) {
                        join(&c.dir, path)
                    } else if spec.get("workspace").and_then(Toml::as_bool) == Some(true) {
                        workspace_of[i].and_then(|w| {
                            let ws = &workspaces[w];
                            let path = ws.deps.get(key)?.get("path")?.as_str()?;
                            join(&ws.dir, path)
                        })
                    } else {
                        None
                    };
                    if let Some(dep) = target.as_deref().and_then(|d| by_dir.get(d))
                        && *dep != c.name
                    {
                        deps.insert(dep.to_string());
                    }
                }
            }
        }
        packages.push(Package {
            name: c.name.clone(),
            dir: c.dir.clone(),
            deps: deps.into_iter().collect(),
        });
    }

    let mut groups: Vec<Group> = workspaces
        .iter()
        .enumerate()
        .map(|(w, ws)| Group {
            ecosystem: Ecosystem::Cargo,
            workspace: Some(ws.manifest.clone()),
            packages: members(&packages, |i| workspace_of[i] == Some(w)),
        })
        .collect();
    groups.push(Group {
        ecosystem: Ecosystem::Cargo,
        workspace: None,
        packages: members(&packages, |i| workspace_of[i].is_none()),
    });
    groups.retain(|g| !g.packages.is_empty());
    groups
}

/// The packages whose index `keep` accepts, sorted by directory.
fn members(packages: &[Package], keep: impl Fn(usize) -> bool) -> Vec<Package> {
    let mut out: Vec<Package> = packages
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, p)| p.clone())
        .collect();
    out.sort_by(|a, b| a.dir.cmp(&b.dir).then_with(|| a.name.cmp(&b.name)));
    out
}

struct NpmWorkspace {
    manifest: String,
    dir: String,
    include: GlobSet,
    exclude: GlobSet,
}

fn npm(manifests: &[&Text], problems: &mut Vec<String>) -> Vec<Group> {
    let mut found: Vec<(String, Json)> = Vec::new();
    let mut workspaces = Vec::new();
    for manifest in manifests {
        let json: Json = match serde_json::from_str(&manifest.text) {
            Ok(json) => json,
            Err(e) => {
                problems.push(format!("{}: not valid JSON ({e})", manifest.path));
                continue;
            }
        };
        let dir = dir(&manifest.path).to_string();
        let patterns = match json.get("workspaces") {
            Some(Json::Array(a)) => Some(a),
            Some(Json::Object(o)) => o.get("packages").and_then(Json::as_array),
            _ => None,
        };
        if let Some(patterns) = patterns {
            let patterns: Vec<&str> = patterns.iter().filter_map(Json::as_str).collect();
            let (exclude, include): (Vec<&str>, Vec<&str>) =
                patterns.iter().partition(|p| p.starts_with('!'));
            workspaces.push(NpmWorkspace {
                manifest: manifest.path.clone(),
                dir: dir.clone(),
                include: globs(include),
                exclude: globs(exclude.iter().map(|p| &p[1..])),
            });
        }
        found.push((dir, json));
    }
    // A package belongs to the deepest workspace around it that lists it
    // (a workspace's own manifest is not one of its packages).
    let mut packages = Vec::new();
    let mut workspace_of = Vec::new();
    for (dir, json) in &found {
        let Some(name) = json.get("name").and_then(Json::as_str) else {
            continue;
        };
        let w = (0..workspaces.len())
            .filter(|&w| {
                let ws = &workspaces[w];
                relative(&ws.dir, dir).is_some_and(|rel| {
                    !rel.is_empty() && ws.include.is_match(rel) && !ws.exclude.is_match(rel)
                })
            })
            .max_by_key(|&w| workspaces[w].dir.len());
        packages.push((name.to_string(), dir.clone(), json));
        workspace_of.push(w);
    }
    let all: BTreeSet<&str> = packages.iter().map(|(n, _, _)| n.as_str()).collect();
    let mut listed = Vec::with_capacity(packages.len());
    for (i, (name, dir, json)) in packages.iter().enumerate() {
        let mut deps = BTreeSet::new();
        for kind in [
            "dependencies",
            "devDependencies",
            "peerDependencies",
            "optionalDependencies",
        ] {
            let Some(entries) = json.get(kind).and_then(Json::as_object) else {
                continue;
            };
            for (dep, version) in entries {
                let local = ["file:", "link:", "workspace:", "portal:"]
                    .iter()
                    .any(|p| version.as_str().is_some_and(|v| v.starts_with(p)));
                let sibling = workspace_of[i].is_some()
                    && (0..packages.len())
                        .any(|j| workspace_of[j] == workspace_of[i] && packages[j].0 == *dep);
                if dep != name && (sibling || local && all.contains(dep.as_str())) {
                    deps.insert(dep.clone());
                }
            }
        }
        listed.push(Package {
            name: name.clone(),
            dir: dir.clone(),
            deps: deps.into_iter().collect(),
        });
    }
    let mut groups: Vec<Group> = workspaces
        .iter()
        .enumerate()
        .map(|(w, ws)| Group {
            ecosystem: Ecosystem::Npm,
            workspace: Some(ws.manifest.clone()),
            packages: members(&listed, |i| workspace_of[i] == Some(w)),
        })
        .collect();
    let workspace_roots: BTreeSet<&str> = workspaces.iter().map(|w| w.dir.as_str()).collect();
    groups.push(Group {
        ecosystem: Ecosystem::Npm,
        workspace: None,
        packages: members(&listed, |i| {
            workspace_of[i].is_none() && !workspace_roots.contains(listed[i].dir.as_str())
        }),
    });
    groups.retain(|g| !g.packages.is_empty());
    groups
}

/// What the map needs of a `go.mod`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct GoMod {
    pub module: Option<String>,
    pub requires: Vec<String>,
    /// Replacement targets that are local paths.
    pub local_replaces: Vec<String>,
}

/// Reads `module`, `require` and `replace` directives, single or in blocks.
pub(crate) fn parse_go_mod(text: &str) -> GoMod {
    let mut out = GoMod::default();
    let mut block: Option<&str> = None;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (verb, rest) = match block {
            Some(_) if line == ")" => {
                block = None;
                continue;
            }
            Some(verb) => (verb, line),
            None => {
                let (verb, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                let rest = rest.trim();
                if rest == "(" {
                    block = Some(verb);
                    continue;
                }
                (verb, rest)
            }
        };
        let unquote = |s: &str| s.trim_matches('"').to_string();
        match verb {
            "module" => out.module = Some(unquote(rest)),
            "require" => {
                if let Some(path) = rest.split_whitespace().next() {
                    out.requires.push(unquote(path));
                }
            }
            "replace" => {
                if let Some((_, to)) = rest.split_once("=>")
                    && let Some(to) = to.split_whitespace().next()
                    && (to.starts_with("./") || to.starts_with("../"))
                {
                    out.local_replaces.push(to.to_string());
                }
            }
            _ => {}
        }
    }
    out
}

fn go(manifests: &[&Text]) -> Vec<Group> {
    let modules: Vec<(String, GoMod)> = manifests
        .iter()
        .map(|m| (dir(&m.path).to_string(), parse_go_mod(&m.text)))
        .collect();
    let by_path: HashMap<&str, &str> = modules
        .iter()
        .filter_map(|(d, m)| Some((m.module.as_deref()?, d.as_str())))
        .collect();
    let by_dir: HashMap<&str, &str> = modules
        .iter()
        .filter_map(|(d, m)| Some((d.as_str(), m.module.as_deref()?)))
        .collect();
    let mut packages = Vec::new();
    for (dir, module) in &modules {
        let Some(name) = &module.module else {
            continue;
        };
        let mut deps: BTreeSet<String> = module
            .requires
            .iter()
            .filter(|r| by_path.contains_key(r.as_str()))
            .cloned()
            .collect();
        for to in &module.local_replaces {
            if let Some(dep) = join(dir, to).as_deref().and_then(|d| by_dir.get(d)) {
                deps.insert(dep.to_string());
            }
        }
        deps.remove(name);
        packages.push(Package {
            name: name.clone(),
            dir: dir.clone(),
            deps: deps.into_iter().collect(),
        });
    }
    let group = Group {
        ecosystem: Ecosystem::Go,
        workspace: None,
        packages: members(&packages, |_| true),
    };
    (!group.packages.is_empty())
        .then_some(group)
        .into_iter()
        .collect()
}

/// A Python distribution name as PEP 503 compares them.
pub(crate) fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The name a PEP 508 requirement starts with (`foo[extra]>=1; ...`).
fn requirement_name(requirement: &str) -> &str {
    let requirement = requirement.trim_start();
    let end = requirement
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(requirement.len());
    &requirement[..end]
}

/// Names of a pyproject's dependencies, of every kind it declares.
fn python_deps(table: &Table) -> Vec<String> {
    let mut out = Vec::new();
    let mut requirements = |value: Option<&Toml>| {
        for r in value.and_then(Toml::as_array).into_iter().flatten() {
            if let Some(r) = r.as_str() {
                out.push(requirement_name(r).to_string());
            }
        }
    };
    requirements(value_at(table, &["project", "dependencies"]));
    let optional = value_at(table, &["project", "optional-dependencies"]);
    for extra in optional
        .and_then(Toml::as_table)
        .into_iter()
        .flat_map(|t| t.values())
    {
        requirements(Some(extra));
    }
    let groups = table.get("dependency-groups").and_then(Toml::as_table);
    for group in groups.into_iter().flat_map(|t| t.values()) {
        requirements(Some(group));
    }
    let mut keys = |value: Option<&Toml>| {
        for key in value
            .and_then(Toml::as_table)
            .into_iter()
            .flat_map(|t| t.keys())
        {
            if key != "python" {
                out.push(key.clone());
            }
        }
    };
    keys(value_at(table, &["tool", "poetry", "dependencies"]));
    keys(value_at(table, &["tool", "poetry", "dev-dependencies"]));
    let poetry_groups = value_at(table, &["tool", "poetry", "group"]).and_then(Toml::as_table);
    for group in poetry_groups.into_iter().flat_map(|t| t.values()) {
        keys(group.get("dependencies"));
    }
    out
}

fn python(manifests: &[&Text], problems: &mut Vec<String>) -> Vec<Group> {
    let mut found = Vec::new();
    for manifest in manifests {
        let Some(table) = toml_table(manifest, problems) else {
            continue;
        };
        let name = str_at(&table, &["project", "name"])
            .or_else(|| str_at(&table, &["tool", "poetry", "name"]));
        if let Some(name) = name {
            found.push((
                name.to_string(),
                dir(&manifest.path).to_string(),
                python_deps(&table),
            ));
        }
    }
    let by_name: HashMap<String, &str> = found
        .iter()
        .map(|(n, _, _)| (normalise(n), n.as_str()))
        .collect();
    let packages: Vec<Package> = found
        .iter()
        .map(|(name, dir, deps)| Package {
            name: name.clone(),
            dir: dir.clone(),
            deps: deps
                .iter()
                .filter_map(|d| by_name.get(&normalise(d)))
                .filter(|d| **d != name.as_str())
                .map(|d| d.to_string())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        })
        .collect();
    let group = Group {
        ecosystem: Ecosystem::Python,
        workspace: None,
        packages: members(&packages, |_| true),
    };
    (!group.packages.is_empty())
        .then_some(group)
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_of(files: &[(&str, &str)]) -> Packages {
        let texts: Vec<Text> = files
            .iter()
            .map(|(path, text)| Text {
                path: path.to_string(),
                text: text.to_string(),
            })
            .collect();
        scan(&texts)
    }

    /// `name (dir) -> deps` lines per group, with the group's workspace.
    fn lines(packages: &Packages) -> Vec<String> {
        let mut out = Vec::new();
        for group in &packages.groups {
            out.push(format!("{:?} {:?}", group.ecosystem, group.workspace));
            for p in &group.packages {
                out.push(format!("  {} ({}) -> {}", p.name, p.dir, p.deps.join(",")));
            }
        }
        out
    }

    #[test]
    fn cargo_workspaces_members_and_path_dependencies() {
        let packages = scan_of(&[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"crates/*\", \"./tools/gen/\"]\nexclude = [\"crates/old\"]\n\
                 [workspace.dependencies]\ncore = { path = \"crates/core\", version = \"1\" }\n",
            ),
            ("crates/core/Cargo.toml", "[package]\nname = \"core\"\n"),
            (
                "crates/app/Cargo.toml",
                "[package]\nname = \"app\"\n[dependencies]\ncore.workspace = true\nserde = \"1\"\n\
                 [target.'cfg(unix)'.dev-dependencies]\ngen = { path = \"../../tools/gen\" }\n",
            ),
            (
                "tools/gen/Cargo.toml",
                "[package]\nname = \"gen\"\n[build-dependencies]\nc = { package = \"core\", path = \"../../crates/core\" }\n",
            ),
            (
                "crates/old/Cargo.toml",
                "[package]\nname = \"old\"\n[dependencies]\ncore = { path = \"../core\" }\n",
            ),
            ("crates/deep/x/Cargo.toml", "[package]\nname = \"deep\"\n"),
            (
                "fuzz/Cargo.toml",
                "[package]\nname = \"fuzz\"\n[workspace]\n[dependencies]\napp = { path = \"../crates/app\" }\n",
            ),
            ("broken/Cargo.toml", "[package\nname = 1"),
        ]);
        assert_eq!(
            lines(&packages),
            [
                "Cargo Some(\"Cargo.toml\")",
                "  app (crates/app) -> core,gen",
                "  core (crates/core) -> ",
                "  gen (tools/gen) -> core",
                "Cargo Some(\"fuzz/Cargo.toml\")",
                "  fuzz (fuzz) -> app",
                "Cargo None",
                "  deep (crates/deep/x) -> ",
                "  old (crates/old) -> core",
            ]
        );
        assert_eq!(packages.problems.len(), 1);
        assert!(
            packages.problems[0].starts_with("broken/Cargo.toml: not valid TOML ("),
            "{:?}",
            packages.problems
        );
    }

    #[test]
    fn npm_workspaces_in_both_forms() {
        let packages = scan_of(&[
            (
                "package.json",
                r#"{"name": "root", "workspaces": ["packages/*", "!packages/skip"]}"#,
            ),
            (
                "packages/a/package.json",
                r#"{"name": "@x/a", "devDependencies": {"@x/b": "^1", "left-pad": "1"}}"#,
            ),
            (
                "packages/b/package.json",
                r#"{"name": "@x/b", "peerDependencies": {"@x/a": "*"}}"#,
            ),
            (
                "packages/skip/package.json",
                r#"{"name": "skip", "dependencies": {"@x/a": "1"}}"#,
            ),
            (
                "site/package.json",
                r#"{"name": "site", "workspaces": {"packages": ["apps/**"]}}"#,
            ),
            (
                "site/apps/web/one/package.json",
                r#"{"name": "one", "dependencies": {"@x/a": "1", "two": "1"}}"#,
            ),
            ("site/apps/two/package.json", r#"{"name": "two"}"#),
            (
                "tool/package.json",
                r#"{"name": "tool", "dependencies": {"@x/b": "file:../packages/b"}}"#,
            ),
            ("bad/package.json", "{"),
        ]);
        assert_eq!(
            lines(&packages),
            [
                "Npm Some(\"package.json\")",
                "  @x/a (packages/a) -> @x/b",
                "  @x/b (packages/b) -> @x/a",
                "Npm Some(\"site/package.json\")",
                "  two (site/apps/two) -> ",
                "  one (site/apps/web/one) -> two",
                "Npm None",
                "  skip (packages/skip) -> ",
                "  tool (tool) -> @x/b",
            ]
        );
        assert_eq!(packages.problems.len(), 1);
        assert!(packages.problems[0].starts_with("bad/package.json: not valid JSON ("));
    }

    #[test]
    fn go_modules_require_and_replace() {
        let parsed = parse_go_mod(
            "module example.com/app // the app\n\ngo 1.22\n\nrequire (\n\texample.com/lib v0.0.0\n\
             \tgolang.org/x/text v0.14.0 // indirect\n)\nrequire example.com/other v1.0.0\n\
             replace example.com/lib => ../lib\nreplace (\n\texample.com/x v1 => example.com/y v2\n)\n",
        );
        assert_eq!(
            parsed,
            GoMod {
                module: Some("example.com/app".into()),
                requires: vec![
                    "example.com/lib".into(),
                    "golang.org/x/text".into(),
                    "example.com/other".into()
                ],
                local_replaces: vec!["../lib".into()],
            }
        );
        let packages = scan_of(&[
            (
                "app/go.mod",
                "module example.com/app\nrequire example.com/util v1.0.0\nreplace example.com/lib => ../lib\n",
            ),
            ("lib/go.mod", "module example.com/lib\n"),
            ("util/go.mod", "module \"example.com/util\"\n"),
        ]);
        assert_eq!(
            lines(&packages),
            [
                "Go None",
                "  example.com/app (app) -> example.com/lib,example.com/util",
                "  example.com/lib (lib) -> ",
                "  example.com/util (util) -> ",
            ]
        );
    }

    #[test]
    fn python_projects_and_their_dependencies() {
        assert_eq!(normalise("Foo_Bar.baz--x"), "foo-bar-baz-x");
        assert_eq!(
            requirement_name("my.pkg[extra]>=1; python_version<'3.9'"),
            "my.pkg"
        );
        let packages = scan_of(&[
            (
                "pyproject.toml",
                "[project]\nname = \"app\"\ndependencies = [\"My_Lib>=1\", \"requests\"]\n\
                 [project.optional-dependencies]\ncli = [\"tools[all]\"]\n",
            ),
            (
                "libs/my-lib/pyproject.toml",
                "[project]\nname = \"my.lib\"\n[dependency-groups]\ndev = [\"pytest\", {include-group = \"x\"}]\n",
            ),
            (
                "tools/pyproject.toml",
                "[tool.poetry]\nname = \"tools\"\n[tool.poetry.dependencies]\npython = \"^3.11\"\nmy-lib = { path = \"../libs/my-lib\" }\n",
            ),
            (
                "empty/pyproject.toml",
                "[build-system]\nrequires = [\"setuptools\"]\n",
            ),
        ]);
        assert_eq!(
            lines(&packages),
            [
                "Python None",
                "  app () -> my.lib,tools",
                "  my.lib (libs/my-lib) -> ",
                "  tools (tools) -> my.lib",
            ]
        );
    }

    #[test]
    fn relative_paths_join_inside_the_repository_only() {
        assert_eq!(
            join("crates/app", "../core").as_deref(),
            Some("crates/core")
        );
        assert_eq!(join("", "./a/./b/").as_deref(), Some("a/b"));
        assert_eq!(join("a", "../..").as_deref(), None);
        assert_eq!(join("a", "/abs").as_deref(), None);
        assert_eq!(relative("", "x/y"), Some("x/y"));
        assert_eq!(relative("x", "x/y"), Some("y"));
        assert_eq!(relative("x", "x"), Some(""));
        assert_eq!(relative("x", "xy/z"), None);
    }
}
