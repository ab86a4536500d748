//! `swarm clean`: frees what runs leave on disk (worktrees, private tmp
//! directories, git's worktree records) without losing anything. A worktree
//! whose content is not on a ref yet is committed to one first; task refs
//! go only when asked, and only for tasks whose work is merged; the
//! integration branch only when its tip is on another branch (or forced).
//!
//! Cleaning goes on past what it cannot do (a worktree it cannot commit is
//! left in place, and said so) and frees everything else. Everything is
//! removed through [`State`], so no link in `.swarm` is ever followed.
//!
//! What a worktree holds was written by its task: it is committed as a
//! task's result is (`git::snapshot`: streamed, no link followed), with
//! the task's own `max_file_size` as its journal recorded it, so a file
//! the task's result could not hold (a sparse file of 300 MiB) is never
//! read, and is said to be left out ([`Cleaned::left_out`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use git2::Oid;
use swarm_protocol::{EventBody, TaskStatus};

use crate::fold::RunFold;
pub use crate::git::branch::BranchFate;
use crate::git::branch::delete_branch;
use crate::git::{GitError, Repo, SnapshotLimits, Worktrees, refs, snapshot_screened};
use crate::ids::flat;
use crate::journal;
use crate::state::{Kind, State, StateError};
use crate::worktree_home::{HomeError, WorktreeHome};

/// What cleaning one run did.
#[derive(Debug, Default)]
pub struct Cleaned {
    pub run: String,
    /// Worktrees and checkouts removed.
    pub worktrees: usize,
    /// Bytes the removed worktrees held.
    pub worktree_bytes: u64,
    /// Private tmp directories (and git views) of tasks removed.
    pub tmp_dirs: usize,
    /// Bytes the removed tmp directories held.
    pub tmp_bytes: u64,
    /// Work that was only in a worktree, now committed: (task, ref).
    pub kept: Vec<(String, String)>,
    /// Files of a worktree that were not committed before it was removed
    /// (over the task's `max_file_size`, or unreadable), with their task.
    pub left_out: Vec<(String, swarm_protocol::SkippedFile)>,
    /// Task refs deleted (`--refs`): their commits are on `swarm/<run>`.
    pub refs_deleted: Vec<String>,
    /// Task refs `--refs` kept, with why.
    pub refs_kept: Vec<KeptRef>,
    /// What became of the integration branch (`--refs`; `None`: it does
    /// not exist).
    pub branch: Option<BranchFate>,
    /// Everything freed: worktrees and tmp directories.
    pub bytes_freed: u64,
    /// What could not be freed, each as a fragment after "failed to".
    pub problems: Vec<String>,
    /// Lines of the run's journal that could not be read.
    pub skipped: Vec<journal::Skipped>,
    /// A cluster run's shared repository, and how many of the run's refs
    /// there were removed (each naming a commit this repository holds).
    pub shared: Option<(String, usize)>,
    /// The run was stopped before its start was journaled (nothing of it
    /// ran): all of it went, its directory, lock and branch included, and
    /// its name is free again.
    pub unstarted: bool,
}

/// Removes run `run`'s refs (`refs/swarm/<run>/...`) from the shared
/// repository its cluster jobs pushed to (`layout::SHARED` in its
/// directory names it), each only where `repo` holds the commit it names:
/// nothing there is the only copy of anything. The repository and how many
/// refs went; `None` for a run that used none. The refs of its bases stay
/// while the run is not `finished`: a resumed coordinator's jobs (and the
/// ones still queued from before) fetch their bases from there.
fn clean_shared(
    repo: &Repo,
    state: &State,
    run: &str,
    finished: bool,
) -> Result<Option<(String, usize)>, String> {
    let recorded = state
        .read_file(&[crate::layout::RUNS, run, crate::layout::SHARED])
        .map_err(|e| e.to_string())?;
    let Some(shared) = recorded
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    // Never an option of git's.
    if shared.starts_with('-') {
        return Err(format!(
            "remove the run's refs in the shared repository `{}`: a name starting with `-` is no repository",
            crate::escape::line(&shared)
        ));
    }
    let prefix = refs::run_prefix(run);
    let bases = format!("{prefix}base.d/");
    let listed = repo
        .git(&repo.workdir)
        .args(["ls-remote", "--refs", &shared, &format!("{prefix}*")])
        .output()
        .map_err(|e| format!("list the run's refs in {shared}: {e}"))?;
    if !listed.status.success() {
        return Err(format!(
            "list the run's refs in {shared}: {}",
            String::from_utf8_lossy(&listed.stderr).trim()
        ));
    }
    let git = repo.open().map_err(|e| e.to_string())?;
    let held: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter_map(|line| {
            let (oid, name) = line.split_once('\t')?;
            let oid = Oid::from_str(oid.trim()).ok()?;
            let name = name.trim();
            let wanted = name.starts_with(&prefix) && (finished || !name.starts_with(&bases));
            (wanted && git.find_object(oid, None).is_ok()).then(|| name.to_string())
        })
        .collect();
    // A few hundred a push: an argument list stays short.
    for chunk in held.chunks(256) {
        let pushed = repo
            .git(&repo.workdir)
            .args(["push", "-q", &shared, "--delete"])
            .args(chunk)
            .output()
            .map_err(|e| format!("remove the run's refs in {shared}: {e}"))?;
        if !pushed.status.success() {
            return Err(format!(
                "remove the run's refs in {shared}: {}",
                String::from_utf8_lossy(&pushed.stderr).trim()
            ));
        }
    }
    Ok(Some((shared, held.len())))
}

