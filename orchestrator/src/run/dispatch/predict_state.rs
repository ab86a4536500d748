//! What conflict prediction keeps between the dispatcher's calls
//! ([`Predicting`]): each task's expected changes and the holds made, and
//! when a hold is worth it. The dispatcher's side is `predict.rs`.

use std::collections::HashMap;

use crate::ids::TaskIndex;
use crate::plan::Task;

/// A task is held for one expected to take at most this many times as
/// long as itself...
pub(super) const HOLD_RATIO: u64 = 4;

/// ...or for one expected to take at most this long whatever the task
/// itself takes: below it, durations are a machine's moment more than the
/// tasks' (a 5 ms `echo` learned at 30 ms under load), and a re-run costs
/// a start and a worktree of its own anyway.
pub(super) const ALWAYS_WORTH_MS: u64 = 1_000;

/// Whether holding a task expected to take `mine` ms for one expected to
/// take `theirs` is worth it: if the prediction is right, waiting never
/// ends it later than a re-run would (a re-run starts once the other is
/// merged anyway); if it is wrong, waiting costs what is left of the
/// other, not worth it for one expected to take far longer.
pub(super) fn worth_holding(theirs: u64, mine: u64) -> bool {
    theirs <= mine.saturating_mul(HOLD_RATIO).max(ALWAYS_WORTH_MS)
}

/// What prediction keeps for a run.
pub(super) struct Predicting {
    /// Each plan task's expected changes (`None`: unknown), by index.
    pub(super) expected: Vec<Option<Box<[String]>>>,
    /// Each plan task's place in the merge order.
    pub(super) place: Vec<usize>,
    /// Tasks waiting for a task's merge, by that task.
    pub(super) held: HashMap<TaskIndex, Vec<TaskIndex>>,
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
pub(super) fn overlap(a: &[String], b: &[String]) -> Vec<String> {
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
