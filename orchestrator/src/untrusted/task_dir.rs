//! [`TaskDir`]: a directory a task could have written (its tmp and HOME,
//! its worktree, a warm worktree, a build cache, a verify's or a
//! scorer's tmp), and the only way swarm's code touches what is inside
//! one.
//!
//! The coordinator runs with more rights than any task (often as root),
//! so whatever it writes, reads or removes in such a place must not be
//! steered by what the task left there: a link planted where swarm will
//! write a file (`deps-output.json -> /etc/cron.d/x`) would have root
//! write through it, a link where swarm reads would have it read a host
//! file for the task. A `TaskDir` holds the directory open (a descriptor,
//! not a path) and reaches everything below it one component at a time
//! with `O_NOFOLLOW`: a link anywhere on the way is an error naming it,
//! never followed. Files are only ever made new (`O_EXCL`), never written
//! over; entries are removed as what they are (a link is unlinked, a
//! directory walked by descriptor), never through what they point to.
//!
//! Files swarm hands to a task go into a directory made fresh for the
//! phase that reads them ([`TaskDir::fresh`]): nothing of an earlier
//! phase, attempt or run is in it, and nothing can be until swarm hands it
//! over.
//!
//! The paths of a `TaskDir` ([`TaskDir::path`], [`TaskDir::join`]) are for
//! what takes a path by its nature (the sandbox's mounts, git, a message),
//! never for `std::fs` (clippy's `disallowed-methods` holds the library to
//! that; see `clippy.toml`).

use std::io::Write as _;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstatat, mkdirat};
use nix::unistd::UnlinkatFlags;

use super::{DIRECTORY, Limits, UntrustedError, components, opened};

/// What is at a name, its links not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Link,
    /// A FIFO, a socket or a device.
    Other,
}

/// How much of a tree [`TaskDir::copy_tree_to`] copies at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeLimits {
    /// Directories deep below the top.
    pub depth: u32,
    /// Entries, of every kind.
    pub entries: u64,
    /// Bytes: each file's size or the blocks it holds, the larger.
    pub bytes: u64,
}

impl TreeLimits {
    /// One entry more; `None` past the limit.
    fn take_entry(&mut self) -> Option<()> {
        self.entries = self.entries.checked_sub(1)?;
        Some(())
    }

    /// One directory deeper (given back on the way up); `None` past the
    /// limit.
    fn descend(&mut self) -> Option<()> {
        self.depth = self.depth.checked_sub(1)?;
        Some(())
    }

    /// The bytes of the entry `stat` describes: its size or the blocks it
    /// holds, the larger, so a sparse file is no way round the limit;
    /// `None` past it.
    fn take_bytes(&mut self, stat: &FileStat) -> Option<()> {
        let held = u64::try_from(stat.st_blocks).unwrap_or(0) * 512;
        let size = u64::try_from(stat.st_size).unwrap_or(0);
        self.bytes = self.bytes.checked_sub(held.max(size))?;
        Some(())
    }
}

/// A directory a task could have written, held open. See the module.
#[derive(Debug)]
pub struct TaskDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl TaskDir {
    /// Makes the directory at `path` anew, empty, with `mode`: whatever is
    /// there is removed first (a link as a link, a directory with
    /// everything in it, never through a link). Its parent must be swarm's
    /// own (no task can write there), which is what makes the new
    /// directory hold only what swarm puts in it until it is handed over.
    pub fn fresh(path: &Path, mode: u32) -> Result<Self, UntrustedError> {
        let (parent, name) = split(path)?;
        let parent_fd =
            open(parent, DIRECTORY, Mode::empty()).map_err(|e| opened(parent.to_path_buf(), e))?;
        remove_at(&parent_fd, name, path)?;
        mkdirat(&parent_fd, name, Mode::from_bits_truncate(mode))
            .map_err(|e| opened(path.to_path_buf(), e))?;
        Self::open_at(&parent_fd, name, path.to_path_buf())
    }

    /// Removes the directory a task could have written at `path` (whose
    /// parent is swarm's) with everything in it, never through a link
    /// (one at `path` itself is unlinked). Whether something was there.
    pub fn discard(path: &Path) -> Result<bool, UntrustedError> {
        let (parent, name) = split(path)?;
        let parent_fd = match open(parent, DIRECTORY, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(opened(parent.to_path_buf(), e)),
        };
        remove_at(&parent_fd, name, path)
    }

