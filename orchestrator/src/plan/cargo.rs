//! Which Cargo package a Rust test file of a sharded task belongs to, so
//! that nextest's binary ids (`<package>::<binary>`, in its list and its
//! JUnit) map back to files: in a workspace two packages' `tests/quick.rs`
//! are `a::quick` and `b::quick`, one name apart by the stem alone.
//!
//! A file's package is the `[package] name` of the nearest `Cargo.toml`
//! above it, read from git's objects at the run's base (never a working
//! tree); a manifest without `[package]` (a virtual workspace's), one that
//! does not parse or is larger than a manifest should be leaves the file
//! without one, and its binary is then matched by its name alone, as
//! before.

use std::collections::{BTreeMap, HashMap};

use crate::git::FileAt;

/// Each Rust entry's package, by entry (only those found).
pub type Packages = BTreeMap<String, String>;

/// The most a `Cargo.toml` read for its package's name may hold.
pub const MAX_MANIFEST: u64 = 1 << 20;

/// The packages of the `.rs` entries of `entries`, `read` giving what the
/// run's base holds at a path from the repository's root; each
/// directory's manifest is read once.
pub fn packages(entries: &[String], read: &dyn Fn(&str) -> FileAt) -> Packages {
    let mut seen: HashMap<String, Option<String>> = HashMap::new();
    let mut out = Packages::new();
    for entry in entries.iter().filter(|e| e.ends_with(".rs")) {
        if let Some(package) = package_of(entry, read, &mut seen) {
            out.insert(entry.clone(), package);
        }
    }
    out
}

/// The package of `file`: the nearest manifest above it, if it names one
/// (`seen`: what each directory's manifest gave, or `None` where it has
/// none, so that the walk goes on up).
fn package_of(
    file: &str,
    read: &dyn Fn(&str) -> FileAt,
    seen: &mut HashMap<String, Option<String>>,
) -> Option<String> {
    let mut dir = file;
    while let Some((parent, _)) = dir.rsplit_once('/') {
        dir = parent;
        match manifest(dir, read, seen) {
            Manifest::Package(name) => return Some(name),
            Manifest::Other => return None,
            Manifest::None => {}
        }
    }
    match manifest("", read, seen) {
        Manifest::Package(name) => Some(name),
        _ => None,
    }
}

/// What directory `dir`'s `Cargo.toml` says.
enum Manifest {
    /// There is none: look further up.
    None,
    /// It names a package.
    Package(String),
    /// One that names none (a virtual workspace's) or cannot be read:
    /// the file is no package's that swarm knows.
    Other,
}

fn manifest(
    dir: &str,
    read: &dyn Fn(&str) -> FileAt,
    seen: &mut HashMap<String, Option<String>>,
) -> Manifest {
    let path = match dir {
        "" => "Cargo.toml".to_string(),
        dir => format!("{dir}/Cargo.toml"),
    };
    let found = seen
        .entry(path.clone())
        .or_insert_with(|| match read(&path) {
            FileAt::Absent => None,
            // `Some("")`: a manifest naming no package, or one that cannot be
            // read (a link, too large): the file is no package's swarm knows,
            // never the package of a manifest further up.
            FileAt::Unreadable => Some(String::new()),
            FileAt::Bytes(bytes) => Some(package_name(&bytes).unwrap_or_default()),
        });
    match found {
        None => Manifest::None,
        Some(name) if name.is_empty() => Manifest::Other,
        Some(name) => Manifest::Package(name.clone()),
    }
}

/// `[package] name` of a manifest's bytes.
fn package_name(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let table: toml::Table = toml::from_str(text).ok()?;
    let name = table.get("package")?.get("name")?.as_str()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// nextest's binary id of the test file `file` when its package is
/// known: `<package>::<binary>` ([`rust_test_binary`]).
pub fn binary_id(file: &str, packages: &Packages) -> Option<String> {
    let package = packages.get(file)?;
    let binary = rust_test_binary(file)?;
    Some(format!("{package}::{binary}"))
}

/// The name of the test binary cargo builds of the Rust test file
/// `entry`: its stem (`tests/quick.rs` is `quick`), or its directory's name
/// for a `main.rs` (`tests/api/main.rs` is `api`).
pub fn rust_test_binary(entry: &str) -> Option<&str> {
    let stem = entry.strip_suffix(".rs")?;
    let (dir, name) = stem.rsplit_once('/').unwrap_or(("", stem));
    match name {
        "main" => dir.rsplit('/').next().filter(|d| !d.is_empty()),
        name => Some(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_files_package_is_its_nearest_manifests_in_a_workspace_or_a_crate() {
        let files: HashMap<&str, &str> = [
            ("Cargo.toml", "[workspace]\nmembers = [\"crates/*\"]\n"),
            (
                "crates/a/Cargo.toml",
                "[package]\nname = \"alpha\"\nversion = \"0.1.0\"\n",
            ),
            ("crates/b/Cargo.toml", "[package]\nname = \"b\"\n"),
            ("crates/bad/Cargo.toml", "[package\nname = \"x\"\n"),
            ("crates/link/Cargo.toml", "LINK"),
            ("crates/Cargo.toml", "[package]\nname = \"above\"\n"),
        ]
        .into_iter()
        .collect();
        let read = |path: &str| match files.get(path) {
            Some(&"LINK") => FileAt::Unreadable,
            Some(t) => FileAt::Bytes(t.as_bytes().to_vec()),
            None => FileAt::Absent,
        };
        let entries: Vec<String> = [
            "crates/a/tests/quick.rs",
            "crates/b/tests/quick.rs",
            "crates/b/tests/api/main.rs",
            "crates/bad/tests/quick.rs",
            "crates/link/tests/quick.rs",
            "tests/top.rs",
            "crates/a/tests/test_x.py",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let found = packages(&entries, &read);
        assert_eq!(
            found
                .iter()
                .map(|(e, p)| format!("{e} {p}"))
                .collect::<Vec<_>>(),
            [
                "crates/a/tests/quick.rs alpha",
                "crates/b/tests/api/main.rs b",
                "crates/b/tests/quick.rs b",
            ]
        );
        assert_eq!(
            [
                binary_id("crates/a/tests/quick.rs", &found),
                binary_id("crates/b/tests/api/main.rs", &found),
                binary_id("tests/top.rs", &found),
            ],
            [Some("alpha::quick".into()), Some("b::api".into()), None]
        );
        // A crate alone: its root manifest.
        let read = |path: &str| match path {
            "Cargo.toml" => FileAt::Bytes(b"[package]\nname = \"itertools\"\n".to_vec()),
            _ => FileAt::Absent,
        };
        let one = packages(&["tests/quick.rs".to_string()], &read);
        assert_eq!(
            binary_id("tests/quick.rs", &one),
            Some("itertools::quick".into())
        );
    }
}
