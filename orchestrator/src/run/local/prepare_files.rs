//! The files of a finished `[setup]`: found in the worktree it ran in,
//! kept in the worktree home (`<home>/.setup/<key>/`), and copied into
//! the next worktree with the same key instead of running setup again.
//!
//! What setup made is whatever differs from the checkout once it ended,
//! ignored files included (`node_modules`, `.venv` are what it is for):
//! files and links not in the worktree's index or whose stat data no
//! longer matches their entry, directories no tracked file is in, and
//! tracked files it deleted.
//!
//! Setup ran as the task does, so its files are hostile input: links are
//! copied as links and never followed, only regular files, directories
//! and links are kept. A copy into a worktree goes through a
//! [`TaskDir`]: never through a link, what is in the way removed as what it
//! is. Copies are never shared: each
//! worktree gets its own files (`std::fs::copy`, which shares extents
//! copy-on-write where the file system can: Btrfs, XFS), so that no task
//! can change another's or the kept ones. Modification times are kept, so
//! that build tools take what setup built for fresh.

use std::collections::HashSet;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::SFlag;

use crate::untrusted::{EntryKind, TaskDir};

/// The directory a kept setup's files are in, below its key's directory.
pub(super) const FILES: &str = "files";
/// The tracked files setup deleted, one path a line.
const DELETED: &str = "deleted";

/// What setup left in a worktree against its checkout.
#[derive(Debug, Default)]
pub(crate) struct Outputs {
    /// Files, links and new directories, relative to the worktree, parents
    /// before children.
    pub made: Vec<PathBuf>,
    /// Tracked files it deleted.
    pub deleted: Vec<PathBuf>,
}

/// What setup left in the worktree at `root`, whose index (as checked
/// out, before setup ran) is `index`.
#[allow(
    clippy::disallowed_methods,
    reason = "the worktree of a setup that ran with its own rights: a checkout of the run's base no task wrote (prepare::Plan), walked without following a link, into swarm's kept setups (0700)"
)]
pub(crate) fn outputs(root: &Path, index: &git2::Index) -> io::Result<Outputs> {
    let mut tracked = std::collections::HashMap::new();
    let mut tracked_dirs: HashSet<PathBuf> = HashSet::new();
    for entry in index.iter() {
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(&entry.path));
        let mut parent = path.parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            if !tracked_dirs.insert(dir.to_path_buf()) {
                break;
            }
            parent = dir.parent();
        }
        tracked.insert(path, entry);
    }
    let mut out = Outputs::default();
    let mut seen = HashSet::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(dir) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(root.join(&dir))?
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for name in names {
            let rel = dir.join(&name);
            if dir.as_os_str().is_empty() && name == ".git" {
                continue;
            }
            let meta = std::fs::symlink_metadata(root.join(&rel))?;
            if meta.is_dir() {
                if !tracked_dirs.contains(&rel) {
                    out.made.push(rel.clone());
                }
                stack.push(rel);
                continue;
            }
            if !meta.is_file() && !meta.is_symlink() {
                // A socket or a FIFO setup left: nothing to keep.
                continue;
            }
            seen.insert(rel.clone());
            let unchanged = tracked.get(&rel).is_some_and(|e| {
                i64::from(e.mtime.seconds()) == meta.mtime()
                    && e.mtime.nanoseconds() as i64 == meta.mtime_nsec()
                    && u64::from(e.file_size) == meta.len() & 0xffff_ffff
            });
            if !unchanged {
                out.made.push(rel);
            }
        }
    }
    out.deleted = tracked
        .keys()
        .filter(|p| !seen.contains(*p))
        .filter(|p| std::fs::symlink_metadata(root.join(p)).is_err())
        .cloned()
        .collect();
    out.deleted.sort();
    // Parents before children, for the copy.
    out.made.sort();
    Ok(out)
}

/// Most bytes one kept setup may hold: past it, setup runs in every
/// worktree rather than fill the disk with copies.
const MAX_KEPT: u64 = 8 << 30;

