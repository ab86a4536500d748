//! The repository's packages and the dependencies between them, from its
//! manifests (read by `read::manifests`: anywhere in the tree but vendored
//! directories), one file per ecosystem:
//!
//! - `cargo.rs`: Cargo workspaces and crates;
//! - `npm.rs`: npm workspaces and packages;
//! - `go.rs`: Go modules;
//! - `python.rs`: Python projects (`pyproject.toml`).
//!
//! Each gives groups of packages (a workspace, or an ecosystem's packages
//! outside any) with, for each package, the other packages of the
//! repository it depends on. A manifest that does not parse is named in the
//! map and otherwise ignored: the map is never refused for the repository's
//! content.

mod cargo;
mod go;
mod npm;
mod python;

use globset::{GlobSet, GlobSetBuilder};
use toml::{Table, Value as Toml};

use super::read::{Text, name};

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
        .extend(cargo::groups(&named("Cargo.toml"), &mut out.problems));
    out.groups
        .extend(npm::groups(&named("package.json"), &mut out.problems));
    out.groups.extend(go::groups(&named("go.mod")));
    out.groups
        .extend(python::groups(&named("pyproject.toml"), &mut out.problems));
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

/// The packages whose index `keep` accepts, sorted by directory.
/// One group of every package of `ecosystem` (one without workspaces),
/// or none when there are no packages.
fn flat(ecosystem: Ecosystem, packages: &[Package]) -> Vec<Group> {
    if packages.is_empty() {
        return Vec::new();
    }
    vec![Group {
        ecosystem,
        workspace: None,
        packages: members(packages, |_| true),
    }]
}

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

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn scan_of(files: &[(&str, &str)]) -> Packages {
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
    pub(super) fn lines(packages: &Packages) -> Vec<String> {
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
