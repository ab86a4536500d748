//! Run names and their locks: which names are free, taking a run's lock
//! (the one step that makes a name a process's own), and what a run
//! stopped before its start left.

use std::path::Path;

use crate::git::{Repo, refs};
use crate::state::State;

use super::error::RunError;
use super::lock::{RunLock, is_held as is_driven};

/// Takes run `run`'s lock, as a coordinator does: for anything that must
/// not happen while the run is driven. The run's directory is created
/// through `state`, never through a link.
pub fn lock_run(state: &State, run: &str) -> Result<RunLock, RunError> {
    check_run_name(run)?;
    state.check_run(run)?;
    let run_dir = state.ensure_dir(&[crate::layout::RUNS, run])?;
    RunLock::acquire(&run_dir, run)
}

/// Whether run `run` was stopped before its start was journaled: its
/// directory is there, nobody holds its lock, and its journal is missing,
/// empty or one torn line. None of its tasks ran. A journal that cannot be
/// read, or whose lines this swarm cannot parse (a newer one's), is taken
/// as started: it is never discarded.
pub fn never_started(state: &State, run: &str) -> bool {
    let dir = state.path().join(crate::layout::RUNS).join(run);
    dir.is_dir() && !is_driven(&dir) && journal_unstarted(&dir.join(crate::layout::JOURNAL))
}

/// Whether the journal at `path` holds no complete line.
#[allow(clippy::disallowed_methods, reason = "a run's own journal")]
fn journal_unstarted(path: &Path) -> bool {
    use std::io::Read as _;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return e.kind() == std::io::ErrorKind::NotFound,
    };
    // The first line is `run_started`: a newline within it says a line
    // was completed. Read only as far as that.
    let mut buf = [0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) if buf.get(..n).is_some_and(|b| b.contains(&b'\n')) => return false,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

/// Removes all a run stopped before its start was journaled left: the
/// `.lock` files of refs it was writing, the integration branch it made at
/// the base (only if its tip is on another branch or HEAD, as `git branch
/// -d`: it has no commits of its own), and its directory (lock, saved
/// plan, logs). Its name is free again. What became of the branch.
pub fn discard_unstarted(
    repo: &Repo,
    state: &State,
    run: &str,
) -> Result<Option<crate::git::branch::BranchFate>, RunError> {
    let lock = lock_run(state, run)?;
    // Checked again under the lock: it may have started meanwhile.
    let journal = state
        .path()
        .join(crate::layout::RUNS)
        .join(run)
        .join(crate::layout::JOURNAL);
    if !journal_unstarted(&journal) {
        return Ok(None);
    }
    remove_stale_ref_locks(repo, run);
    let fate = crate::git::branch::delete_branch(repo, run, false)?;
    // Removed under the lock, so that no one starts the run in between.
    state.remove(&[crate::layout::RUNS, run])?;
    drop(lock);
    Ok(fate)
}

/// Refuses a run name that is not one path component and one git ref
/// component: the same rule as a plan's `name`, checked before anything is
/// created (a name like `../x` or `/tmp/x` would otherwise put the run's
/// directory, lock and worktrees outside `.swarm`).
pub fn check_run_name(name: &str) -> Result<(), RunError> {
    if crate::ids::is_valid_run_name(name) {
        Ok(())
    } else {
        Err(RunError::BadName {
            name: name.to_string(),
        })
    }
}

/// The state directory of `repo` for reading or resuming run `run`: it must
/// be untracked, and nothing of the run's layout may be a link.
pub fn open_run_state(repo: &Repo, run: &str) -> Result<Option<State>, RunError> {
    check_run_name(run)?;
    State::check_untracked(repo)?;
    let state = State::open(&repo.workdir)?;
    if let Some(state) = &state {
        state.check_run(run)?;
    }
    Ok(state)
}

/// What already uses run name `name`, if anything.
/// `wanted`, or the first of `wanted-2`, `wanted-3`, ... that no run uses
/// and `taken` does not refuse: running the same plan again must just work,
/// and nothing of the earlier runs is lost.
pub fn free_run_name(
    repo: &Repo,
    wanted: &str,
    taken: impl Fn(&str) -> bool,
) -> Result<String, RunError> {
    check_run_name(wanted)?;
    let mut n = 1;
    loop {
        let candidate = if n == 1 {
            wanted.to_string()
        } else {
            format!("{wanted}-{n}")
        };
        if !taken(&candidate) && name_in_use(repo, &candidate)?.is_none() {
            return Ok(candidate);
        }
        n += 1;
    }
}

