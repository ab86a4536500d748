//! Where merging into the integration branch stands: how far the walk of
//! the merge order went, the one merge in flight, and the branch's tip.
//!
//! The walk moves one task at a time, in merge order, and never back; at
//! most one merge is in flight (the writer's thread does one at a time);
//! a repair round's result merges behind the walk and does not move it.

use git2::Oid;
use swarm_protocol::TaskStatus;

use crate::ids::TaskIndex;

/// What the walk does next, by the status of the task it is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Nothing now: a merge is in flight, or the task at the walk has not
    /// ended.
    Wait,
    /// The task at the walk succeeded: merge its result (if it has one to
    /// merge; else it is passed).
    Merge(TaskIndex),
    /// The task at the walk ended with nothing to merge: pass it.
    Pass(TaskIndex),
    /// The walk reached the end of the merge order.
    End,
}

/// Where merging into the integration branch stands.
#[derive(Debug)]
pub(super) struct MergeCursor {
    /// Next position in the merge order.
    next: usize,
    /// The task whose merge the writer is doing.
    merging: Option<TaskIndex>,
    /// The integration branch's tip.
    integration: Oid,
    /// The merge in flight is a repair round's result: behind the walk,
    /// which it does not move.
    repair: bool,
}

impl MergeCursor {
    /// At the start of the merge order, the branch at `base`.
    pub(super) fn new(base: Oid) -> Self {
        Self {
            next: 0,
            merging: None,
            integration: base,
            repair: false,
        }
    }

    /// The integration branch's tip.
    pub(super) fn integration(&self) -> Oid {
        self.integration
    }

    /// The branch moved to `tip` (a merge, a revert, a run resumed).
    pub(super) fn moved_to(&mut self, tip: Oid) {
        self.integration = tip;
    }

    /// Whether a merge is in flight.
    pub(super) fn busy(&self) -> bool {
        self.merging.is_some()
    }

    /// How many tasks of the merge order the walk has passed.
    pub(super) fn walked(&self) -> usize {
        self.next
    }

    /// The task the walk is at in `order`, if it has not reached its end.
    pub(super) fn at(&self, order: &[TaskIndex]) -> Option<TaskIndex> {
        order.get(self.next).copied()
    }

    /// What the walk of `order` does next, the tasks' statuses read from
    /// `status`: one merge at a time, strictly in order, a task not yet
    /// ended holding every one after it.
    pub(super) fn step(
        &self,
        order: &[TaskIndex],
        status: impl Fn(TaskIndex) -> TaskStatus,
    ) -> Step {
        if self.busy() {
            return Step::Wait;
        }
        let Some(i) = self.at(order) else {
            return Step::End;
        };
        match status(i) {
            TaskStatus::Pending | TaskStatus::Running => Step::Wait,
            TaskStatus::Succeeded => Step::Merge(i),
            _ => Step::Pass(i),
        }
    }

    /// Task `i`'s merge was handed to the writer (`repair`: a repair
    /// round's result, behind the walk).
    pub(super) fn handed(&mut self, i: TaskIndex, repair: bool) {
        debug_assert!(self.merging.is_none(), "two merges in flight");
        self.merging = Some(i);
        self.repair = repair;
    }

    /// The merge in flight ended (merged or not).
    pub(super) fn ended(&mut self) {
        self.merging = None;
    }

    /// The walk passes the task it is at, or the repair round's result
    /// that was merged: whether the walk moved (not for a repair's).
    pub(super) fn pass(&mut self) -> bool {
        if std::mem::take(&mut self.repair) {
            return false;
        }
        self.next += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(i: usize) -> TaskIndex {
        TaskIndex::new(i)
    }

    #[test]
    fn the_walk_moves_one_task_at_a_time_and_a_repair_does_not_move_it() {
        let base = Oid::from_bytes(&[1; 20]).unwrap();
        let order = [t(2), t(0), t(1)];
        let mut cursor = MergeCursor::new(base);
        assert_eq!((cursor.at(&order), cursor.walked()), (Some(t(2)), 0));
        assert!(!cursor.busy());
        // A merge in flight, then the branch moves and the walk goes on.
        cursor.handed(t(2), false);
        assert!(cursor.busy());
        let tip = Oid::from_bytes(&[2; 20]).unwrap();
        cursor.ended();
        cursor.moved_to(tip);
        assert!(cursor.pass());
        assert_eq!((cursor.at(&order), cursor.integration()), (Some(t(0)), tip));
        // A repair round's result merges behind the walk: it stays.
        cursor.handed(t(2), true);
        cursor.ended();
        assert!(!cursor.pass());
        assert_eq!(cursor.at(&order), Some(t(0)));
        // Then the walk goes on from where it was, to the end.
        assert!(cursor.pass());
        assert!(cursor.pass());
        assert_eq!((cursor.at(&order), cursor.walked()), (None, 3));
    }

    #[test]
    fn the_walk_waits_for_a_task_not_ended_and_passes_one_with_nothing_to_merge() {
        use std::collections::HashMap;
        let order = [t(1), t(0), t(2)];
        let mut statuses = HashMap::from([
            (t(0), TaskStatus::Failed),
            (t(1), TaskStatus::Running),
            (t(2), TaskStatus::Succeeded),
        ]);
        let mut cursor = MergeCursor::new(Oid::from_bytes(&[1; 20]).unwrap());
        // The first in order runs: everything after it waits, even a
        // task that ended.
        assert_eq!(cursor.step(&order, |i| statuses[&i]), Step::Wait);
        statuses.insert(t(1), TaskStatus::Succeeded);
        assert_eq!(cursor.step(&order, |i| statuses[&i]), Step::Merge(t(1)));
        // While its merge is in flight, nothing else.
        cursor.handed(t(1), false);
        assert_eq!(cursor.step(&order, |i| statuses[&i]), Step::Wait);
        cursor.ended();
        assert!(cursor.pass());
        // A failed task is passed; then the next merges; then the end.
        assert_eq!(cursor.step(&order, |i| statuses[&i]), Step::Pass(t(0)));
        assert!(cursor.pass());
        assert_eq!(cursor.step(&order, |i| statuses[&i]), Step::Merge(t(2)));
        assert!(cursor.pass());
        assert_eq!(cursor.step(&order, |i| statuses[&i]), Step::End);
    }

    #[test]
    #[should_panic(expected = "two merges in flight")]
    fn two_merges_are_never_in_flight() {
        let mut cursor = MergeCursor::new(Oid::from_bytes(&[0; 20]).unwrap());
        cursor.handed(t(0), false);
        cursor.handed(t(1), false);
    }
}
