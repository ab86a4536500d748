//! `swarm resolve`: records that the user merged a conflicted task by hand.
//!
//! After a conflict the user checks out `swarm/<run>`, merges the task's
//! ref (`refs/swarm/<run>/<task>`), fixes the conflicts and commits. This
//! checks that the branch's tip now contains the task's result and still
//! contains everything the run had merged, and appends a `task_merged`
//! event (`resolved`) naming the user's merge commit. The task's blocked
//! dependents then run with `swarm resume`, from that merge: they see the
//! fix. Nothing here runs a task; resuming needs the sandbox and the plan's
//! settings, which `swarm resume` already sets up.

use std::collections::HashSet;
use std::time::SystemTime;

use git2::Oid;
use swarm_protocol::{Event, EventBody, RunReport, SCHEMA_VERSION, TaskStatus};

use crate::git::{Context as _, GitError, Repo, refs};
use crate::journal::{self, Journal};
use crate::state::{State, StateError};

/// A conflict resolved by hand, now recorded.
#[derive(Debug)]
pub struct Resolved {
    /// The user's merge commit, the tip of `swarm/<run>`.
    pub merge: Oid,
    /// The task's result commit it contains.
    pub result: Oid,
    /// Tasks the conflict had blocked (directly or not), which `swarm
    /// resume` runs now.
    pub unblocked: Vec<String>,
}

/// Why a conflict could not be recorded as resolved, as a fragment after
/// "failed to".
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "resolve run `{run}`: it is being driven by swarm process {holder}; wait for it to end"
    )]
    Running { run: String, holder: String },
    #[error("resolve run `{run}`: {message}")]
    Other { run: String, message: String },
    #[error("resolve run `{run}`: it has no task `{task}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownTask {
        run: String,
        task: String,
        suggestion: Option<String>,
    },
    #[error("resolve task `{task}` of run `{run}`: it did not conflict (it is {status})")]
    NotConflicted {
        run: String,
        task: String,
        status: TaskStatus,
    },
    #[error("resolve task `{task}` of run `{run}`: the branch {branch} does not exist")]
    NoBranch {
        run: String,
        task: String,
        branch: String,
    },
    #[error(
        "resolve task `{task}` of run `{run}`: the branch {branch} does not contain the task's result {result} yet"
    )]
    NotMerged {
        run: String,
        task: String,
        branch: String,
        /// Abbreviated.
        result: String,
    },
    #[error(
        "resolve task `{task}` of run `{run}`: the branch {branch} no longer contains {previous}, what the run had merged before"
    )]
    Diverged {
        run: String,
        task: String,
        branch: String,
        /// Abbreviated.
        previous: String,
    },
}

impl ResolveError {
    /// True when the user's input or repository state is the problem (exit
    /// code 2), not the machine.
    pub fn is_invalid_input(&self) -> bool {
        match self {
            Self::Git(_) | Self::Other { .. } => false,
            Self::State(e) => e.is_unsafe(),
            _ => true,
        }
    }

