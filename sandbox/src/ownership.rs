//! Handing a task's writable directories to the unprivileged identity its
//! workers run as (see [`crate::policy::worker_identity`]) and taking them
//! back once every process of the task is gone.
//!
//! Both walks run while nothing of the task is alive (before it starts,
//! after the launcher reaped it), and neither ever follows a symlink, nor
//! depends on that: they go by descriptor (see `walk_below`), links are
//! re-owned themselves, and only real directories are entered. Taking a tree back as root also clears any set-user-ID or
//! set-group-ID bit on it (the kernel does so on `chown` of an executable),
//! a second wall behind the seccomp rule that forbids setting them.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid, fchownat};

/// Why a tree could not be re-owned.
#[derive(Debug, thiserror::Error)]
#[error("change the owner of {path}: {source}")]
pub struct OwnershipError {
    pub path: std::path::PathBuf,
    pub source: std::io::Error,
}

/// Makes `uid:gid` the owner of `root` and everything beneath it.
pub fn hand_over(root: &Path, (uid, gid): (u32, u32)) -> Result<(), OwnershipError> {
    chown_tree(root, uid, gid, usize::MAX).map(|_| ())
}

/// Makes this process's effective user and group the owner of `root` and
/// everything beneath it again.
pub fn take_back(root: &Path) -> Result<(), OwnershipError> {
    take_back_within(root, usize::MAX).map(|_| ())
}

/// [`take_back`] of a tree of at most `most` entries below `root`;
/// whether it was one. When it holds more, only part of it is taken back
/// (at most `most` entries): the caller takes it back whole, elsewhere.
/// So that a task's tmp, which most tasks leave holding a file or two,
/// is taken back where it is, not on a thread of its own.
pub fn take_back_within(root: &Path, most: usize) -> Result<bool, OwnershipError> {
    chown_tree(
        root,
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
        most,
    )
}

/// Whether `root` itself is this process's (its effective user's): a tree
/// is handed over from its top first and taken back with its top last, so
/// a walk cut short either way (a coordinator killed, an error) leaves its
/// top another's.
pub fn top_is_ours(root: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    root.symlink_metadata()
        .is_ok_and(|meta| meta.uid() == nix::unistd::geteuid().as_raw())
}

/// Clears the set-user-ID and set-group-ID bits of whatever holds one in
/// the tree at `root` (links not followed, only real directories entered);
/// how many it cleared. For a tree shown to a worker through an idmapped
/// copy ([`crate::idmap`]), where what the worker made is root's on disk
/// and no take-back clears the bits: the second wall behind the seccomp
/// rule that forbids setting them. A walk of `lstat`s: nothing changes,
/// not even a ctime, where no bit is set.
pub fn clear_privilege_bits(root: &Path) -> Result<usize, OwnershipError> {
    use nix::sys::stat::{FchmodatFlags, Mode, fchmodat, fstatat};
    const BITS: u32 = libc::S_ISUID | libc::S_ISGID;
    // The entry `name` of the directory `dir` itself (never what a link
    // there names), looked at and changed by that name alone: whether it
    // held a bit, and whether it is a directory.
    let clear = |dir: BorrowedFd<'_>, name: &CStr, path: &dyn Fn() -> PathBuf| {
        let err = |e: Errno| failed(&path())(e.into());
        let stat = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(err)?;
        let is = |kind: libc::mode_t| stat.st_mode & libc::S_IFMT == kind;
        let held = !is(libc::S_IFLNK) && stat.st_mode & BITS != 0;
        if held {
            let mode = Mode::from_bits_truncate(stat.st_mode & !BITS & 0o7777);
            fchmodat(dir, name, mode, FchmodatFlags::NoFollowSymlink).map_err(err)?;
        }
        Ok::<_, OwnershipError>((held, is(libc::S_IFDIR)))
    };
    let Some((parent, name)) = top(root)? else {
        return Ok(0);
    };
    let (held, is_dir) = clear(parent.as_fd(), &name, &|| root.to_path_buf())?;
    let mut cleared = usize::from(held);
    if is_dir {
        walk_below(root, |dir, name, _, path| {
            cleared += usize::from(clear(dir, name, path)?.0);
            Ok(true)
        })?;
    }
    Ok(cleared)
}

