//! Walking a task's worktree for its snapshot, with git's ignore rules but
//! none of the worker's other git files.
//!
//! The worktree is the worker's: anything in it may be hostile. So the walk
//! never follows a symlink (not even a `.gitignore` that is one), reads
//! ignore files only up to a small size, never reads the worktree's `.git`
//! file (the exclude file comes from the git directory swarm recorded), and
//! keeps no more than one directory's entries in memory at a time. Global
//! and system ignore files are not read: a snapshot must not depend on the
//! machine it ran on.

use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Ignore files larger than this are not read (the file itself is still
/// committed): its patterns would cost the coordinator memory and time in
/// proportion to what the worker wrote.
pub(crate) const MAX_IGNORE_FILE: u64 = 1 << 20;

/// What the walk found at one path.
pub(crate) enum Found {
    /// A regular file or symlink (`lstat` data), to commit.
    File(Vec<u8>, Metadata),
    /// A directory: walked if the visitor returns `true` for it.
    Dir(Vec<u8>),
    /// Something that is neither file, directory nor symlink.
    Special(Vec<u8>, Metadata),
    /// A directory that could not be read.
    Unreadable(Vec<u8>, std::io::Error),
}

/// The ignore rules in force in one directory: its own `.gitignore` and
/// its parents', deepest last.
#[derive(Clone, Default)]
struct Rules(Vec<Arc<Gitignore>>);

/// Walks the worktree at `root` depth first (with a heap stack, so a
/// deeply nested tree cannot overflow the thread's stack), skipping the
/// top-level `.git` and everything ignored. `visit` gets every other
/// entry; for a directory, its answer says whether to walk it.
#[allow(
    clippy::disallowed_methods,
    reason = "the snapshot's own walk of a worktree once every process of its task is gone: a directory is entered only when lstat says it is one, never through a link"
)]
pub(crate) fn walk(root: &Path, exclude: Option<&Gitignore>, mut visit: impl FnMut(Found) -> bool) {
    let mut stack: Vec<(Vec<u8>, Rules)> = vec![(Vec::new(), Rules::default())];
    while let Some((dir, parent_rules)) = stack.pop() {
        let abs = join(root, &dir);
        let entries = match std::fs::read_dir(&abs) {
            Ok(entries) => entries,
            Err(e) => {
                visit(Found::Unreadable(dir, e));
                continue;
            }
        };
        let mut rules = parent_rules;
        if let Some(gitignore) = read_gitignore(&abs) {
            rules.0.push(Arc::new(gitignore));
        }
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    visit(Found::Unreadable(dir.clone(), e));
                    break;
                }
            };
            let name = entry.file_name();
            if dir.is_empty() && name == ".git" {
                // The worktree's link to its git directory: git's, not the
                // task's.
                continue;
            }
            let rel = child(&dir, name.as_bytes());
            let abs_child = join(root, &rel);
            // `fstatat` on the open directory, without following a link.
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(e) => {
                    visit(Found::Unreadable(rel, e));
                    continue;
                }
            };
            let is_dir = meta.is_dir();
            if ignored(&rules, exclude, &abs_child, is_dir) {
                continue;
            }
            if is_dir {
                if visit(Found::Dir(rel.clone())) {
                    stack.push((rel, rules.clone()));
                }
            } else if meta.is_file() || meta.is_symlink() {
                visit(Found::File(rel, meta));
            } else {
                visit(Found::Special(rel, meta));
            }
        }
    }
}

/// Git's precedence: the deepest `.gitignore` with a matching pattern
/// decides, then the repository's exclude file.
fn ignored(rules: &Rules, exclude: Option<&Gitignore>, path: &Path, is_dir: bool) -> bool {
    for gitignore in rules.0.iter().rev().map(Arc::as_ref).chain(exclude) {
        match gitignore.matched(path, is_dir) {
            Match::Ignore(_) => return true,
            Match::Whitelist(_) => return false,
            Match::None => {}
        }
    }
    false
}

/// The `.gitignore` of directory `dir`, if it is a regular file of at most
/// [`MAX_IGNORE_FILE`] bytes.
fn read_gitignore(dir: &Path) -> Option<Gitignore> {
    read_ignore_file(dir, &dir.join(".gitignore"))
}

/// An ignore file whose patterns are relative to `root`, read without
/// following a symlink; `None` if it is missing, not a regular file, too
/// large or unreadable (git too skips ignore files it cannot read).
pub(crate) fn read_ignore_file(root: &Path, file: &Path) -> Option<Gitignore> {
    let f = open_no_follow(file).ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_IGNORE_FILE {
        return None;
    }
    let mut text = Vec::new();
    f.take(MAX_IGNORE_FILE).read_to_end(&mut text).ok()?;
    let mut builder = GitignoreBuilder::new(root);
    for line in String::from_utf8_lossy(&text).lines() {
        // Git skips a pattern it cannot parse and keeps the others.
        let _ = builder.add_line(None, line);
    }
    builder.build().ok()
}

