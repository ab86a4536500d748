//! Taking over a run whose coordinator died (kill -9, power loss, OOM) or
//! was cancelled: what the journal and git say happened, so the resumed
//! dispatcher runs only what is left.
//!
//! Finished tasks are not run again; merges already done are not redone
//! (the integration branch's tip is read from git, which also catches a
//! merge whose journal line was lost to the crash). Tasks that were running
//! start again from a clean worktree, after their worktree, as the crash
//! left it, is committed to `<task>.<attempt>`: nothing is lost.

#![allow(
    clippy::disallowed_methods,
    reason = "a run's own files and git's records of the repository"
)]

use std::path::Path;

use git2::Oid;
use swarm_protocol::{Event, EventBody, Isolation, TaskStatus};

use super::error::RunError;
use super::executor::Reattached;
use super::names::{remove_lock_files, remove_stale_ref_locks};
use crate::fold::{RunFold, TaskState};
use crate::git::{Context, Leftover, Repo, SnapshotLimits, Worktrees, refs, snapshot_screened};
use crate::ids::TaskIndex;
use crate::plan::Task;

/// A run's state as the crash left it.
#[derive(Debug)]
pub(super) struct Recovered {
    /// What the journal's events add up to.
    pub fold: RunFold,
    /// Every task that runs (again): announced in `run_resumed`.
    pub pending: Vec<TaskIndex>,
    /// The number each task's next attempt gets: after every attempt the
    /// journal or the task's refs know of.
    pub first_attempt: Vec<u32>,
    pub base_commit: Oid,
    pub integration: Oid,
    /// Tasks that were running when the coordinator died or was cancelled.
    pub restarted: Vec<TaskIndex>,
    /// Tasks that were running and still are: their executor adopted them.
    pub adopted: Vec<TaskIndex>,
    /// Failed tasks that run again (`--retry-failed`).
    pub retried: Vec<TaskIndex>,
    /// A task whose merge git shows but the journal lost to the crash.
    pub merged_by_git: Option<TaskIndex>,
    /// The journal's `run_started`, shown again to the new observer.
    pub run_started: Event,
    /// What was wrong with the integration branch, if it had to be made
    /// again (`lost_branch`).
    pub rebuilt: Option<String>,
}

/// How a run is resumed: the command line's and the plan's part.
#[derive(Debug, Clone, Copy)]
pub(super) struct How<'a> {
    /// `--retry-failed` (and its `--only` ids).
    pub retry_failed: Option<&'a [String]>,
    /// The plan merges squashed (`history = "squash"`).
    pub squash: bool,
}

fn not_resumable(run: &str, why: impl Into<String>) -> RunError {
    RunError::NotResumable {
        run: run.to_string(),
        why: why.into(),
    }
}

