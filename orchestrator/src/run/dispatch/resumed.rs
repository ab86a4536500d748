//! The dispatcher of a resumed run: it starts from what the journal and
//! git say (see `run::resume`) instead of from nothing.

use crate::ids::TaskIndex;
use std::sync::Arc;

use swarm_protocol::{Event, EventBody, TaskStatus};
use swarm_sandbox::Stop;
use tokio::sync::watch;

use super::super::error::RunError;
use super::super::lock::RunLock;
use super::super::prepared::Prepared;
use super::Dispatcher;
use crate::plan::Task;
use crate::worktree_home::WorktreeHome;

impl<'o> Dispatcher<'o> {
    /// Takes over a run whose coordinator died or was cancelled: finished
    /// tasks stay finished, merges stay done, interrupted tasks start again
    /// from a clean worktree after their leftovers are committed.
    pub(in crate::run) fn resume(
        prepared: Prepared,
        home: &WorktreeHome,
        observer: &'o mut (dyn FnMut(&Event) + Send),
        stop: watch::Receiver<Option<Stop>>,
    ) -> Result<Self, RunError> {
        let mut prepared = prepared;
        let run_dir = prepared.run_dir();
        let lock = RunLock::acquire(&run_dir, &prepared.run)?;
        // The executor keeps `[setup]`s (and gives setup its own rights)
        // for the run's base only: the journal's, known before it is made
        // (`recover` reads it again, with everything else).
        if let Some(base) = journal_base(&run_dir) {
            prepared.base_commit = base;
        }
        let tasks = crate::run::table::TaskTable::new(prepared.plan.tasks.clone());
        let replanned = replay_subtasks(&prepared, &run_dir, &tasks)?;
        let spawner = Arc::new(super::super::spawn::Spawner::new(
            &prepared.plan,
            tasks.len(),
        ));
        let mut executor = crate::run::executor_for::executor_for(
            &prepared,
            tasks.clone(),
            Arc::clone(&spawner),
            home,
            true,
        )?;
        let all: Vec<Task> = tasks.all().iter().map(|t| Task::clone(t)).collect();
        let recovered = super::super::resume::recover(
            &prepared.repo,
            &prepared.run,
            &run_dir,
            &home.run_dir(&prepared.run),
            &all,
            super::super::resume::How {
                retry_failed: prepared.options.retry_failed.as_deref(),
                squash: prepared.plan.history == crate::plan::History::Squash,
            },
            &mut |task, state| executor.reattach(task, state),
        )?;
        prepared.base_commit = recovered.base_commit;
        let verify =
            super::verify_state::Verifying::new(&prepared, &tasks, home, recovered.base_commit)?;
        let plan_tasks = prepared.plan.tasks.len();
        let mut dispatcher = Self::new(
            prepared, plan_tasks, tasks, spawner, executor, observer, stop, lock,
        )?;
        // The new observer has not seen the run start.
        (dispatcher.observer)(&recovered.run_started);
        dispatcher.fold = recovered.fold;
        dispatcher.number_tasks()?;
        dispatcher.merges.moved_to(recovered.integration);
        dispatcher.verify = verify;
        dispatcher.resume_verify()?;
        for &i in &recovered.adopted {
            dispatcher.slots.set_in_flight(i, true);
        }
        let ids = |list: &[TaskIndex]| -> Vec<String> {
            list.iter()
                .map(|&i| dispatcher.tasks.get(i).id.clone())
                .collect()
        };
        let body = EventBody::RunResumed {
            restarted: ids(&recovered.restarted),
            pending: ids(&recovered.pending),
            integration_commit: dispatcher.merges.integration().to_string(),
            retried: ids(&recovered.retried),
            // The branch moved but the crash lost the journal line.
            merged: ids(recovered.merged_by_git.as_slice()),
            rebuilt: recovered.rebuilt.clone(),
        };
        dispatcher.emit(body)?;
        for (slot, first) in dispatcher
            .slots
            .iter_mut()
            .zip(recovered.first_attempt.iter().copied())
        {
            slot.next_attempt = first;
        }
        // Replans are counted over the whole run, resumes included.
        if let Some(replanning) = dispatcher.replanning.as_mut() {
            replanning.left = replanning.rounds.saturating_sub(replanned);
        }
        dispatcher.seed_group_budgets();
        for i in dispatcher.tasks.indices() {
            if !dispatcher.slots[i].children.is_empty() {
                dispatcher.seed_subtree_budget(i);
            }
        }
        dispatcher.resume_queue()?;
        dispatcher.announce_ready()?;
        Ok(dispatcher)
    }

