//! The dispatcher's side of subtasks: a task that asked for children and
//! succeeded does not end; its children join the run (journaled with the
//! request they came from, so that resume makes the same ones), start
//! from its result, and run like any task. When the last child ends, the
//! children's results are merged onto the parent's (its line) on the
//! blocking pool, and the parent ends with that as its result, before
//! anything that depends on it starts or its merge into the integration
//! branch. A child that does not succeed blocks its parent.

use crate::ids::TaskIndex;

use git2::Oid;
use swarm_protocol::{EventBody, TaskInfo, TaskStatus};

use super::super::error::RunError;
use super::super::spawn::Accepted;
use super::slots::Slot;
use super::{Dispatcher, Joined};
use crate::git::{merge_results, refs};
use crate::plan::Task;
use crate::run::blocking::blocking;

impl Dispatcher<'_> {
    /// Task `i` succeeded having asked for `accepted`: its children join
    /// the run and it waits for them.
    pub(super) fn spawn_children(
        &mut self,
        i: TaskIndex,
        accepted: Accepted,
    ) -> Result<(), RunError> {
        let attempt = self.fold.state(i).map_or(1, |s| s.attempt.max(1));
        let infos = accepted.tasks.iter().map(info).collect();
        self.emit(EventBody::SubtasksSpawned {
            task: self.tasks.get(i).id.clone(),
            attempt,
            tasks: infos,
            request: accepted.request,
            deadline: accepted.deadline.map(crate::timestamp),
        })?;
        self.seed_subtree_budget(i);
        let added = self.add_children(i, accepted.tasks)?;
        for c in added {
            if self.slots[c].waiting_on == 0 {
                self.enqueue(c)?;
            }
        }
        Ok(())
    }

    /// Adds `children` of task `i` to the run's tables (not to the
    /// journal: `subtasks_spawned` says it, or said it before a resume).
    /// Their indices.
    pub(super) fn add_children(
        &mut self,
        i: TaskIndex,
        children: Vec<Task>,
    ) -> Result<Vec<TaskIndex>, RunError> {
        let added: Vec<TaskIndex> = children
            .into_iter()
            .map(|child| self.tasks.push(child))
            .collect();
        let Some(&first) = added.first() else {
            return Ok(added);
        };
        let all = self.tasks.all();
        self.graph.extend(&all, first);
        // A subtask that ran in an earlier run is expected to take as long.
        self.graph.weigh(self.timings.expected(&all));
        for &c in &added {
            // Its siblings it depends on (its parent's result is there).
            self.slots
                .push(Slot::new(self.graph.deps(c).count(), None, Some(i)));
        }
        self.slots[i].children.extend(added.iter().copied());
        self.number_tasks()?;
        Ok(added)
    }

    /// An agent task's budget covers its subtree: its children's sessions
    /// count against a budget that starts from what it spent itself (and,
    /// resumed, what its descendants spent).
    pub(super) fn seed_subtree_budget(&self, i: TaskIndex) {
        let (Some(gateway), Some(_)) = (self.gateway.as_ref(), self.fold.report()) else {
            return;
        };
        let task = self.tasks.get(i);
        let Some(agent) = task.agent() else {
            return;
        };
        let group = gateway.subtree(&task.id, agent.budget);
        let mut tree = vec![i];
        while let Some(t) = tree.pop() {
            tree.extend(&self.slots[t].children);
            if let Some(a) = self.fold.task(t).and_then(|r| r.agent.as_ref()) {
                group.add(a.usage, a.cost_usd);
            }
        }
    }

    /// A child of `p` ended: once every one has, `p` is merged with them
    /// or blocked by the first that did not succeed.
    pub(super) fn on_child_done(&mut self, p: TaskIndex) -> Result<(), RunError> {
        let children = self.slots[p].children.clone();
        let ended = |s: TaskStatus| s.is_final() || s == TaskStatus::Succeeded;
        if children.iter().any(|&c| !ended(self.status(c))) {
            return Ok(());
        }
        if let Some(&failed) = children.iter().find(|&&c| !self.status(c).is_success()) {
            let status = match self.status(failed) {
                TaskStatus::Cancelled => TaskStatus::Cancelled,
                _ => TaskStatus::Blocked,
            };
            let reason = format!(
                "subtask `{}` {}",
                self.tasks.get(failed).id,
                self.status(failed)
            );
            return self.end_parent(p, status, Some(reason));
        }
        let Some(own) = self.line_start(p) else {
            return self.end_parent(p, TaskStatus::Failed, Some("it has no result".into()));
        };
        let mut results = vec![own];
        results.extend(children.iter().filter_map(|&c| self.result(c)));
        let (repo, run) = (self.repo.clone(), self.run.clone());
        let message = format!(
            "swarm: {}/{}: its subtasks merged\n\nSwarm-Run: {}\nSwarm-Task: {}\n",
            self.run,
            self.tasks.get(p).id,
            self.run,
            self.tasks.get(p).id
        );
        self.joins.spawn(async move {
            (
                p,
                blocking(move || merge_results(&repo, &run, &results, &message)).await,
            )
        });
        Ok(())
    }

    /// Where task `p`'s line starts for its children: its result, or its
    /// base when it was replanned (its failed result is left out).
    pub(super) fn line_start(&self, p: TaskIndex) -> Option<Oid> {
        self.fold.state(p)?.line_start()
    }

    /// The merge of `p`'s subtree ended.
    pub(super) fn on_joined(
        &mut self,
        joined: Result<(TaskIndex, Joined), tokio::task::JoinError>,
    ) -> Result<(), RunError> {
        let (p, joined) = joined.map_err(|e| RunError::Io {
            action: "merge a task's subtasks".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        match joined {
            Ok(Ok(commit)) => {
                let id = self.tasks.get(p).id.clone();
                // A replanned task's own (failed) result is not in its
                // line: it moves to its attempt's ref, never lost.
                if let Some(state) = self.fold.state(p).filter(|s| s.replaced)
                    && let Some(failed) = state.commit
                {
                    self.repo.set_ref(
                        &refs::attempt(&self.run, &id, state.attempt),
                        failed,
                        "swarm: replanned task's failed result",
                    )?;
                }
                self.repo.set_ref(
                    &refs::task(&self.run, &id),
                    commit,
                    "swarm: subtasks merged",
                )?;
                self.emit(EventBody::SubtasksMerged {
                    task: id,
                    commit: commit.to_string(),
                })?;
                self.end_parent(p, TaskStatus::Succeeded, None)
            }
            Ok(Err(files)) => self.end_parent(
                p,
                TaskStatus::Failed,
                Some(format!(
                    "its subtasks' results conflict in {}",
                    files.join(", ")
                )),
            ),
            Err(e) => self.end_parent(
                p,
                TaskStatus::Failed,
                Some(format!("its subtasks could not be merged: failed to {e}")),
            ),
        }
    }

    /// Parent `p` ends, as any task does (its own parent told in turn).
    fn end_parent(
        &mut self,
        p: TaskIndex,
        status: TaskStatus,
        reason: Option<String>,
    ) -> Result<(), RunError> {
        self.emit(EventBody::TaskFinished {
            task: self.tasks.get(p).id.clone(),
            status,
            reason,
        })?;
        self.after_finished(p, status)?;
        match self.slots[p].parent {
            Some(grandparent) => self.on_child_done(grandparent),
            None => Ok(()),
        }
    }
}

/// A spawned task as journaled.
fn info(t: &Task) -> TaskInfo {
    TaskInfo {
        id: t.id.clone(),
        kind: t.kind(),
        isolation: t.isolation,
        deps: t.deps.clone(),
        variant_of: None,
    }
}
