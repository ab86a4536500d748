//! The build caches of an actor with more rights than a task whose code
//! is a commit's (the run-wide verify, `[setup]` with its own rights): a
//! cache no code of a commit can write into for the run of another commit
//! that does not contain it.
//!
//! A verify runs the code of the commit it checks (its tests, its build
//! scripts), and its verdict can take a merge out. A build cache kept
//! from one verify to the next is what makes the verify of a merge queue
//! incremental, and also what would let one commit's code decide
//! another's verdict: a later merge's test that writes a stale artifact
//! (or a checker the verify command reuses) into the cache makes the
//! bisection's probe of an earlier commit fail, and the innocent merge
//! before it is taken out while the guilty one lands. `[setup]` runs the
//! code of the run's base with its own network and variables, and what it
//! builds goes into every task of the run: a cache one base's setup (a
//! pull request's, run by its author's choice) wrote would run in the
//! setup of another (main's) and build its tasks' tools.
//!
//! So each such actor's caches are its own (`<home>/.cache/<actor>/<tool>`:
//! `@verify`, `CARGO_TARGET_DIR` always among its tools, and `@setup`; no
//! task is shown them, and they are shown none of the tasks'), and they
//! are a **lineage**: beside them, in a directory of swarm's that the
//! actor is not shown, swarm records the commit whose run last wrote them
//! (written before that run starts, so a run cut short is still
//! recorded). The run for commit `P` (the verify of `P`, the setups of a
//! swarm run from `P`) keeps them only if the record is `P` or an
//! ancestor of `P`; otherwise (a bisection's probe of an earlier commit,
//! the branch rebuilt without a merge, another run's unrelated commit, a
//! run on another branch, no record at all) they are emptied first. By
//! induction, every run that wrote the caches since they were last
//! emptied was for an ancestor of the recorded commit, so what `P`'s run
//! finds there depends only on code in `P`'s history: never on a later
//! merge's, a descendant's or another branch's. The forward path (a merge
//! queue's tips, main's next commit) stays incremental.
//!
//! Its limit: an ancestor's code still reaches `P`'s run through the
//! cache. That gives it no power it does not have already: the ancestor's
//! code is in `P` (or was, in its history) and runs there, where it can
//! fail a verify by what it reads of the tree ("fail if a file I do not
//! know is there") as surely as by what it left in a cache. What no
//! commit can do any more is reach the run of a commit it is not in.
//! Unconfined (`sandbox = "none"`) the actor can write anywhere its user
//! can, this record included: nothing there holds against its code.
//!
//! One swarm run at a time uses the repository's caches of an actor (an
//! `flock` held while the run lasts): two runs for unrelated commits at
//! once would empty them under each other and write them together. A run
//! that finds them taken, and a verify without kept caches (`caches =
//! false`, or unconfined), gets caches of its own in its tmp, under the
//! same rule, removed when it ends.

use std::fs::File;
use std::path::{Path, PathBuf};

use git2::Oid;
use nix::fcntl::{Flock, FlockArg};

use super::error::RunError;
use crate::git::Repo;
use crate::untrusted::{EntryKind, Limits, TaskDir, UntrustedError};
use crate::worktree_home::WorktreeHome;

/// swarm's record of the commit whose run last wrote the caches.
const RECORD: &str = ".commit";

/// The lock of the repository's caches.
const LOCK: &str = ".lock";

/// How far a copy of a seed may go (sandboxed code wrote it): past this
/// it is dropped and the caches start empty.
const SEED_LIMITS: crate::untrusted::TreeLimits = crate::untrusted::TreeLimits {
    depth: 64,
    entries: 1_000_000,
    bytes: 64 << 30,
};

/// swarm's record of the commit whose run wrote the caches to its end
/// (see [`Caches::finish`]).
const DONE: &str = ".done";

/// An actor's build caches, under one root swarm owns.
#[derive(Debug)]
pub(super) struct Caches {
    /// The directory holding the tools' caches and the record.
    root: PathBuf,
    /// (variable, the tool's directory in `root`).
    tools: Vec<(String, String)>,
    /// Who the caches are handed to (the sandbox's identity, as root).
    owner: Option<(u32, u32)>,
    /// The repository's caches' lock, held while the run lasts; `None`
    /// for the run's own.
    lock: Option<Flock<File>>,
}

