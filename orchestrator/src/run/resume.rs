//! Taking over a run whose coordinator died (kill -9, power loss, OOM) or
//! was cancelled: what the journal and git say happened, so the resumed
//! dispatcher runs only what is left.
//!
//! Finished tasks are not run again; merges already done are not redone
//! (the integration branch's tip is read from git, which also catches a
//! merge whose journal line was lost to the crash). Tasks that were running
//! start again from a clean worktree, after their worktree, as the crash
//! left it, is committed to `<task>.<attempt>`: nothing is lost.

use std::collections::HashMap;
use std::path::Path;

use git2::Oid;
use swarm_protocol::{Event, EventBody, Isolation, TaskStatus};

use super::RunError;
use crate::git::{Context, Repo, SnapshotLimits, Worktrees, refs, snapshot};
use crate::plan::Task;

/// A run's state as the crash left it.
#[derive(Debug)]
pub(super) struct Recovered {
    pub status: Vec<TaskStatus>,
    pub result: Vec<Option<Oid>>,
    /// The attempt number each task to run starts at.
    pub next_attempt: Vec<u32>,
    pub base_commit: Oid,
    pub integration: Oid,
    /// Tasks that were running when the coordinator died or was cancelled.
    pub restarted: Vec<usize>,
    /// Failed tasks that run again (`--retry-failed`).
    pub retried: Vec<usize>,
    /// The journal's `run_started`, shown again to the new observer.
    pub run_started: Event,
}

/// What the journal says of one task.
#[derive(Debug, Default, Clone)]
struct Seen {
    status: Option<TaskStatus>,
    started: Option<(u32, Oid)>,
    commit: Option<Oid>,
    merged: Option<Oid>,
    /// It failed and runs again (`--retry-failed`): what its kept worktree
    /// is committed as says so.
    retrying: bool,
}

fn not_resumable(run: &str, why: impl Into<String>) -> RunError {
    RunError::NotResumable {
        run: run.to_string(),
        why: why.into(),
    }
}

fn oid(text: &str) -> Option<Oid> {
    Oid::from_str(text).ok()
}

