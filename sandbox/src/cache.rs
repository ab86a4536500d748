//! What the launcher resolves once per run rather than once per worker: the
//! system paths every worker is granted ([`SYSTEM_READ_ONLY`],
//! [`SYSTEM_DEVICES`]). Resolving them (canonical path, link or not, an
//! `O_PATH` descriptor for Landlock) was most of the launcher's work per
//! spawn, and they do not change while a run lasts. Neither do the paths a
//! policy says every worker of the run is granted (`Policy::run_wide`:
//! toolchains, shared build caches), which are remembered alike; paths of
//! a task's own (its worktree, its tmp) are resolved afresh every time.

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

/// Whether `path` is one of the system paths, written as the lists write
/// it (a policy's system paths are copied from them). A set of their bytes:
/// comparing `Path`s parses components, and the launcher asked this of
/// every path of every policy, fifty by fifty.
fn is_system(path: &Path) -> bool {
    static SYSTEM: std::sync::OnceLock<std::collections::HashSet<&'static [u8]>> =
        std::sync::OnceLock::new();
    SYSTEM
        .get_or_init(|| {
            SYSTEM_READ_ONLY
                .iter()
                .chain(SYSTEM_DEVICES)
                .map(|s| s.as_bytes())
                .collect()
        })
        .contains(path.as_os_str().as_encoded_bytes())
}

/// What [`SystemPaths::fd`] knows of a path.
#[derive(Debug)]
pub(crate) enum Remembered<'a> {
    /// Not a path resolved once a run: the task's own, opened afresh.
    No,
    /// Remembered, and missing when first looked for.
    Missing,
    /// Its descriptor, and whether it is a file.
    Open(BorrowedFd<'a>, bool),
}

/// The launcher's memo of system paths.
#[derive(Debug, Default)]
pub(crate) struct SystemPaths {
    resolved: HashMap<PathBuf, Option<Resolved>>,
    /// `O_PATH` descriptors (and whether each is a file) for Landlock.
    fds: HashMap<PathBuf, Option<(OwnedFd, bool)>>,
    /// Directories the launcher covered with only their granted entries.
    covered: Vec<PathBuf>,
    /// Paths policies said every worker of the run is granted alike
    /// (`Policy::run_wide`): remembered like the system paths.
    run_wide: std::collections::HashSet<PathBuf>,
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

    /// Remembers `paths` as the run's own: every worker is granted them
    /// alike (see `Policy::run_wide`), so they are resolved once.
    pub fn note_run_wide(&mut self, paths: &[PathBuf]) {
        for path in paths {
            if !self.run_wide.contains(path) {
                self.run_wide.insert(path.clone());
            }
        }
    }

    /// Whether `path` is resolved once a run: a system path, a directory
    /// the launcher covered (it made what is there, for the run), or one a
    /// policy said every worker of the run is granted alike.
    fn remembered(&self, path: &Path) -> bool {
        is_system(path) || self.run_wide.contains(path) || self.covered.iter().any(|c| c == path)
    }

    /// Whether every worker of the run is granted `path` alike (see
    /// [`Self::remembered`]).
    pub fn shared(&self, path: &Path) -> bool {
        self.remembered(path)
    }

    /// [`resolve`], remembered for system and run-wide paths.
    pub fn resolve(&mut self, path: &Path) -> Option<Resolved> {
        if !self.remembered(path) {
            return resolve(path);
        }
        // Found without making a key: most lookups are of paths resolved
        // for an earlier worker.
        if let Some(known) = self.resolved.get(path) {
            return known.clone();
        }
        self.resolved
            .entry(path.to_path_buf())
            .or_insert_with(|| resolve(path))
            .clone()
    }

    /// An `O_PATH` descriptor of a system or run-wide path (and whether it
    /// is a file), opened once; for other paths, [`Remembered::No`]. A
    /// remembered path that was missing stays missing for the run (it was
    /// opened again for every worker: three failed opens a spawn on a
    /// machine without `/lib32`, `/libx32`, `/etc/gitattributes`). So a
    /// system path made while a run lasts is granted to none of its
    /// workers: a grant can only be narrower than the first worker's,
    /// never wider.
    pub fn fd(&mut self, path: &Path) -> Remembered<'_> {
        if !self.remembered(path) {
            return Remembered::No;
        }
        let opened = self.fds.entry(path.to_path_buf()).or_insert_with(|| {
            let file = std::fs::File::options()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
                .open(path)
                .ok()?;
            let is_file = !file.metadata().ok()?.is_dir();
            Some((OwnedFd::from(file), is_file))
        });
        match opened.as_ref() {
            Some((fd, is_file)) => Remembered::Open(fd.as_fd(), *is_file),
            None => Remembered::Missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_path_missing_at_first_stays_missing_and_a_task_path_is_looked_up_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let (shared, own) = (dir.path().join("toolchain"), dir.path().join("own"));
        let mut system = SystemPaths::default();
        system.note_run_wide(std::slice::from_ref(&shared));
        assert!(matches!(system.fd(&shared), Remembered::Missing));
        assert!(system.resolve(&shared).is_none());
        // Made while the run lasts: granted to none of its workers, as to
        // the first one (never wider than what the first one got).
        std::fs::create_dir(&shared).unwrap();
        assert!(matches!(system.fd(&shared), Remembered::Missing));
        assert!(system.resolve(&shared).is_none());
        // A task's own path is never remembered: resolved as it is now.
        assert!(matches!(system.fd(&own), Remembered::No));
        assert!(system.resolve(&own).is_none());
        std::fs::create_dir(&own).unwrap();
        assert!(system.resolve(&own).is_some_and(|r| r.is_dir));
        // A covered directory is remembered once covered.
        system.set_covered(vec![own.clone()]);
        assert!(matches!(system.fd(&own), Remembered::Open(_, false)));
    }
}
