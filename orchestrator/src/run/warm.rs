//! Warm worktrees: a task id's worktree kept between runs at one path
//! (`<home>/.warm/<task>`), brought to the new base by git, so that build
//! tools (cargo and rustc's incremental cache, tsc, jest, pytest) see the
//! same paths and unchanged files' modification times, as in a worktree a
//! person keeps.
//!
//! Each one has a lease file beside it (`<task>.lease`): an exclusive
//! `flock` on it while a task uses the worktree (so that two runs, or two
//! coordinators, never share one at once: the second gets a fresh
//! worktree), and in it whether the worktree's content is proven kept:
//! `released` once an attempt's snapshot is on a ref, `in use by <run>`
//! while one runs. A worktree whose lease does not say `released` (its
//! coordinator died mid-attempt) may hold work that is on no ref: it is
//! never reset, only snapshotted by `swarm resume` of that run or removed
//! by `swarm clean --warm`.
//!
//! A sandboxed task in its warm worktree also keeps its `TMPDIR` between
//! runs (`<home>/.warm/.tmp/<task>`, [`WarmDir::tmp_path`]): tools cache
//! there as they do in a person's `/tmp`.

#![allow(
    clippy::disallowed_methods,
    reason = "the warm worktrees' lease files and directory, swarm's (a warm worktree itself is reached only through untrusted::TaskDir)"
)]

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// What a lease file says once the worktree's content is on a ref.
const RELEASED: &str = "released";

/// Where a repository's warm worktrees are (`<home>/.warm`).
#[derive(Debug, Clone)]
pub struct WarmDir {
    dir: PathBuf,
}

/// Why a warm worktree cannot be leased now.
#[derive(Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// Another task (of another run, or coordinator) holds it.
    Busy,
    /// Its last attempt never said its content was kept: `run` may still
    /// need it.
    Unproven { run: String },
}

/// A warm worktree held by one task: the `flock` goes with it.
#[derive(Debug)]
pub struct Lease {
    lock: Flock<File>,
    /// The worktree's path.
    pub path: PathBuf,
    /// Whether its content was proven kept (released, or no worktree)
    /// when an attempt last said it was at work in it.
    kept_before: bool,
    /// Whose its warm state is: what the lease said when it was taken
    /// (the attempt that last released it), then what this task's
    /// attempts say ([`Lease::hold_as`]).
    pub lineage: Option<Lineage>,
}

/// Whose a warm worktree's state is (its ignored files, its kept tmp; a
/// task's own build caches are recorded the same way, in
/// `run::local::own_caches`): the base of the run the last attempt in it
/// was of (`own_caches::lineage`) and what that task could reach
/// ([`Lineage::rights`]). A later task takes that state only if its run's
/// base is that one or a descendant of it (what a
/// pull request's code left is never built on at main: the cache
/// poisoning CI systems scope their caches by branch against) and its
/// rights are the same (what a task without network or keys left never
/// runs in one with them); else its warm state is made anew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    /// The run's base (or the task's, where a node does not know it).
    pub base: git2::Oid,
    /// A hash of what the task may reach beyond its worktree.
    pub rights: String,
}

impl Lineage {
    /// A task's rights as one hash: `facts`, each what it may reach (its
    /// network, its variables, its kind, whether it is sandboxed).
    pub fn rights(facts: &[&str]) -> String {
        let joined = facts.join("\u{0}");
        git2::Oid::hash_object(git2::ObjectType::Blob, joined.as_bytes())
            .map_or_else(|_| joined.len().to_string(), |oid| oid.to_string())
    }

    /// As swarm writes it down: two lines.
    pub fn text(&self) -> String {
        format!("base {}\nrights {}\n", self.base, self.rights)
    }

    /// The lineage the lines after a lease's first say, if they say one.
    fn parse(said: &str) -> Option<Self> {
        Self::from_text(said.split_once('\n')?.1)
    }

    /// The lineage `text` (as [`Lineage::text`] writes it) says, if it
    /// says one.
    pub fn from_text(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        let base = lines.next()?.strip_prefix("base ")?;
        let rights = lines.next()?.strip_prefix("rights ")?;
        Some(Self {
            base: git2::Oid::from_str(base).ok()?,
            rights: rights.to_string(),
        })
    }
}

impl WarmDir {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The warm worktree of `task` (its one-component `flat` id).
    pub fn path(&self, flat: &str) -> PathBuf {
        self.dir.join(flat)
    }

    /// The tmp kept with the warm worktree of `flat`
    /// (`<home>/.warm/.tmp/<flat>`): its sandboxed task's `TMPDIR`, so
    /// that tools caching there (jest's haste map and transforms) find
    /// their cache again, as in a person's `/tmp`. Only the task holding
    /// the worktree's lease uses it, and nothing more trusted than a task
    /// ever reads it (see `run::local::attempt::kept_tmp`).
    pub fn tmp_path(&self, flat: &str) -> PathBuf {
        self.dir.join(crate::worktree_home::WARM_TMP).join(flat)
    }