/// Opens `path` for reading without following a final symlink and without
/// blocking on a named pipe.
#[allow(
    clippy::disallowed_methods,
    reason = "O_NOFOLLOW | O_NONBLOCK: a link or a FIFO at the name is refused, never followed or waited on"
)]
pub(crate) fn open_no_follow(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
        .open(path)
}

/// `lstat` of `rel` under `root`, provided that every directory on the way
/// is a real directory: a worker that replaced a tracked directory by a
/// symlink must not make the coordinator look (or read) through it.
/// `Ok(None)`: nothing is there. `real_dirs` caches the answer per
/// directory.
pub(crate) fn lstat_beneath(
    root: &Path,
    rel: &[u8],
    real_dirs: &mut std::collections::HashMap<Vec<u8>, bool>,
) -> std::io::Result<Option<Metadata>> {
    let mut end = 0;
    while let Some(slash) = rel[end..].iter().position(|&b| b == b'/') {
        end += slash;
        let dir = &rel[..end];
        let real = match real_dirs.get(dir) {
            Some(&real) => real,
            None => {
                let real = match absent(std::fs::symlink_metadata(join(root, dir)))? {
                    Some(meta) => meta.is_dir(),
                    None => false,
                };
                real_dirs.insert(dir.to_vec(), real);
                real
            }
        };
        if !real {
            return Ok(None);
        }
        end += 1;
    }
    absent(std::fs::symlink_metadata(join(root, rel)))
}

/// A missing path as `None`; other errors (permissions, I/O) stay errors,
/// so that an unreadable directory is never taken for a deleted one.
fn absent(meta: std::io::Result<Metadata>) -> std::io::Result<Option<Metadata>> {
    match meta {
        Ok(meta) => Ok(Some(meta)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `root/rel` for a `/`-separated relative path in bytes.
pub(crate) fn join(root: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(OsStr::from_bytes(rel))
    }
}

fn child(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut rel = Vec::with_capacity(dir.len() + 1 + name.len());
    if !dir.is_empty() {
        rel.extend_from_slice(dir);
        rel.push(b'/');
    }
    rel.extend_from_slice(name);
    rel
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walked(root: &Path) -> Vec<String> {
        let exclude = read_ignore_file(root, &root.join("exclude"));
        let mut seen = Vec::new();
        walk(root, exclude.as_ref(), |f| {
            if let Found::File(rel, _) = f {
                seen.push(String::from_utf8_lossy(&rel).into_owned());
            }
            true
        });
        seen.sort();
        seen
    }

    #[test]
    fn deeper_gitignores_win_and_ignored_directories_are_not_entered() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        for d in ["a/b", "out", ".git"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        std::fs::write(root.join(".gitignore"), "*.log\nout/\n")?;
        std::fs::write(root.join("a/b/.gitignore"), "!keep.log\n")?;
        std::fs::write(root.join("exclude"), "secret\n")?;
        for f in [
            "x.log",
            "a/y.log",
            "a/b/keep.log",
            "out/o",
            "secret",
            "a/secret",
            ".git/c",
            "ok",
        ] {
            std::fs::write(root.join(f), "x")?;
        }
        assert_eq!(
            walked(root),
            [
                ".gitignore",
                "a/b/.gitignore",
                "a/b/keep.log",
                "exclude",
                "ok"
            ]
        );
        Ok(())
    }

    #[test]
    fn a_symlinked_gitignore_is_not_followed() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("w");
        std::fs::create_dir(&root)?;
        std::fs::write(dir.path().join("rules"), "*\n")?;
        std::os::unix::fs::symlink(dir.path().join("rules"), root.join(".gitignore"))?;
        std::fs::write(root.join("f"), "x")?;
        assert_eq!(walked(&root), [".gitignore", "f"]);
        Ok(())
    }

    #[test]
    fn lstat_beneath_refuses_to_look_through_a_symlinked_directory() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("w");
        std::fs::create_dir_all(root.join("real"))?;
        std::fs::write(root.join("real/f"), "x")?;
        std::os::unix::fs::symlink(root.join("real"), root.join("link"))?;
        let mut cache = std::collections::HashMap::new();
        assert!(lstat_beneath(&root, b"real/f", &mut cache)?.is_some());
        assert!(lstat_beneath(&root, b"link/f", &mut cache)?.is_none());
        assert!(lstat_beneath(&root, b"missing/f", &mut cache)?.is_none());
        assert!(lstat_beneath(&root, b"real/f/g", &mut cache)?.is_none());
        Ok(())
    }
}