/// Whether `outputs` of the worktree at `root` may be kept: not past
/// [`MAX_KEPT`] bytes, no sparse file (a copy would fill its holes, and a
/// task can make terabytes of them in no time).
#[allow(
    clippy::disallowed_methods,
    reason = "the worktree of a setup that ran with its own rights: a checkout of the run's base no task wrote (prepare::Plan), walked without following a link, into swarm's kept setups (0700)"
)]
pub(crate) fn check_size(root: &Path, outputs: &Outputs) -> io::Result<()> {
    let mut total: u64 = 0;
    for rel in &outputs.made {
        let meta = std::fs::symlink_metadata(root.join(rel))?;
        if !meta.is_file() {
            continue;
        }
        if meta.len() > meta.blocks().saturating_mul(512).saturating_add(64 << 10) {
            return Err(io::Error::other(format!(
                "{} is a sparse file ({} bytes in {} on disk): not kept",
                rel.display(),
                meta.len(),
                meta.blocks() * 512
            )));
        }
        total = total.saturating_add(meta.len());
        if total > MAX_KEPT {
            return Err(io::Error::other(format!(
                "setup made more than {MAX_KEPT} bytes: not kept"
            )));
        }
    }
    Ok(())
}

/// Keeps `outputs` of the worktree at `root` in `dir` (which must not
/// exist): their copies under `dir/files`, the deleted paths in
/// `dir/deleted`. Returns how many bytes were copied.
#[allow(
    clippy::disallowed_methods,
    reason = "the worktree of a setup that ran with its own rights: a checkout of the run's base no task wrote (prepare::Plan), walked without following a link, into swarm's kept setups (0700)"
)]
pub(crate) fn keep(root: &Path, outputs: &Outputs, dir: &Path) -> io::Result<u64> {
    let files = dir.join(FILES);
    std::fs::create_dir_all(&files)?;
    let mut bytes = 0;
    for rel in &outputs.made {
        bytes += copy_entry(&root.join(rel), &files.join(rel))?;
    }
    let mut deleted = Vec::new();
    for rel in &outputs.deleted {
        deleted.extend_from_slice(rel.as_os_str().as_bytes());
        deleted.push(b'\n');
    }
    std::fs::write(dir.join(DELETED), deleted)?;
    Ok(bytes)
}

/// Copies the setup kept in `dir` into the worktree at `root`: each file,
/// link and directory not already there as it is kept (same kind, size
/// and modification time: a warm worktree keeps most of them), then the
/// deleted paths removed; the top-level directories `shown` name are left
/// out (each task is shown them as an overlay, see `layers`). Returns how
/// many entries were copied.
///
/// The worktree is a place a task wrote (a warm one holds what the last
/// run's task left): it is reached only through a [`TaskDir`], so nothing
/// is written, read or removed through a link there; what is in the way
/// of a kept entry is removed as what it is. Directories are made parents
/// first; the files are then copied by a few threads (a copy is mostly
/// waiting on the disk).
pub(crate) fn restore(dir: &Path, root: &Path, shown: &[String]) -> io::Result<usize> {
    let files = dir.join(FILES);
    let worktree = TaskDir::open(root).map_err(io::Error::other)?;
    let mut copied = 0;
    let mut pending: Vec<PathBuf> = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel_dir) = stack.pop() {
        for entry in kept_entries(&files.join(&rel_dir))? {
            let rel = rel_dir.join(entry);
            let Some(name) = rel.to_str() else {
                // Setup's own odd name: it stays out of the copy.
                continue;
            };
            if rel_dir.as_os_str().is_empty() && shown.iter().any(|s| s == name) {
                continue;
            }
            let from = files.join(&rel);
            let meta = std::fs::symlink_metadata(&from)?;
            let there = worktree.stat(name).map_err(io::Error::other)?;
            if meta.is_dir() {
                if there.is_some_and(|t| kind_of(t.st_mode) != SFlag::S_IFDIR) {
                    worktree.remove(name).map_err(io::Error::other)?;
                }
                if there.is_none_or(|t| kind_of(t.st_mode) != SFlag::S_IFDIR) {
                    worktree
                        .make_dir(name, mode_of(&meta))
                        .and_then(|d| d.set_mode(mode_of(&meta)))
                        .map_err(io::Error::other)?;
                    copied += 1;
                }
                stack.push(rel);
                continue;
            }
            if let Some(t) = there {
                let same = match meta.is_symlink() {
                    // A link's own time is the copy's: its target says.
                    true => {
                        kind_of(t.st_mode) == SFlag::S_IFLNK
                            && worktree.read_link(name).ok() == read_kept_link(&from)
                    }
                    false => {
                        kind_of(t.st_mode) == SFlag::S_IFREG
                            && t.st_size as u64 == meta.len()
                            && t.st_mtime == meta.mtime()
                            && t.st_mtime_nsec == meta.mtime_nsec()
                    }
                };
                if same {
                    continue;
                }
                worktree.remove(name).map_err(io::Error::other)?;
            }
            pending.push(rel);
        }
    }
    copied += pending.len();
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    let chunk = pending.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = pending
            .chunks(chunk)
            .map(|part| {
                let (files, worktree) = (&files, &worktree);
                scope.spawn(move || {
                    part.iter()
                        .try_for_each(|rel| copy_into(&files.join(rel), worktree, rel).map(drop))
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(io::Error::other("a copying thread panicked")))
        })
    })?;
    let deleted = read_kept(&dir.join(DELETED))?;
    for line in deleted.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(rel) = std::str::from_utf8(line) else {
            continue;
        };
        // A deleted file only: whatever a task made a directory of stays.
        if matches!(worktree.kind(rel), Ok(Some(k)) if k != EntryKind::Dir) {
            worktree.remove(rel).map_err(io::Error::other)?;
        }
    }
    Ok(copied)
}

