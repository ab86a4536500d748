//! The run's tasks, shared between the dispatcher and its executor, and
//! growing while the run goes: subtasks join the plan's own tasks at the
//! end. A task never changes once in the table, so readers take an `Arc`
//! of it and never hold the lock.

use std::sync::{Arc, PoisonError, RwLock};

use crate::ids::TaskIndex;
use crate::plan::Task;

/// Every task of the run, by index: the plan's in plan order, then
/// subtasks in the order they were spawned.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaskTable(Arc<RwLock<Vec<Arc<Task>>>>);

impl TaskTable {
    pub(crate) fn new(tasks: Vec<Task>) -> Self {
        // Not `collect` from `tasks.into_iter()`: that reuses the tasks'
        // buffer for the pointers, and keeps all of it (4.5 MB at 10,000
        // tasks) for the whole run.
        let mut all = Vec::with_capacity(tasks.len());
        all.extend(tasks.into_iter().map(Arc::new));
        Self(Arc::new(RwLock::new(all)))
    }

    /// Task `i`. Indices come from the table itself, so one past its end is
    /// a bug in swarm.
    pub(crate) fn get(&self, i: TaskIndex) -> Arc<Task> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner)[i.get()])
    }

    pub(crate) fn len(&self) -> usize {
        self.0.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Adds `task` at the end; its index.
    pub(crate) fn push(&self, task: Task) -> TaskIndex {
        let mut all = self.0.write().unwrap_or_else(PoisonError::into_inner);
        all.push(Arc::new(task));
        TaskIndex::new(all.len() - 1)
    }

    /// Every task now, in order.
    pub(crate) fn all(&self) -> Vec<Arc<Task>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The index of the task `id`.
    pub(crate) fn position(&self, id: &str) -> Option<TaskIndex> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .position(|t| t.id == id)
            .map(TaskIndex::new)
    }

    /// Every task's index now, in order.
    pub(crate) fn indices(&self) -> impl DoubleEndedIterator<Item = TaskIndex> + Clone + use<> {
        TaskIndex::all(self.len())
    }
}
