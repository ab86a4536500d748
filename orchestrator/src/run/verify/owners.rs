//! Who owns what a failing verify names: the places (`path:line`) a
//! compiler or a test runner writes, mapped to the tasks that own those
//! files.
//!
//! When taking merges out proves nothing (a piece missing from a
//! refactor: the branch without any one merge still fails), the failure
//! itself still says where it is: rustc's `--> src/lib.rs:12:5`, gcc's and
//! tsc's `src/a.c:3:1`, Go's `./a.go:7`, pytest's `tests/test_a.py:12:`,
//! Python's `File "pkg/a.py", line 3`. A task owns a file its `paths` or
//! `creates` hold (what the plan gave it to write, whether or not it wrote
//! it: the piece that forgot a file owns it), else one its merge changed.
//! Evidence, not proof: the dispatcher names these tasks and keeps every
//! merge.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

/// Most places read from one failure (the first errors are the ones that
/// matter; a cascade of later ones repeats them).
const MAX_PLACES: usize = 50;

/// Most places kept per task named.
const PLACES_SHOWN: usize = 10;

/// A path with a file name that has an extension, and `:line` after it
/// (with `:col` or more, or not), or alone (`grep -l`, a test file
/// named); or Python's `File "path", line N`.
static PLACE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"(?:File "(?P<py>[^"\n]+)", line (?P<pyline>\d+))|(?:^|[\s'"(\[<=])(?P<path>[A-Za-z0-9_./@+-]*[A-Za-z0-9_@+-]\.[A-Za-z][A-Za-z0-9]*)(?::(?P<line>\d+))?"#,
    )
    .ok()
});

/// A file (and line) a failure names, relative to the checkout.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Place {
    pub path: String,
    pub line: Option<u32>,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.path),
            None => f.write_str(&self.path),
        }
    }
}

/// The places `text` names, in order, once each, relative to `checkout`
/// (an absolute path outside it names nothing of the repository's).
pub(crate) fn places(text: &str, checkout: &Path) -> Vec<Place> {
    let Some(re) = PLACE.as_ref() else {
        return Vec::new();
    };
    let root = format!("{}/", checkout.display());
    let mut found: Vec<Place> = Vec::new();
    for line in text.lines() {
        for cap in re.captures_iter(line) {
            let Some(path) = cap.name("py").or_else(|| cap.name("path")) else {
                continue;
            };
            let number = cap
                .name("pyline")
                .or_else(|| cap.name("line"))
                .and_then(|n| n.as_str().parse::<u32>().ok());
            let mut path = path.as_str();
            if path.starts_with('/') {
                match path.strip_prefix(root.as_str()) {
                    Some(rel) => path = rel,
                    None => continue,
                }
            }
            while let Some(rel) = path.strip_prefix("./") {
                path = rel;
            }
            if path.is_empty() || path.split('/').any(|c| c == "..") {
                continue;
            }
            let place = Place {
                path: path.to_string(),
                line: number,
            };
            if !found.contains(&place) {
                found.push(place);
                if found.len() >= MAX_PLACES {
                    return found;
                }
            }
        }
    }
    found
}

/// What one task owns: its `paths` and `creates` (each a file, or a
/// directory and what is under it) and the files its merge changed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Owns {
    pub scope: Vec<String>,
    pub changed: Vec<String>,
}

/// How a task owns a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum By {
    /// Its `paths` or `creates` hold the file.
    Paths,
    /// Its merge changed the file.
    Changed,
}

impl By {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Paths => "paths",
            Self::Changed => "changed",
        }
    }
}

/// The tasks (by their index in `owners`) that own `places`, each with
/// the places that name it and how: a file any task's scope holds is
/// those tasks'; else it is the tasks' whose merge changed it; a file
/// nobody owns names nobody.
pub(crate) fn owners(places: &[Place], owners: &[Owns]) -> BTreeMap<usize, (By, Vec<Place>)> {
    let mut named: BTreeMap<usize, (By, Vec<Place>)> = BTreeMap::new();
    for place in places {
        let path = Path::new(&place.path);
        let in_scope: Vec<usize> = (0..owners.len())
            .filter(|&i| owners[i].scope.iter().any(|s| path.starts_with(s)))
            .collect();
        let (by, who) = match in_scope.is_empty() {
            false => (By::Paths, in_scope),
            true => (
                By::Changed,
                (0..owners.len())
                    .filter(|&i| owners[i].changed.iter().any(|c| c == &place.path))
                    .collect(),
            ),
        };
        for i in who {
            let entry = named.entry(i).or_insert((by, Vec::new()));
            if by == By::Paths {
                entry.0 = By::Paths;
            }
            if entry.1.len() < PLACES_SHOWN {
                entry.1.push(place.clone());
            }
        }
    }
    named
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &str, line: u32) -> Place {
        Place {
            path: path.into(),
            line: Some(line),
        }
    }

    #[test]
    fn compilers_and_test_runners_name_their_places() {
        let out = "\
error[E0425]: cannot find function `old_name` in this scope
  --> crates/b/src/lib.rs:12:5
   |
/work/co/src/main.c:3:1: error: expected ';'
./cmd/a.go:7: undefined: Foo
tests/test_a.py:12: AssertionError
  File \"/work/co/pkg/mod.py\", line 40, in f
  File \"/usr/lib/python3/x.py\", line 1, in g
see https://example.com/a.html:80 and ../up.rs:3 and v1.2:3
crates/b/src/lib.rs:12:5 again
f3.txt";
        assert_eq!(
            places(out, Path::new("/work/co")),
            vec![
                at("crates/b/src/lib.rs", 12),
                at("src/main.c", 3),
                at("cmd/a.go", 7),
                at("tests/test_a.py", 12),
                at("pkg/mod.py", 40),
                Place {
                    path: "f3.txt".into(),
                    line: None
                },
            ]
        );
    }

    #[test]
    fn a_file_in_a_tasks_paths_is_its_though_another_changed_it() {
        let owns = vec![
            Owns {
                scope: vec!["crates/a".into()],
                changed: vec!["crates/a/src/lib.rs".into(), "crates/b/src/lib.rs".into()],
            },
            Owns {
                scope: vec!["crates/b".into()],
                changed: vec![],
            },
            Owns {
                scope: vec![],
                changed: vec!["README.md".into()],
            },
        ];
        let named = owners(
            &[
                at("crates/b/src/lib.rs", 12),
                at("README.md", 1),
                at("nobody.rs", 2),
            ],
            &owns,
        );
        assert_eq!(named.len(), 2, "{named:?}");
        assert_eq!(named[&1], (By::Paths, vec![at("crates/b/src/lib.rs", 12)]));
        assert_eq!(named[&2], (By::Changed, vec![at("README.md", 1)]));
    }
}