    /// Opens the directory at `path`, never through a link (at `path`
    /// itself: its parents are swarm's).
    pub fn open(path: &Path) -> Result<Self, UntrustedError> {
        let fd = open(path, DIRECTORY, Mode::empty()).map_err(|e| opened(path.to_path_buf(), e))?;
        Ok(Self {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Opens the directory at `path`, made with `mode` if it is missing.
    pub fn open_or_make(path: &Path, mode: u32) -> Result<Self, UntrustedError> {
        let (parent, name) = split(path)?;
        let parent_fd =
            open(parent, DIRECTORY, Mode::empty()).map_err(|e| opened(parent.to_path_buf(), e))?;
        match mkdirat(&parent_fd, name, Mode::from_bits_truncate(mode)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(opened(path.to_path_buf(), e)),
        }
        Self::open_at(&parent_fd, name, path.to_path_buf())
    }

    fn open_at(parent: &OwnedFd, name: &str, path: PathBuf) -> Result<Self, UntrustedError> {
        let fd =
            openat(parent, name, DIRECTORY, Mode::empty()).map_err(|e| opened(path.clone(), e))?;
        Ok(Self { fd, path })
    }

    /// The directory's path: for the sandbox's mounts, git and messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `rel` below it: for what takes a path by its nature
    /// (a variable a task reads, a message), not to open.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// The subdirectory `rel` (plain components), made (with `mode`) where
    /// missing along the way, never through a link.
    pub fn make_dir(&self, rel: &str, mode: u32) -> Result<TaskDir, UntrustedError> {
        let (fd, path) = self.walk(rel, Some(mode))?;
        Ok(TaskDir { fd, path })
    }

    /// Writes a new file `rel` (its parents made, mode 0700, where
    /// missing) holding `bytes`, with `mode`. Never over what is there,
    /// never through a link: a name that is taken is an error (make the
    /// directory fresh, or [`TaskDir::remove`] the name first). Returns
    /// its path.
    pub fn write_new(&self, rel: &str, bytes: &[u8], mode: u32) -> Result<PathBuf, UntrustedError> {
        let (parent, last) = self.parent_of(rel, Some(0o700))?;
        let path = self.path.join(rel);
        let fd = openat(
            &parent,
            last,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        )
        .map_err(|e| match e {
            Errno::EEXIST => UntrustedError::Taken { path: path.clone() },
            e => opened(path.clone(), e),
        })?;
        let mut file = std::fs::File::from(fd);
        file.write_all(bytes).map_err(|e| UntrustedError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(path)
    }

    /// [`TaskDir::write_new`] after removing whatever is at `rel` (as
    /// [`TaskDir::remove`] does): for a place that lasts (a warm worktree)
    /// where swarm puts a file of its own again.
    pub fn replace(&self, rel: &str, bytes: &[u8], mode: u32) -> Result<PathBuf, UntrustedError> {
        self.remove(rel)?;
        self.write_new(rel, bytes, mode)
    }

    /// Reads the regular file `rel`, within `limits` (as
    /// [`super::read`]: no link on the way, no FIFO or device, the size
    /// checked before and held while reading).
    pub fn read(&self, rel: &str, limits: Limits) -> Result<Vec<u8>, UntrustedError> {
        let (parent, last) = self.parent_of(rel, None)?;
        let path = self.path.join(rel);
        let file = super::open_file_at(&parent, last, &path)?;
        super::read_open(file, path, limits)
    }

    /// What is at `rel`, its links not followed; `None` if nothing is
    /// (or a parent on the way is not a real directory).
    pub fn kind(&self, rel: &str) -> Result<Option<EntryKind>, UntrustedError> {
        let (parent, last) = match self.parent_of(rel, None) {
            Ok(found) => found,
            Err(UntrustedError::Missing { .. } | UntrustedError::Link { .. }) => return Ok(None),
            Err(UntrustedError::NotRegular { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        kind_at(&parent, last, &self.path.join(rel))
    }

    /// Removes whatever is at `rel`: a file or a link unlinked (a link's
    /// target is never touched), a directory with everything in it, walked
    /// by descriptor. Whether something was there.
    pub fn remove(&self, rel: &str) -> Result<bool, UntrustedError> {
        let (parent, last) = match self.parent_of(rel, None) {
            Ok(found) => found,
            Err(UntrustedError::Missing { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        remove_at(&parent, last, &self.path.join(rel))
    }

    /// What is at `rel`, its links not followed (`lstat`); `None` if
    /// nothing is.
    pub fn stat(&self, rel: &str) -> Result<Option<FileStat>, UntrustedError> {
        let (parent, last) = match self.parent_of(rel, None) {
            Ok(found) => found,
            Err(UntrustedError::Missing { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        match fstatat(&parent, last, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(stat)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(opened(self.path.join(rel), e)),
        }
    }

    /// Where the link `rel` points, as it says (never followed).
    pub fn read_link(&self, rel: &str) -> Result<PathBuf, UntrustedError> {
        let (parent, last) = self.parent_of(rel, None)?;
        nix::fcntl::readlinkat(&parent, last)
            .map(PathBuf::from)
            .map_err(|e| opened(self.path.join(rel), e))
    }

    /// Makes a new link `rel` pointing at `target` (its parents made, mode
    /// 0700, where missing; never over what is there).
    pub fn symlink(&self, rel: &str, target: &Path) -> Result<(), UntrustedError> {
        let (parent, last) = self.parent_of(rel, Some(0o700))?;
        nix::unistd::symlinkat(target, &parent, last).map_err(|e| match e {
            Errno::EEXIST => UntrustedError::Taken {
                path: self.path.join(rel),
            },
            e => opened(self.path.join(rel), e),
        })
    }

    /// Copies `from` (a file swarm opened where no task writes) to a new
    /// file `rel` with `mode` and the modification time `modified`: the
    /// copy shares extents with `from` where the file system can
    /// (`copy_file_range`). Returns the bytes copied.
    pub fn copy_new(
        &self,
        rel: &str,
        from: &mut std::fs::File,
        mode: u32,
        modified: std::time::SystemTime,
    ) -> Result<u64, UntrustedError> {
        let (parent, last) = self.parent_of(rel, Some(0o700))?;
        let path = self.path.join(rel);
        let io = |e: std::io::Error| UntrustedError::Io {
            path: path.clone(),
            message: e.to_string(),
        };
        let fd = openat(
            &parent,
            last,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| match e {
            Errno::EEXIST => UntrustedError::Taken { path: path.clone() },
            e => opened(path.clone(), e),
        })?;
        let mut to = std::fs::File::from(fd);
        let bytes = std::io::copy(from, &mut to).map_err(io)?;
        to.set_times(std::fs::FileTimes::new().set_modified(modified))
            .map_err(io)?;
        to.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(io)?;
        Ok(bytes)
    }

    /// Copies everything in this directory into `to` (a directory swarm
    /// made fresh): directories made again, links made again as they say
    /// (never followed, here or there), regular files copied with their
    /// mode (no set-id bit, nothing writable by others) and modification
    /// time, sharing extents where the file system can (reflinks on Btrfs
    /// and XFS, through `copy_file_range`); FIFOs, sockets and devices
    /// left out. With `owner`, every entry made is handed to it (a cache
    /// the sandbox's identity writes). Modification times matter: build
    /// tools take an artifact older than its inputs for stale. Held to
    /// `limits` (depth, entries, bytes counted as the blocks a file holds,
    /// so a sparse file is no way round them): past one it stops with an
    /// error, what it copied left for the caller to remove. Returns the
    /// bytes copied.
    pub fn copy_tree_to(
        &self,
        to: &TaskDir,
        owner: Option<(u32, u32)>,
        limits: TreeLimits,
    ) -> Result<u64, UntrustedError> {
        let mut left = limits;
        self.copy_tree_within(to, owner, &mut left)?;
        Ok(limits.bytes - left.bytes)
    }

    fn copy_tree_within(
        &self,
        to: &TaskDir,
        owner: Option<(u32, u32)>,
        left: &mut TreeLimits,
    ) -> Result<(), UntrustedError> {
        let over = |what: &str| UntrustedError::Io {
            path: self.path.clone(),
            message: format!("a tree to copy beyond its limit of {what}"),
        };
        for name in self.names()? {
            left.take_entry().ok_or_else(|| over("entries"))?;
            let Some(stat) = self.stat(&name)? else {
                continue;
            };
            let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
            let mode = stat.st_mode & 0o755;
            match kind {
                SFlag::S_IFDIR => {
                    left.descend().ok_or_else(|| over("depth"))?;
                    let (fd, path) = self.walk(&name, None)?;
                    let from = TaskDir { fd, path };
                    let into = to.make_dir(&name, 0o700)?;
                    from.copy_tree_within(&into, owner, left)?;
                    left.depth += 1;
                    into.set_mode(mode)?;
                }
                SFlag::S_IFLNK => to.symlink(&name, &self.read_link(&name)?)?,
                SFlag::S_IFREG => {
                    let mut file = super::open_file_at(&self.fd, &name, &self.path.join(&name))?;
                    let modified = std::time::UNIX_EPOCH
                        + std::time::Duration::new(
                            u64::try_from(stat.st_mtime).unwrap_or(0),
                            u32::try_from(stat.st_mtime_nsec).unwrap_or(0),
                        );
                    left.take_bytes(&stat).ok_or_else(|| over("bytes"))?;
                    to.copy_new(&name, &mut file, mode, modified)?;
                }
                _ => continue,
            }
            if let Some((uid, gid)) = owner {
                nix::unistd::fchownat(
                    &to.fd,
                    name.as_str(),
                    Some(nix::unistd::Uid::from_raw(uid)),
                    Some(nix::unistd::Gid::from_raw(gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| opened(to.path.join(&name), e))?;
            }
        }
        Ok(())
    }

    /// Whether everything in this directory is within `limits` (depth,
    /// entries, and bytes counted as in [`Self::copy_tree_to`]), links
    /// never followed; the walk stops at the first limit passed.
    pub fn within(&self, limits: TreeLimits) -> Result<bool, UntrustedError> {
        let mut left = limits;
        self.within_left(&mut left)
    }

    fn within_left(&self, left: &mut TreeLimits) -> Result<bool, UntrustedError> {
        for name in self.names()? {
            if left.take_entry().is_none() {
                return Ok(false);
            }
            // Not found by its name (a name that is not UTF-8): not
            // measured, so not within.
            let Some(stat) = self.stat(&name)? else {
                return Ok(false);
            };
            if left.take_bytes(&stat).is_none() {
                return Ok(false);
            }
            if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
                if left.descend().is_none() {
                    return Ok(false);
                }
                let (fd, path) = self.walk(&name, None)?;
                if !(TaskDir { fd, path }).within_left(left)? {
                    return Ok(false);
                }
                left.depth += 1;
            }
        }
        Ok(true)
    }

    /// Hands the directory itself to `(uid, gid)` (a directory the
    /// sandbox's identity writes, as root), by its descriptor.
    pub fn hand_to(&self, (uid, gid): (u32, u32)) -> Result<(), UntrustedError> {
        nix::unistd::fchown(
            &self.fd,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .map_err(|e| opened(self.path.clone(), e))
    }

    /// Sets the mode of the directory itself.
    pub fn set_mode(&self, mode: u32) -> Result<(), UntrustedError> {
        nix::sys::stat::fchmod(&self.fd, Mode::from_bits_truncate(mode))
            .map_err(|e| opened(self.path.clone(), e))
    }

    /// The names in the directory (links and all, not followed), sorted.
    pub fn names(&self) -> Result<Vec<String>, UntrustedError> {
        let dup = self.fd.try_clone().map_err(|e| UntrustedError::Io {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        let dir = cap_std::fs::Dir::from(dup);
        let io = |e: std::io::Error| UntrustedError::Io {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let mut names = Vec::new();
        for entry in dir.entries().map_err(io)? {
            names.push(
                entry
                    .map_err(io)?
                    .file_name()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        names.sort();
        Ok(names)
    }

    /// The directory's descriptor, for `*at` calls of the sandbox crate.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The directory holding the last component of `rel`, and that
    /// component: every directory on the way opened without following a
    /// link, made with `make` where missing when it is given.
    fn parent_of<'a>(
        &self,
        rel: &'a str,
        make: Option<u32>,
    ) -> Result<(OwnedFd, &'a str), UntrustedError> {
        let components = components(&self.path, rel)?;
        let Some((last, parents)) = components.split_last() else {
            return Err(UntrustedError::BadName {
                dir: self.path.clone(),
                name: rel.to_string(),
            });
        };
        let (fd, _) = self.walk_parts(parents, make)?;
        Ok((fd, last))
    }

    fn walk(&self, rel: &str, make: Option<u32>) -> Result<(OwnedFd, PathBuf), UntrustedError> {
        let components = components(&self.path, rel)?;
        self.walk_parts(&components, make)
    }

    fn walk_parts(
        &self,
        parts: &[&str],
        make: Option<u32>,
    ) -> Result<(OwnedFd, PathBuf), UntrustedError> {
        let mut current = self.fd.try_clone().map_err(|e| UntrustedError::Io {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        let mut walked = self.path.clone();
        for part in parts {
            walked.push(part);
            if let Some(mode) = make {
                match mkdirat(&current, *part, Mode::from_bits_truncate(mode)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(opened(walked, e)),
                }
            }
            current = openat(&current, *part, DIRECTORY, Mode::empty())
                .map_err(|e| opened(walked.clone(), e))?;
        }
        Ok((current, walked))
    }
}

/// `path`'s parent and its last component (one plain name).
fn split(path: &Path) -> Result<(&Path, &str), UntrustedError> {
    let bad = || UntrustedError::BadName {
        dir: path.to_path_buf(),
        name: path.display().to_string(),
    };
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(bad)?;
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if name == "." || name == ".." {
        return Err(bad());
    }
    Ok((parent, name))
}

/// What is at `name` in `parent`, not following a link.
fn kind_at(
    parent: &impl AsFd,
    name: &str,
    path: &Path,
) -> Result<Option<EntryKind>, UntrustedError> {
    match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => {
            let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
            Ok(Some(match kind {
                SFlag::S_IFREG => EntryKind::File,
                SFlag::S_IFDIR => EntryKind::Dir,
                SFlag::S_IFLNK => EntryKind::Link,
                _ => EntryKind::Other,
            }))
        }
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(opened(path.to_path_buf(), e)),
    }
}

/// Removes `name` in `parent` as what it is: a directory walked by
/// descriptor (cap-std's `remove_dir_all`, which unlinks the links inside
/// rather than following them), anything else unlinked. Whether
/// something was there.
fn remove_at(parent: &OwnedFd, name: &str, path: &Path) -> Result<bool, UntrustedError> {
    let io = |e: std::io::Error| UntrustedError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    match kind_at(parent, name, path)? {
        None => Ok(false),
        Some(EntryKind::Dir) => {
            let dup = parent.try_clone().map_err(io)?;
            cap_std::fs::Dir::from(dup)
                .remove_dir_all(name)
                .map_err(io)?;
            Ok(true)
        }
        Some(_) => {
            nix::unistd::unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)
                .map_err(|e| opened(path.to_path_buf(), e))?;
            Ok(true)
        }
    }
}

impl AsFd for TaskDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl std::os::fd::AsRawFd for TaskDir {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canary(dir: &Path) -> PathBuf {
        let file = dir.join("canary");
        std::fs::write(&file, "untouched").unwrap();
        file
    }

    #[test]
    fn a_fresh_directory_replaces_whatever_was_there_without_following_links() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let canary = canary(outside.path());
        let tmp = d.path().join("tmp");
        // A link where the directory goes: the link goes, not its target.
        std::os::unix::fs::symlink(outside.path(), &tmp).unwrap();
        let made = TaskDir::fresh(&tmp, 0o700).unwrap();
        assert!(std::fs::symlink_metadata(&tmp).unwrap().is_dir());
        assert_eq!(made.names().unwrap(), Vec::<String>::new());
        assert_eq!(std::fs::read_to_string(&canary).unwrap(), "untouched");
        // A directory holding links out: emptied, the targets kept.
        std::os::unix::fs::symlink(&canary, tmp.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.join("dirlink")).unwrap();
        std::fs::create_dir(tmp.join("sub")).unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.join("sub/deeper")).unwrap();
        TaskDir::fresh(&tmp, 0o700).unwrap();
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
        assert_eq!(std::fs::read_to_string(&canary).unwrap(), "untouched");
        assert!(outside.path().join("canary").exists());
    }

    #[test]
    fn a_new_file_is_never_written_through_a_link_nor_over_a_file() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let canary = canary(outside.path());
        let dir = TaskDir::open(d.path()).unwrap();
        std::os::unix::fs::symlink(&canary, d.path().join("deps-output.json")).unwrap();
        let e = dir.write_new("deps-output.json", b"{}", 0o644).unwrap_err();
        assert!(matches!(e, UntrustedError::Taken { .. }), "{e}");
        // A link on the way is refused too.
        std::os::unix::fs::symlink(outside.path(), d.path().join("home")).unwrap();
        let e = dir.write_new("home/.gitconfig", b"x", 0o644).unwrap_err();
        assert!(matches!(e, UntrustedError::Link { .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&canary).unwrap(), "untouched");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
        // `replace` removes the link, then writes a file of its own.
        dir.replace("deps-output.json", b"{}", 0o644).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("deps-output.json")).unwrap(),
            "{}"
        );
        assert_eq!(std::fs::read_to_string(&canary).unwrap(), "untouched");
        // Parents are made where missing.
        let path = dir.write_new("a/b/c.txt", b"c", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), "c");
    }

    #[test]
    fn removing_a_link_or_a_tree_of_links_never_touches_a_target() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let canary = canary(outside.path());
        let dir = TaskDir::open(d.path()).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("out")).unwrap();
        assert!(dir.remove("out").unwrap());
        assert!(!dir.remove("out").unwrap());
        std::fs::create_dir_all(d.path().join("t/u")).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("t/u/out")).unwrap();
        std::os::unix::fs::symlink(&canary, d.path().join("t/c")).unwrap();
        assert_eq!(dir.kind("t").unwrap(), Some(EntryKind::Dir));
        assert_eq!(dir.kind("t/c").unwrap(), Some(EntryKind::Link));
        assert!(dir.remove("t").unwrap());
        assert_eq!(dir.kind("t").unwrap(), None);
        assert_eq!(std::fs::read_to_string(&canary).unwrap(), "untouched");
        // Removing below a link removes nothing through it.
        std::os::unix::fs::symlink(outside.path(), d.path().join("via")).unwrap();
        assert!(dir.remove("via/canary").is_err());
        assert!(canary.exists());
    }

    #[test]
    fn a_tree_is_measured_against_its_limits_and_no_link_followed() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("big"), vec![1u8; 1 << 20]).unwrap();
        let dir = TaskDir::fresh(&d.path().join("t"), 0o700).unwrap();
        dir.make_dir("sub", 0o700).unwrap();
        std::fs::write(d.path().join("t/sub/f"), vec![1u8; 10_000]).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("t/link")).unwrap();
        let limits = |depth, entries, bytes| TreeLimits {
            depth,
            entries,
            bytes,
        };
        // sub, sub/f and the link: 3 entries, one level down, the file's
        // 10,000 bytes (what the link points at is not counted).
        assert!(dir.within(limits(1, 3, 100_000)).unwrap());
        assert!(!dir.within(limits(1, 2, 100_000)).unwrap());
        assert!(!dir.within(limits(0, 3, 100_000)).unwrap());
        assert!(!dir.within(limits(1, 3, 9_000)).unwrap());
    }

    /// A copy of a tree (the verify's base cache into a verify's own):
    /// files with their times and modes (no set-id bit), links made again
    /// as they say and never followed on either side, FIFOs left out, and
    /// a change to the copy is not the original's.
    #[test]
    fn a_tree_is_copied_with_its_times_and_no_link_followed() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let canary = canary(outside.path());
        let from = d.path().join("from");
        std::fs::create_dir_all(from.join("deps/inner")).unwrap();
        std::fs::write(from.join("deps/inner/lib.rlib"), "built").unwrap();
        std::fs::set_permissions(
            from.join("deps/inner/lib.rlib"),
            std::fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        let old = std::time::UNIX_EPOCH + std::time::Duration::new(1_000_000, 7);
        std::fs::File::options()
            .write(true)
            .open(from.join("deps/inner/lib.rlib"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        std::os::unix::fs::symlink(&canary, from.join("deps/out")).unwrap();
        std::os::unix::fs::symlink(outside.path(), from.join("dir-out")).unwrap();
        nix::unistd::mkfifo(&from.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        let to = TaskDir::fresh(&d.path().join("to"), 0o700).unwrap();
        let roomy = TreeLimits {
            depth: 8,
            entries: 100,
            bytes: 1 << 20,
        };
        let bytes = TaskDir::open(&from)
            .unwrap()
            .copy_tree_to(&to, None, roomy)
            .unwrap();
        assert!(bytes >= 5, "{bytes}");
        let copy = d.path().join("to/deps/inner/lib.rlib");
        let meta = std::fs::metadata(&copy).unwrap();
        assert_eq!(meta.modified().unwrap(), old);
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
        assert_eq!(
            std::fs::read_link(d.path().join("to/deps/out")).unwrap(),
            canary
        );
        assert!(
            std::fs::symlink_metadata(d.path().join("to/dir-out"))
                .unwrap()
                .is_symlink()
        );
        assert!(!d.path().join("to/fifo").exists());
        assert_eq!(std::fs::read_to_string(&canary).unwrap(), "untouched");
        // The copy is its own: written over, the original stays.
        std::fs::remove_file(&copy).unwrap();
        std::fs::write(&copy, "changed").unwrap();
        assert_eq!(
            std::fs::read_to_string(from.join("deps/inner/lib.rlib")).unwrap(),
            "built"
        );
        // Into a place that is taken: refused, nothing written through it.
        let taken = TaskDir::fresh(&d.path().join("taken"), 0o700).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("taken/deps")).unwrap();
        assert!(
            TaskDir::open(&from)
                .unwrap()
                .copy_tree_to(&taken, None, roomy)
                .is_err()
        );
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
        // Past a limit: an error, whether depth, entries or bytes (a sparse
        // file counts its size).
        for limits in [
            TreeLimits { depth: 1, ..roomy },
            TreeLimits {
                entries: 3,
                ..roomy
            },
        ] {
            let to = TaskDir::fresh(&d.path().join("limited"), 0o700).unwrap();
            let copied = TaskDir::open(&from)
                .unwrap()
                .copy_tree_to(&to, None, limits);
            assert!(copied.is_err(), "{limits:?}");
        }
        let sparse = d.path().join("sparse");
        std::fs::create_dir(&sparse).unwrap();
        std::fs::File::create(sparse.join("hole"))
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        let to = TaskDir::fresh(&d.path().join("limited"), 0o700).unwrap();
        let copied = TaskDir::open(&sparse)
            .unwrap()
            .copy_tree_to(&to, None, roomy);
        assert!(copied.is_err());
    }

    #[test]
    fn reading_refuses_links_and_fifos_and_caps_the_size() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let canary = canary(outside.path());
        let dir = TaskDir::open(d.path()).unwrap();
        std::os::unix::fs::symlink(&canary, d.path().join("report.xml")).unwrap();
        let limits = Limits::new("a test report");
        assert!(matches!(
            dir.read("report.xml", limits).unwrap_err(),
            UntrustedError::Link { .. }
        ));
        nix::unistd::mkfifo(&d.path().join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(
            dir.read("fifo", limits).unwrap_err(),
            UntrustedError::NotRegular { .. }
        ));
        std::fs::write(d.path().join("big"), vec![b'x'; 32]).unwrap();
        let small = Limits {
            max_size: 16,
            what: "a test file",
        };
        assert!(matches!(
            dir.read("big", small).unwrap_err(),
            UntrustedError::TooLarge { .. }
        ));
        std::fs::write(d.path().join("ok"), "ok").unwrap();
        assert_eq!(dir.read("ok", limits).unwrap(), b"ok");
        // The directory itself swapped for a link after it was opened: the
        // handle still reads the directory it opened.
        let moved = d.path().with_extension("moved");
        std::fs::rename(d.path(), &moved).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path()).unwrap();
        assert_eq!(dir.read("ok", limits).unwrap(), b"ok");
        std::fs::remove_file(d.path()).unwrap();
        std::fs::rename(&moved, d.path()).unwrap();
    }

    #[test]
    fn opening_the_directory_itself_refuses_a_link() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("tmp")).unwrap();
        assert!(matches!(
            TaskDir::open(&d.path().join("tmp")).unwrap_err(),
            UntrustedError::Link { .. }
        ));
        assert!(TaskDir::open_or_make(&d.path().join("tmp"), 0o700).is_err());
        let made = TaskDir::open_or_make(&d.path().join("new"), 0o700).unwrap();
        assert!(made.path().is_dir());
    }
}
