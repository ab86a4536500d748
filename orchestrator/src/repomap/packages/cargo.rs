//! Cargo: `[workspace] members` (globs) and `exclude`; each crate's name
//! and directory; an edge where a dependency (of any kind or target) is a
//! `path` dependency, or `workspace = true` whose `[workspace.dependencies]`
//! entry has a `path`, leading to another crate of the repository. A crate
//! belongs to the deepest workspace around it that lists it.

use std::collections::{BTreeSet, HashMap};

use globset::GlobSet;
use toml::{Table, Value as Toml};

use super::{Ecosystem, Group, Package, globs, join, members, relative, str_at, toml_table};
use crate::repomap::read::{Text, dir};

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

pub(super) fn groups(manifests: &[&Text], problems: &mut Vec<String>) -> Vec<Group> {
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

#[cfg(test)]
mod tests {
    use super::super::tests::{lines, scan_of};

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
}