/// Reads run `run`'s journal and git state, and prepares every unfinished
/// task to run again (snapshotting what it left first). `reattach` asks
/// the executor whether an attempt the journal says was running still is.
pub(super) fn recover(
    repo: &Repo,
    run: &str,
    run_dir: &Path,
    worktree_dir: &Path,
    tasks: &[Task],
    how: How<'_>,
    reattach: &mut dyn FnMut(TaskIndex, &TaskState) -> Reattached,
) -> Result<Recovered, RunError> {
    let retry_failed = how.retry_failed;
    let Journaled {
        events,
        run_started,
        base_commit,
        branch: integration_branch,
        finished,
    } = read_journal(repo, run, run_dir, tasks)?;

    // Numbered as the run's task table numbers them (`TaskIndex`), which
    // the dispatcher it resumes indexes by.
    let mut fold = RunFold::of(&events);
    fold.number(tasks.iter().map(|t| t.id.as_str()))
        .map_err(|_| not_resumable(run, "its journal does not list every task"))?;
    let state: Vec<TaskState> = TaskIndex::all(tasks.len())
        .map(|i| fold.state(i).cloned().unwrap_or_default())
        .collect();
    let mut status: Vec<TaskStatus> = TaskIndex::all(tasks.len())
        .map(|i| fold.status(i))
        .collect();

    let retried = retried_tasks(run, tasks, &status, retry_failed)?;
    for &i in &retried {
        status[i] = TaskStatus::Pending;
    }
    if let Some(exit_code) = finished
        && !has_runnable(tasks, &status)
    {
        let failed = status.iter().any(|s| {
            matches!(
                s,
                TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::Stalled
            )
        });
        return Err(RunError::Finished {
            run: run.to_string(),
            exit_code,
            hint: if failed {
                format!(
                    "after fixing the cause, `swarm resume {run} --retry-failed` runs its failed tasks again"
                )
            } else {
                "run the plan again with `swarm run`".to_string()
            },
        });
    }

    let (integration, rebuilt) = integration_tip(
        repo,
        run,
        base_commit,
        integration_branch.is_some(),
        (&events, &fold),
        tasks,
        how.squash,
    )?;
    let merged_by_git = merged_task_of(repo, integration)?
        .and_then(|task| tasks.iter().position(|t| t.id == task))
        .filter(|&i| status[i] == TaskStatus::Succeeded);
    if let Some(i) = merged_by_git {
        status[i] = TaskStatus::Merged;
    }

    let worktrees = Worktrees::new(repo.clone());
    let mut pending = Vec::new();
    let mut restarted = Vec::new();
    let mut adopted = Vec::new();
    let mut first_attempt: Vec<u32> = state.iter().map(|s| s.attempt + 1).collect();
    for (i, task) in tasks.iter().enumerate() {
        let s = &state[i];
        if settled_variant(tasks, &status, i) {
            continue;
        }
        // A task that spawned subtasks does not run again: unless it
        // ended, it waits for them again (its own work is on its ref).
        if s.spawned.is_some() {
            if matches!(
                status[i],
                TaskStatus::Running
                    | TaskStatus::Cancelled
                    | TaskStatus::Blocked
                    | TaskStatus::Skipped
            ) {
                pending.push(i);
            }
            continue;
        }
        let runs_again = match status[i] {
            TaskStatus::Merged
            | TaskStatus::Succeeded
            | TaskStatus::Failed
            | TaskStatus::TimedOut
            | TaskStatus::Stalled
            | TaskStatus::Conflicted
            | TaskStatus::BrokeVerify => false,
            // Interrupted (a crash) or cancelled (Ctrl-C) while running:
            // its partial work is kept and it starts over, unless its
            // executor still runs it.
            TaskStatus::Running | TaskStatus::Cancelled if s.attempt > 0 => {
                if status[i] == TaskStatus::Running
                    && reattach(TaskIndex::new(i), s) == Reattached::Adopted
                {
                    adopted.push(i);
                    continue;
                }
                restarted.push(i);
                true
            }
            // Cancelled or skipped before it started, blocked: to run.
            _ => true,
        };
        if runs_again {
            let retrying = retried.contains(&i);
            let kept = keep_leftovers(repo, &worktrees, run, worktree_dir, task, s, retrying)?;
            first_attempt[i] = s.attempt.max(kept.unwrap_or(0)) + 1;
            pending.push(i);
        }
    }
    let indices = |list: Vec<usize>| list.into_iter().map(TaskIndex::new).collect();
    Ok(Recovered {
        fold,
        pending: indices(pending),
        first_attempt,
        base_commit,
        integration,
        restarted: indices(restarted),
        adopted: indices(adopted),
        retried: indices(retried),
        merged_by_git: merged_by_git.map(TaskIndex::new),
        run_started,
        rebuilt,
    })
}

/// What a run's journal says, read after its last line was repaired.
struct Journaled {
    events: Vec<swarm_protocol::Event>,
    run_started: swarm_protocol::Event,
    base_commit: Oid,
    /// Its integration branch (`None`: a read-only run).
    branch: Option<String>,
    /// Its exit code, if it ended by itself (not cancelled).
    finished: Option<i32>,
}

