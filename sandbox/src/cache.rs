//! What the launcher resolves once per run rather than once per worker: the
//! system paths every worker is granted ([`SYSTEM_READ_ONLY`],
//! [`SYSTEM_DEVICES`]). Resolving them (canonical path, link or not, an
//! `O_PATH` descriptor for Landlock) was most of the launcher's work per
//! spawn, and they do not change while a run lasts; paths of a task's own
//! (its worktree, its tmp, `read_paths`) are resolved afresh every time.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::policy::{SYSTEM_DEVICES, SYSTEM_READ_ONLY};

/// A granted path as the file system has it.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// Its canonical path.
    pub real: PathBuf,
    /// Whether the path itself is a symbolic link.
    pub is_link: bool,
    pub is_dir: bool,
}

/// Resolves `path`; `None` if it does not exist.
///
/// The canonical path is what the kernel says of an `O_PATH` descriptor
/// (`/proc/self/fd/N`): `realpath` asks once per component (a task's
/// worktree is a dozen deep), which made path resolution a tenth of the
/// launcher's work per sandboxed spawn.
pub(crate) fn resolve(path: &Path) -> Option<Resolved> {
    let lstat = path.symlink_metadata().ok()?;
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let is_dir = file.metadata().ok()?.is_dir();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let real = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .ok()
        // Anything but a plain absolute path (no /proc, a path outside
        // this root, a deleted file): ask the slow way.
        .filter(|real| {
            real.is_absolute() && !real.as_os_str().as_encoded_bytes().ends_with(b" (deleted)")
        })
        .or_else(|| path.canonicalize().ok())?;
    Some(Resolved {
        real,
        is_link: lstat.file_type().is_symlink(),
        is_dir,
    })
}

fn is_system(path: &Path) -> bool {
    SYSTEM_READ_ONLY
        .iter()
        .chain(SYSTEM_DEVICES)
        .any(|s| Path::new(s) == path)
}

/// The launcher's memo of system paths.
#[derive(Debug, Default)]
pub(crate) struct SystemPaths {
    resolved: HashMap<PathBuf, Option<Resolved>>,
    /// `O_PATH` descriptors (and whether each is a file) for Landlock.
    fds: HashMap<PathBuf, Option<(OwnedFd, bool)>>,
    /// Directories the launcher covered with only their granted entries.
    covered: Vec<PathBuf>,
}

impl SystemPaths {
    /// Directories whose granted entries a worker's root shows with one
    /// bind of the directory (`view::cover_system_dirs`).
    pub fn covered(&self) -> &[PathBuf] {
        &self.covered
    }

    pub fn set_covered(&mut self, covered: Vec<PathBuf>) {
        self.covered = covered;
    }

    /// [`resolve`], remembered for system paths.
    pub fn resolve(&mut self, path: &Path) -> Option<Resolved> {
        if !is_system(path) {
            return resolve(path);
        }
        self.resolved
            .entry(path.to_path_buf())
            .or_insert_with(|| resolve(path))
            .clone()
    }

    /// An `O_PATH` descriptor of a system path (and whether it is a file),
    /// opened once; `None` for other paths or missing ones.
    pub fn fd(&mut self, path: &Path) -> Option<(BorrowedFd<'_>, bool)> {
        if !is_system(path) {
            return None;
        }
        self.fds
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                let file = std::fs::File::options()
                    .read(true)
                    .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
                    .open(path)
                    .ok()?;
                let is_file = !file.metadata().ok()?.is_dir();
                Some((OwnedFd::from(file), is_file))
            })
            .as_ref()
            .map(|(fd, is_file)| (fd.as_fd(), *is_file))
    }
}