/// Re-owns `root` and at most `most` entries below it; whether that was
/// all of them.
fn chown_tree(root: &Path, uid: u32, gid: u32, most: usize) -> Result<bool, OwnershipError> {
    let Some((parent, name)) = top(root)? else {
        // Gone already (a missing tmp dir): nothing to re-own.
        return Ok(true);
    };
    let (owner, group) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
    let chown = |dir: BorrowedFd<'_>, name: &CStr, path: &dyn Fn() -> PathBuf| {
        fchownat(dir, name, owner, group, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| failed(&path())(e.into()))
    };
    let is_dir = nix::sys::stat::fstatat(&parent, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| failed(root)(e.into()))?
        .st_mode
        & libc::S_IFMT
        == libc::S_IFDIR;
    // Handed over (to another owner than this process's): the top first;
    // taken back: the top last (see `top_is_ours`).
    let giving = uid != nix::unistd::geteuid().as_raw();
    let whole = || root.to_path_buf();
    if giving {
        chown(parent.as_fd(), &name, &whole)?;
    }
    // The entry's type comes with the listing: besides reading directories,
    // one system call per entry, the `fchownat` (about 4 µs on ext4, nearly
    // all of it the kernel's).
    let mut left = most;
    let all = !is_dir
        || walk_below(root, |dir, name, _, path| {
            let Some(fewer) = left.checked_sub(1) else {
                return Ok(false);
            };
            left = fewer;
            chown(dir, name, path)?;
            Ok(true)
        })?;
    if !all {
        return Ok(false);
    }
    if !giving {
        chown(parent.as_fd(), &name, &whole)?;
    }
    Ok(true)
}

/// The directory `root` is in, opened, and its name there; `None` when
/// nothing is at `root`. The path up to `root` is the caller's (a task's
/// tmp or worktree lies in a directory of swarm's, where no task can put
/// a link): what is below it is the task's, and is walked by descriptor.
fn top(root: &Path) -> Result<Option<(OwnedFd, CString)>, OwnershipError> {
    let (parent, name) = match (root.parent(), root.file_name()) {
        (Some(parent), Some(name)) => (parent, name),
        _ => {
            return Err(failed(root)(std::io::Error::from(
                std::io::ErrorKind::InvalidInput,
            )));
        }
    };
    let parent = match parent.as_os_str().is_empty() {
        true => Path::new("."),
        false => parent,
    };
    let dir = match nix::fcntl::open(
        parent,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(dir) => dir,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(failed(parent)(e.into())),
    };
    let name = CString::new(name.as_bytes()).map_err(|e| failed(root)(std::io::Error::other(e)))?;
    match nix::sys::stat::fstatat(&dir, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(_) => Ok(Some((dir, name))),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(failed(root)(e.into())),
    }
}