/// A ref of the run that `--refs` kept: its commit is not on the
/// integration branch, so deleting it would lose work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptRef {
    /// The full ref name (`refs/swarm/<run>/<task>[.<attempt>]`).
    pub name: String,
    /// The task it belongs to, with its status, if the run knows it.
    pub task: Option<(String, TaskStatus)>,
    /// It holds an earlier attempt (or work `clean` kept from a worktree),
    /// not the task's result.
    pub attempt: bool,
    /// `swarm/<run>` does not exist, so no ref's work is on it.
    pub no_branch: bool,
}

/// Why a run could not be cleaned at all, as a fragment after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error(
        "clean run `{run}`: it is being driven by swarm process {holder}; clean it when it ends"
    )]
    Running { run: String, holder: String },
    #[error(
        "free the build caches: run `{run}` is being driven by swarm process {holder}, whose tasks use them; free them when it ends"
    )]
    CachesInUse { run: String, holder: String },
    #[error(
        "find the git records of worktree {path}: none under .git/worktrees names it, so its content cannot be committed"
    )]
    Unrecorded { path: std::path::PathBuf },
    #[error("clean run `{run}`: {message}")]
    Other { run: String, message: String },
}

/// Cleans run `run` of the repository (whose checked state directory is
/// `state`); with `delete_refs`, also deletes the run's refs whose commits
/// are on its integration branch, keeping (and listing in
/// [`Cleaned::refs_kept`]) the others. What it could not free is in
/// [`Cleaned::problems`].
///
/// With `delete_refs` the integration branch goes too, but only if its tip
/// is reachable from another branch or HEAD (as `git branch -d`), or with
/// `force` (as `git branch -D`); never while a worktree has it checked
/// out.
pub fn clean(
    repo: &Repo,
    state: &State,
    run: &str,
    delete_refs: bool,
    force: bool,
) -> Result<Cleaned, CleanError> {
    // Nobody may be driving the run while its worktrees go.
    let lock = match crate::run::lock_run(state, run) {
        Ok(lock) => lock,
        Err(crate::run::RunError::Locked { holder, .. }) => {
            return Err(CleanError::Running {
                run: run.into(),
                holder,
            });
        }
        Err(crate::run::RunError::State(e)) => return Err(CleanError::State(e)),
        Err(e) => {
            return Err(CleanError::Other {
                run: run.into(),
                message: e.to_string(),
            });
        }
    };
    // Only the run's coordinator writes its refs, and we hold its lock: a
    // ref's `.lock` file now is what a killed coordinator left.
    crate::run::names::remove_stale_ref_locks(repo, run);
    let (events, skipped) = read_journal(state, run)?;
    // The run's state, as every other reader of the journal sees it.
    let fold = RunFold::of(&events);
    // Each task's last attempt, the commit it started from, and the
    // largest file it may commit.
    let limits = max_file_sizes(&events);
    let started: HashMap<String, Started> = fold
        .report()
        .map(|r| r.tasks.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|t| {
            let s = fold.state(fold.index(&t.id)?)?;
            let max_file_size = limits
                .get(t.id.as_str())
                .copied()
                .unwrap_or(crate::plan::DEFAULT_MAX_FILE_SIZE);
            let started = Started {
                attempt: s.attempt,
                base: s.base?,
                max_file_size,
            };
            Some((t.id.clone(), started))
        })
        .filter(|(_, s)| s.attempt > 0)
        .collect();

    let mut cleaned = Cleaned {
        run: run.into(),
        skipped,
        ..Cleaned::default()
    };
    let worktrees = Worktrees::new(repo.clone());
    // Where the run's worktrees are: the home its journal recorded, if it
    // belongs to this repository (a journal is only a file).
    let recorded = recorded_home(&events);
    let home = match WorktreeHome::open(recorded, repo) {
        Ok(home) => home,
        Err(e) => {
            cleaned.problems.push(e.to_string());
            None
        }
    };
    if let Some(home) = &home {
        clean_worktrees(repo, &worktrees, home, run, &started, &mut cleaned)?;
    }
    for entry in state.entries(&[crate::layout::RUNS, run, crate::layout::TMP])? {
        let parts = [
            crate::layout::RUNS,
            run,
            crate::layout::TMP,
            entry.name.as_str(),
        ];
        let size = state.size(&parts);
        match state.remove(&parts) {
            Ok(()) => {
                cleaned.bytes_freed += size;
                cleaned.tmp_bytes += size;
                cleaned.tmp_dirs += 1;
            }
            Err(e) => cleaned.problems.push(e.to_string()),
        }
    }
    if let Err(e) = state.remove(&[crate::layout::RUNS, run, crate::layout::TMP]) {
        cleaned.problems.push(e.to_string());
    }
    if let Err(e) = worktrees.prune() {
        cleaned.problems.push(e.to_string());
    }
    // What the run wrote is on its refs (a worktree's content just
    // snapshotted included): its kept packs are git's again.
    crate::git::hold::release(&repo.common_dir, run);

    // A cluster run's refs in its shared repository are copies of what
    // this repository fetched: removed where this one holds their commit.
    let finished = fold.report().is_some_and(|r| r.finished_at.is_some());
    match clean_shared(repo, state, run, finished) {
        Ok(shared) => cleaned.shared = shared,
        Err(e) => cleaned.problems.push(e),
    }
    if delete_refs {
        // Before the branch goes: what is on it decides which refs go.
        if let Err(e) = delete_task_refs(repo, run, &fold, &mut cleaned) {
            cleaned.problems.push(e.to_string());
        }
        match delete_branch(repo, run, force) {
            Ok(fate) => cleaned.branch = fate,
            Err(e) => cleaned.problems.push(e.to_string()),
        }
    }
    let unstarted = cleaned.skipped.is_empty()
        && !events
            .iter()
            .any(|e| matches!(e.body, EventBody::RunStarted { .. }));
    if unstarted {
        drop(lock);
        match crate::run::discard_unstarted(repo, state, run) {
            Ok(fate) => {
                cleaned.unstarted = true;
                cleaned.branch = cleaned.branch.take().or(fate);
            }
            Err(e) => cleaned.problems.push(e.to_string()),
        }
    }
    Ok(cleaned)
}