impl Caches {
    /// The caches of actor `name` (`@verify`, `@setup`; `what` in
    /// messages) of the run whose directory is `run_dir`, one directory
    /// per (variable, tool) of `tools`: the repository's, in `home`, when
    /// `shared` and no other run holds them; else the run's own. Owned by
    /// the sandbox's identity when the run is `sandboxed`.
    pub(super) fn new(
        (sandboxed, run_dir): (bool, &Path),
        home: &WorktreeHome,
        (name, what): (&str, &str),
        tools: Vec<(String, String)>,
        shared: bool,
    ) -> Result<Self, RunError> {
        let owner = sandboxed.then(swarm_sandbox::worker_identity).flatten();
        if shared {
            let mut root = None;
            for (_, tool) in &tools {
                let dir = home.own_cache_dir(name, tool, owner)?;
                root = dir.parent().map(Path::to_path_buf);
            }
            if let Some(root) = root {
                match take(&root).map_err(|source| RunError::Io {
                    action: format!("lock {}", root.join(LOCK).display()),
                    source,
                })? {
                    Some(lock) => {
                        return Ok(Self {
                            root,
                            tools,
                            owner,
                            lock: Some(lock),
                        });
                    }
                    None => tracing::info!(
                        "another run of this repository holds the build caches of {what}; this run's build in caches of their own"
                    ),
                }
            }
        }
        let root = run_dir
            .join(crate::layout::TMP)
            .join(format!("{name}.cache"));
        make_own_root(&root).map_err(|e| RunError::Io {
            action: format!("make {}", root.display()),
            source: std::io::Error::other(e),
        })?;
        Ok(Self {
            root,
            tools,
            owner,
            lock: None,
        })
    }

    /// Readies the caches for the run of `commit` (its verify, the setups
    /// of a swarm run from it): kept if the commit whose run last wrote
    /// them is `commit` or an ancestor of it, emptied otherwise; recorded
    /// as `commit`'s. Returns (variable,
    /// directory) for each, and whether they were kept.
    pub(super) fn ready(
        &self,
        repo: &Repo,
        commit: Oid,
    ) -> Result<(Vec<(String, PathBuf)>, bool), String> {
        self.ready_from(repo, commit, None)
    }

