//! npm: `workspaces` (an array, or `{ "packages": [...] }`; `!` patterns
//! exclude); each package's name and directory; an edge where
//! `dependencies`, `devDependencies`, `peerDependencies` or
//! `optionalDependencies` name another package of the same workspace, or,
//! with a `file:`, `link:`, `workspace:` or `portal:` version, any package
//! of the repository.

use std::collections::BTreeSet;

use globset::GlobSet;
use serde_json::Value as Json;

use super::{Ecosystem, Group, Package, globs, members, relative};
use crate::repomap::read::{Text, dir};

struct NpmWorkspace {
    manifest: String,
    dir: String,
    include: GlobSet,
    exclude: GlobSet,
}

pub(super) fn groups(manifests: &[&Text], problems: &mut Vec<String>) -> Vec<Group> {
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

#[cfg(test)]
mod tests {
    use super::super::tests::{lines, scan_of};

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
}
