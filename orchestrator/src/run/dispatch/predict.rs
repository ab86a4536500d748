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

use std::collections::HashMap;

use swarm_protocol::EventBody;

use super::super::error::RunError;
use super::Dispatcher;
use crate::ids::TaskIndex;
use crate::plan::Task;

/// A task is held for one expected to take at most this many times as
/// long as itself...
const HOLD_RATIO: u64 = 4;

/// ...or for one expected to take at most this long whatever the task
/// itself takes: below it, durations are a machine's moment more than the
/// tasks' (a 5 ms `echo` learned at 30 ms under load), and a re-run costs
/// a start and a worktree of its own anyway.
const ALWAYS_WORTH_MS: u64 = 1_000;

/// Whether holding a task expected to take `mine` ms for one expected to
/// take `theirs` is worth it: if the prediction is right, waiting never
/// ends it later than a re-run would (a re-run starts once the other is
/// merged anyway); if it is wrong, waiting costs what is left of the
/// other, not worth it for one expected to take far longer.
fn worth_holding(theirs: u64, mine: u64) -> bool {
    theirs <= mine.saturating_mul(HOLD_RATIO).max(ALWAYS_WORTH_MS)
}

/// What prediction keeps for a run.
pub(super) struct Predicting {
    /// Each plan task's expected changes (`None`: unknown), by index.
    expected: Vec<Option<Box<[String]>>>,
    /// Each plan task's place in the merge order.
    place: Vec<usize>,
    /// Tasks waiting for a task's merge, by that task.
    held: HashMap<TaskIndex, Vec<TaskIndex>>,
}

impl Predicting {
    /// Prediction for `tasks` (the plan's, in plan order) in `order` (the
    /// merge order), from what they declare and what `history` knows.
    pub(super) fn new(
        tasks: &[std::sync::Arc<Task>],
        order: &[TaskIndex],
        history: &crate::durations::History,
    ) -> Self {
        let expected = tasks
            .iter()
            .map(|t| {
                let declared: Vec<String> = t.paths.iter().chain(&t.creates).cloned().collect();
                match declared.is_empty() {
                    false => Some(declared.into_boxed_slice()),
                    true => history.changed(t).map(|c| c.to_vec().into_boxed_slice()),
                }
            })
            .collect();
        let mut place = vec![usize::MAX; tasks.len()];
        for (at, i) in order.iter().enumerate() {
            if let Some(p) = place.get_mut(i.get()) {
                *p = at;
            }
        }
        Self {
            expected,
            place,
            held: HashMap::new(),
        }
    }
}

/// The paths of `a` and `b` that overlap: equal, or one a directory of
/// the other.
fn overlap(a: &[String], b: &[String]) -> Vec<String> {
    let under = |p: &str, dir: &str| {
        p == dir || (p.starts_with(dir) && p.as_bytes().get(dir.len()) == Some(&b'/'))
    };
    let mut found: Vec<String> = a
        .iter()
        .flat_map(|x| b.iter().map(move |y| (x, y)))
        .filter(|(x, y)| under(x, y) || under(y, x))
        .map(|(x, y)| {
            if x.len() >= y.len() {
                x.clone()
            } else {
                y.clone()
            }
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

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

#[cfg(test)]
mod tests {
    use super::{overlap, worth_holding};

    #[test]
    fn a_task_waits_for_one_at_most_four_times_as_long_or_short_anyway() {
        // Four times as long, not more.
        assert!(worth_holding(8_000, 2_000));
        assert!(!worth_holding(8_001, 2_000));
        // Under a second, whatever each takes: at that size the learned
        // times are noise (the flake of e2e
        // `merge_queue::eight_tasks_appending_...` under load: a 5 ms task
        // learned at 30 ms was not held, and conflicted).
        assert!(worth_holding(1_000, 5));
        assert!(worth_holding(30, 5));
        assert!(!worth_holding(1_001, 5));
    }

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn paths_overlap_when_equal_or_one_holds_the_other() {
        assert_eq!(overlap(&v(&["log.txt"]), &v(&["log.txt"])), ["log.txt"]);
        assert_eq!(overlap(&v(&["src"]), &v(&["src/a.rs", "b"])), ["src/a.rs"]);
        assert_eq!(overlap(&v(&["src/a.rs"]), &v(&["src"])), ["src/a.rs"]);
        assert!(overlap(&v(&["src"]), &v(&["srcx/a.rs"])).is_empty());
        assert!(overlap(&v(&["a"]), &v(&["b"])).is_empty());
    }
}