    /// The commit whose run last wrote the caches, as swarm recorded it
    /// (`None`: no record, or one that names no commit).
    pub(super) fn recorded(&self) -> Option<Oid> {
        let root = TaskDir::open(&self.root).ok()?;
        let limits = Limits {
            max_size: 64,
            what: "record of an actor's build caches",
        };
        match root.read(RECORD, limits) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).trim().parse::<Oid>().ok(),
            Err(e) if e.is_missing() => None,
            Err(e) => {
                tracing::warn!(error = %e, "the build caches are emptied");
                None
            }
        }
    }

    /// Whether [`Caches::ready`] for `commit` would keep what is there.
    pub(super) fn keeps(&self, repo: &Repo, commit: Oid) -> bool {
        self.recorded()
            .is_some_and(|last| last == commit || descends(repo, commit, last))
    }

    /// [`Caches::ready`], but what would be emptied is made a copy of
    /// `seed`'s caches instead (the same tools), if the seed's record
    /// names `commit` or an ancestor of it (checked here), so that the rule
    /// holds for the copy: everything in it was written by runs of
    /// `commit`'s ancestors. A seed that does not (or a copy that fails, or
    /// outgrows [`SEED_LIMITS`]) gives empty caches. How the run-wide verify
    /// starts from what was built on the run's base rather than from
    /// nothing.
    pub(super) fn ready_from(
        &self,
        repo: &Repo,
        commit: Oid,
        seed: Option<&Caches>,
    ) -> Result<(Vec<(String, PathBuf)>, bool), String> {
        let root = TaskDir::open(&self.root).map_err(|e| format!("open {e}"))?;
        let keep = self.keeps(repo, commit);
        // No record while they change: a run cut short leaves one that
        // names its commit, or none (and the next run empties them).
        root.remove(RECORD).map_err(|e| format!("remove {e}"))?;
        root.remove(DONE).map_err(|e| format!("remove {e}"))?;
        let seed = match seed {
            Some(seed) if !keep && seed.keeps(repo, commit) => {
                Some(TaskDir::open(&seed.root).map_err(|e| format!("open {e}"))?)
            }
            _ => None,
        };
        let mut dirs = Vec::with_capacity(self.tools.len());
        for (var, tool) in &self.tools {
            if !keep {
                root.remove(tool).map_err(|e| format!("empty {e}"))?;
            }
            let mut dir = root
                .make_dir(tool, 0o700)
                .map_err(|e| format!("make {e}"))?;
            if let Some(seed) = &seed
                && let Ok(Some(EntryKind::Dir)) = seed.kind(tool)
            {
                let from = seed
                    .make_dir(tool, 0o700)
                    .map_err(|e| format!("open {e}"))?;
                if let Err(e) = from.copy_tree_to(&dir, self.owner, SEED_LIMITS) {
                    // Not a failure of the run: it starts from nothing, as
                    // it did before there was a seed.
                    tracing::warn!(error = %e, "the build cache starts empty: failed to copy the base's");
                    root.remove(tool).map_err(|e| format!("empty {e}"))?;
                    dir = root
                        .make_dir(tool, 0o700)
                        .map_err(|e| format!("make {e}"))?;
                }
            }
            if let Some(owner) = self.owner {
                dir.hand_to(owner).map_err(|e| format!("hand over {e}"))?;
            }
            dirs.push((var.clone(), dir.path().to_path_buf()));
        }
        root.write_new(RECORD, format!("{commit}\n").as_bytes(), 0o644)
            .map_err(|e| format!("write {e}"))?;
        Ok((dirs, keep))
    }

    /// Records that the run of `commit` (readied with [`Caches::ready`])
    /// wrote the caches to its end: not cut short, so what is there is
    /// all that run makes.
    pub(super) fn finish(&self, commit: Oid) -> Result<(), String> {
        let root = TaskDir::open(&self.root).map_err(|e| format!("open {e}"))?;
        root.remove(DONE).map_err(|e| format!("remove {e}"))?;
        root.write_new(DONE, format!("{commit}\n").as_bytes(), 0o644)
            .map_err(|e| format!("write {e}"))?;
        Ok(())
    }

    /// The commit whose run last wrote the caches to its end, if the last
    /// run to write them did.
    pub(super) fn finished(&self) -> Option<Oid> {
        let root = TaskDir::open(&self.root).ok()?;
        let limits = Limits {
            max_size: 64,
            what: "record of an actor's build caches",
        };
        let bytes = root.read(DONE, limits).ok()?;
        String::from_utf8_lossy(&bytes).trim().parse::<Oid>().ok()
    }

    /// Whether these are the repository's caches (kept for its next
    /// run), not the run's own.
    pub(super) fn lasting(&self) -> bool {
        self.lock.is_some()
    }

    /// Removes the run's own caches (the run is over); the repository's
    /// stay for its next run.
    pub(super) fn close(&self) {
        if self.lock.is_none()
            && let Err(e) = TaskDir::discard(&self.root)
        {
            tracing::warn!(error = %e, root = %self.root.display(), "failed to remove a run's own build caches");
        }
    }
}

/// The repository's caches at `root`, for this run alone while the lock
/// returned is held; `None` if another run holds them.
fn take(root: &Path) -> std::io::Result<Option<Flock<File>>> {
    let file = crate::untrusted::lock_file(&root.join(LOCK))?;
    crate::untrusted::try_lock(file, FlockArg::LockExclusiveNonblock)
}

/// Whether `commit` descends from `ancestor` (a commit git no longer has
/// does not count).
fn descends(repo: &Repo, commit: Oid, ancestor: Oid) -> bool {
    repo.open()
        .ok()
        .and_then(|git| git.graph_descendant_of(commit, ancestor).ok())
        .unwrap_or(false)
}