/// Reads run `run`'s journal and git state, and prepares every unfinished
/// task to run again (snapshotting what it left first).
pub(super) fn recover(
    repo: &Repo,
    worktrees: &Worktrees,
    run: &str,
    run_dir: &Path,
    worktree_dir: &Path,
    tasks: &[Task],
    retry_failed: Option<&[String]>,
) -> Result<Recovered, RunError> {
    let journal = run_dir.join("events.jsonl");
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
    let base_commit =
        oid(base_commit).ok_or_else(|| not_resumable(run, "its base commit is unreadable"))?;
    let mut wanted: Vec<&str> = infos.iter().map(|t| t.id.as_str()).collect();
    let mut have: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
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

    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    let mut seen = vec![Seen::default(); tasks.len()];
    let at = |id: &str| index.get(id).copied();
    for event in &events {
        match &event.body {
            EventBody::TaskStarted {
                task,
                attempt,
                base_commit,
                ..
            } => {
                if let (Some(i), Some(base)) = (at(task), oid(base_commit)) {
                    seen[i].started = Some((*attempt, base));
                    seen[i].status = Some(TaskStatus::Running);
                }
            }
            EventBody::AttemptFinished { task, commit, .. } => {
                if let Some(i) = at(task) {
                    seen[i].commit = commit.as_deref().and_then(oid);
                }
            }
            EventBody::TaskFinished { task, status, .. } => {
                if let Some(i) = at(task) {
                    seen[i].status = Some(*status);
                }
            }
            EventBody::TaskMerged {
                task,
                commit,
                integration_commit,
                resolved,
            } => {
                if let Some(i) = at(task) {
                    seen[i].status = Some(TaskStatus::Merged);
                    // A conflict resolved by hand: dependents start from the
                    // user's merge, which holds the fix.
                    seen[i].merged = oid(if *resolved {
                        integration_commit
                    } else {
                        commit
                    });
                }
            }
            EventBody::TaskConflicted { task, .. } => {
                if let Some(i) = at(task) {
                    seen[i].status = Some(TaskStatus::Conflicted);
                }
            }
            EventBody::RunResumed { pending, .. } => {
                for id in pending {
                    if let Some(i) = at(id) {
                        seen[i].status = None;
                    }
                }
            }
            EventBody::RunStarted { .. }
            | EventBody::RunFinished { .. }
            | EventBody::TaskQueued { .. }
            | EventBody::AgentTool { .. }
            | EventBody::AgentUsage { .. }
            | EventBody::BudgetSpent { .. } => {}
        }
    }

    let retried = retried_tasks(run, tasks, &seen, retry_failed)?;
    for &i in &retried {
        seen[i].status = None;
        seen[i].retrying = true;
    }
    if let Some(exit_code) = finished
        && !has_runnable(tasks, &seen)
    {
        let failed = seen
            .iter()
            .any(|s| matches!(s.status, Some(TaskStatus::Failed | TaskStatus::TimedOut)));
        return Err(not_resumable(
            run,
            format!(
                "it finished (exit {exit_code}) and has no task left that can run; {}",
                if failed {
                    format!(
                        "after fixing the cause, `swarm resume {run} --retry-failed` runs its failed tasks again"
                    )
                } else {
                    "run the plan again with `swarm run`".to_string()
                }
            ),
        ));
    }

    // Git is the truth about merges: the journal line of the last one may
    // have been lost to the crash (the branch moves first).
    // A read-only run has no branch: it merges nothing.
    let integration = match integration_branch {
        None => base_commit,
        Some(_) => repo.resolve(&refs::integration(run)).map_err(|e| {
            not_resumable(
                run,
                format!("its integration branch is gone: failed to {e}"),
            )
        })?,
    };
    if let Some(task) = merged_task_of(repo, integration)?
        && let Some(i) = at(&task)
        && seen[i].status == Some(TaskStatus::Succeeded)
    {
        seen[i].status = Some(TaskStatus::Merged);
        seen[i].merged = seen[i].commit;
    }

    let mut status = vec![TaskStatus::Pending; tasks.len()];
    let mut result = vec![None; tasks.len()];
    let mut next_attempt = vec![1; tasks.len()];
    let mut restarted = Vec::new();
    for (i, task) in tasks.iter().enumerate() {
        let s = &seen[i];
        let last_attempt = s.started.map_or(0, |(a, _)| a);
        next_attempt[i] = last_attempt + 1;
        match s.status {
            Some(TaskStatus::Merged) => {
                status[i] = TaskStatus::Merged;
                result[i] = s.merged.or(s.commit);
            }
            Some(TaskStatus::Succeeded) => {
                status[i] = TaskStatus::Succeeded;
                result[i] = match task.isolation {
                    Isolation::Readonly => s.started.map(|(_, base)| base),
                    Isolation::Worktree => s.commit,
                };
            }
            Some(done @ (TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::Conflicted)) => {
                status[i] = done;
                result[i] = s.commit;
            }
            // Interrupted (a crash) or cancelled (Ctrl-C) while running:
            // its partial work is kept and it starts over.
            Some(TaskStatus::Running) => restarted.push(i),
            Some(TaskStatus::Cancelled) if s.started.is_some() => restarted.push(i),
            // Cancelled or skipped before it started, blocked: to run.
            _ => {}
        }
        if status[i] == TaskStatus::Pending {
            keep_leftovers(repo, worktrees, run, worktree_dir, task, s, last_attempt)?;
        }
    }
    Ok(Recovered {
        status,
        result,
        next_attempt,
        base_commit,
        integration,
        restarted,
        retried,
        run_started,
    })
}