/// What the journal says of a task's last attempt, for keeping what its
/// worktree holds.
#[derive(Debug, Clone, Copy)]
struct Started {
    attempt: u32,
    /// The commit the attempt started from.
    base: Oid,
    /// The task's `max_file_size`.
    max_file_size: u64,
}

/// Each task's `max_file_size` as its last `task_started` recorded it
/// (none in journals from before it was: swarm's default then).
fn max_file_sizes(events: &[swarm_protocol::Event]) -> HashMap<&str, u64> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::TaskStarted {
                task,
                max_file_size: Some(size),
                ..
            } => Some((task.as_str(), *size)),
            _ => None,
        })
        .collect()
}

/// Where run `run`'s journal is in the state directory `state`.
fn journal_path(state: &State, run: &str) -> std::path::PathBuf {
    state
        .path()
        .join(crate::layout::RUNS)
        .join(run)
        .join(crate::layout::JOURNAL)
}

/// The events of run `run`'s journal and the lines that could not be read
/// (none for a run whose journal was never written).
fn read_journal(
    state: &State,
    run: &str,
) -> Result<(Vec<swarm_protocol::Event>, Vec<journal::Skipped>), CleanError> {
    let path = journal_path(state, run);
    // Without its journal swarm cannot tell which worktree holds unsaved
    // work, so an unreadable one stops the run's cleaning (a missing one
    // means nothing ever started).
    match journal::read_tolerant(&path) {
        Ok(read) => Ok(read),
        Err(journal::JournalError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok((Vec::new(), Vec::new()))
        }
        Err(e) => Err(CleanError::Other {
            run: run.into(),
            message: format!("failed to {e}"),
        }),
    }
}