    /// Where swarm marks the kept tmp of `flat` worth keeping (its last
    /// attempt passed): `<home>/.warm/.tmp-kept/<flat>`, a place no task
    /// writes.
    pub fn tmp_mark(&self, flat: &str) -> PathBuf {
        self.dir.join(TMP_KEPT).join(flat)
    }

    fn lease_file(&self, flat: &str) -> PathBuf {
        self.dir.join(format!("{flat}.lease"))
    }

    /// Takes the warm worktree of task `flat` for run `run`, if no one else
    /// holds it and its content is proven kept (or `resuming` names the run
    /// that left it).
    pub fn lease(
        &self,
        flat: &str,
        run: &str,
        resuming: bool,
    ) -> std::io::Result<Result<Lease, Unavailable>> {
        std::fs::create_dir_all(&self.dir)?;
        let file = crate::untrusted::lock_file(&self.lease_file(flat))?;
        let Some(mut lock) = crate::untrusted::try_lock(file, FlockArg::LockExclusiveNonblock)?
        else {
            return Ok(Err(Unavailable::Busy));
        };
        let mut text = String::new();
        lock.rewind()?;
        lock.read_to_string(&mut text)?;
        let said = text.lines().next().unwrap_or("").trim();
        let path = self.path(flat);
        let exists = path.symlink_metadata().is_ok();
        if exists && said != RELEASED {
            let left_by = said.strip_prefix("in use by ").unwrap_or("").to_string();
            if !(resuming && left_by == run) {
                return Ok(Err(Unavailable::Unproven { run: left_by }));
            }
        }
        let lineage = Lineage::parse(&text).filter(|_| exists);
        write(&mut lock, &in_use(run, lineage.as_ref()))?;
        Ok(Ok(Lease {
            lock,
            path,
            kept_before: !exists || said == RELEASED,
            lineage,
        }))
    }

    /// Takes the kept checkout `flat` that never holds work (the run-wide
    /// verify's, read-only to what runs in it) for run `run`, if no one
    /// else holds it: whatever its lease says (a run cut short between
    /// taking and releasing it left it "in use"), nothing in it is on no
    /// ref. Released at once.
    pub fn lease_workless(&self, flat: &str) -> std::io::Result<Option<Lease>> {
        std::fs::create_dir_all(&self.dir)?;
        let file = crate::untrusted::lock_file(&self.lease_file(flat))?;
        let Some(lock) = crate::untrusted::try_lock(file, FlockArg::LockExclusiveNonblock)? else {
            return Ok(None);
        };
        let mut lease = Lease {
            lock,
            path: self.path(flat),
            kept_before: true,
            lineage: None,
        };
        lease.release()?;
        Ok(Some(lease))
    }

    /// The run that left the warm worktree of task `flat` unproven (its
    /// lease says `in use by <run>` and no one holds it), if one did.
    pub fn left_by(&self, flat: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.lease_file(flat)).ok()?;
        let said = text.lines().next()?.trim();
        said.strip_prefix("in use by ").map(str::to_string)
    }
}

impl Lease {
    /// Says the worktree's content is on a ref: the next run may reset it
    /// (and take its warm state if its lineage is this one's).
    pub fn release(&mut self) -> std::io::Result<()> {
        let lineage = self.lineage.as_ref().map(Lineage::text).unwrap_or_default();
        write(&mut self.lock, &format!("{RELEASED}\n{lineage}"))
    }

    /// Says an attempt is at work in it again (a retry).
    pub fn hold(&mut self, run: &str) -> std::io::Result<()> {
        let mut said = String::new();
        self.lock.rewind()?;
        self.lock.read_to_string(&mut said)?;
        self.kept_before = said.lines().next().unwrap_or("").trim() == RELEASED;
        write(&mut self.lock, &in_use(run, self.lineage.as_ref()))
    }

    /// Says the attempt at work in it for `run` is of `lineage` (its warm
    /// state kept, or made anew for it): a run resumed after a crash takes
    /// that state back as its own.
    pub fn hold_as(&mut self, run: &str, lineage: Lineage) -> std::io::Result<()> {
        self.lineage = Some(lineage);
        write(&mut self.lock, &in_use(run, self.lineage.as_ref()))
    }

    /// No attempt ran in it after all (its check-out failed): released
    /// again if it was before [`Self::hold`] (its lineage as it was), so
    /// the next run repairs it rather than give its task a fresh worktree
    /// beside it for ever.
    pub fn unhold(&mut self) -> std::io::Result<()> {
        match self.kept_before {
            true => self.release(),
            false => Ok(()),
        }
    }
}