/// Reads run `run`'s journal (in `run_dir`), its torn last line repaired
/// and stale ref locks gone, and checks it names the tasks of `tasks`.
fn read_journal(
    repo: &Repo,
    run: &str,
    run_dir: &Path,
    tasks: &[Task],
) -> Result<Journaled, RunError> {
    let journal = run_dir.join(crate::layout::JOURNAL);
    if !journal.exists() {
        return Err(not_resumable(
            run,
            format!("it has no journal at {}", journal.display()),
        ));
    }
    remove_stale_ref_locks(repo, run);
    crate::journal::repair(&journal).map_err(|source| RunError::Io {
        action: format!("repair journal {}", journal.display()),
        source,
    })?;
    let events =
        crate::journal::read(&journal).map_err(|e| not_resumable(run, format!("failed to {e}")))?;
    let Some(run_started) = events
        .iter()
        .find(|e| matches!(e.body, EventBody::RunStarted { .. }))
        .cloned()
    else {
        return Err(not_resumable(run, "its journal has no run_started event"));
    };
    let EventBody::RunStarted {
        base_commit,
        tasks: infos,
        integration_branch,
        ..
    } = &run_started.body
    else {
        return Err(not_resumable(run, "its journal has no run_started event"));
    };
    let base_commit = Oid::from_str(base_commit)
        .map_err(|_| not_resumable(run, "its base commit is unreadable"))?;
    let mut wanted: Vec<&str> = infos.iter().map(|t| t.id.as_str()).collect();
    // Subtasks are not in `run_started`: their `subtasks_spawned` made them.
    let mut have: Vec<&str> = tasks
        .iter()
        .map(|t| t.id.as_str())
        .filter(|id| crate::ids::depth(id) == 0)
        .collect();
    wanted.sort_unstable();
    have.sort_unstable();
    if wanted != have {
        return Err(not_resumable(
            run,
            "its saved plan does not have the tasks its journal names",
        ));
    }
    // A run that ended by itself is resumed only to run what it skipped
    // (`on_failure = "stop"`); a cancelled one, whatever is left.
    let finished = match events.last().map(|e| &e.body) {
        Some(EventBody::RunFinished { exit_code, .. })
            if *exit_code != crate::exit::INTERRUPTED =>
        {
            Some(*exit_code)
        }
        _ => None,
    };
    let branch = integration_branch.clone();
    Ok(Journaled {
        events,
        run_started,
        base_commit,
        branch,
        finished,
    })
}

/// The integration branch's tip at resume, and why it was made again if
/// it was: git is the truth about merges (the journal line of the last
/// one may have been lost to the crash: the branch moves first); a
/// read-only run (`has_branch` false) has none, its base stands for it;
/// a branch git maintenance broke is made again from what the refs hold
/// (`lost_branch`).
fn integration_tip(
    repo: &Repo,
    run: &str,
    base_commit: Oid,
    has_branch: bool,
    (events, fold): (&[swarm_protocol::Event], &RunFold),
    tasks: &[Task],
    squash: bool,
) -> Result<(Oid, Option<String>), RunError> {
    let mut rebuilt = None;
    let integration = match has_branch {
        false => base_commit,
        true => {
            let branch = refs::integration(run);
            let why = match super::lost_branch::tip_of(repo, &branch) {
                Some(tip) => super::lost_branch::broken(repo, tip, base_commit),
                None => Some("it is gone".to_string()),
            };
            match why {
                None => repo.resolve(&branch)?,
                Some(why) => {
                    let tip = super::lost_branch::make_again(
                        repo,
                        run,
                        base_commit,
                        events,
                        fold,
                        tasks,
                        squash,
                    )
                    .map_err(|what| {
                        not_resumable(
                            run,
                            format!("its integration branch is broken ({why}), and {what}"),
                        )
                    })?;
                    rebuilt = Some(why);
                    tip
                }
            }
        }
    };
    let integration = match has_branch {
        true => super::verify::rebuild::reconcile(repo, run, base_commit, integration, fold)?,
        false => integration,
    };
    Ok((integration, rebuilt))
}