/// The kind bits of a mode.
fn kind_of(mode: u32) -> SFlag {
    SFlag::from_bits_truncate(mode) & SFlag::S_IFMT
}

/// A kept entry's mode as a copy gets it: no set-id bit, nothing writable
/// by others (a kept setup is swarm's, and a copy is the task's alone).
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o755
}

/// The names in the kept directory `dir` (swarm's own).
#[allow(
    clippy::disallowed_methods,
    reason = "a kept setup: swarm's own directory (0700), no task writes there"
)]
fn kept_entries(dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect()
}

/// Where a kept link points.
#[allow(
    clippy::disallowed_methods,
    reason = "a kept setup: swarm's own directory (0700), no task writes there"
)]
fn read_kept_link(path: &Path) -> Option<PathBuf> {
    std::fs::read_link(path).ok()
}

/// A kept setup's own file.
#[allow(
    clippy::disallowed_methods,
    reason = "a kept setup: swarm's own directory (0700), no task writes there"
)]
fn read_kept(path: &Path) -> io::Result<Vec<u8>> {
    std::fs::read(path)
}

/// Copies the kept entry `from` (a file or a link) to `rel` in the
/// worktree, with its mode and modification time. Returns the bytes
/// copied.
#[allow(
    clippy::disallowed_methods,
    reason = "reads a kept setup: swarm's own directory (0700), no task writes there"
)]
fn copy_into(from: &Path, worktree: &TaskDir, rel: &Path) -> io::Result<u64> {
    let Some(name) = rel.to_str() else {
        return Ok(0);
    };
    let meta = std::fs::symlink_metadata(from)?;
    if meta.is_symlink() {
        worktree
            .symlink(name, &std::fs::read_link(from)?)
            .map_err(io::Error::other)?;
        return Ok(0);
    }
    if !meta.is_file() {
        return Ok(0);
    }
    let mut file = std::fs::File::open(from)?;
    worktree
        .copy_new(name, &mut file, mode_of(&meta), meta.modified()?)
        .map_err(io::Error::other)
}