/// A lease's text while `run` has an attempt at work in it, with the
/// lineage of its warm state.
fn in_use(run: &str, lineage: Option<&Lineage>) -> String {
    let lineage = lineage.map(Lineage::text).unwrap_or_default();
    format!("in use by {run}\n{lineage}")
}

fn write(file: &mut File, text: &str) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(text.as_bytes())?;
    file.sync_data()
}

/// The directory of the kept tmps' marks ([`WarmDir::tmp_mark`]), hidden
/// from [`list`].
const TMP_KEPT: &str = ".tmp-kept";

/// The lease files' suffix, for listing.
pub const LEASE_SUFFIX: &str = ".lease";

/// The warm worktrees in `dir`: `(flat task id, path)`.
pub fn list(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            (!name.ends_with(LEASE_SUFFIX) && !name.starts_with('.')).then(|| (name, e.path()))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    /// Issue 75, finding 4: an attempt whose check-out failed ran nothing
    /// in the worktree: its lease is as it was (released, if it was), so
    /// the next run takes the worktree rather than call it unproven for
    /// ever; one whose content was on no ref stays unproven.
    fn a_failed_check_out_leaves_the_lease_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let warm = WarmDir::new(dir.path().join(".warm"));
        let mut lease = warm.lease("t", "one", false).unwrap().unwrap();
        std::fs::create_dir_all(&lease.path).unwrap();
        lease.release().unwrap();
        // A retry's check-out fails.
        lease.hold("one").unwrap();
        lease.unhold().unwrap();
        drop(lease);
        let mut next = warm.lease("t", "two", false).unwrap().unwrap();
        // This run's attempt ran and its coordinator died: on no ref.
        drop(next);
        next = warm.lease("t", "two", true).unwrap().unwrap();
        next.hold("two").unwrap();
        next.unhold().unwrap();
        drop(next);
        assert_eq!(
            warm.lease("t", "three", false).unwrap().unwrap_err(),
            Unavailable::Unproven { run: "two".into() }
        );
    }

    #[test]
    fn a_lease_is_exclusive_and_an_unreleased_worktree_is_never_leased_to_another_run() {
        let dir = tempfile::tempdir().unwrap();
        let warm = WarmDir::new(dir.path().join(".warm"));
        let mut first = warm.lease("t", "one", false).unwrap().unwrap();
        std::fs::create_dir_all(&first.path).unwrap();
        assert_eq!(
            warm.lease("t", "two", false).unwrap().unwrap_err(),
            Unavailable::Busy
        );
        // Its coordinator dies mid-attempt: the lock goes, the word stays.
        drop(first);
        assert_eq!(
            warm.lease("t", "two", false).unwrap().unwrap_err(),
            Unavailable::Unproven { run: "one".into() }
        );
        assert_eq!(warm.left_by("t").as_deref(), Some("one"));
        // Resuming the run that left it may take it (and snapshot it).
        first = warm.lease("t", "one", true).unwrap().unwrap();
        first.release().unwrap();
        drop(first);
        let second = warm.lease("t", "two", false).unwrap().unwrap();
        assert_eq!(second.path, dir.path().join(".warm/t"));
        assert_eq!(
            list(&dir.path().join(".warm")),
            [("t".to_string(), second.path.clone())]
        );
    }

    /// A lease carries the lineage of its warm state through every word it
    /// says (in use, released, a retry's hold, a failed check-out), so a
    /// resumed run and a later one read the state's lineage back; a lease
    /// of a worktree that is gone says none.
    #[test]
    fn a_leases_lineage_is_read_back_whatever_it_said_last() {
        let dir = tempfile::tempdir().unwrap();
        let warm = WarmDir::new(dir.path().join(".warm"));
        let lineage = |n: u8| Lineage {
            base: git2::Oid::from_bytes(&[n; 20]).unwrap(),
            rights: Lineage::rights(&["none", &n.to_string()]),
        };
        let mut lease = warm.lease("t", "one", false).unwrap().unwrap();
        assert_eq!(lease.lineage, None);
        std::fs::create_dir_all(&lease.path).unwrap();
        lease.hold_as("one", lineage(1)).unwrap();
        // Its coordinator dies mid-attempt; the run is resumed.
        drop(lease);
        lease = warm.lease("t", "one", true).unwrap().unwrap();
        assert_eq!(lease.lineage, Some(lineage(1)));
        lease.hold_as("one", lineage(2)).unwrap();
        lease.release().unwrap();
        lease.hold("one").unwrap();
        lease.unhold().unwrap();
        drop(lease);
        lease = warm.lease("t", "two", false).unwrap().unwrap();
        assert_eq!(lease.lineage, Some(lineage(2)));
        assert_ne!(lineage(1).rights, lineage(2).rights);
        lease.release().unwrap();
        drop(lease);
        std::fs::remove_dir(dir.path().join(".warm/t")).unwrap();
        let gone = warm.lease("t", "three", false).unwrap().unwrap();
        assert_eq!(gone.lineage, None);
    }
}
