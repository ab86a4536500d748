//! Path ownership: a task with `paths` or `creates` writes only there.
//!
//! The result check ([`outside`]) compares every attempt's snapshot with
//! its base and fails the attempt for any file added, changed or deleted
//! outside the owned paths.

use crate::plan::{Task, path_within};

/// How many names a message lists before it counts the rest.
const SHOWN: usize = 10;

/// What a task is told to do about files it wrote outside its paths.
pub(super) const HELP: &str = "add them to `paths` or `creates`, or leave them to another task";

/// The files of `changed` (paths relative to the repository root, as a
/// snapshot lists what differs from its base) that `task` does not own:
/// none for a task without `paths` or `creates`.
pub(crate) fn outside(task: &Task, changed: &[String]) -> Vec<String> {
    let Some(owned) = task.owned() else {
        return Vec::new();
    };
    changed
        .iter()
        .filter(|p| !owned.iter().any(|o| path_within(p, o)))
        .cloned()
        .collect()
}

/// Why an attempt that wrote `files` outside the task's paths failed, e.g.
/// `wrote outside its paths: README.md (its paths: src/a; creates: src/b.rs)`.
pub(crate) fn describe(task: &Task, files: &[String]) -> String {
    let mut its = Vec::new();
    if !task.paths.is_empty() {
        its.push(format!("paths: {}", list(&task.paths)));
    }
    if !task.creates.is_empty() {
        its.push(format!("creates: {}", list(&task.creates)));
    }
    format!(
        "wrote outside its paths: {} (its {})",
        list(files),
        its.join("; ")
    )
}

/// `a, b, c` and, past [`SHOWN`] names, `and N more`.
fn list(names: &[String]) -> String {
    let mut text = names
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

#[cfg(test)]
#[path = "ownership_tests.rs"]
mod tests;