/// Calls `visit` on each entry below the directory `root`, with the
/// directory it is in (opened), its name there, its type as the listing
/// gives it and a way to its path (for an error); stops, and says so
/// (false), once `visit` answers false.
///
/// By descriptor, so that it holds even while something changes the tree
/// (a walk runs once nothing of the task does, but it is not to depend on
/// that): each directory is opened from `root` without following a link
/// anywhere on the way nor leaving `root`'s mount (`openat2`'s
/// `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV`), and each
/// entry is looked at and changed by its name in that directory, never
/// through a link. A directory that is no longer one, or is another
/// mount's (nothing swarm made), is not entered.
fn walk_below(
    root: &Path,
    mut visit: impl FnMut(
        BorrowedFd<'_>,
        &CStr,
        nix::dir::Type,
        &dyn Fn() -> PathBuf,
    ) -> Result<bool, OwnershipError>,
) -> Result<bool, OwnershipError> {
    use nix::fcntl::{OpenHow, ResolveFlag};
    let base = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| failed(root)(e.into()))?;
    let resolve = ResolveFlag::RESOLVE_BENEATH
        | ResolveFlag::RESOLVE_NO_SYMLINKS
        | ResolveFlag::RESOLVE_NO_XDEV;
    let mut dirs: Vec<PathBuf> = vec![PathBuf::from(".")];
    while let Some(rel) = dirs.pop() {
        let at = root.join(&rel);
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(resolve);
        let fd = match nix::fcntl::openat2(&base, &rel, how) {
            Ok(fd) => fd,
            // Changed into a link or a file since it was listed, or a mount
            // of another's: not the tree's to walk.
            Err(Errno::ELOOP | Errno::ENOTDIR | Errno::EXDEV | Errno::ENOENT)
                if rel != Path::new(".") =>
            {
                continue;
            }
            Err(e) => return Err(failed(&at)(e.into())),
        };
        let mut dir = nix::dir::Dir::from_fd(fd).map_err(|e| failed(&at)(e.into()))?;
        let mut entries: Vec<(CString, Option<nix::dir::Type>)> = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|e| failed(&at)(e.into()))?;
            let name = entry.file_name();
            if name.to_bytes() != b"." && name.to_bytes() != b".." {
                entries.push((name.to_owned(), entry.file_type()));
            }
        }
        for (name, kind) in entries {
            let path = || at.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
            // A file system whose listing does not say: looked at.
            let kind = match kind {
                Some(kind) => kind,
                None => {
                    let stat = nix::sys::stat::fstatat(
                        &dir,
                        name.as_c_str(),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| failed(&path())(e.into()))?;
                    match stat.st_mode & libc::S_IFMT {
                        libc::S_IFDIR => nix::dir::Type::Directory,
                        _ => nix::dir::Type::File,
                    }
                }
            };
            if !visit(dir.as_fd(), &name, kind, &path)? {
                return Ok(false);
            }
            if kind == nix::dir::Type::Directory {
                dirs.push(rel.join(std::ffi::OsStr::from_bytes(name.to_bytes())));
            }
        }
    }
    Ok(true)
}

