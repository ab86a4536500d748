//! Reading the commit: every tracked file with its size, the texts the map
//! parses (manifests, build files, instructions), and the search for the
//! goal's identifiers.
//!
//! Sizes come from object headers (`Odb::read_header`: for a packed object
//! a lookup in the pack index and a few bytes; for a loose one the start of
//! the file), so no blob is inflated whole for its size. When the goal names
//! identifiers every text blob is read once, in the same pass, and searched
//! for all of them; that pass runs on every core (up to 8), each worker with
//! its own libgit2 handle (handles are not `Sync`), taking files in blocks
//! from a shared counter. Headers alone are read on the calling thread:
//! 10,000 take about 25 ms, and more threads do not make that shorter.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use git2::{Odb, Oid, Repository, Tree, TreeWalkMode, TreeWalkResult};

use super::MapError;
use super::goal::Search;

/// One tracked file of the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct File {
    /// From the root, `/`-separated, as one line: lossy UTF-8, control
    /// characters rendered visibly (`escape::line`), so that a name cannot
    /// break the map's lines.
    pub path: String,
    pub oid: Oid,
    /// Bytes of the blob (of a link, its target).
    pub size: u64,
    pub link: bool,
}

/// The commit's files and what the search found in them.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Sorted by path.
    pub files: Vec<File>,
    /// Submodules (gitlinks), not counted as files.
    pub submodules: usize,
    /// Per file that contains any of the searched identifiers: its index in
    /// `files` and the lines containing each identifier, in the search's
    /// order. Sorted by index.
    pub counts: Vec<(usize, Vec<u32>)>,
}

/// A text the map parses, read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text {
    pub path: String,
    pub text: String,
}

/// Directories whose manifests belong to someone else's code or are test
/// data: dependencies checked in (`node_modules`, `vendor`, `third_party`,
/// virtual environments), build output (`target`, `dist`) and fixtures.
pub(crate) const SKIPPED_DIRS: &[&str] = &[
    "node_modules",
    "bower_components",
    "vendor",
    "third_party",
    ".venv",
    "venv",
    "site-packages",
    "target",
    "dist",
    "fixtures",
    "testdata",
];

/// Manifests read anywhere in the tree (outside `SKIPPED_DIRS`).
pub(crate) const MANIFESTS: &[&str] = &["Cargo.toml", "package.json", "go.mod", "pyproject.toml"];

/// Files read at the root only, for the commands.
pub(crate) const ROOT_BUILD_FILES: &[&str] = &[
    "Makefile",
    "makefile",
    "GNUmakefile",
    "setup.cfg",
    "tox.ini",
];

/// At most this many manifests are read (each is a whole blob).
const MAX_MANIFESTS: usize = 2000;
/// Manifests and build files larger than this are not read.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// Blobs larger than this are not searched.
pub(crate) const MAX_SEARCHED_BYTES: u64 = 1 << 20;
/// Files per block a worker takes.
const BLOCK: usize = 64;
/// Below this many files, one thread reads them all.
const PARALLEL_FROM: usize = 512;

/// Lists the files of `tree` (commit `commit`) with their sizes, and
/// searches them when `search` has identifiers.
pub(crate) fn list(
    git: &Repository,
    git_dir: &Path,
    commit: Oid,
    tree: &Tree<'_>,
    search: &Search,
) -> Result<Listing, MapError> {
    let mut files = Vec::new();
    let mut submodules = 0;
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        match entry.kind() {
            Some(git2::ObjectType::Blob) => files.push(File {
                path: crate::escape::line(&format!(
                    "{dir}{}",
                    String::from_utf8_lossy(entry.name_bytes())
                ))
                .into_owned(),
                oid: entry.id(),
                size: 0,
                link: entry.filemode() == 0o120000,
            }),
            Some(git2::ObjectType::Commit) => submodules += 1,
            _ => {}
        }
        TreeWalkResult::Ok
    })
    .map_err(|source| MapError::Tree { commit, source })?;
    // Git's order puts `a.b` before `a/`; the map wants plain path order.
    files.sort_by(|a, b| a.path.cmp(&b.path));

    // Reading headers does not scale across threads (libgit2 serialises
    // them: two threads took as long as one); inflating blobs does.
    let workers = if search.is_empty() || files.len() < PARALLEL_FROM {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
    };
    let next = AtomicUsize::new(0);
    let mut results = Vec::with_capacity(workers);
    if workers == 1 {
        let odb = git.odb().map_err(|source| MapError::Open {
            path: git_dir.to_path_buf(),
            source,
        })?;
        results.push(read_blocks(&odb, commit, &files, search, &next));
    } else {
        std::thread::scope(|scope| -> Result<(), MapError> {
            let mut handles = Vec::with_capacity(workers);
            for _ in 0..workers {
                let (files, next) = (&files, &next);
                let handle = std::thread::Builder::new()
                    .name("repomap".into())
                    .spawn_scoped(scope, move || {
                        let git = Repository::open(git_dir).map_err(|source| MapError::Open {
                            path: git_dir.to_path_buf(),
                            source,
                        })?;
                        let odb = git.odb().map_err(|source| MapError::Open {
                            path: git_dir.to_path_buf(),
                            source,
                        })?;
                        read_blocks(&odb, commit, files, search, next)
                    })
                    .map_err(|source| MapError::Thread { commit, source })?;
                handles.push(handle);
            }
            for handle in handles {
                // A worker only panics on a bug; resume it here.
                results.push(
                    handle
                        .join()
                        .unwrap_or_else(|p| std::panic::resume_unwind(p)),
                );
            }
            Ok(())
        })?;
    }

    let mut counts = Vec::new();
    for result in results {
        let (sizes, found) = result?;
        for (i, size) in sizes {
            files[i].size = size;
        }
        counts.extend(found);
    }
    counts.sort_by_key(|(i, _)| *i);
    Ok(Listing {
        files,
        submodules,
        counts,
    })
}

