//! `swarm resolve RUN TASK`: after the user merged a conflicted task into
//! the integration branch by hand, records it as merged and says how its
//! blocked dependents run (`swarm resume`).

use std::path::Path;

use anyhow::anyhow;
use swarm_orchestrator::git::Repo;
use swarm_orchestrator::resolve::ResolveError;
use swarm_orchestrator::{escape, exit, run};

use crate::Failure;

/// `swarm resolve`'s command line.
#[derive(Debug, clap::Args)]
pub struct ResolveArgs {
    /// The run.
    run: String,
    /// The conflicted task.
    task: String,
}

/// `swarm resolve RUN TASK`.
pub(crate) fn cmd_resolve(cwd: &Path, args: ResolveArgs) -> Result<i32, Failure> {
    resolve(cwd, &args.run, &args.task)
}

/// The steps shown in `swarm resolve --help`, the manual and the summary
/// of a run with a conflict.
pub const STEPS: &str = "\
After a conflict, merge the task's result into the integration branch yourself:

  git switch swarm/RUN                      (or check it out in a worktree of its own)
  git merge refs/swarm/RUN/TASK             (stops at the conflicts)
  ...fix the files, then: git add -A && git commit
  swarm resolve RUN TASK                    (records the merge in the run's journal)
  swarm resume RUN                          (runs the tasks the conflict blocked, from your merge)

`swarm resolve` checks that swarm/RUN now contains the task's result and everything the run \
had merged before; it changes nothing in git.";

pub fn resolve(cwd: &Path, run_name: &str, task: &str) -> Result<i32, Failure> {
    run::check_run_name(run_name).map_err(|e| Failure::Invalid(anyhow!("{e}")))?;
    let repo = Repo::discover(cwd).map_err(|e| {
        Failure::Invalid(anyhow!(
            "{e}\nhelp: run swarm inside a git repository (`git init` creates one)"
        ))
    })?;
    let state = run::open_run_state(&repo, run_name)
        .map_err(|e| Failure::Invalid(anyhow!("{e}")))?
        .filter(|s| {
            s.runs()
                .is_ok_and(|runs| runs.iter().any(|r| r == run_name))
        })
        .ok_or_else(|| {
            Failure::Invalid(anyhow!(
                "resolve run `{run_name}`: no such run in {}\nhelp: `swarm runs` lists them",
                repo.workdir.display()
            ))
        })?;
    match swarm_orchestrator::resolve::resolve(&repo, &state, run_name, task) {
        Ok(resolved) => {
            let merge = resolved.merge.to_string();
            println!(
                "task {task} of run {run_name}: recorded as merged by your commit {}",
                merge.get(..10).unwrap_or(&merge)
            );
            match resolved.unblocked.len() {
                0 => println!("no task was waiting for it"),
                n => println!(
                    "`swarm resume {run_name}` runs the {n} task{} it blocked, from your merge: {}",
                    if n == 1 { "" } else { "s" },
                    resolved.unblocked.join(", ")
                ),
            }
            Ok(exit::SUCCESS)
        }
        Err(e) => {
            let help = match &e {
                ResolveError::NotMerged { .. } | ResolveError::NoBranch { .. } => format!(
                    "\nhelp: git switch swarm/{run_name} && git merge refs/swarm/{run_name}/{task}, fix the conflicts, \
                     commit, then run `swarm resolve {run_name} {task}` again"
                ),
                ResolveError::Diverged { .. } => format!(
                    "\nhelp: merge refs/swarm/{run_name}/{task} on top of swarm/{run_name} as the run left it \
                     (see `git reflog swarm/{run_name}`), not on another history"
                ),
                ResolveError::NotConflicted { .. } => {
                    "\nhelp: only a conflicted task is resolved by hand; `swarm status` shows the run's tasks".into()
                }
                _ => String::new(),
            };
            let text = escape::text(&format!("{e}{help}")).into_owned();
            if e.is_invalid_input() {
                Err(Failure::Invalid(anyhow!(text)))
            } else {
                Err(Failure::Internal(anyhow!(text)))
            }
        }
    }
}
