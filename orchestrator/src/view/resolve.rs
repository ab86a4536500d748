//! `swarm resolve` for people: the steps of resolving a conflict by hand,
//! and what recording one did.

use crate::resolve::Resolved;

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

/// What `swarm resolve` says once it recorded `task` of `run` as merged.
pub fn resolved(run: &str, task: &str, resolved: &Resolved) -> String {
    let mut text = format!(
        "task {task} of run {run}: recorded as merged by your commit {}\n",
        crate::git::short_id(resolved.merge)
    );
    match resolved.unblocked.len() {
        0 => text.push_str("no task was waiting for it\n"),
        n => text.push_str(&format!(
            "`swarm resume {run}` runs the {n} task{} it blocked, from your merge: {}\n",
            if n == 1 { "" } else { "s" },
            resolved.unblocked.join(", ")
        )),
    }
    text
}
