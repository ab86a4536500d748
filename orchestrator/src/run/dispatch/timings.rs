//! How long tasks take: the repository's history, which weighs the graph
//! (and so the queue's priorities), and this run's successful attempts,
//! added to it when the run ends.

use crate::durations::History;
use crate::graph::Expected;
use crate::ids::TaskIndex;
use crate::plan::Task;

/// How long tasks took, in earlier runs and in this one.
#[derive(Debug)]
pub(super) struct Timings {
    /// In earlier runs.
    history: History,
    /// This run's successful attempts and how long each took, in
    /// milliseconds, in the order they ended.
    took: Vec<(TaskIndex, u64)>,
}

impl Timings {
    /// From the history of earlier runs, for a run of `tasks` tasks.
    pub(super) fn new(history: History, tasks: usize) -> Self {
        Self {
            history,
            // One entry per task that succeeds: room for all at once.
            took: Vec::with_capacity(tasks),
        }
    }

    /// What each of `tasks` is expected to take.
    pub(super) fn expected(&self, tasks: &[impl std::borrow::Borrow<Task>]) -> Expected {
        self.history.expected(tasks)
    }

    /// The history of earlier runs.
    pub(super) fn history(&self) -> &History {
        &self.history
    }

    /// Keeps how long an attempt took, if `body` is one that succeeded
    /// (command, verify and paths: [`crate::durations::succeeded`]) of a
    /// task `position` knows.
    pub(super) fn record(
        &mut self,
        body: &swarm_protocol::EventBody,
        position: impl FnOnce(&str) -> Option<TaskIndex>,
    ) {
        if let Some((task, ms)) = crate::durations::succeeded(body)
            && let Some(i) = position(task)
        {
            self.took.push((i, ms));
        }
    }

    /// This run's successful attempts and their times, in the order they
    /// ended; the history is let go of (at 10,000 tasks, it beside the
    /// rest as the history is read and written again was the run's peak
    /// of memory).
    pub(super) fn into_took(self) -> Vec<(TaskIndex, u64)> {
        self.took
    }
}

#[cfg(test)]
mod tests {
    use swarm_protocol::{AttemptOutcome, EventBody};

    use super::*;

    fn finished(task: &str, outcome: AttemptOutcome, verify: Option<bool>, ms: u64) -> EventBody {
        EventBody::AttemptFinished {
            task: task.into(),
            attempt: 1,
            outcome,
            verify_passed: verify,
            duration_ms: ms,
            commit: None,
            git_ref: None,
            changed_files: Vec::new(),
            skipped_files: Vec::new(),
            outside_paths: Vec::new(),
            snapshot_ms: None,
            verify_ms: None,
            agent: None,
            score: None,
            diff: None,
        }
    }

    #[test]
    fn only_attempts_that_passed_every_check_are_kept_in_the_order_they_ended() {
        let tasks = |id: &str| {
            ["a", "b", "c"]
                .iter()
                .position(|t| *t == id)
                .map(TaskIndex::new)
        };
        let mut timings = Timings::new(History::default(), 3);
        timings.record(
            &finished("b", AttemptOutcome::Exited { code: 0 }, None, 20),
            tasks,
        );
        timings.record(
            &finished("a", AttemptOutcome::Exited { code: 1 }, None, 5),
            tasks,
        );
        timings.record(
            &finished("c", AttemptOutcome::Exited { code: 0 }, Some(false), 7),
            tasks,
        );
        timings.record(
            &finished("a", AttemptOutcome::Exited { code: 0 }, Some(true), 9),
            tasks,
        );
        // Not a task of the run: nothing.
        timings.record(
            &finished("z", AttemptOutcome::Exited { code: 0 }, None, 1),
            tasks,
        );
        assert_eq!(
            timings.into_took(),
            [(TaskIndex::new(1), 20), (TaskIndex::new(0), 9)]
        );
    }
}
