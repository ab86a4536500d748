//! Names at the bottom of the library: task ids (a plan's own, a
//! variant's `task@n`, a subtask's `parent/child`), their one-component
//! form for refs and file names, and run names. Plans, git refs, the
//! file layout and the journal build on these rules; this module imports
//! nothing of swarm's.

use std::borrow::Cow;

/// What separates a parent's id from its child's.
pub const SEPARATOR: char = '/';

/// The name of the file in `.swarm/runs/` that names the newest run
/// (`layout::LATEST`), which is therefore no run's name.
pub const LATEST: &str = "latest";

/// True if `id` is a valid task id: `[a-z0-9_-]+`, at most 100 characters.
///
/// These characters keep every per-task ref name valid and collision-free:
/// no `/` means no ref can be a prefix directory of another, and no `.` lets
/// swarm keep earlier attempts at `<task>.<n>` beside the task's own ref.
pub fn is_valid_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// True if `name` can be a run name: one valid git ref component of
/// `[A-Za-z0-9_.-]`, not starting with `.` or `-`, without `..`, not ending
/// in `.lock` or `.`, and not `latest` (the file in `.swarm/runs/` that
/// names the newest run).
pub fn is_valid_run_name(name: &str) -> bool {
    let Some(first) = name.bytes().next() else {
        return false;
    };
    name != LATEST
        && name.len() <= 100
        && first != b'.'
        && first != b'-'
        && !name.contains("..")
        && !name.ends_with(".lock")
        && !name.ends_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The id of variant `number` of task `id`: `@` cannot be in an id
/// written in a plan, so it collides with none, and git allows it in a
/// ref (unlike `~`, which names an ancestor).
pub fn variant_id(id: &str, number: u32) -> String {
    format!("{id}@{number}")
}

/// The id of `parent`'s child `local`.
pub fn child_id(parent: &str, local: &str) -> String {
    format!("{parent}{SEPARATOR}{local}")
}

/// Levels of subtasks above `id` (0 for a plan's own task).
pub fn depth(id: &str) -> usize {
    id.matches(SEPARATOR).count()
}

/// The parent of subtask `id` (`None` for a plan's own task).
pub fn parent_of(id: &str) -> Option<&str> {
    id.rsplit_once(SEPARATOR).map(|(parent, _)| parent)
}

/// Task `id` as one component of a ref name or a file name: a subtask's
/// `/` would make its ref a directory of its parent's, so it becomes `+`
/// (which no task id has).
pub fn flat(id: &str) -> Cow<'_, str> {
    match id.contains(SEPARATOR) {
        true => Cow::Owned(id.replace(SEPARATOR, "+")),
        false => Cow::Borrowed(id),
    }
}

/// A task's place in a run's task table: the plan's tasks in plan order,
/// then subtasks in the order they were spawned. What the task graph, the
/// dispatcher's records and executors index by; a count or a position in
/// anything else is a plain `usize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskIndex(usize);

impl TaskIndex {
    pub const fn new(index: usize) -> Self {
        Self(index)
    }

    /// The index as a position in a slice of the run's tasks.
    pub const fn get(self) -> usize {
        self.0
    }

    /// The indices of a table of `len` tasks, in order.
    pub fn all(len: usize) -> impl DoubleEndedIterator<Item = TaskIndex> + Clone + use<> {
        (0..len).map(Self)
    }
}
