//! Where swarm writes the objects of a commit it is making, until they are
//! held: a directory of the repository that no `git prune` looks in.
//!
//! git deletes loose objects no ref reaches (`git prune --expire=now`, the
//! prune of `git gc --prune=now`) from `objects/??/`; an object swarm has
//! just written loose is such an object until its kept pack exists (see
//! [`super::hold`]), and a prune in a loop beside a run took them in that
//! moment often enough to fail a snapshot tried eight times in a row on a
//! loaded machine. git's own answer for objects that arrive before their
//! refs is a quarantine: `receive-pack` writes a push's objects into a
//! directory of its own, with the repository's objects as an alternate,
//! and moves them in once they are checked (git-receive-pack(1),
//! "QUARANTINE ENVIRONMENT"). swarm does the same: a snapshot or a merge
//! writes into an [`Incoming`] directory, reads everything else through
//! the alternate, and [`super::hold`] writes its new objects from there
//! into a kept pack of the repository. No object swarm writes is ever
//! loose in `objects/`.
//!
//! An object that already exists in the repository is not written again
//! (libgit2 touches it instead); one such object, loose and unreferenced,
//! may still go to a prune before its holding: the caller makes the commit
//! again, and the object, missing then, is written here.

#![allow(
    clippy::disallowed_methods,
    reason = "the repository's object database and swarm's quarantines in it: tasks see objects read-only"
)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use git2::Repository;

use super::{Context as _, GitError};

/// The directory of a repository's common git directory that holds the
/// incoming directories.
const INCOMING: &str = "swarm-incoming";

/// A directory whose owner holds no lock on it is left alone this long
/// after it was made: between making a directory and locking it, its
/// owner is alive and holds nothing yet. Past it, an unlocked directory's
/// owner is dead (a lock goes with its process, whatever the clocks say).
const UNLOCKED_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// Names incoming directories apart within one process.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// A repository whose new objects go to a directory of their own, while
/// everything the repository has is read through an alternate; removed,
/// with what it holds, when dropped (by then it is held, or not needed).
pub(crate) struct Incoming {
    // Dropped first: the repository is closed before its directory goes.
    repo: Repository,
    dir: Staging,
}

impl Incoming {
    /// An incoming directory for the repository whose common git directory
    /// is `common_dir`.
    pub(crate) fn open(common_dir: &Path) -> Result<Self, GitError> {
        let dir = Staging::new(common_dir, "new objects")?;
        let repo = Self::make(common_dir, dir.path())?;
        Ok(Self { repo, dir })
    }

    /// Lays out a git directory at `dir` (HEAD, refs, objects) whose
    /// objects have the repository's as their alternate, and opens it.
    fn make(common_dir: &Path, dir: &Path) -> Result<Repository, GitError> {
        let action = || format!("make a directory for new objects at {}", dir.display());
        let objects = common_dir.join("objects");
        let objects = std::fs::canonicalize(&objects).unwrap_or(objects);
        std::fs::create_dir_all(dir.join("objects").join("info")).context(action)?;
        std::fs::create_dir_all(dir.join("refs")).context(action)?;
        std::fs::write(dir.join("HEAD"), "ref: refs/heads/incoming\n").context(action)?;
        let mut line = objects.into_os_string();
        line.push("\n");
        std::fs::write(
            dir.join("objects").join("info").join("alternates"),
            std::os::unix::ffi::OsStrExt::as_bytes(line.as_os_str()),
        )
        .context(action)?;
        // A shallow repository's history stops where its `shallow` file
        // says; without it, libgit2 would look for the parents beyond.
        let shallow = common_dir.join("shallow");
        if shallow.exists() {
            std::fs::copy(&shallow, dir.join("shallow")).context(action)?;
        }
        Repository::open_bare(dir).context(action)
    }

    /// Makes `repo` (a handle of the same repository) read and write its
    /// objects through this directory's database: new objects land here,
    /// everything else is read through the alternate. Its index, HEAD and
    /// refs stay its own.
    pub(crate) fn attach(&self, repo: &Repository) -> Result<(), GitError> {
        let action = || format!("write new objects of {} apart", repo.path().display());
        let odb = self.repo.odb().context(action)?;
        repo.set_odb(&odb).context(action)
    }

    /// This directory's objects directory, for git processes that read
    /// them (`GIT_ALTERNATE_OBJECT_DIRECTORIES`).
    pub(crate) fn objects_dir(&self) -> PathBuf {
        self.dir.path().join("objects")
    }