/// Where the run's worktrees are, as its `run_started` recorded (`None`:
/// a run from before worktree homes). Not part of the run's state, so not
/// in [`RunFold`]: only where its files are.
fn recorded_home(events: &[swarm_protocol::Event]) -> Option<&Path> {
    events.iter().find_map(|e| match &e.body {
        EventBody::RunStarted { worktrees, .. } => worktrees.as_deref().map(Path::new),
        _ => None,
    })
}

/// Deletes each ref under `refs/swarm/<run>/` whose commit is reachable
/// from `swarm/<run>`, and lists the others as kept: git, not a task's
/// status, says whether its work is anywhere else.
fn delete_task_refs(
    repo: &Repo,
    run: &str,
    fold: &RunFold,
    cleaned: &mut Cleaned,
) -> Result<(), GitError> {
    use crate::git::Context as _;
    let git = repo.open()?;
    let tip = git
        .find_reference(&refs::integration(run))
        .ok()
        .and_then(|r| r.target());
    let prefix = refs::run_prefix(run);
    let mut found: Vec<(String, Oid)> = git
        .references_glob(&format!("{prefix}*"))
        .context(|| format!("list the refs under {prefix}"))?
        .flatten()
        .filter_map(|r| Some((r.name().ok()?.to_string(), r.target()?)))
        .collect();
    found.sort();
    // Ref names hold a task's id flattened (`/` as `+`).
    let tasks: HashMap<String, (String, TaskStatus)> = fold
        .report()
        .map(|r| r.tasks.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|t| (flat(&t.id).into_owned(), (t.id.clone(), t.status)))
        .collect();
    for (name, commit) in found {
        let on_branch = match tip {
            Some(tip) => {
                tip == commit
                    || git
                        .graph_descendant_of(tip, commit)
                        .context(|| format!("compare {name} with swarm/{run}"))?
            }
            None => false,
        };
        if on_branch {
            match repo.delete_ref(&name) {
                Ok(()) => cleaned.refs_deleted.push(name),
                Err(e) => cleaned.problems.push(e.to_string()),
            }
            continue;
        }
        let short = name.strip_prefix(&prefix).unwrap_or(&name);
        let (task, attempt) = match tasks.get(short) {
            Some(task) => (Some(task.clone()), false),
            None => {
                let of = short
                    .rsplit_once('.')
                    .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|(base, _)| tasks.get(base));
                (of.cloned(), of.is_some())
            }
        };
        cleaned.refs_kept.push(KeptRef {
            name,
            task,
            attempt,
            no_branch: tip.is_none(),
        });
    }
    Ok(())
}

/// Removes run `run`'s worktrees in `home`, committing first what only a
/// worktree holds.
fn clean_worktrees(
    repo: &Repo,
    worktrees: &Worktrees,
    home: &WorktreeHome,
    run: &str,
    started: &HashMap<String, Started>,
    cleaned: &mut Cleaned,
) -> Result<(), CleanError> {
    home.check_run(run)?;
    let mut left = 0;
    for entry in home.entries(run)? {
        let name = entry.name;
        let path = home.run_dir(run).join(&name);
        if entry.kind != Kind::Dir {
            // Not a worktree swarm made: removed, never followed.
            if let Err(e) = home.remove(run, Some(&name)) {
                cleaned.problems.push(format!("{e}"));
                left += 1;
            }
            continue;
        }
        if !name.starts_with(".readonly-") {
            match keep(repo, worktrees, run, &name, &path, started.get(&name)) {
                Ok(Kept { made, left_out }) => {
                    if let Some(made) = made {
                        cleaned.kept.push((name.clone(), made));
                    }
                    let task = || name.clone();
                    cleaned
                        .left_out
                        .extend(left_out.into_iter().map(|f| (task(), f)));
                }
                Err(e) => {
                    cleaned.problems.push(format!(
                        "keep the work of task `{name}` (worktree {} left in place, nothing removed): failed to {e}",
                        path.display()
                    ));
                    left += 1;
                    continue;
                }
            }
        }
        let size = home.size(run, &name);
        match worktrees.remove(&path, None) {
            Ok(()) => {
                cleaned.bytes_freed += size;
                cleaned.worktree_bytes += size;
                cleaned.worktrees += 1;
            }
            Err(e) => {
                cleaned.problems.push(e.to_string());
                left += 1;
            }
        }
    }
    if left == 0
        && let Err(e) = home.remove(run, None)
    {
        cleaned.problems.push(e.to_string());
    }
    Ok(())
}

