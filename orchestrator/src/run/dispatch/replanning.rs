//! The dispatcher's side of bounded replanning: a task that failed for
//! good (after its retries) does not end while the run has replans left;
//! the replanner (`run::replan`) asks the model for what should take its
//! place, off the dispatcher's thread. An accepted fix is journaled as a
//! diff (`replanned`) and its tasks join the run as the failed task's
//! children (`subtasks_spawned`), starting from where it started; the
//! failed task then ends as its children do, so its dependents run on
//! their work. No fix (the model failed, or no answer passed the checks in
//! its rounds): the task fails as it would have.

use crate::ids::TaskIndex;
use swarm_protocol::{EventBody, TaskStatus};

use super::super::error::RunError;
use super::super::replan::Failure;
use super::{Dispatcher, Stopping};
use crate::plan::subtasks;

use super::replan_state::Answered;

impl Dispatcher<'_> {
    /// Whether failed task `i` may be replanned: the run has replans left
    /// and a model to ask, is not being cancelled, the task is no variant
    /// or experiment, and its replacement would fit under `max_depth`.
    pub(super) fn may_replan(&self, i: TaskIndex) -> bool {
        let task = self.tasks.get(i);
        self.replanning.as_ref().is_some_and(|r| r.left > 0)
            && self.stopping != Some(Stopping::Cancel)
            && self.stop.borrow().is_none()
            && self.slots[i].experiment_of.is_none()
            && task.experiment().is_none()
            && subtasks::depth(&task.id) < self.spawner.max_depth()
    }

    /// Asks the replanner for a fix of task `i`, which failed with
    /// `status` for `reason`.
    pub(super) fn start_replan(
        &mut self,
        i: TaskIndex,
        status: TaskStatus,
        reason: Option<String>,
    ) -> Result<(), RunError> {
        let Some(replanning) = self.replanning.as_mut() else {
            return self.end_task(i, status, reason);
        };
        replanning.left -= 1;
        let (replanner, rounds) = (replanning.replanner.clone(), replanning.rounds);
        let round = rounds - replanning.left;
        let task = self.tasks.get(i);
        let why = reason
            .clone()
            .unwrap_or_else(|| status.as_str().to_string());
        self.emit(EventBody::ReplanStarted {
            task: task.id.clone(),
            round,
            rounds,
            reason: why.clone(),
        })?;
        let report = self.fold.task(i);
        let logs = report
            .map(|t| vec![t.stderr_log.clone().into(), t.stdout_log.clone().into()])
            .unwrap_or_default();
        let others = self
            .fold
            .report()
            .map(|r| {
                r.tasks
                    .iter()
                    .filter(|t| t.id != task.id)
                    .map(|t| format!("{} ({})", t.id, t.status))
                    .collect()
            })
            .unwrap_or_default();
        let Some(base) = self.fold.state(i).and_then(|s| s.base) else {
            return self.end_task(i, status, reason);
        };
        let failure = Failure {
            task,
            reason: why,
            base,
            logs,
            others,
            round,
            rounds,
        };
        if let Some(replanning) = self.replanning.as_mut() {
            replanning.answers.spawn(async move {
                let fix = replanner.replan(failure).await;
                (i, round, status, reason, fix)
            });
        }
        Ok(())
    }

    /// The model answered the replan of a task.
    pub(super) fn on_replanned(
        &mut self,
        answered: Result<Answered, tokio::task::JoinError>,
    ) -> Result<(), RunError> {
        let (i, round, status, reason, fix) = answered.map_err(|e| RunError::Io {
            action: "replan a failed task".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let id = self.tasks.get(i).id.clone();
        let accepted = match fix {
            Ok(fix) => match self.spawner.take(&id) {
                Some(accepted) => Ok((fix, accepted)),
                None => Err("the accepted fix was lost".to_string()),
            },
            Err(why) => Err(why),
        };
        match accepted {
            Ok((fix, accepted)) => {
                self.emit(EventBody::Replanned {
                    task: id,
                    round,
                    reason: fix.reason,
                    diff: fix.diff,
                    error: None,
                })?;
                self.spawn_children(i, accepted)
            }
            Err(why) => {
                self.emit(EventBody::Replanned {
                    task: id,
                    round,
                    reason: String::new(),
                    diff: String::new(),
                    error: Some(why.clone()),
                })?;
                let reason = Some(format!(
                    "{}; replanning found no fix: {why}",
                    reason.unwrap_or_else(|| status.as_str().to_string())
                ));
                self.end_task(i, status, reason)
            }
        }
    }
}
