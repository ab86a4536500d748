//! The run's tasks, shared between the dispatcher and its executor, and
//! growing while the run goes: subtasks join the plan's own tasks at the
//! end. A task never changes once in the table, so readers take an `Arc`
//! of it and never hold the lock.

use std::sync::{Arc, PoisonError, RwLock};

use crate::id_index::IdIndex;
use crate::ids::TaskIndex;
use crate::plan::Task;

/// Every task of the run, by index: the plan's in plan order, then
/// subtasks in the order they were spawned.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaskTable(Arc<RwLock<Tasks>>);

#[derive(Debug, Default)]
struct Tasks {
    all: Vec<Arc<Task>>,
    /// Each task's index by its id: the dispatcher looks one up for every
    /// task that succeeds, and a scan of the table each time made a run
    /// of 10,000 tasks a fifth slower per task than one of 1,000.
    by_id: IdIndex,
}

impl TaskTable {
    pub(crate) fn new(tasks: Vec<Task>) -> Self {
        // Not `collect` from `tasks.into_iter()`: that reuses the tasks'
        // buffer for the pointers, and keeps all of it (4.5 MB at 10,000
        // tasks) for the whole run.
        let mut all: Vec<Arc<Task>> = Vec::with_capacity(tasks.len());
        all.extend(tasks.into_iter().map(Arc::new));
        // Ids are unique; were one not, the first would stay its answer.
        let by_id = IdIndex::of(all.len(), |i| all[i].id.as_str());
        Self(Arc::new(RwLock::new(Tasks { all, by_id })))
    }

    /// Task `i`. Indices come from the table itself, so one past its end is
    /// a bug in swarm.
    pub(crate) fn get(&self, i: TaskIndex) -> Arc<Task> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner).all[i.get()])
    }

    pub(crate) fn len(&self) -> usize {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .all
            .len()
    }

    /// Adds `task` at the end; its index.
    pub(crate) fn push(&self, task: Task) -> TaskIndex {
        let mut tasks = self.0.write().unwrap_or_else(PoisonError::into_inner);
        let i = TaskIndex::new(tasks.all.len());
        tasks.all.push(Arc::new(task));
        let Tasks { all, by_id } = &mut *tasks;
        // Ids are unique; were one not, the first would stay its answer.
        by_id.insert(i.get(), |at| all[at].id.as_str());
        i
    }

    /// Every task now, in order.
    pub(crate) fn all(&self) -> Vec<Arc<Task>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .all
            .clone()
    }

    /// The index of the task `id`.
    pub(crate) fn position(&self, id: &str) -> Option<TaskIndex> {
        let tasks = self.0.read().unwrap_or_else(PoisonError::into_inner);
        tasks
            .by_id
            .get(id, |at| tasks.all[at].id.as_str())
            .map(TaskIndex::new)
    }

    /// Every task's index now, in order.
    pub(crate) fn indices(&self) -> impl DoubleEndedIterator<Item = TaskIndex> + Clone + use<> {
        TaskIndex::all(self.len())
    }
}
