//! Handing a task's writable directories to the unprivileged identity its
//! workers run as (see [`crate::policy::worker_identity`]) and taking them
//! back once every process of the task is gone.
//!
//! Both walks run while nothing of the task is alive (before it starts,
//! after the launcher reaped it), and neither ever follows a symlink: links
//! are re-owned themselves (`lchown`), and only real directories are
//! entered. Taking a tree back as root also clears any set-user-ID or
//! set-group-ID bit on it (the kernel does so on `chown` of an executable),
//! a second wall behind the seccomp rule that forbids setting them.

use std::path::Path;

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
    use std::os::unix::fs::PermissionsExt;
    const BITS: u32 = libc::S_ISUID | libc::S_ISGID;
    let mut cleared = 0;
    let mut clear = |path: &Path| -> Result<bool, OwnershipError> {
        let meta = path.symlink_metadata().map_err(failed(path))?;
        let mode = meta.permissions().mode();
        if !meta.file_type().is_symlink() && mode & BITS != 0 {
            // Not a link (just looked at, and nothing of the task runs to
            // change it): `chmod` reaches the entry itself.
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !BITS & 0o7777))
                .map_err(failed(path))?;
            cleared += 1;
        }
        Ok(meta.is_dir())
    };
    match clear(root) {
        Ok(true) => {}
        Ok(false) => return Ok(cleared),
        Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    }
    walk_below(root, |path, kind| {
        if !kind.is_symlink() {
            clear(path)?;
        }
        Ok(true)
    })?;
    Ok(cleared)
}

/// Re-owns `root` and at most `most` entries below it; whether that was
/// all of them.
fn chown_tree(root: &Path, uid: u32, gid: u32, most: usize) -> Result<bool, OwnershipError> {
    let meta = match root.symlink_metadata() {
        Ok(meta) => meta,
        // Gone already (a missing tmp dir): nothing to re-own.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(failed(root)(e)),
    };
    let chown =
        |path: &Path| std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(failed(path));
    // Handed over (to another owner than this process's): the top first;
    // taken back: the top last (see `top_is_ours`).
    let giving = uid != nix::unistd::geteuid().as_raw();
    if giving {
        chown(root)?;
    }
    // The entry's type comes with the listing: besides reading directories,
    // one system call per entry, the `lchown` (about 4 µs on ext4, nearly
    // all of it the kernel's; walking by descriptor saved under 10%).
    let mut left = most;
    let all = !meta.is_dir()
        || walk_below(root, |path, _| {
            let Some(fewer) = left.checked_sub(1) else {
                return Ok(false);
            };
            left = fewer;
            chown(path)?;
            Ok(true)
        })?;
    if !all {
        return Ok(false);
    }
    if !giving {
        chown(root)?;
    }
    Ok(true)
}

/// Calls `visit` on each entry below the directory `root`, with its path
/// and its type as the listing gives it, never following a link (only real
/// directories are entered); stops, and says so (false), once `visit`
/// answers false.
fn walk_below(
    root: &Path,
    mut visit: impl FnMut(&Path, std::fs::FileType) -> Result<bool, OwnershipError>,
) -> Result<bool, OwnershipError> {
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(failed(&dir))? {
            let entry = entry.map_err(failed(&dir))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(failed(&path))?;
            if !visit(&path, kind)? {
                return Ok(false);
            }
            if kind.is_dir() {
                dirs.push(path);
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
