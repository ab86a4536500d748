//! The test and build commands the map can infer from the manifests and
//! build files of the commit.
//!
//! | found | test | build |
//! |---|---|---|
//! | a Cargo workspace, or a crate outside one | `cargo test` | `cargo build` |
//! | a `package.json` (a workspace's, or a package outside one) with `scripts.test` / `scripts.build` | `npm test` | `npm run build` |
//! | a `go.mod` | `go test ./...` | `go build ./...` |
//! | a `pyproject.toml`, `pytest.ini` or `conftest.py`, or pytest's section in the root's `tox.ini` / `setup.cfg` | `python -m pytest` | |
//! | a root `Makefile` with a `test:` / `build:` target | `make test` | `make build` |
//!
//! npm's commands become pnpm's, yarn's or bun's beside their lock file;
//! npm's placeholder test script (`echo "Error: no test specified"`) is not
//! a test. Candidates are ordered by depth (root-level manifests win), then
//! in the table's order, then by path; one not at the root is run from its
//! directory (`cd web && npm test`). The first of each kind is the map's
//! choice.

use std::collections::BTreeSet;

use serde_json::Value as Json;

use super::packages::{Ecosystem, Packages};
use super::read::{File, Text, dir, name};

/// A command and the file it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    pub command: String,
    pub source: String,
}

/// The candidates of each kind, best first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Commands {
    pub test: Vec<Command>,
    pub build: Vec<Command>,
}

/// One place that says how to test or build.
struct Candidate {
    dir: String,
    rank: u8,
    source: String,
    test: Option<String>,
    build: Option<String>,
}

pub(crate) fn infer(manifests: &[Text], files: &[File], packages: &Packages) -> Commands {
    let exists = |path: &str| {
        files
            .binary_search_by(|f| f.path.as_str().cmp(path))
            .is_ok()
    };
    let mut found = Vec::new();

    // Cargo: a workspace's root, or a crate outside any workspace.
    for group in packages
        .groups
        .iter()
        .filter(|g| g.ecosystem == Ecosystem::Cargo)
    {
        let roots: Vec<(String, String)> = match &group.workspace {
            Some(manifest) => vec![(dir(manifest).to_string(), manifest.clone())],
            None => group
                .packages
                .iter()
                .map(|p| (p.dir.clone(), within(&p.dir, "Cargo.toml")))
                .collect(),
        };
        for (dir, source) in roots {
            found.push(Candidate {
                dir,
                rank: 0,
                source,
                test: Some("cargo test".into()),
                build: Some("cargo build".into()),
            });
        }
    }

    // npm: every package.json but a workspace's members.
    let members: BTreeSet<&str> = packages
        .groups
        .iter()
        .filter(|g| g.ecosystem == Ecosystem::Npm && g.workspace.is_some())
        .flat_map(|g| g.packages.iter().map(|p| p.dir.as_str()))
        .collect();
    for manifest in manifests.iter().filter(|m| name(&m.path) == "package.json") {
        let dir = dir(&manifest.path);
        if members.contains(dir) {
            continue;
        }
        let Ok(json) = serde_json::from_str::<Json>(&manifest.text) else {
            continue;
        };
        let script = |name: &str| json.get("scripts")?.get(name)?.as_str().map(str::to_string);
        let test = script("test").filter(|s| !s.contains("no test specified"));
        let build = script("build");
        if test.is_none() && build.is_none() {
            continue;
        }
        let lock = |file: &str| exists(&within(dir, file));
        let (test_cmd, build_cmd) = if lock("pnpm-lock.yaml") {
            ("pnpm test", "pnpm run build")
        } else if lock("yarn.lock") {
            ("yarn test", "yarn build")
        } else if lock("bun.lock") || lock("bun.lockb") {
            ("bun run test", "bun run build")
        } else {
            ("npm test", "npm run build")
        };
        found.push(Candidate {
            dir: dir.to_string(),
            rank: 1,
            source: manifest.path.clone(),
            test: test.map(|_| test_cmd.into()),
            build: build.map(|_| build_cmd.into()),
        });
    }

    // Go and Python manifests.
    for manifest in manifests {
        let (rank, test, build) = match name(&manifest.path) {
            "go.mod" => (2, "go test ./...", Some("go build ./...")),
            "pyproject.toml" => (3, "python -m pytest", None),
            _ => continue,
        };
        found.push(Candidate {
            dir: dir(&manifest.path).to_string(),
            rank,
            source: manifest.path.clone(),
            test: Some(test.into()),
            build: build.map(Into::into),
        });
    }
    for file in files {
        let pytest = match name(&file.path) {
            "pytest.ini" | "conftest.py" => true,
            "tox.ini" | "setup.cfg" if file.path == name(&file.path) => manifests.iter().any(|m| {
                m.path == file.path
                    && m.text
                        .lines()
                        .any(|l| matches!(l.trim(), "[pytest]" | "[tool:pytest]"))
            }),
            _ => false,
        };
        if pytest {
            found.push(Candidate {
                dir: dir(&file.path).to_string(),
                rank: 3,
                source: file.path.clone(),
                test: Some("python -m pytest".into()),
                build: None,
            });
        }
    }

    // The root's Makefile.
    for manifest in manifests
        .iter()
        .filter(|m| matches!(m.path.as_str(), "Makefile" | "makefile" | "GNUmakefile"))
    {
        let targets = make_targets(&manifest.text);
        found.push(Candidate {
            dir: String::new(),
            rank: 4,
            source: manifest.path.clone(),
            test: targets.contains("test").then(|| "make test".into()),
            build: targets.contains("build").then(|| "make build".into()),
        });
    }

    found.sort_by(|a, b| {
        (depth(&a.dir), a.rank, &a.dir, &a.source).cmp(&(depth(&b.dir), b.rank, &b.dir, &b.source))
    });
    let mut out = Commands::default();
    for candidate in &found {
        for (command, list) in [
            (&candidate.test, &mut out.test),
            (&candidate.build, &mut out.build),
        ] {
            let Some(command) = command else { continue };
            let command = if candidate.dir.is_empty() {
                command.clone()
            } else {
                format!("cd {} && {command}", shell_word(&candidate.dir))
            };
            if !list.iter().any(|c| c.command == command) {
                list.push(Command {
                    command,
                    source: candidate.source.clone(),
                });
            }
        }
    }
    out
}