/// The failed (or timed-out) tasks `--retry-failed` runs again: all of
/// them, or the ones named (each must exist and have failed).
fn retried_tasks(
    run: &str,
    tasks: &[Task],
    status: &[TaskStatus],
    retry_failed: Option<&[String]>,
) -> Result<Vec<usize>, RunError> {
    let Some(only) = retry_failed else {
        return Ok(Vec::new());
    };
    let failed = |i: usize| {
        matches!(
            status[i],
            TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::Stalled
        )
    };
    let mut retried = Vec::new();
    if only.is_empty() {
        retried.extend((0..tasks.len()).filter(|&i| failed(i)));
    }
    for id in only {
        let Some(i) = tasks.iter().position(|t| &t.id == id) else {
            let hint = crate::plan::did_you_mean(id, tasks.iter().map(|t| t.id.as_str()))
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return Err(not_resumable(run, format!("it has no task `{id}`{hint}")));
        };
        if !failed(i) {
            let now = status[i].as_str();
            return Err(not_resumable(
                run,
                format!(
                    "task `{id}` did not fail (it is {now}); --retry-failed runs only failed tasks again"
                ),
            ));
        }
        retried.push(i);
    }
    if retried.is_empty() {
        return Err(not_resumable(
            run,
            "no task of it failed or timed out, so there is nothing to retry",
        ));
    }
    Ok(retried)
}

/// Whether task `i` is a variant that does not run again although it did
/// not finish: its experiment was decided, or another variant passed first
/// under `pick = "first"` (which stopped this one).
fn settled_variant(tasks: &[Task], status: &[TaskStatus], i: usize) -> bool {
    let Some(variant) = tasks[i].variant() else {
        return false;
    };
    let Some(e) = tasks.iter().position(|t| t.id == variant.of) else {
        return false;
    };
    let decided = !matches!(
        status[e],
        TaskStatus::Pending | TaskStatus::Running | TaskStatus::Cancelled | TaskStatus::Blocked
    );
    let first_passed = tasks[e]
        .experiment()
        .is_some_and(|x| x.pick == crate::plan::Pick::First)
        && tasks.iter().enumerate().any(|(j, t)| {
            t.variant().is_some_and(|v| v.of == variant.of) && status[j] == TaskStatus::Succeeded
        });
    decided || first_passed
}

/// Whether some task would run: one not final (to run again) none of whose
/// dependencies, direct or not, failed, timed out or conflicted.
fn has_runnable(tasks: &[Task], status: &[TaskStatus]) -> bool {
    // In merge order (dependencies first), without recursion: plans of
    // thousands of tasks may be one long chain.
    let graph = crate::graph::TaskGraph::new(tasks);
    let mut dead = vec![false; tasks.len()];
    for i in graph.merge_order().iter().map(|i| i.get()) {
        let failed = matches!(
            status[i],
            TaskStatus::Failed
                | TaskStatus::TimedOut
                | TaskStatus::Stalled
                | TaskStatus::Conflicted
                | TaskStatus::BrokeVerify
        );
        // An experiment lives while any of its variants does.
        dead[i] = failed
            || match tasks[i].experiment() {
                Some(_) => graph.deps(TaskIndex::new(i)).all(|d| dead[d.get()]),
                None => graph.deps(TaskIndex::new(i)).any(|d| dead[d.get()]),
            };
    }
    (0..tasks.len()).any(|i| {
        let to_run = !matches!(status[i], TaskStatus::Merged | TaskStatus::Succeeded)
            && !settled_variant(tasks, status, i);
        to_run && !dead[i]
    })
}

/// The task whose merge made `commit`, from its `Swarm-Task:` trailer.
fn merged_task_of(repo: &Repo, commit: Oid) -> Result<Option<String>, RunError> {
    let git = repo.open()?;
    let commit = git
        .find_commit(commit)
        .context(|| "read the integration branch".into())?;
    let message = commit.message().unwrap_or_default();
    // A merge, or with `history = "squash"` a task's one commit.
    if commit.parent_count() < 2 && !message.starts_with("swarm: squash ") {
        return Ok(None);
    }
    Ok(message
        .lines()
        .find_map(|l| l.strip_prefix("Swarm-Task: "))
        .map(|t| t.trim().to_string()))
}

