//! A plan checked against its repository before anything changes
//! ([`Prepared`]): its run name and base, and the executor it will run on.

use std::path::{Path, PathBuf};

use git2::Oid;

use crate::git::{Repo, refs};
use crate::plan::Plan;
use crate::state::State;
use crate::worktree_home::WorktreeHome;

use super::error::RunError;
use super::names::{check_run_name, free_run_name, name_in_use, open_run_state};
use super::options::RunOptions;

/// A plan checked against its repository, with nothing changed yet.
#[derive(Debug)]
pub struct Prepared {
    pub repo: Repo,
    pub plan: Plan,
    pub run: String,
    pub base_commit: Oid,
    pub options: RunOptions,
}

impl Prepared {
    pub fn run_dir(&self) -> PathBuf {
        crate::layout::run_dir(&self.repo.workdir, &self.run)
    }

    pub fn integration_branch(&self) -> String {
        refs::integration_branch(&self.run)
    }

    /// The run's worktrees: git checks out the run's base with the
    /// person's filter drivers when the person chose it (a plan from
    /// elsewhere may start from a branch tasks wrote, `swarm/<run>`), any
    /// other commit only as far as it differs from it (`git::worktree`).
    pub(super) fn worktrees(&self) -> crate::git::Worktrees {
        let worktrees = crate::git::Worktrees::new(self.repo.clone());
        match self.plan.origin.is_untrusted() {
            true => worktrees,
            false => worktrees.trusting(self.base_commit),
        }
    }
}

/// Checks everything about running `plan` in `repo` that can be checked
/// without changing anything: the base exists, the run name is free.
pub fn prepare(repo: Repo, plan: Plan, options: RunOptions) -> Result<Prepared, RunError> {
    let wanted = options.name.clone().unwrap_or_else(|| plan.name.clone());
    check_run_name(&wanted)?;
    State::check_untracked(&repo)?;
    let state = State::open(&repo.workdir)?;
    let base_commit = repo.resolve(&plan.base)?;
    if repo.has_ref("refs/heads/swarm")? {
        return Err(RunError::SwarmBranchExists { name: wanted });
    }
    let run = if options.name.is_some() {
        if let Some(what) = name_in_use(&repo, &wanted)? {
            return Err(RunError::NameTaken { name: wanted, what });
        }
        wanted
    } else {
        free_run_name(&repo, &wanted, |_| false)?
    };
    if let Some(state) = &state {
        state.check_run(&run)?;
    }
    crate::worktree_home::check_root(&options.worktree_root, &repo)?;
    Ok(Prepared {
        repo,
        plan,
        run,
        base_commit,
        options,
    })
}

/// A run to resume: `run`, with the plan it was started with (its saved
/// copy). Whether it can be resumed is checked when it is driven, under its
/// lock; that its name and state directory are sound, now.
pub fn prepare_resume(
    repo: Repo,
    plan: Plan,
    run: String,
    options: RunOptions,
) -> Result<Prepared, RunError> {
    check_run_name(&run)?;
    open_run_state(&repo, &run)?;
    Ok(Prepared {
        repo,
        plan,
        run,
        // Read from the run's journal when it is resumed.
        base_commit: Oid::ZERO_SHA1,
        options,
    })
}

/// The checks of what `plan` means (`plan::semantic`: overlapping writers,
/// paths missing at the base, unchecked agents, `limits`) against its base
/// commit `base`.
pub fn check_plan(
    repo: &Repo,
    base: Oid,
    plan: &Plan,
    limits: crate::plan::semantic::Limits,
) -> Result<crate::plan::semantic::Findings, RunError> {
    Ok(repo.with_paths_of(base, |exists| {
        crate::plan::semantic::check(plan, exists, limits)
    })?)
}

/// The worktree home a run's journal recorded (made again if it is gone),
/// or `.swarm/worktrees` for runs from before homes.
pub(super) fn resume_home(prepared: &Prepared) -> Result<WorktreeHome, RunError> {
    let journal = prepared.run_dir().join(crate::layout::JOURNAL);
    let recorded = crate::journal::run_started(&journal)
        .and_then(|e| match e.body {
            swarm_protocol::EventBody::RunStarted { worktrees, .. } => worktrees,
            _ => None,
        })
        .map(PathBuf::from);
    if let Some(home) = WorktreeHome::open(recorded.as_deref(), &prepared.repo)? {
        return Ok(home);
    }
    match recorded.as_deref().and_then(Path::parent) {
        // Gone (a cleared cache): made again where it was.
        Some(root) => Ok(WorktreeHome::create(root, &prepared.repo)?),
        None => {
            State::create(&prepared.repo.workdir)?;
            WorktreeHome::open(None, &prepared.repo)?.ok_or_else(|| RunError::NotResumable {
                run: prepared.run.clone(),
                why: "its state directory is gone".into(),
            })
        }
    }
}