pub(super) fn name_in_use(repo: &Repo, name: &str) -> Result<Option<String>, RunError> {
    // A run stopped before its start was journaled ran nothing: its name
    // is free, and `execute` removes what it left first.
    if let Some(state) = State::open(&repo.workdir)?
        && never_started(&state, name)
    {
        return Ok(None);
    }
    let branch = refs::integration(name);
    if repo.has_ref(&branch)? {
        return Ok(Some(format!("branch {}", refs::integration_branch(name))));
    }
    if repo.has_refs_under(&refs::run_prefix(name))? {
        return Ok(Some(format!("refs under {}", refs::run_prefix(name))));
    }
    let dir = crate::layout::run_dir(&repo.workdir, name);
    // A link there is taken too (and refused later); never followed.
    if dir.symlink_metadata().is_ok() {
        return Ok(Some(format!("directory {}", dir.display())));
    }
    Ok(None)
}

/// Takes the lock of the new run `run`, the one step that makes
/// a name a process's own: two processes that chose the same name (two CI
/// jobs started at once) never both drive it. Under the lock, what a run
/// of that name stopped before its start left is cleared (its directory
/// and lock kept), and a run another process started meanwhile is never
/// joined. A name swarm chose moves on to the next free one; a name the
/// user gave (`--name`) is refused, naming the process that holds it.
pub(super) fn claim(
    repo: &Repo,
    run: &mut String,
    plan_name: &str,
    user_named: bool,
    state: &State,
) -> Result<RunLock, RunError> {
    let mut tried: Vec<String> = Vec::new();
    loop {
        let run_dir = crate::layout::run_dir(&repo.workdir, run);
        let existed = run_dir.symlink_metadata().is_ok();
        let refused = match lock_run(state, run) {
            Ok(lock) => {
                let journal = run_dir.join(crate::layout::JOURNAL);
                if journal_unstarted(&journal) {
                    if existed {
                        clear_unstarted(repo, state, run)?;
                    }
                    return Ok(lock);
                }
                RunError::NameTaken {
                    name: run.clone(),
                    what: "a run another swarm process started meanwhile".into(),
                }
            }
            Err(refused @ RunError::Locked { .. }) => refused,
            Err(e) => return Err(e),
        };
        if user_named {
            return Err(refused);
        }
        tried.push(std::mem::take(run));
        *run = free_run_name(repo, plan_name, |n| tried.iter().any(|t| t == n))?;
    }
}

/// Clears, under run `run`'s lock (held by the caller), what the run left
/// when it was stopped before its start was journaled: the `.lock` files of
/// refs it was writing, its integration branch (if it has no commits of its
/// own and is not checked out) and everything in its directory but the
/// lock.
fn clear_unstarted(repo: &Repo, state: &State, run: &str) -> Result<(), RunError> {
    use crate::git::branch::BranchFate;
    remove_stale_ref_locks(repo, run);
    // A branch with commits of its own (someone worked on it) or checked
    // out keeps the name taken.
    if let Some(BranchFate::Unmerged { name, .. } | BranchFate::CheckedOut { name }) =
        crate::git::branch::delete_branch(repo, run, false)?
    {
        return Err(RunError::NameTaken {
            name: run.to_string(),
            what: format!("branch {name}, with commits of its own or checked out"),
        });
    }
    for entry in state.entries(&[crate::layout::RUNS, run])? {
        if entry.name != crate::layout::LOCK {
            state.remove(&[crate::layout::RUNS, run, &entry.name])?;
        }
    }
    Ok(())
}

/// The newest run recorded in the repository at `workdir`, if any.
pub fn latest_run(workdir: &Path) -> Result<Option<String>, RunError> {
    match State::open(workdir)? {
        None => Ok(None),
        Some(state) => Ok(state.latest()?),
    }
}

/// Removes the lock files a coordinator killed in the middle of a ref
/// update left beside the run's refs (git refuses to touch a locked ref).
/// Safe: the caller holds the run's lock, so nobody else updates them.
#[allow(
    clippy::disallowed_methods,
    reason = "git's lock files beside the run's refs, in the repository's git directory"
)]
pub(crate) fn remove_stale_ref_locks(repo: &Repo, run: &str) {
    let refs_dir = repo.common_dir.join("refs");
    let branch_lock = refs_dir
        .join("heads")
        .join("swarm")
        .join(format!("{run}.lock"));
    let _ = std::fs::remove_file(branch_lock);
    remove_lock_files(&refs_dir.join("swarm").join(run));
}

/// Removes `*.lock` files directly in `dir`.
#[allow(
    clippy::disallowed_methods,
    reason = "git's lock files beside the run's refs, in the repository's git directory"
)]
pub(super) fn remove_lock_files(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".lock") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
