//! The dispatcher's merge pipeline: results go into the integration
//! branch strictly in merge order, one merge at a time on the writer's
//! thread, each result continuing the walk.
//!
//! A result that conflicts with the branch is run again on top of the
//! branch as it is (`on_conflict = "rerun"`, up to `conflict_reruns` times),
//! and the merges after it wait for it, in order: the branch stays a
//! function of the plan and the tasks' results, whatever order they
//! finished in. Only when the re-runs are spent (or for `"stop"`) does the
//! task end `conflicted`, for a person.

use crate::ids::TaskIndex;
use swarm_protocol::{EventBody, Isolation, TaskStatus};

use super::super::error::RunError;
use super::super::writer::{MergeJob, Merged, merge_message};
use super::merge_cursor::Step;
use super::{Dispatcher, Stopping};
use crate::plan::{History, OnConflict, OnFailure};

/// Most bytes of each patch an agent run again after a conflict is shown.
const NOTE_PATCH: usize = 16 << 10;

impl Dispatcher<'_> {
    /// Merges finished tasks into the integration branch, strictly in merge
    /// order, so that the same plan always gives the same history and the
    /// same conflicts whatever order tasks finished in. One merge at a time
    /// runs on the writer's thread; its result continues the walk.
    pub(super) fn advance_merges(&mut self) -> Result<(), RunError> {
        if self.merges.busy() || self.verify_holds_merges() {
            return Ok(());
        }
        // A repair round's result (its task merged once already, behind
        // the walk) merges as soon as it is there.
        if let Some(i) = self.repair_to_merge() {
            if self.start_merge(i, true)? {
                return Ok(());
            }
            self.repair_merged(i);
        }
        loop {
            match self
                .merges
                .step(self.graph.merge_order(), |t| self.status(t))
            {
                Step::Wait | Step::End => return Ok(()),
                Step::Merge(i) if self.start_merge(i, false)? => return Ok(()),
                Step::Merge(i) | Step::Pass(i) => self.pass(i)?,
            }
        }
    }

    /// The merge walk passes task `i` (merged, or not to be merged): what
    /// was held for its merge may start.
    fn pass(&mut self, i: TaskIndex) -> Result<(), RunError> {
        if !self.merges.pass() {
            // A repair round's, behind the walk: its dependents were
            // released long ago.
            self.repair_merged(i);
            return Ok(());
        }
        self.release_held(i)
    }

    /// Hands task `i`'s merge to the writer (`repair`: a repair round's
    /// result, behind the walk), or says why there is none to do (then
    /// `false`).
    fn start_merge(&mut self, i: TaskIndex, repair: bool) -> Result<bool, RunError> {
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
        let squash = self.settings.history == History::Squash;
        let message = merge_message(&self.run, &id, squash);
        self.writer.merge(MergeJob {
            task: i,
            id,
            ours: self.merges.integration(),
            theirs: commit,
            message,
            squash,
        })?;
        self.merges.handed(i, repair);
        Ok(true)
    }

    /// The writer merged task `i` (or found it conflicting).
    pub(super) fn on_merged(&mut self, i: TaskIndex, merged: Merged) -> Result<(), RunError> {
        self.merges.ended();
        let id = self.tasks.get(i).id.clone();
        let result = self.result(i);
        let commit = result.map(|c| c.to_string()).unwrap_or_default();
        match merged {
            Merged::Moved(new) => {
                self.merges.moved_to(new);
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
                let note = self.conflict_note(i, result, &files);
                self.emit(EventBody::TaskConflicted {
                    task: id.clone(),
                    commit,
                    files,
                    hunks,
                    touched_by,
                })?;
                if let Some((rerun, reruns)) = self.rerun_left(i) {
                    // The cursor stays: what merges after it waits for it.
                    return self.rerun(i, result, (rerun, reruns), note, false);
                }
                self.pass(i)?;
                self.emit(EventBody::TaskFinished {
                    task: id,
                    status: TaskStatus::Conflicted,
                    reason: Some(reason),
                })?;
                if self.settings.on_failure == OnFailure::Stop {
                    self.stopping.get_or_insert(Stopping::Failure);
                }
                self.block_dependents(i, "conflicted")?;
                return self.advance_merges();
            }
        }
        self.emit(EventBody::TaskMerged {
            task: id,
            commit,
            integration_commit: self.merges.integration().to_string(),
            resolved: false,
        })?;
        self.pass(i)?;
        self.advance_merges()
    }

    /// Whether task `i`, whose result conflicted, runs again: its re-run's
    /// number and how many it may have. Not for a variant or an experiment
    /// (decided among its variants), nor a task whose subtasks built on its
    /// result.
    fn rerun_left(&self, i: TaskIndex) -> Option<(u32, u32)> {
        let task = self.tasks.get(i);
        if task.on_conflict != OnConflict::Rerun
            || self.stopping.is_some()
            || task.experiment().is_some()
            || self.slots[i].experiment_of.is_some()
            || !self.slots[i].children.is_empty()
        {
            return None;
        }
        let done = self.fold.task(i).map_or(0, |t| t.conflict_reruns);
        (done < task.conflict_reruns).then_some((done + 1, task.conflict_reruns))
    }

    /// Runs task `i`, whose result `conflicted`, again on the integration
    /// branch as it is: journaled, then queued; its agent (if it is one) is
    /// told `note`. With `repair`, the run-wide verify's failure names it
    /// and its merge stays (`conflicted` is `None`).
    pub(super) fn rerun(
        &mut self,
        i: TaskIndex,
        conflicted: Option<git2::Oid>,
        (rerun, reruns): (u32, u32),
        note: Option<std::sync::Arc<str>>,
        repair: bool,
    ) -> Result<(), RunError> {
        let id = self.tasks.get(i).id.clone();
        self.emit(EventBody::TaskRequeued {
            task: id.clone(),
            base_commit: self.merges.integration().to_string(),
            rerun,
            reruns,
            repair,
            note: note.as_deref().map(str::to_string),
        })?;
        let attempts = self.fold.task(i).map_or(0, |t| t.attempts);
        // The result that conflicted is correct work: it stays on the
        // attempt's ref (`<task>.<n>`), as a failed attempt's does, since
        // the re-run's result takes the task's.
        if let Some(result) = conflicted {
            self.repo.set_ref(
                &crate::git::refs::attempt(&self.run, &id, attempts),
                result,
                "swarm: result that conflicted, run again",
            )?;
        }
        self.slots[i].next_attempt = attempts + 1;
        self.slots[i].rerun = Some(Box::new((self.merges.integration(), note)));
        // Its dependents that have not started wait for the re-run's
        // result, as they waited for its first: released again when it
        // succeeds. (Those already running keep the first one; if theirs
        // then conflicts, they run again too.)
        self.slots[i].released = false;
        let dependents: Vec<TaskIndex> = self.graph.dependents(i).collect();
        for d in dependents {
            if self.status(d) == TaskStatus::Pending {
                self.slots[d].waiting_on += 1;
            }
        }
        self.enqueue(i)
    }

    /// What an agent run again after a conflict is told: its earlier
    /// change, and the other side's in the files that conflicted (each
    /// clipped). `None` for a task that is no agent.
    fn conflict_note(
        &self,
        i: TaskIndex,
        result: Option<git2::Oid>,
        files: &[String],
    ) -> Option<std::sync::Arc<str>> {
        self.tasks.get(i).agent()?;
        let result = result?;
        let base = self.fold.state(i)?.base?;
        let clip = |bytes: Vec<u8>| {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            match text.len() > NOTE_PATCH {
                true => format!(
                    "{}\n[... {} more bytes left out]",
                    &text[..text.floor_char_boundary(NOTE_PATCH)],
                    text.len() - NOTE_PATCH
                ),
                false => text,
            }
        };
        let mine = clip(self.repo.patch(base, result).ok()?);
        let theirs = clip(
            self.repo
                .patch_of(base, self.merges.integration(), files)
                .ok()?,
        );
        Some(
            format!(
                "swarm: your earlier change for this task conflicted, in {}, with what other tasks merged meanwhile. \
                 This worktree now starts from the integration branch, which holds their changes: bring your change onto it \
                 (the same intent, fitted to what is there now).\n\n\
                 Your earlier change:\n```diff\n{mine}```\n\n\
                 What was merged meanwhile, in those files:\n```diff\n{theirs}```",
                files.join(", ")
            )
            .into(),
        )
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
