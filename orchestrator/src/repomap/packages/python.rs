//! Python: `pyproject.toml`'s `[project] name` (or Poetry's); an edge where
//! a dependency (`project.dependencies`, optional dependencies, dependency
//! groups, Poetry's tables) names another package of the repository (names
//! compared as PEP 503 normalises them).

use std::collections::{BTreeSet, HashMap};

use toml::{Table, Value as Toml};

use super::{Ecosystem, Group, Package, flat, str_at, toml_table, value_at};
use crate::repomap::read::{Text, dir};

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

pub(super) fn groups(manifests: &[&Text], problems: &mut Vec<String>) -> Vec<Group> {
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
    flat(Ecosystem::Python, &packages)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{lines, scan_of};
    use super::*;

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
}