/// What [`keep`] did with a worktree.
#[derive(Debug, Default)]
struct Kept {
    /// The ref it committed the worktree's content to (`None`: that was on
    /// one already, or the task never started).
    made: Option<String>,
    /// The files it left out.
    left_out: Vec<swarm_protocol::SkippedFile>,
}

/// Commits the worktree of `task` to a ref of its own unless its content is
/// already on one of the task's refs, as the task's result is committed
/// (no file over its `max_file_size` read); says what it made and left out.
fn keep(
    repo: &Repo,
    worktrees: &Worktrees,
    run: &str,
    task: &str,
    path: &Path,
    started: Option<&Started>,
) -> Result<Kept, CleanError> {
    // A worktree of a task that never started holds nothing of its own.
    let Some(&Started {
        attempt,
        base,
        max_file_size,
    }) = started
    else {
        return Ok(Kept::default());
    };
    // Without git's record of it there is no index or object store to
    // commit with; deleting it would lose what it holds.
    let Some(admin) = worktrees.admin_dir(path) else {
        return Err(CleanError::Unrecorded {
            path: path.to_path_buf(),
        });
    };
    let message = format!(
        "swarm: {run}/{task}: worktree content kept by swarm clean\n\nSwarm-Run: {run}\nSwarm-Task: {task}\nSwarm-Attempt: {attempt}\n"
    );
    // The task wrote what is there: what its own result could not hold
    // is never read (a sparse file of any size costs nothing), and is said.
    let limits = SnapshotLimits {
        scope: &[],
        max_file_size,
        run,
    };
    // The person's included files (a failed task's copy of `.env`) are
    // never committed, here either: left out before they are written.
    let screen = crate::worktree_include::screen_of(&repo.workdir);
    let (snap, _) = snapshot_screened(path, &admin, base, limits, Some(&screen), |_, _| {
        message.clone()
    })?;
    let left_out = snap.skipped;
    let tree = repo.tree_of(snap.commit)?;
    let mut existing = vec![refs::task(run, task)];
    existing.extend((1..=attempt + 1).map(|n| refs::attempt(run, task, n)));
    for name in &existing {
        if let Ok(commit) = repo.resolve(name)
            && repo.tree_of(commit)? == tree
        {
            return Ok(Kept {
                made: None,
                left_out,
            });
        }
    }
    let free = (attempt..)
        .map(|n| refs::attempt(run, task, n))
        .find(|name| !repo.has_ref(name).unwrap_or(true))
        .unwrap_or_else(|| refs::attempt(run, task, u32::MAX));
    repo.set_ref(&free, snap.commit, "swarm clean: worktree content")?;
    Ok(Kept {
        made: Some(free),
        left_out,
    })
}

/// Which runs `swarm clean` frees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// One run (default: the latest).
    One(Option<String>),
    /// Every run (`--all`).
    All,
    /// Every run that started longer ago than this (`--older-than`).
    OlderThan(std::time::Duration),
}

/// Why the runs to clean could not be chosen, as a fragment after
/// "failed to".
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("clean run `{run}`: no such run in {} (runs: {})", workdir.display(), match known.is_empty() {
        true => "none".to_string(),
        false => known.join(", "),
    })]
    NoSuchRun {
        run: String,
        workdir: PathBuf,
        known: Vec<String>,
    },
}