/// Before a task runs again: commits what its last, interrupted attempt
/// left in its worktree to `<task>.<attempt>` and removes the worktree;
/// without a worktree, its result ref is kept there. The attempt number it
/// kept something as, if it did: the task's next attempt comes after it.
fn keep_leftovers(
    repo: &Repo,
    worktrees: &Worktrees,
    run: &str,
    worktree_dir: &Path,
    task: &Task,
    state: &TaskState,
    retrying: bool,
) -> Result<Option<u32>, RunError> {
    let mut attempt = state.attempt.max(1);
    let mut kept = None;
    let flat = crate::ids::flat(&task.id);
    let mut path = worktree_dir.join(&*flat);
    // Or its warm worktree (`run::warm`), which this run left in use.
    let warm = worktree_dir
        .parent()
        .map(|home| super::warm::WarmDir::new(home.join(".warm")))
        .filter(|w| {
            task.isolation == Isolation::Worktree
                && path.symlink_metadata().is_err()
                && w.left_by(&flat).as_deref() == Some(run)
        });
    if let Some(w) = &warm {
        path = w.path(&flat);
    }
    let leftover = if task.isolation == Isolation::Worktree {
        worktrees.leftover(&path)
    } else {
        Leftover::Nothing
    };
    let worktree = leftover != Leftover::Nothing;
    // The crash may have come while the next attempt's worktree was being
    // made, before its `task_started` line: the journal's last attempt is
    // then kept already, and what the worktree holds is the next one's.
    if worktree && repo.has_ref(&refs::attempt(run, &task.id, attempt))? {
        attempt += 1;
    }
    let keep_ref = refs::attempt(run, &task.id, attempt);
    if worktree {
        // The journal may not have heard of the attempt (the crash came
        // between its worktree and its `task_started` line): the worktree's
        // own record says where it started.
        let admin = match leftover {
            Leftover::Made { admin } => Some(admin),
            // Cut short while it was being made: nothing ran in it.
            Leftover::HalfMade | Leftover::Nothing => None,
        };
        let base = state
            .base
            .or_else(|| admin.as_deref().and_then(Worktrees::checked_out_at));
        if let (Some(admin), Some(base)) = (admin, base) {
            // A snapshot or checkout the crash interrupted left its locks.
            remove_lock_files(&admin);
            let what = if retrying {
                "failed, kept before a retry"
            } else {
                "interrupted"
            };
            let message = format!(
                "swarm: {run}/{id}: {what} (attempt {attempt})\n\nSwarm-Run: {run}\nSwarm-Task: {id}\nSwarm-Attempt: {attempt}\n",
                id = task.id
            );
            let checkout = task.checkout();
            let limits = SnapshotLimits {
                scope: &checkout,
                max_file_size: task.max_file_size,
                run,
            };
            // The person's included files are never committed, nor a
            // copy the interrupted task made of one.
            let screen = crate::worktree_include::screen_of(&repo.workdir);
            let (snap, _) =
                snapshot_screened(&path, &admin, base, limits, Some(&screen), |_, _| {
                    message.clone()
                })?;
            repo.set_ref(&keep_ref, snap.commit, "swarm: interrupted attempt")?;
            kept = Some(attempt);
        }
        match &warm {
            // Its content is on a ref now: it stays, warm, for the task.
            Some(w) => match w.lease(&flat, run, true) {
                Ok(Ok(mut lease)) => lease.release().map_err(|source| RunError::Io {
                    action: format!("release the warm worktree {}", path.display()),
                    source,
                })?,
                _ => {
                    tracing::warn!(task = %task.id, "failed to release its warm worktree; the task gets a fresh one")
                }
            },
            None => worktrees.remove(&path, None)?,
        }
    } else if let Ok(commit) = repo.resolve(&refs::task(run, &task.id))
        && !repo.has_ref(&keep_ref)?
    {
        // Whether or not the journal heard of that attempt's end (a task
        // blocked at its merge, or retried, finished it): the task runs
        // again and its ref will be replaced.
        repo.set_ref(&keep_ref, commit, "swarm: result of an interrupted attempt")?;
        kept = Some(attempt);
    }
    Ok(kept)
}