    /// What a resumed run waits for: each task's unfinished dependencies
    /// counted, the ready ones queued (a re-run starting from the branch
    /// as it is), dependents of what failed blocked, and experiments and
    /// parents whose variants or subtasks all ended before the crash
    /// decided.
    fn resume_queue(&mut self) -> Result<(), RunError> {
        self.queue.clear();
        for i in self.tasks.indices() {
            // An experiment waits for its variants to end, however they
            // ended; other tasks for their dependencies to succeed.
            let experiment = self.tasks.get(i).experiment().is_some();
            self.slots[i].waiting_on = self
                .graph
                .deps(i)
                .filter(|&d| match experiment {
                    true => matches!(self.status(d), TaskStatus::Pending | TaskStatus::Running),
                    false => !matches!(self.status(d), TaskStatus::Succeeded | TaskStatus::Merged),
                })
                .count();
            // A task run again after a conflict, or for the run-wide
            // verify's repair round, starts from the branch as it is (the
            // merges after it waited for it; a repair's first result is
            // on the branch).
            let repaired = self.fold.state(i).is_some_and(|s| s.repaired);
            if repaired {
                self.note_repaired(i);
            }
            let rerunning = self.fold.task(i).is_some_and(|t| {
                (t.conflict_reruns > 0 || repaired) && t.status == TaskStatus::Pending
            });
            if rerunning {
                let integration = self.merges.integration();
                // Told what it was told before the run stopped.
                let note = self
                    .fold
                    .state(i)
                    .and_then(|s| s.rerun_note.as_deref())
                    .map(std::sync::Arc::<str>::from);
                self.slots[i].rerun = Some(Box::new((integration, note)));
            }
            if self.status(i) == TaskStatus::Pending && self.slots[i].waiting_on == 0 && !experiment
            {
                self.queue.push(i, self.graph.priority(i));
            }
        }
        // Dependents of what failed before stay blocked (a variant's
        // failure is its experiment's to weigh).
        for i in self.tasks.indices() {
            if self.slots[i].experiment_of.is_some() {
                continue;
            }
            let what = match self.status(i) {
                TaskStatus::Failed => "failed",
                TaskStatus::TimedOut => "timed out",
                TaskStatus::Stalled => "stalled",
                TaskStatus::Conflicted => "conflicted",
                TaskStatus::BrokeVerify => "broke the run-wide verify",
                _ => continue,
            };
            self.block_dependents(i, what)?;
        }
        // An experiment whose variants all ended before the crash is
        // decided now.
        for e in self.tasks.indices() {
            if self.tasks.get(e).experiment().is_some()
                && self.slots[e].waiting_on == 0
                && self.status(e) == TaskStatus::Pending
            {
                self.decide(e)?;
            }
        }
        // A task whose subtasks all ended before the crash ends now (the
        // deepest first: a child's end may end its parent).
        for p in self.tasks.indices().rev() {
            if !self.slots[p].children.is_empty()
                && self.status(p) == TaskStatus::Running
                && !self.slots[p].in_flight()
            {
                self.on_child_done(p)?;
            }
        }
        Ok(())
    }
}

/// The base commit the journal of the run in `run_dir` says it started
/// from, if it says one.
fn journal_base(run_dir: &std::path::Path) -> Option<git2::Oid> {
    let started = crate::journal::run_started(&run_dir.join(crate::layout::JOURNAL))?;
    match started.body {
        EventBody::RunStarted { base_commit, .. } => git2::Oid::from_str(&base_commit).ok(),
        _ => None,
    }
}

/// Adds to `tasks` the subtasks the journal of the run in `run_dir` says
/// were spawned, read again from their journaled requests, in the order
/// they were spawned (so that every index is what it was). How many
/// replans the run made.
fn replay_subtasks(
    prepared: &Prepared,
    run_dir: &std::path::Path,
    tasks: &crate::run::table::TaskTable,
) -> Result<u32, RunError> {
    let journal = run_dir.join(crate::layout::JOURNAL);
    let Ok(events) = crate::journal::read(&journal) else {
        // `recover` says what is wrong with the journal.
        return Ok(0);
    };
    let replanned = events
        .iter()
        .filter(|e| matches!(e.body, EventBody::ReplanStarted { .. }))
        .count();
    for event in events {
        let EventBody::SubtasksSpawned {
            task,
            request,
            deadline,
            ..
        } = &event.body
        else {
            continue;
        };
        let not_resumable = |why: String| RunError::NotResumable {
            run: prepared.run.clone(),
            why,
        };
        let parent = tasks.position(task).map(|i| tasks.get(i)).ok_or_else(|| {
            not_resumable(format!(
                "its journal spawned subtasks of an unknown task `{task}`"
            ))
        })?;
        let deadline = deadline
            .as_deref()
            .and_then(|d| humantime::parse_rfc3339(d).ok());
        let children = super::super::spawn::replay(&prepared.plan, &parent, request, deadline)
            .map_err(|e| {
                not_resumable(format!(
                    "the subtasks of `{task}` no longer read: {}",
                    e.join("; ")
                ))
            })?;
        for child in children {
            if tasks.position(&child.id).is_none() {
                tasks.push(child);
            }
        }
    }
    Ok(u32::try_from(replanned).unwrap_or(u32::MAX))
}