    /// What the person can do about it, if swarm knows.
    pub fn help(&self) -> Option<String> {
        match self {
            Self::NotMerged { run, task, .. } | Self::NoBranch { run, task, .. } => Some(format!(
                "git switch swarm/{run} && git merge refs/swarm/{run}/{task}, fix the conflicts, \
                 commit, then run `swarm resolve {run} {task}` again"
            )),
            Self::Diverged { run, task, .. } => Some(format!(
                "merge refs/swarm/{run}/{task} on top of swarm/{run} as the run left it \
                 (see `git reflog swarm/{run}`), not on another history"
            )),
            Self::NotConflicted { .. } => Some(
                "only a conflicted task is resolved by hand; `swarm status` shows the run's tasks"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// Records that `task` of run `run`, which conflicted, is merged by hand
/// into `swarm/<run>` (see the module's documentation).
pub fn resolve(
    repo: &Repo,
    state: &State,
    run: &str,
    task: &str,
) -> Result<Resolved, ResolveError> {
    let other = |message: String| ResolveError::Other {
        run: run.into(),
        message,
    };
    // Nobody may be driving the run while its journal grows.
    let _lock = match crate::run::lock_run(state, run) {
        Ok(lock) => lock,
        Err(crate::run::RunError::Locked { holder, .. }) => {
            return Err(ResolveError::Running {
                run: run.into(),
                holder,
            });
        }
        Err(crate::run::RunError::State(e)) => return Err(ResolveError::State(e)),
        Err(e) => return Err(other(e.to_string())),
    };
    let path = state
        .path()
        .join(crate::layout::RUNS)
        .join(run)
        .join(crate::layout::JOURNAL);
    // A line torn by a crash is cut off, so the new one starts a line.
    journal::repair(&path)
        .map_err(|e| other(format!("failed to repair journal {}: {e}", path.display())))?;
    let events = journal::read(&path).map_err(|e| other(format!("failed to {e}")))?;
    let report = crate::report::fold(&events)
        .ok_or_else(|| other("its journal has no run_started event".into()))?;
    let Some(entry) = report.tasks.iter().find(|t| t.id == task) else {
        return Err(ResolveError::UnknownTask {
            run: run.into(),
            task: task.into(),
            suggestion: crate::plan::did_you_mean(task, report.tasks.iter().map(|t| t.id.as_str()))
                .map(str::to_string),
        });
    };
    if entry.status != TaskStatus::Conflicted {
        return Err(ResolveError::NotConflicted {
            run: run.into(),
            task: task.into(),
            status: entry.status,
        });
    }
    let oid = |text: Option<&str>, what: &str| {
        text.and_then(|t| Oid::from_str(t).ok())
            .ok_or_else(|| other(format!("its journal has no {what}")))
    };
    let result = oid(entry.commit.as_deref(), "result commit for the task")?;
    let previous = oid(Some(&report.integration_commit), "integration commit")?;
    let branch = refs::integration_branch(run);
    let Ok(tip) = repo.resolve(&refs::integration(run)) else {
        return Err(ResolveError::NoBranch {
            run: run.into(),
            task: task.into(),
            branch,
        });
    };
    let git = repo.open()?;
    let contains = |descendant: Oid, ancestor: Oid| -> Result<bool, GitError> {
        Ok(descendant == ancestor
            || git
                .graph_descendant_of(descendant, ancestor)
                .context(|| format!("read the history of {branch}"))?)
    };
    if !contains(tip, result)? {
        return Err(ResolveError::NotMerged {
            run: run.into(),
            task: task.into(),
            branch,
            result: crate::git::short_id(result),
        });
    }
    if !contains(tip, previous)? {
        return Err(ResolveError::Diverged {
            run: run.into(),
            task: task.into(),
            branch,
            previous: crate::git::short_id(previous),
        });
    }
    let event = Event {
        v: SCHEMA_VERSION,
        ts: crate::timestamp(SystemTime::now()),
        body: EventBody::TaskMerged {
            task: task.into(),
            commit: result.to_string(),
            integration_commit: tip.to_string(),
            resolved: true,
        },
    };
    let mut journal = Journal::create(&path)
        .map_err(|e| other(format!("failed to open journal {}: {e}", path.display())))?;
    journal
        .append(&event)
        .map_err(|e| other(format!("failed to write journal {}: {e}", path.display())))?;
    Ok(Resolved {
        merge: tip,
        result,
        unblocked: blocked_by(&report, task),
    })
}

/// The blocked tasks that depend on `task`, directly or not, in report
/// (merge) order.
fn blocked_by(report: &RunReport, task: &str) -> Vec<String> {
    let mut below: HashSet<&str> = HashSet::from([task]);
    // Tasks come in merge order: dependencies before dependents.
    for t in &report.tasks {
        if t.deps.iter().any(|d| below.contains(d.as_str())) {
            below.insert(t.id.as_str());
        }
    }
    report
        .tasks
        .iter()
        .filter(|t| t.id != task && below.contains(t.id.as_str()))
        .filter(|t| t.status == TaskStatus::Blocked)
        .map(|t| t.id.clone())
        .collect()
}
