//! The dispatcher's merge pipeline: results go into the integration
//! branch strictly in merge order, one merge at a time on the writer's
//! thread, each result continuing the walk.

use crate::ids::TaskIndex;
use swarm_protocol::{EventBody, Isolation, TaskStatus};

use super::super::RunError;
use super::super::writer::{MergeJob, Merged};
use super::{Dispatcher, Stopping};
use crate::plan::{History, OnFailure};

impl Dispatcher<'_> {
    /// Merges finished tasks into the integration branch, strictly in merge
    /// order, so that the same plan always gives the same history and the
    /// same conflicts whatever order tasks finished in. One merge at a time
    /// runs on the writer's thread; its result continues the walk.
    pub(super) fn advance_merges(&mut self) -> Result<(), RunError> {
        if self.merging.is_some() || self.verify_holds_merges() {
            return Ok(());
        }
        while let Some(&i) = self.graph.merge_order().get(self.cursor) {
            let merging = match self.status(i) {
                TaskStatus::Pending | TaskStatus::Running => return Ok(()),
                TaskStatus::Succeeded => self.start_merge(i)?,
                _ => false,
            };
            if merging {
                return Ok(());
            }
            self.cursor += 1;
        }
        Ok(())
    }

    /// Hands task `i`'s merge to the writer, or says why there is none to
    /// do (then `false`).
    fn start_merge(&mut self, i: TaskIndex) -> Result<bool, RunError> {
        // A variant's result reaches the branch only as its experiment's.
        if self.slots[i].experiment_of.is_some() {
            return Ok(false);
        }
        let id = self.tasks.get(i).id.clone();
        // An experiment's result was built on its variants' dependencies.
        let on = match self.tasks.get(i).experiment() {
            Some(_) => self.graph.deps(i).next().unwrap_or(i),
            None => i,
        };
        let unmerged_dep = self
            .graph
            .deps(on)
            .find(|&d| d != i && !self.is_in_integration(d));
        if let Some(d) = unmerged_dep {
            self.emit(EventBody::TaskFinished {
                task: id,
                status: TaskStatus::Blocked,
                reason: Some(format!(
                    "dependency `{}` {}, so its result cannot be merged",
                    self.tasks.get(d).id,
                    self.status(d)
                )),
            })?;
            return Ok(false);
        }
        if self.tasks.get(i).isolation == Isolation::Readonly {
            return Ok(false);
        }
        let Some(commit) = self.result(i) else {
            return Ok(false);
        };
        let squash = self.history == History::Squash;
        let message = merge_message(&self.run, &id, squash);
        self.writer.merge(MergeJob {
            task: i,
            id,
            ours: self.integration,
            theirs: commit,
            message,
            squash,
        })?;
        self.merging = Some(i);
        Ok(true)
    }

    /// The writer merged task `i` (or found it conflicting).
    pub(super) fn on_merged(&mut self, i: TaskIndex, merged: Merged) -> Result<(), RunError> {
        self.merging = None;
        self.cursor += 1;
        let id = self.tasks.get(i).id.clone();
        let commit = self.result(i).map(|c| c.to_string()).unwrap_or_default();
        match merged {
            Merged::Moved(new) => {
                self.integration = new;
                self.merged_into_branch(i, new);
            }
            Merged::AlreadyIn => {}
            Merged::Conflict { files, hunks } => {
                let touched_by = self.touched_by(&files);
                let with = match touched_by.as_slice() {
                    [] => String::new(),
                    tasks => format!(", also changed by {}", tasks.join(", ")),
                };
                let reason = format!(
                    "conflicts with the integration branch in {}{with}",
                    files.join(", ")
                );
                self.emit(EventBody::TaskConflicted {
                    task: id.clone(),
                    commit,
                    files,
                    hunks,
                    touched_by,
                })?;
                self.emit(EventBody::TaskFinished {
                    task: id,
                    status: TaskStatus::Conflicted,
                    reason: Some(reason),
                })?;
                if self.on_failure == OnFailure::Stop {
                    self.stopping.get_or_insert(Stopping::Failure);
                }
                self.block_dependents(i, "conflicted")?;
                return self.advance_merges();
            }
        }
        self.emit(EventBody::TaskMerged {
            task: id,
            commit,
            integration_commit: self.integration.to_string(),
            resolved: false,
        })?;
        self.advance_merges()
    }

    /// The merged tasks that changed any of `files`: the other side of a
    /// conflict, for the user who resolves it.
    fn touched_by(&self, files: &[String]) -> Vec<String> {
        self.fold
            .report()
            .map(|r| {
                r.tasks
                    .iter()
                    .filter(|t| t.status == TaskStatus::Merged)
                    .filter(|t| t.changed_files.iter().any(|f| files.contains(f)))
                    .map(|t| t.id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn is_in_integration(&self, i: TaskIndex) -> bool {
        match self.status(i) {
            TaskStatus::Merged => true,
            TaskStatus::Succeeded => self.tasks.get(i).isolation == Isolation::Readonly,
            _ => false,
        }
    }
}

/// The message of task `id`'s merge (or squashed commit) in run `run`:
/// its `Swarm-Task:` trailer is how resume and the run-wide verify read
/// the branch back.
pub(super) fn merge_message(run: &str, id: &str, squash: bool) -> String {
    format!(
        "swarm: {} {run}/{id}\n\nSwarm-Run: {run}\nSwarm-Task: {id}\n",
        if squash { "squash" } else { "merge" },
    )
}
