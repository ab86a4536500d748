//! How far a run's graph may grow below its plan: `[swarm]`'s
//! `max_depth`, `max_children` and `max_tasks`, which subtask requests
//! and replans are held to (`plan::subtasks`, `plan::ceiling`).

use super::schema::SwarmSection;

/// How deep a tree of subtasks may grow below a plan's task by default.
pub const DEFAULT_MAX_DEPTH: u32 = 2;
/// How many children one task may have by default.
pub const DEFAULT_MAX_CHILDREN: u32 = 8;
/// How many tasks a run may have by default, the plan's own included.
pub const DEFAULT_MAX_TASKS: u32 = 100;

/// How far a run's graph may grow (`[swarm]`'s `max_depth`,
/// `max_children` and `max_tasks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Levels of subtasks below a plan's task (0: none at all).
    pub max_depth: u32,
    /// Children of one task.
    pub max_children: u32,
    /// Tasks of the run, the plan's own included.
    pub max_tasks: usize,
}

impl Limits {
    /// The limits `[swarm]` sets for a plan of `planned` tasks: a plan
    /// larger than the default `max_tasks` keeps its own tasks (and can
    /// grow by none) unless it says more.
    pub(super) fn of(swarm: &SwarmSection, planned: usize) -> Self {
        Self {
            max_depth: swarm.max_depth.unwrap_or(DEFAULT_MAX_DEPTH),
            max_children: swarm
                .max_children
                .as_ref()
                .map_or(DEFAULT_MAX_CHILDREN, |v| *v.get_ref()),
            max_tasks: swarm.max_tasks.as_ref().map_or_else(
                || planned.max(DEFAULT_MAX_TASKS as usize),
                |v| *v.get_ref() as usize,
            ),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: DEFAULT_MAX_DEPTH,
            max_children: DEFAULT_MAX_CHILDREN,
            max_tasks: DEFAULT_MAX_TASKS as usize,
        }
    }
}