/// Makes a run's own root of caches, empty, in the run's tmp (swarm's).
fn make_own_root(root: &Path) -> Result<(), UntrustedError> {
    match TaskDir::fresh(root, 0o700) {
        Ok(_) => Ok(()),
        Err(e) if e.is_missing() => {
            if let Some(parent) = root.parent() {
                #[allow(
                    clippy::disallowed_methods,
                    reason = "the run's own tmp/, swarm's: no task writes there"
                )]
                std::fs::create_dir_all(parent).map_err(|e| UntrustedError::Io {
                    path: parent.to_path_buf(),
                    message: e.to_string(),
                })?;
            }
            TaskDir::fresh(root, 0o700).map(drop)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_repo::{commit_on, with_files};

    const CARGO_TARGET: &str = "cargo-target";

    fn caches(root: &Path) -> Caches {
        Caches {
            root: root.to_path_buf(),
            tools: vec![
                ("CARGO_TARGET_DIR".into(), CARGO_TARGET.into()),
                ("PIP_CACHE_DIR".into(), "pip".into()),
            ],
            owner: None,
            lock: None,
        }
    }

    fn plant(dir: &Path) {
        std::fs::write(dir.join("artifact"), "built").unwrap();
    }

    fn kept(dir: &Path) -> bool {
        dir.join("artifact").exists()
    }

    /// Kept along the branch (each commit contains the last one verified),
    /// emptied for a commit that does not contain it (an earlier one, a
    /// sibling), and for one no record names.
    #[test]
    fn the_caches_are_kept_only_for_a_commit_that_contains_the_last_writer() {
        let d = tempfile::tempdir().unwrap();
        let (repo, base) = with_files(&d.path().join("repo"), &[("a", "a\n")]);
        let git = repo.open().unwrap();
        let one = commit_on(&git, base, "b", "b\n");
        let two = commit_on(&git, one, "c", "c\n");
        let sibling = commit_on(&git, base, "d", "d\n");
        let root = d.path().join("@verify");
        std::fs::create_dir(&root).unwrap();
        let c = caches(&root);

        // No record: emptied (there is nothing yet).
        let (dirs, keep) = c.ready(&repo, one).unwrap();
        assert!(!keep);
        assert_eq!(dirs.len(), 2);
        assert_eq!(dirs[0].0, "CARGO_TARGET_DIR");
        assert_eq!(dirs[0].1, root.join(CARGO_TARGET));
        plant(&dirs[0].1);
        plant(&dirs[1].1);
        // Forward: `two` contains `one`.
        let (dirs, keep) = c.ready(&repo, two).unwrap();
        assert!(keep && kept(&dirs[0].1) && kept(&dirs[1].1));
        // The same commit again.
        assert!(c.ready(&repo, two).unwrap().1);
        // Back to `one`, which `two` wrote after: emptied, both tools.
        let (dirs, keep) = c.ready(&repo, one).unwrap();
        assert!(!keep && !kept(&dirs[0].1) && !kept(&dirs[1].1));
        plant(&dirs[0].1);
        // A sibling: emptied.
        let (dirs, keep) = c.ready(&repo, sibling).unwrap();
        assert!(!keep && !kept(&dirs[0].1));
        assert_eq!(
            std::fs::read_to_string(root.join(RECORD)).unwrap().trim(),
            sibling.to_string()
        );
        // A record that names no commit git has, or is no commit at all.
        std::fs::write(
            root.join(RECORD),
            "0123456789012345678901234567890123456789\n",
        )
        .unwrap();
        plant(&dirs[0].1);
        assert!(!c.ready(&repo, sibling).unwrap().1);
        std::fs::write(root.join(RECORD), "not a commit").unwrap();
        assert!(!c.ready(&repo, sibling).unwrap().1);
    }

    /// Issue 76: what would be emptied is a copy of the seed's (the base
    /// cache) instead; what would be kept stays as it is, the seed left
    /// out; the seed itself is not changed by the copy's use, and a run
    /// cut short leaves no record of having finished.
    #[test]
    fn caches_that_cannot_be_kept_start_from_a_copy_of_the_seed() {
        let d = tempfile::tempdir().unwrap();
        let (repo, base) = with_files(&d.path().join("repo"), &[("a", "a\n")]);
        let git = repo.open().unwrap();
        let one = commit_on(&git, base, "b", "b\n");
        let sibling = commit_on(&git, base, "c", "c\n");
        let (seed_root, own_root) = (d.path().join("@verify-base"), d.path().join("@verify"));
        std::fs::create_dir(&seed_root).unwrap();
        std::fs::create_dir(&own_root).unwrap();
        let (seed, own) = (caches(&seed_root), caches(&own_root));
        let (dirs, _) = seed.ready(&repo, base).unwrap();
        std::fs::write(dirs[0].1.join("from-base"), "base").unwrap();
        assert_eq!(seed.finished(), None);
        seed.finish(base).unwrap();
        assert_eq!(seed.finished(), Some(base));

        let (dirs, keep) = own.ready_from(&repo, one, Some(&seed)).unwrap();
        assert!(!keep);
        assert_eq!(
            std::fs::read_to_string(dirs[0].1.join("from-base")).unwrap(),
            "base"
        );
        std::fs::write(dirs[0].1.join("from-one"), "one").unwrap();
        // Forward: kept, the seed not copied over it.
        std::fs::write(dirs[0].1.join("from-base"), "rebuilt by one").unwrap();
        let (dirs, keep) = own.ready_from(&repo, one, Some(&seed)).unwrap();
        assert!(keep);
        assert_eq!(
            std::fs::read_to_string(dirs[0].1.join("from-base")).unwrap(),
            "rebuilt by one"
        );
        // A sibling: `one`'s files gone, the base's back.
        let (dirs, keep) = own.ready_from(&repo, sibling, Some(&seed)).unwrap();
        assert!(!keep && !dirs[0].1.join("from-one").exists());
        assert_eq!(
            std::fs::read_to_string(dirs[0].1.join("from-base")).unwrap(),
            "base"
        );
        // The seed is as it was, still finished for the base.
        assert_eq!(
            std::fs::read_to_string(seed_root.join(CARGO_TARGET).join("from-base")).unwrap(),
            "base"
        );
        assert!(!seed_root.join(CARGO_TARGET).join("from-one").exists());
        assert_eq!(seed.finished(), Some(base));
        // Readied again (a new build), it is no longer finished.
        seed.ready(&repo, base).unwrap();
        assert_eq!(seed.finished(), None);
        // A seed last written for a commit `one` does not contain (another
        // base's build, left by a run whose own build failed to start) is
        // not copied: the caches start empty.
        let (dirs, _) = seed.ready(&repo, sibling).unwrap();
        std::fs::write(dirs[0].1.join("from-sibling"), "sibling").unwrap();
        let (dirs, keep) = own.ready_from(&repo, one, Some(&seed)).unwrap();
        assert!(!keep);
        assert_eq!(std::fs::read_dir(&dirs[0].1).unwrap().count(), 0);
    }

    /// One run at a time holds the repository's caches; once it lets go,
    /// the next may.
    #[test]
    fn one_run_at_a_time_takes_the_repositorys_caches() {
        let d = tempfile::tempdir().unwrap();
        let held = take(d.path()).unwrap();
        assert!(held.is_some());
        assert!(take(d.path()).unwrap().is_none());
        drop(held);
        assert!(take(d.path()).unwrap().is_some());
        // A link in place of the lock file is refused, never opened.
        let other = tempfile::tempdir().unwrap();
        std::fs::remove_file(d.path().join(LOCK)).unwrap();
        std::os::unix::fs::symlink(other.path().join("x"), d.path().join(LOCK)).unwrap();
        assert!(take(d.path()).is_err());
        assert!(!other.path().join("x").exists());
    }

    /// What a verify left in place of a cache (a link out) is removed as a
    /// link when the caches are emptied, its target untouched; a link in
    /// place of the record is never read through.
    #[test]
    fn emptying_the_caches_never_follows_a_link() {
        let d = tempfile::tempdir().unwrap();
        let (repo, base) = with_files(&d.path().join("repo"), &[("a", "a\n")]);
        let git = repo.open().unwrap();
        let one = commit_on(&git, base, "b", "b\n");
        let outside = d.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("canary"), "untouched").unwrap();
        let root = d.path().join("@verify");
        std::fs::create_dir(&root).unwrap();
        let c = caches(&root);
        c.ready(&repo, one).unwrap();
        std::fs::remove_dir(root.join("pip")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("pip")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join(CARGO_TARGET).join("out")).unwrap();
        std::fs::remove_file(root.join(RECORD)).unwrap();
        std::os::unix::fs::symlink(outside.join("canary"), root.join(RECORD)).unwrap();
        let (dirs, keep) = c.ready(&repo, one).unwrap();
        assert!(!keep);
        assert!(std::fs::symlink_metadata(&dirs[1].1).unwrap().is_dir());
        assert_eq!(std::fs::read_dir(&dirs[0].1).unwrap().count(), 0);
        assert_eq!(
            std::fs::read_to_string(outside.join("canary")).unwrap(),
            "untouched"
        );
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    }
}
