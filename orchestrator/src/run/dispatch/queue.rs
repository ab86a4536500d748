//! The dispatcher's ready queue: which task starts next.
//!
//! Ready tasks start by priority (the graph's remaining critical path in
//! expected time, [`crate::graph::TaskGraph::priority`]), ties in plan
//! order. A task the executor asked to wait (memory) is put aside and
//! comes back at the next round of starts, in its place. The queue holds
//! indices only: whether a queued task may still start (its status, its
//! dependencies, a predicted conflict) is the dispatcher's to decide as it
//! takes it, so a task queued twice, or no longer pending, is simply
//! passed over.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::ids::TaskIndex;

/// Tasks ready to start.
#[derive(Debug, Default)]
pub(super) struct Queue {
    /// By priority, ties in plan order (the lower index first).
    ready: BinaryHeap<(u64, Reverse<TaskIndex>)>,
    /// Those the executor asked to wait, until the next round.
    deferred: Vec<(u64, Reverse<TaskIndex>)>,
}

impl Queue {
    /// Queues task `i`, of priority `priority`.
    pub(super) fn push(&mut self, i: TaskIndex, priority: u64) {
        self.ready.push((priority, Reverse(i)));
    }

    /// The task that starts next, if any (left queued).
    pub(super) fn next(&self) -> Option<TaskIndex> {
        self.ready.peek().map(|&(_, Reverse(i))| i)
    }

    /// Takes the next task out: it started, failed to, or may not start.
    pub(super) fn take(&mut self) {
        self.ready.pop();
    }

    /// Puts the next task aside until the next round ([`Self::round`]).
    pub(super) fn defer(&mut self) {
        if let Some(top) = self.ready.pop() {
            self.deferred.push(top);
        }
    }

    /// Begins a round of starts: the tasks put aside are queued again.
    pub(super) fn round(&mut self) {
        self.ready.extend(self.deferred.drain(..));
    }

    /// Forgets every ready task (a resumed run queues them anew); those
    /// put aside stay.
    pub(super) fn clear(&mut self) {
        self.ready.clear();
    }

    /// The ready tasks, in plan order.
    pub(super) fn queued(&self) -> Vec<TaskIndex> {
        let mut queued: Vec<TaskIndex> = self.ready.iter().map(|&(_, Reverse(i))| i).collect();
        queued.sort_unstable();
        queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(i: usize) -> TaskIndex {
        TaskIndex::new(i)
    }

    /// Every task in the order it would start.
    fn drain(q: &mut Queue) -> Vec<usize> {
        let mut order = Vec::new();
        while let Some(i) = q.next() {
            order.push(i.get());
            q.take();
        }
        order
    }

    #[test]
    fn the_longest_path_starts_first_and_ties_go_in_plan_order() {
        let mut q = Queue::default();
        for (i, priority) in [(3, 10), (1, 10), (2, 50), (0, 5), (4, 50)] {
            q.push(t(i), priority);
        }
        assert_eq!(q.queued(), [t(0), t(1), t(2), t(3), t(4)]);
        assert_eq!(drain(&mut q), [2, 4, 1, 3, 0]);
        assert_eq!(q.next(), None);
    }

    #[test]
    fn a_task_put_aside_comes_back_in_its_place_at_the_next_round() {
        let mut q = Queue::default();
        q.push(t(0), 9);
        q.push(t(1), 5);
        q.push(t(2), 1);
        // The executor asks the first to wait: the next one is offered.
        q.defer();
        assert_eq!(q.next(), Some(t(1)));
        assert_eq!(q.queued(), [t(1), t(2)]);
        // Not before the next round, then first again.
        q.round();
        assert_eq!(drain(&mut q), [0, 1, 2]);
        // Deferring with nothing queued puts nothing aside.
        q.defer();
        q.round();
        assert_eq!(q.next(), None);
    }

    #[test]
    fn clearing_forgets_the_ready_but_not_those_put_aside() {
        let mut q = Queue::default();
        q.push(t(0), 2);
        q.push(t(1), 1);
        q.defer();
        q.clear();
        assert_eq!(q.next(), None);
        q.round();
        assert_eq!(drain(&mut q), [0]);
    }
}