/// An [`OwnershipError`] at `path`.
fn failed(path: &Path) -> impl FnOnce(std::io::Error) -> OwnershipError {
    let path = path.to_path_buf();
    move |source| OwnershipError { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn privilege_bits_are_cleared_in_a_tree_and_nothing_else_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        std::fs::create_dir_all(root.join("a")).unwrap();
        let (suid, plain) = (root.join("a/suid"), root.join("plain"));
        std::fs::write(&suid, "x").unwrap();
        std::fs::write(&plain, "x").unwrap();
        std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o6755)).unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "x").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o4755)).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let before = std::fs::metadata(&plain).unwrap().ctime_nsec();
        assert_eq!(clear_privilege_bits(&root).unwrap(), 1);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&suid), 0o755);
        // Not through the link, and the rest left as it was.
        assert_eq!(mode(&outside), 0o4755);
        assert_eq!(std::fs::metadata(&plain).unwrap().ctime_nsec(), before);
        // A path that is a file (a task's one writable file) is itself the
        // tree: no listing of it is tried.
        std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
        assert_eq!(clear_privilege_bits(&suid).unwrap(), 1);
        assert_eq!(mode(&suid), 0o755);
    }

    /// A walk raced by something still changing the tree (a process of a
    /// task that is being killed): a directory swapped, again and again,
    /// with a link to a directory outside the tree. Neither walk ever
    /// changes a file out there (by path, `read_dir` of the swapped name
    /// listed the outside and `chmod` followed a link swapped in after
    /// its `lstat`: a review's proof ran 35 victims in 20,000 walks).
    #[test]
    fn a_tree_changed_while_it_is_walked_never_leads_a_walk_outside_it() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, outside) = (dir.path().join("tree"), dir.path().join("outside"));
        std::fs::create_dir_all(tree.join("d")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        let (held, victim) = (outside.join("held"), dir.path().join("victim"));
        std::fs::write(&held, "x").unwrap();
        std::fs::write(&victim, "x").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&victim, tree.join("d/held")).unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("s")).unwrap();
        let root = nix::unistd::geteuid().is_root();
        if root {
            std::os::unix::fs::lchown(&held, Some(65534), Some(65534)).unwrap();
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let swapper = {
            let stop = stop.clone();
            let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap();
            let (d, s) = (c(&tree.join("d")), c(&tree.join("s")));
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // SAFETY: valid C strings; swaps two names in the test's
                    // own directory.
                    #[expect(unsafe_code, reason = "renameat2(2): see the SAFETY comment")]
                    unsafe {
                        libc::renameat2(
                            libc::AT_FDCWD,
                            d.as_ptr(),
                            libc::AT_FDCWD,
                            s.as_ptr(),
                            libc::RENAME_EXCHANGE,
                        );
                    }
                }
            })
        };
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let mut escaped = Vec::new();
        for walk in 0..5000 {
            std::fs::set_permissions(&held, std::fs::Permissions::from_mode(0o4755)).unwrap();
            let _ = clear_privilege_bits(&tree);
            if root {
                let _ = take_back(&tree);
            }
            let owner = std::fs::metadata(&held).unwrap().uid();
            if mode(&held) != 0o4755 || mode(&victim) != 0o600 || (root && owner != 65534) {
                escaped.push(walk);
                std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
                if root {
                    std::os::unix::fs::lchown(&held, Some(65534), Some(65534)).unwrap();
                }
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        swapper.join().unwrap();
        assert_eq!(
            escaped,
            Vec::<usize>::new(),
            "walks that changed a file outside the tree"
        );
    }

    #[test]
    fn trees_change_hands_without_following_links() {
        if !nix::unistd::geteuid().is_root() {
            // Only root may give files away; the e2e tests cover the rest.
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "x").unwrap();
        let root = dir.path().join("tree");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/file"), "x").unwrap();
        std::os::unix::fs::symlink(&victim, root.join("a/link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("dirlink")).unwrap();
        hand_over(&root, (65534, 65534)).unwrap();
        for p in ["", "a", "a/b", "a/b/file", "a/link", "dirlink"] {
            let meta = root.join(p).symlink_metadata().unwrap();
            assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "{p}");
        }
        assert_eq!(victim.metadata().unwrap().uid(), 0);
        std::fs::set_permissions(
            root.join("a/b/file"),
            std::fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        take_back(&root).unwrap();
        let file = root.join("a/b/file").metadata().unwrap();
        assert_eq!(file.uid(), 0);
        assert_eq!(file.mode() & 0o7000, 0, "the set-user-ID bit survived");
    }

    #[test]
    fn a_small_tree_is_taken_back_within_its_bound_and_a_larger_one_is_said_to_be_larger() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let owner = |p: &Path| {
            let meta = p.symlink_metadata().unwrap();
            (meta.uid(), meta.gid())
        };
        let small = dir.path().join("small");
        std::fs::create_dir_all(small.join("sub")).unwrap();
        std::fs::write(small.join("sub/file"), "x").unwrap();
        std::fs::write(small.join(".gitconfig"), "x").unwrap();
        hand_over(&small, (65534, 65534)).unwrap();
        // Three entries below it: within 3, not within 2.
        assert!(take_back_within(&small, 3).unwrap());
        for p in ["", "sub", "sub/file", ".gitconfig"] {
            assert_eq!(owner(&small.join(p)), (0, 0), "{p}");
        }
        hand_over(&small, (65534, 65534)).unwrap();
        assert!(!take_back_within(&small, 2).unwrap());
        let still_given = ["sub", "sub/file", ".gitconfig"]
            .iter()
            .filter(|p| owner(&small.join(p)) == (65534, 65534))
            .count();
        assert!(still_given >= 1, "more than 2 entries were taken back");
        take_back(&small).unwrap();
        for p in ["", "sub", "sub/file", ".gitconfig"] {
            assert_eq!(owner(&small.join(p)), (0, 0), "{p}");
        }
        // Nothing there: nothing to take back, and that is all of it.
        assert!(take_back_within(&dir.path().join("missing"), 0).unwrap());
    }
}