/// Copies one entry (`from` read with `lstat`): a directory is made (its
/// content is copied entry by entry), a link made again, a file copied
/// with its mode and modification time. Returns the bytes copied.
#[allow(
    clippy::disallowed_methods,
    reason = "the worktree of a setup that ran with its own rights: a checkout of the run's base no task wrote (prepare::Plan), walked without following a link, into swarm's kept setups (0700)"
)]
fn copy_entry(from: &Path, to: &Path) -> io::Result<u64> {
    let meta = std::fs::symlink_metadata(from)?;
    // No set-id bit, nothing writable by others: a kept setup is
    // swarm's, and a copy is the task's alone.
    let mode = |m: &std::fs::Metadata| {
        std::os::unix::fs::PermissionsExt::from_mode(
            std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o755,
        )
    };
    if meta.is_dir() {
        std::fs::create_dir_all(to)?;
        std::fs::set_permissions(to, mode(&meta))?;
        return Ok(0);
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if meta.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)?;
        return Ok(0);
    }
    if !meta.is_file() {
        return Ok(0);
    }
    let bytes = std::fs::copy(from, to)?;
    std::fs::set_permissions(to, mode(&meta))?;
    let times = std::fs::FileTimes::new().set_modified(meta.modified()?);
    std::fs::File::options()
        .write(true)
        .open(to)
        .and_then(|f| f.set_times(times))
        .or_else(|e| match e.kind() {
            // A read-only file copies its mode: its time stays the copy's.
            io::ErrorKind::PermissionDenied => Ok(()),
            _ => Err(e),
        })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_with(files: &[(&str, &str)]) -> (tempfile::TempDir, git2::Repository) {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        for (path, content) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        let mut index = repo.index().unwrap();
        for (path, _) in files {
            index.add_path(Path::new(path)).unwrap();
        }
        index.write().unwrap();
        (dir, repo)
    }

    #[test]
    fn outputs_are_what_setup_made_changed_or_deleted() {
        let (dir, repo) = repo_with(&[("a.txt", "a"), ("src/b.txt", "b"), ("gone.txt", "g")]);
        let root = dir.path();
        std::fs::create_dir_all(root.join("node_modules/x")).unwrap();
        std::fs::write(root.join("node_modules/x/index.js"), "x").unwrap();
        std::fs::write(root.join("src/gen.rs"), "gen").unwrap();
        std::fs::write(root.join("a.txt"), "changed, longer").unwrap();
        std::fs::remove_file(root.join("gone.txt")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        let index = repo.index().unwrap();
        let out = outputs(root, &index).unwrap();
        let made: Vec<_> = out.made.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            made,
            [
                "a.txt",
                "link",
                "node_modules",
                "node_modules/x",
                "node_modules/x/index.js",
                "src/gen.rs"
            ]
        );
        assert_eq!(out.deleted, [PathBuf::from("gone.txt")]);
    }

    #[test]
    fn a_kept_setup_is_restored_without_following_links_and_twice_is_a_no_op() {
        let (dir, repo) = repo_with(&[("a.txt", "a"), ("gone.txt", "g")]);
        let root = dir.path();
        std::fs::create_dir_all(root.join(".venv/bin")).unwrap();
        std::fs::write(root.join(".venv/bin/tool"), "#!/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("/etc", root.join(".venv/etc")).unwrap();
        std::fs::remove_file(root.join("gone.txt")).unwrap();
        let out = outputs(root, &repo.index().unwrap()).unwrap();
        let kept = tempfile::tempdir().unwrap();
        let cache = kept.path().join("k");
        keep(root, &out, &cache).unwrap();

        let (fresh, _) = repo_with(&[("a.txt", "a"), ("gone.txt", "g")]);
        assert_eq!(restore(&cache, fresh.path(), &[]).unwrap(), 4);
        assert_eq!(
            std::fs::read_to_string(fresh.path().join(".venv/bin/tool")).unwrap(),
            "#!/bin/sh\n"
        );
        assert_eq!(
            std::fs::read_link(fresh.path().join(".venv/etc")).unwrap(),
            Path::new("/etc")
        );
        assert!(!fresh.path().join("gone.txt").exists());
        let modified = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
        assert_eq!(
            modified(&fresh.path().join(".venv/bin/tool")),
            modified(&root.join(".venv/bin/tool"))
        );
        // A warm worktree holding it already: nothing to copy.
        assert_eq!(restore(&cache, fresh.path(), &[]).unwrap(), 0);

        // A worktree where `.venv` is a link: nothing goes through it, the
        // link is replaced by the directory setup made.
        let (hostile, _) = repo_with(&[("a.txt", "a")]);
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), hostile.path().join(".venv")).unwrap();
        restore(&cache, hostile.path(), &[]).unwrap();
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        assert!(
            std::fs::symlink_metadata(hostile.path().join(".venv"))
                .unwrap()
                .is_dir()
        );
    }
}
