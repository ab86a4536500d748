//! One record per task of the run, by task index: everything the
//! dispatcher keeps about a task beyond its events (which the fold holds).
//! A task's record is made in one place ([`Slots::push`]), for the plan's
//! tasks and for subtasks alike, so a new piece of per-task state is one
//! new field, never one more vector to keep in step.

use std::ops::{Index, IndexMut};

use swarm_protocol::ThinVec;

use crate::ids::TaskIndex;

/// What the dispatcher keeps about one task.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    /// Handed to the executor and not ended yet (changed only through
    /// [`Slots::set_in_flight`], which counts them).
    in_flight: bool,
    /// Dependencies not yet succeeded.
    pub waiting_on: usize,
    /// The attempt number it starts at (1, or more when resumed).
    pub next_attempt: u32,
    /// For a variant, its experiment's index.
    pub experiment_of: Option<TaskIndex>,
    /// For an experiment with `pick = "first"`, the variant that passed
    /// first.
    pub first_passed: Option<TaskIndex>,
    /// Why a variant was stopped by the dispatcher (another passed
    /// first), for its `task_finished`.
    pub superseded: Option<Box<str>>,
    /// For a subtask, the task that spawned it.
    pub parent: Option<TaskIndex>,
    /// For a task that spawned subtasks, its children (a `ThinVec`: most
    /// tasks have none, and a run keeps one record per task).
    pub children: ThinVec<TaskIndex>,
    /// A task run again after its result conflicted: the integration
    /// commit it starts from, and what an agent is told of the conflict;
    /// taken when it is launched.
    pub rerun: Option<Box<(git2::Oid, Option<std::sync::Arc<str>>)>>,
    /// Its dependents were released when it first succeeded: a re-run's
    /// success does not release them again.
    pub released: bool,
}

impl Slot {
    /// Whether it is handed to the executor and not ended yet.
    pub(super) fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// A task not started, waiting on `waiting_on` dependencies.
    pub(super) fn new(
        waiting_on: usize,
        experiment_of: Option<TaskIndex>,
        parent: Option<TaskIndex>,
    ) -> Self {
        Self {
            in_flight: false,
            waiting_on,
            next_attempt: 1,
            experiment_of,
            first_passed: None,
            superseded: None,
            parent,
            children: ThinVec::new(),
            rerun: None,
            released: false,
        }
    }
}

/// Every task's record, by task index, and how many are in flight (the
/// dispatcher asks after every event: counting them each time cost a pass
/// over all tasks per event, which grew with the plan).
#[derive(Debug, Default)]
pub(super) struct Slots(Vec<Slot>, usize);

impl Slots {
    /// Room for `n` tasks' records: grown one push at a time, the vector
    /// ended up to twice as large as the run (and left its old buffers
    /// behind in the heap).
    pub(super) fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n), 0)
    }

    /// Adds the next task's record; its index.
    pub(super) fn push(&mut self, slot: Slot) -> TaskIndex {
        self.1 += usize::from(slot.in_flight);
        self.0.push(slot);
        TaskIndex::new(self.0.len() - 1)
    }

    /// Marks task `i` handed to the executor, or ended.
    pub(super) fn set_in_flight(&mut self, i: TaskIndex, in_flight: bool) {
        let slot = &mut self.0[i.get()];
        match (slot.in_flight, in_flight) {
            (false, true) => self.1 += 1,
            (true, false) => self.1 -= 1,
            _ => {}
        }
        slot.in_flight = in_flight;
    }

    /// Whether any task is handed to the executor and not ended yet.
    pub(super) fn any_in_flight(&self) -> bool {
        self.1 > 0
    }

    pub(super) fn iter_mut(&mut self) -> std::slice::IterMut<'_, Slot> {
        self.0.iter_mut()
    }
}

impl Index<TaskIndex> for Slots {
    type Output = Slot;
    fn index(&self, task: TaskIndex) -> &Slot {
        &self.0[task.get()]
    }
}

impl IndexMut<TaskIndex> for Slots {
    fn index_mut(&mut self, task: TaskIndex) -> &mut Slot {
        &mut self.0[task.get()]
    }
}