/// Sizes by file index, and the search's counts for files with a hit.
type Blocks = (Vec<(usize, u64)>, Vec<(usize, Vec<u32>)>);

/// Reads blocks of `files` until none is left.
fn read_blocks(
    odb: &Odb<'_>,
    commit: Oid,
    files: &[File],
    search: &Search,
    next: &AtomicUsize,
) -> Result<Blocks, MapError> {
    let mut sizes = Vec::new();
    let mut found = Vec::new();
    loop {
        let start = next.fetch_add(BLOCK, Ordering::Relaxed);
        if start >= files.len() {
            return Ok((sizes, found));
        }
        for (i, file) in files.iter().enumerate().skip(start).take(BLOCK) {
            let error = |source| MapError::Blob {
                path: file.path.clone(),
                commit,
                source,
            };
            let (size, _) = odb.read_header(file.oid).map_err(error)?;
            let size = size as u64;
            sizes.push((i, size));
            if search.is_empty() || file.link || size > MAX_SEARCHED_BYTES {
                continue;
            }
            let object = odb.read(file.oid).map_err(error)?;
            if let Some(lines) = search.count(object.data()) {
                found.push((i, lines));
            }
        }
    }
}

/// True if `path` is inside one of `SKIPPED_DIRS`.
pub(crate) fn skipped(path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    parts.iter().any(|part| SKIPPED_DIRS.contains(part))
}

/// The file name of `path`.
pub(crate) fn name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The directory of `path`: `""` at the root.
pub(crate) fn dir(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The manifests (anywhere outside `SKIPPED_DIRS`, at most
/// `MAX_MANIFESTS`) and the root's build files, read whole, in path order.
pub(crate) fn manifests(
    git: &Repository,
    commit: Oid,
    files: &[File],
) -> Result<Vec<Text>, MapError> {
    let readable = |f: &&File| !f.link && f.size <= MAX_MANIFEST_BYTES;
    let build_files = files
        .iter()
        .filter(readable)
        .filter(|f| ROOT_BUILD_FILES.contains(&f.path.as_str()));
    let manifests = files
        .iter()
        .filter(readable)
        .filter(|f| MANIFESTS.contains(&name(&f.path)) && !skipped(&f.path))
        .take(MAX_MANIFESTS);
    let mut texts = build_files
        .chain(manifests)
        .map(|f| read_text(git, commit, f))
        .collect::<Result<Vec<_>, _>>()?;
    texts.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(texts)
}

/// The project's instructions: `AGENTS.md` at the root, else `CLAUDE.md`,
/// with control characters but newlines and tabs rendered visibly.
pub(crate) fn instructions(
    git: &Repository,
    commit: Oid,
    files: &[File],
) -> Result<Option<Text>, MapError> {
    for wanted in ["AGENTS.md", "CLAUDE.md"] {
        if let Some(file) = files.iter().find(|f| f.path == wanted && !f.link) {
            let mut text = read_text(git, commit, file)?;
            text.text = crate::escape::text(&text.text).into_owned();
            return Ok(Some(text));
        }
    }
    Ok(None)
}

fn read_text(git: &Repository, commit: Oid, file: &File) -> Result<Text, MapError> {
    let blob = git.find_blob(file.oid).map_err(|source| MapError::Blob {
        path: file.path.clone(),
        commit,
        source,
    })?;
    Ok(Text {
        path: file.path.clone(),
        text: String::from_utf8_lossy(blob.content()).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_dirs_are_directory_components_only() {
        assert!(skipped("node_modules/x/package.json"));
        assert!(skipped("web/node_modules/x/package.json"));
        assert!(skipped("crates/a/target/Cargo.toml"));
        assert!(!skipped("vendor.json"));
        assert!(!skipped("crates/vendored/Cargo.toml"));
        assert!(!skipped("package.json"));
    }

    #[test]
    fn names_and_dirs() {
        assert_eq!(name("a/b/c.rs"), "c.rs");
        assert_eq!(name("c.rs"), "c.rs");
        assert_eq!(dir("a/b/c.rs"), "a/b");
        assert_eq!(dir("c.rs"), "");
    }
}