/// The runs of the repository at `workdir` (whose checked state directory
/// is `state`) that `which` names, as of `now` (`None`: it names the
/// latest, and there is none), each run's layout checked before anything
/// is removed: a link anywhere refuses the whole command.
pub fn select(
    state: &State,
    workdir: &Path,
    which: Which,
    now: std::time::SystemTime,
) -> Result<Option<Vec<String>>, SelectError> {
    let known = runs(state)?;
    let runs = match which {
        Which::All => known,
        // Proven old by its journal's first event: a run without a
        // readable one is left for `swarm clean RUN`.
        Which::OlderThan(age) => {
            // (None older than an age before the epoch.)
            let before = now.checked_sub(age);
            known
                .into_iter()
                .filter(|run| before.is_some_and(|b| started(state, run).is_some_and(|s| s < b)))
                .collect()
        }
        Which::One(run) => {
            let Some(run) = run.or(state.latest()?) else {
                return Ok(None);
            };
            if !known.contains(&run) {
                return Err(SelectError::NoSuchRun {
                    run,
                    workdir: workdir.to_path_buf(),
                    known,
                });
            }
            vec![run]
        }
    };
    for run in &runs {
        state.check_run(run)?;
    }
    Ok(Some(runs))
}

/// Every run recorded in the repository (whose checked state directory is
/// `state`), by name.
pub fn runs(state: &State) -> Result<Vec<String>, StateError> {
    state.runs()
}

/// When run `run` started, by its journal's `run_started` (read up to
/// there, not whole: this is asked of every run at every run's end):
/// `None` when that cannot be read (nothing is proven of such a run).
pub fn started(state: &State, run: &str) -> Option<std::time::SystemTime> {
    state.check_run(run).ok()?;
    let first = journal::run_started(&journal_path(state, run))?;
    humantime::parse_rfc3339_weak(&first.ts).ok()
}

