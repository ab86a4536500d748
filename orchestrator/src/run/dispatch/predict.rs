//! Conflicts predicted, not only found. A re-run after a conflict costs
//! the task's whole time again; waiting for the task it would conflict
//! with costs only what is left of that one. So a ready task whose
//! expected changes overlap those of a task earlier in merge order still to
//! land (to start, running, or waiting for its merge) waits for that task's
//! merge, then starts on the integration branch as it
//! is (where its change lands without a conflict). If the prediction is
//! right, that never ends the task later than a re-run would (a re-run
//! starts only once the other is merged); if it is wrong, it costs what is
//! left of the other task, so a task is not held for one expected to take
//! far longer than itself.
//!
//! What a task is expected to change: its `paths` and `creates` when it
//! declares them (a directory holds everything under it), else what it
//! changed the last time it succeeded (`.swarm/durations.json`). A task
//! with neither is never held. `[swarm] predict_conflicts = false` turns
//! this off. Each hold is journaled (`task_held`) and shown in the live
//! view.

use swarm_protocol::EventBody;

use super::super::error::RunError;
use super::Dispatcher;
use crate::ids::TaskIndex;

use super::predict_state::{overlap, worth_holding};

impl Dispatcher<'_> {
    /// Whether ready task `i` waits for an earlier task's merge instead of
    /// starting now (then it is held, and journaled).
    pub(super) fn held_back(&mut self, i: TaskIndex) -> Result<bool, RunError> {
        let Some(p) = &self.predict else {
            return Ok(false);
        };
        // A variant is one way of its experiment among others that change
        // the same files by design; only the experiment's result lands.
        if self.slots[i].experiment_of.is_some() {
            return Ok(false);
        }
        let Some(Some(mine)) = p.expected.get(i.get()) else {
            return Ok(false);
        };
        let Some(&at) = p.place.get(i.get()) else {
            return Ok(false);
        };
        let order = self.graph.merge_order();
        let mut behind = None;
        // The last such task in merge order: by the time it merges, every
        // task before it has landed too, so `i` is held once, not once
        // behind each.
        for &j in order
            .get(self.merges.walked()..at)
            .unwrap_or_default()
            .iter()
            .rev()
        {
            // Still to land (to start, running, or done and waiting for its
            // merge): what it changes lands before `i`'s would.
            if self.status(j).is_final() || self.slots[j].experiment_of.is_some() {
                continue;
            }
            let Some(Some(theirs)) = p.expected.get(j.get()) else {
                continue;
            };
            let files = overlap(mine, theirs);
            let worth = worth_holding(self.graph.expected(j), self.graph.expected(i));
            if !files.is_empty() && worth {
                behind = Some((j, files));
                break;
            }
        }
        let Some((j, files)) = behind else {
            return Ok(false);
        };
        self.slots[i].waiting_on += 1;
        if let Some(p) = &mut self.predict {
            p.held.entry(j).or_default().push(i);
        }
        self.emit(EventBody::TaskHeld {
            task: self.tasks.get(i).id.clone(),
            behind: self.tasks.get(j).id.clone(),
            files,
        })?;
        Ok(true)
    }

    /// The merge walk passed task `j` (merged, or not to be merged): what
    /// waited for it starts, on the integration branch as it is now (a
    /// prefix of the merge order, so the history does not depend on when
    /// tasks finished).
    pub(super) fn release_held(&mut self, j: TaskIndex) -> Result<(), RunError> {
        let Some(held) = self.predict.as_mut().and_then(|p| p.held.remove(&j)) else {
            return Ok(());
        };
        for i in held {
            self.slots[i].waiting_on = self.slots[i].waiting_on.saturating_sub(1);
            // From the branch as it is now (held again later, from the
            // branch as it is then).
            let note = self.slots[i].rerun.take().and_then(|r| r.1);
            self.slots[i].rerun = Some(Box::new((self.merges.integration(), note)));
            if self.slots[i].waiting_on == 0
                && self.status(i) == swarm_protocol::TaskStatus::Pending
            {
                self.enqueue(i)?;
            }
        }
        Ok(())
    }
}