    /// Removes the loose objects written so far: they are held, or not
    /// needed. A long-lived merger calls it after each merge.
    pub(crate) fn clear(&self) {
        let Ok(entries) = std::fs::read_dir(self.objects_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            // The fan-out directories only: `info` names the alternate.
            if name.len() == 2
                && name
                    .to_string_lossy()
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit())
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// A new directory under `parent`, named apart from every other one.
fn fresh_dir(parent: &Path) -> std::io::Result<PathBuf> {
    loop {
        let name = format!(
            "{}-{}-{:08x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        );
        let dir = parent.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// An empty directory of the repository, on the file system of its
/// objects, for what git must not see before it is complete (an
/// [`Incoming`] directory's objects; a pack indexed here and then moved
/// in, see [`super::hold`]); removed, with what it holds, when dropped.
pub(crate) struct Staging {
    dir: PathBuf,
    /// An exclusive `flock` on the directory, held while it lives: what
    /// tells another process its owner is alive (see [`remove_left`]).
    _lock: Option<nix::fcntl::Flock<std::fs::File>>,
}

impl Staging {
    /// A new directory under the repository whose common git directory is
    /// `common_dir`, for `what` (said in errors), locked while it lives.
    /// The first one a process makes clears those whose owners died.
    pub(crate) fn new(common_dir: &Path, what: &str) -> Result<Self, GitError> {
        let parent = common_dir.join(INCOMING);
        let action = || format!("make a directory for {what} in {}", parent.display());
        std::fs::create_dir_all(&parent).context(action)?;
        if NEXT.load(Ordering::Relaxed) == 0 {
            remove_left(&parent);
        }
        let dir = fresh_dir(&parent).context(action)?;
        let lock = std::fs::File::open(&dir).ok().and_then(|f| {
            nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).ok()
        });
        Ok(Self { dir, _lock: lock })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.dir.display(), error = %e, "failed to remove a directory of new objects");
        }
    }
}

/// Removes the incoming directories under `parent` whose owner is dead:
/// left by a process killed while it wrote (what they hold was never held,
/// so no ref names it). Dead is proven, never guessed from an age: a live
/// owner holds an exclusive `flock` on its directory (released by the
/// kernel when the process dies), so a directory this process can lock
/// has none, unless it is younger than [`UNLOCKED_GRACE`] (made, not yet
/// locked). A clock a day ahead, or a run of a week, removes nothing of a
/// live run's.
fn remove_left(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(dir) = std::fs::File::open(entry.path()) else {
            continue;
        };
        let Ok(lock) = nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusiveNonblock)
        else {
            // Its owner is alive.
            continue;
        };
        let fresh = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < UNLOCKED_GRACE);
        if !fresh {
            let _ = std::fs::remove_dir_all(entry.path());
        }
        drop(lock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_repo;

    /// What a handle attached to an incoming directory writes is readable
    /// through it, as is everything the repository had, and never appears
    /// loose in the repository's own objects.
    #[test]
    fn new_objects_stay_out_of_the_repository_and_the_old_ones_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let (main, base) = test_repo::with_files(dir.path(), &[("a.txt", "a\n")]);
        let repo = main.open().unwrap();
        let incoming = Incoming::open(repo.commondir()).unwrap();
        incoming.attach(&repo).unwrap();
        assert!(repo.find_commit(base).is_ok());
        let blob = repo.blob(b"only here\n").unwrap();
        assert!(repo.find_blob(blob).is_ok());
        let hex = blob.to_string();
        let (fan, rest) = hex.split_at(2);
        assert!(
            !repo
                .commondir()
                .join("objects")
                .join(fan)
                .join(rest)
                .exists()
        );
        assert!(incoming.objects_dir().join(fan).join(rest).exists());
        incoming.clear();
        assert!(!incoming.objects_dir().join(fan).exists());
        let at = incoming.dir.path().to_path_buf();
        drop(incoming);
        assert!(!at.exists());
    }

    /// A prune of the repository leaves what an incoming directory holds.
    /// Issue 75: leftovers go only when their owner is proven dead. A live
    /// staging directory is kept however old it looks (a clock a day
    /// ahead, a run of a week); an unlocked one (its process killed) is
    /// removed past the grace, a just-made one is not.
    #[test]
    fn only_a_dead_owners_directory_is_removed_whatever_its_age() {
        let dir = tempfile::tempdir().unwrap();
        let common = dir.path();
        let live = Staging::new(common, "test").unwrap();
        let parent = common.join(INCOMING);
        let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 24 * 3600);
        let dead = parent.join("1-0-dead");
        let young = parent.join("1-1-young");
        std::fs::create_dir(&dead).unwrap();
        std::fs::create_dir(&young).unwrap();
        for old in [live.path(), dead.as_path()] {
            std::fs::File::open(old)
                .unwrap()
                .set_modified(day_ago)
                .unwrap();
        }
        remove_left(&parent);
        assert!(live.path().exists(), "a live run's directory was removed");
        assert!(!dead.exists(), "a dead owner's directory was kept");
        assert!(young.exists(), "a directory not yet locked was removed");
        let path = live.path().to_path_buf();
        drop(live);
        assert!(!path.exists());
    }

    #[test]
    fn git_prune_does_not_look_in_an_incoming_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (main, _) = test_repo::with_files(dir.path(), &[("a.txt", "a\n")]);
        let repo = main.open().unwrap();
        let incoming = Incoming::open(repo.commondir()).unwrap();
        incoming.attach(&repo).unwrap();
        let blob = repo.blob(b"not yet held\n").unwrap();
        let out = std::process::Command::new("git")
            .current_dir(&main.workdir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args(["prune", "--expire=now"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let out = std::process::Command::new("git")
            .current_dir(&main.workdir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args(["gc", "--prune=now", "-q"])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(repo.find_blob(blob).is_ok());
    }
}