/// `file` in the directory `dir` (`""`: the root).
fn within(dir: &str, file: &str) -> String {
    if dir.is_empty() {
        file.to_string()
    } else {
        format!("{dir}/{file}")
    }
}

fn depth(dir: &str) -> usize {
    if dir.is_empty() {
        0
    } else {
        dir.split('/').count()
    }
}

/// `dir` quoted for `sh` if it needs it.
fn shell_word(dir: &str) -> String {
    if dir
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+@".contains(&b))
    {
        dir.to_string()
    } else {
        format!("'{}'", dir.replace('\'', r"'\''"))
    }
}

/// The explicit targets of a Makefile (not pattern rules or variables).
pub(crate) fn make_targets(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with(|c: char| c.is_whitespace() || c == '#') {
            continue;
        }
        let Some((targets, rest)) = line.split_once(':') else {
            continue;
        };
        if rest.starts_with('=') || targets.contains('=') {
            continue;
        }
        out.extend(
            targets
                .split_whitespace()
                .filter(|t| !t.contains('%'))
                .map(str::to_string),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repomap::packages::scan;

    fn text(path: &str, text: &str) -> Text {
        Text {
            path: path.into(),
            text: text.into(),
        }
    }

    fn file(path: &str) -> File {
        File {
            path: path.into(),
            oid: git2::Oid::ZERO_SHA1,
            size: 1,
            link: false,
        }
    }

    fn infer_from(manifests: &[Text], other: &[&str]) -> Commands {
        let mut files: Vec<File> = manifests.iter().map(|m| file(&m.path)).collect();
        files.extend(other.iter().map(|p| file(p)));
        files.sort_by(|a, b| a.path.cmp(&b.path));
        infer(manifests, &files, &scan(manifests))
    }

    fn commands(list: &[Command]) -> Vec<&str> {
        list.iter().map(|c| c.command.as_str()).collect()
    }

    #[test]
    fn root_manifests_win_in_a_fixed_order() {
        let got = infer_from(
            &[
                text("Cargo.toml", "[workspace]\nmembers = [\"a\"]\n"),
                text("a/Cargo.toml", "[package]\nname = \"a\"\n"),
                text(
                    "Makefile",
                    "build:\n\tcargo build\ntest: build\n\tcargo test\n",
                ),
                text("package.json", r#"{"scripts": {"test": "vitest"}}"#),
                text("tools/go.mod", "module example.com/tools\n"),
            ],
            &[],
        );
        assert_eq!(
            commands(&got.test),
            [
                "cargo test",
                "npm test",
                "make test",
                "cd tools && go test ./..."
            ]
        );
        assert_eq!(
            commands(&got.build),
            ["cargo build", "make build", "cd tools && go build ./..."]
        );
        assert_eq!(got.test[0].source, "Cargo.toml");
    }

    #[test]
    fn nested_manifests_run_from_their_directory() {
        let got = infer_from(
            &[
                text(
                    "web/package.json",
                    r#"{"scripts": {"test": "jest", "build": "tsc"}}"#,
                ),
                text("py/pyproject.toml", "[project]\nname = \"x\"\n"),
            ],
            &["web/pnpm-lock.yaml"],
        );
        assert_eq!(
            commands(&got.test),
            ["cd web && pnpm test", "cd py && python -m pytest"]
        );
        assert_eq!(commands(&got.build), ["cd web && pnpm run build"]);
    }

    #[test]
    fn placeholders_and_members_are_not_commands() {
        let got = infer_from(
            &[
                text(
                    "package.json",
                    r#"{"scripts": {"test": "echo \"Error: no test specified\" && exit 1"}}"#,
                ),
                text(
                    "ws/package.json",
                    r#"{"workspaces": ["p/*"], "scripts": {"test": "t"}}"#,
                ),
                text(
                    "ws/p/a/package.json",
                    r#"{"name": "a", "scripts": {"test": "t"}}"#,
                ),
            ],
            &["yarn.lock"],
        );
        assert_eq!(commands(&got.test), ["cd ws && npm test"]);
        assert!(got.build.is_empty());
    }

    #[test]
    fn pytest_configs_and_make_targets() {
        let got = infer_from(&[text("tox.ini", "[tox]\n\n[pytest]\naddopts = -q\n")], &[]);
        assert_eq!(commands(&got.test), ["python -m pytest"]);
        let got = infer_from(&[], &["tests/conftest.py"]);
        assert_eq!(commands(&got.test), ["cd tests && python -m pytest"]);
        let targets = make_targets(
            ".PHONY: test all\nall test: x\n\techo\nCC := cc\nV = a:b\n%.o: %.c\nbuild::\n",
        );
        assert!(targets.contains("test") && targets.contains("all") && targets.contains("build"));
        assert!(!targets.contains("CC") && !targets.contains("%.o") && !targets.contains("V"));
    }
}