/// The failed (or timed-out) tasks `--retry-failed` runs again: all of
/// them, or the ones named (each must exist and have failed).
fn retried_tasks(
    run: &str,
    tasks: &[Task],
    seen: &[Seen],
    retry_failed: Option<&[String]>,
) -> Result<Vec<usize>, RunError> {
    let Some(only) = retry_failed else {
        return Ok(Vec::new());
    };
    let failed = |i: usize| {
        matches!(
            seen[i].status,
            Some(TaskStatus::Failed | TaskStatus::TimedOut)
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
            let now = seen[i].status.map_or("pending", TaskStatus::as_str);
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

/// Whether some task would run: one not final (to run again) none of whose
/// dependencies, direct or not, failed, timed out or conflicted.
fn has_runnable(tasks: &[Task], seen: &[Seen]) -> bool {
    // In merge order (dependencies first), without recursion: plans of
    // thousands of tasks may be one long chain.
    let graph = crate::graph::TaskGraph::new(tasks);
    let mut dead = vec![false; tasks.len()];
    for &i in graph.merge_order() {
        dead[i] = matches!(
            seen[i].status,
            Some(TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::Conflicted)
        ) || graph.deps(i).any(|d| dead[d]);
    }
    (0..tasks.len()).any(|i| {
        let to_run = !matches!(
            seen[i].status,
            Some(TaskStatus::Merged | TaskStatus::Succeeded)
        );
        to_run && !dead[i]
    })
}

/// Removes the lock files a coordinator killed in the middle of a ref
/// update left beside the run's refs (git refuses to touch a locked ref).
/// Safe: the caller holds the run's lock, so nobody else updates them.
fn remove_stale_ref_locks(repo: &Repo, run: &str) {
    let refs_dir = repo.common_dir.join("refs");
    let branch_lock = refs_dir
        .join("heads")
        .join("swarm")
        .join(format!("{run}.lock"));
    let _ = std::fs::remove_file(branch_lock);
    remove_lock_files(&refs_dir.join("swarm").join(run));
}

/// Removes `*.lock` files directly in `dir`.
fn remove_lock_files(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".lock") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
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
/// without a worktree, its result ref is kept there.
fn keep_leftovers(
    repo: &Repo,
    worktrees: &Worktrees,
    run: &str,
    worktree_dir: &Path,
    task: &Task,
    seen: &Seen,
    attempt: u32,
) -> Result<(), RunError> {
    let attempt = attempt.max(1);
    let path = worktree_dir.join(&task.id);
    let keep_ref = refs::attempt(run, &task.id, attempt);
    if task.isolation == Isolation::Worktree && path.exists() {
        if let (Some(admin), Some((_, base))) = (worktrees.admin_dir(&path), seen.started) {
            // A snapshot or checkout the crash interrupted left its locks.
            remove_lock_files(&admin);
            let what = if seen.retrying {
                "failed, kept before a retry"
            } else {
                "interrupted"
            };
            let message = format!(
                "swarm: {run}/{id}: {what} (attempt {attempt})\n\nSwarm-Run: {run}\nSwarm-Task: {id}\nSwarm-Attempt: {attempt}\n",
                id = task.id
            );
            let limits = SnapshotLimits {
                scope: &task.paths,
                max_file_size: task.max_file_size,
            };
            let snap = snapshot(&path, &admin, base, limits, |_| message)?;
            repo.set_ref(&keep_ref, snap.commit, "swarm: interrupted attempt")?;
        }
        worktrees.remove(&path, None)?;
    } else if let Ok(commit) = repo.resolve(&refs::task(run, &task.id))
        && !repo.has_ref(&keep_ref)?
    {
        // Whether or not the journal heard of that attempt's end (a task
        // blocked at its merge, or retried, finished it): the task runs
        // again and its ref will be replaced.
        repo.set_ref(&keep_ref, commit, "swarm: result of an interrupted attempt")?;
    }
    Ok(())
}