/// Cleans the runs of the repository beyond the newest `keep` (by when
/// they started, `current` among them and never cleaned), as
/// `swarm clean --refs` does without `--force`: nothing that holds the only
/// copy of work goes. A run being driven, or whose start cannot be read,
/// is left alone; one cleaned so before is not cleaned again. What each
/// clean did, in the order of their starts.
pub fn keep_newest(
    repo: &Repo,
    state: &State,
    keep: u32,
    current: &str,
) -> Result<Vec<Cleaned>, CleanError> {
    if keep == 0 {
        return Ok(Vec::new());
    }
    let mut dated: Vec<(std::time::SystemTime, String)> = state
        .runs()?
        .into_iter()
        .filter(|run| run != current)
        .filter_map(|run| Some((started(state, &run)?, run)))
        .collect();
    // Newest first; the current run is one of those kept.
    dated.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut cleaned = Vec::new();
    for (_, run) in dated.into_iter().skip(keep.saturating_sub(1) as usize) {
        let marked = state
            .read_file(&[crate::layout::RUNS, &run, crate::layout::CLEANED])
            .ok()
            .flatten()
            .is_some();
        if marked {
            continue;
        }
        match clean(repo, state, &run, true, false) {
            Ok(c) => {
                // A run cleaned whole (`unstarted`) has no directory left.
                if !c.unstarted {
                    let _ = state
                        .replace_file(&[crate::layout::RUNS, &run, crate::layout::CLEANED], "");
                }
                cleaned.push(c);
            }
            // Driven right now: its own end will see to it.
            Err(CleanError::Running { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(cleaned)
}

/// One build cache of the repository: `<home>/.cache/<tool>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildCache {
    pub tool: String,
    pub path: std::path::PathBuf,
    pub bytes: u64,
}

/// The repository's worktree homes that its runs recorded (each opened
/// and checked to be the repository's), once each.
fn homes(repo: &Repo, state: &State) -> Result<Vec<WorktreeHome>, CleanError> {
    let mut homes: Vec<WorktreeHome> = Vec::new();
    for run in state.runs()? {
        let (events, _) = read_journal(state, &run)?;
        // A home that is gone or not the repository's has no cache of it.
        if let Ok(Some(home)) = WorktreeHome::open(recorded_home(&events), repo)
            && !homes.iter().any(|h| h.path() == home.path())
        {
            homes.push(home);
        }
    }
    Ok(homes)
}

/// The build caches the repository's tasks share (they outlive runs, so
/// cleaning a run keeps them), with their sizes.
pub fn caches(repo: &Repo, state: &State) -> Result<Vec<BuildCache>, CleanError> {
    let mut out = Vec::new();
    for home in homes(repo, state)? {
        for (tool, path, bytes) in home.caches()? {
            out.push(BuildCache { tool, path, bytes });
        }
    }
    Ok(out)
}

/// What [`free_warm`] did.
#[derive(Debug, Default)]
pub struct FreedWarm {
    /// Warm worktrees and kept setups removed, with their sizes.
    pub removed: Vec<(PathBuf, u64)>,
    /// Warm worktrees and kept setups left as they are, and why.
    pub kept: Vec<(PathBuf, String)>,
    /// What could not be removed, each as a fragment after "failed to".
    pub problems: Vec<String>,
}

/// Removes the repository's warm worktrees (`run::warm`) and kept
/// `[setup]`s. A warm worktree another run holds is left alone, and so is
/// one an interrupted run left unproven (what it holds may be on no ref:
/// `swarm resume` of that run keeps it first).
pub fn free_warm(repo: &Repo, state: &State) -> Result<FreedWarm, CleanError> {
    use crate::run::warm::{Unavailable, WarmDir, list};
    let mut freed = FreedWarm::default();
    let worktrees = crate::git::Worktrees::new(repo.clone());
    for home in homes(repo, state)? {
        let dir = home.path().join(".warm");
        let warm = WarmDir::new(dir.clone());
        for (flat, path) in list(&dir) {
            match warm.lease(&flat, "swarm clean", false) {
                Ok(Ok(lease)) => {
                    let bytes = home.warm_size(&flat);
                    match worktrees.remove(&path, None) {
                        // The lease file stays: a run that opened it
                        // while it was held must lock the same file.
                        Ok(()) => freed.removed.push((path, bytes)),
                        Err(e) => freed.problems.push(e.to_string()),
                    }
                    // Its kept tmp goes with it (under the same lease),
                    // and the mark that said it was worth keeping.
                    let _ = crate::untrusted::TaskDir::discard(&warm.tmp_mark(&flat));
                    let tmp = warm.tmp_path(&flat);
                    let tmp_bytes = home.warm_tmp_size(&flat);
                    if tmp_bytes > 0 || tmp.symlink_metadata().is_ok() {
                        match home.remove_warm_tmp(&flat) {
                            Ok(()) => freed.removed.push((tmp, tmp_bytes)),
                            Err(e) => freed.problems.push(e.to_string()),
                        }
                    }
                    drop(lease);
                }
                Ok(Err(Unavailable::Busy)) => freed
                    .kept
                    .push((path, "a run is using this warm worktree".to_string())),
                Ok(Err(Unavailable::Unproven { run })) => freed.kept.push((
                    path,
                    format!("run `{run}` was interrupted in this warm worktree: `swarm resume {run}` keeps its work on a ref first"),
                )),
                Err(e) => freed
                    .problems
                    .push(format!("take the warm worktree {}: {e}", path.display())),
            }
        }
        if home.setups_size() > 0 {
            let (bytes, held, problems) = home.remove_setups();
            if bytes > 0 {
                freed.removed.push((home.path().join(".setup"), bytes));
            }
            freed.kept.extend(held.into_iter().map(|path| {
                (
                    path,
                    "a run is copying this kept setup or showing it to its tasks".to_string(),
                )
            }));
            freed.problems.extend(problems);
        }
    }
    Ok(freed)
}

/// What [`free_caches`] did.
#[derive(Debug, Default)]
pub struct FreedCaches {
    pub removed: Vec<BuildCache>,
    /// What could not be removed, each as a fragment after "failed to".
    pub problems: Vec<String>,
}

/// Removes the repository's build caches. Refused while any of its runs
/// is being driven: its tasks share them.
pub fn free_caches(repo: &Repo, state: &State) -> Result<FreedCaches, CleanError> {
    let mut locks = Vec::new();
    for run in state.runs()? {
        match crate::run::lock_run(state, &run) {
            Ok(lock) => locks.push(lock),
            Err(crate::run::RunError::Locked { holder, .. }) => {
                return Err(CleanError::CachesInUse { run, holder });
            }
            Err(crate::run::RunError::State(e)) => return Err(CleanError::State(e)),
            Err(e) => {
                return Err(CleanError::Other {
                    run,
                    message: e.to_string(),
                });
            }
        }
    }
    let mut freed = FreedCaches::default();
    for home in homes(repo, state)? {
        for (tool, path, bytes) in home.caches()? {
            match home.remove_cache(&tool) {
                Ok(()) => freed.removed.push(BuildCache { tool, path, bytes }),
                Err(e) => freed.problems.push(e.to_string()),
            }
        }
        if let Err(e) = home.remove_records() {
            freed.problems.push(e.to_string());
        }
    }
    drop(locks);
    Ok(freed)
}
