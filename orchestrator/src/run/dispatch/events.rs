//! What the dispatcher makes of its executor's reports: each one becomes
//! the journal's event (attempts, agent notes, cluster placements), and a
//! task's end goes on to `on_done`.

use std::time::SystemTime;

use swarm_protocol::{EventBody, TaskStatus};

use super::super::error::RunError;
use super::super::executor::ExecEvent;
use super::Dispatcher;
use crate::gateway::AgentNote;

impl Dispatcher<'_> {
    pub(super) fn on_event(&mut self, event: ExecEvent) -> Result<(), RunError> {
        // An executor may report a task it was declared to have lost.
        if !self.slots[event.task()].in_flight() {
            return Ok(());
        }
        match event {
            ExecEvent::Agent { task, note } => {
                let task = self.tasks.get(task).id.clone();
                self.emit(match note {
                    AgentNote::Tool { name, detail } => EventBody::AgentTool { task, name, detail },
                    AgentNote::Usage {
                        turn,
                        usage,
                        total,
                        cost_usd,
                    } => EventBody::AgentUsage {
                        task,
                        turn,
                        usage,
                        total,
                        cost_usd,
                    },
                    AgentNote::Budget { message } => EventBody::BudgetSpent { task, message },
                })
            }
            ExecEvent::Started {
                task,
                attempt,
                base,
                workdir,
                job,
                at,
                setup,
                setup_run,
            } => self.emit_at(
                EventBody::TaskStarted {
                    task: self.tasks.get(task).id.clone(),
                    attempt,
                    base_commit: base.to_string(),
                    workdir: workdir.display().to_string(),
                    job,
                    setup_ms: setup.map(crate::millis),
                    setup_run,
                    max_file_size: Some(self.tasks.get(task).max_file_size),
                },
                at.map(|at| SystemTime::now() - at.elapsed()),
            ),
            ExecEvent::Tests {
                task,
                attempt,
                tests,
                warning,
            } => self.emit(EventBody::TestsReported {
                task: self.tasks.get(task).id.clone(),
                attempt,
                tests: tests.map(|t| *t),
                warning,
            }),
            ExecEvent::SetUp { task, attempt, run } => self.emit(EventBody::AttemptSetUp {
                task: self.tasks.get(task).id.clone(),
                attempt,
                setup: run,
            }),
            ExecEvent::Placed {
                task,
                attempt,
                job,
                node,
            } => self.emit(EventBody::AttemptPlaced {
                task: self.tasks.get(task).id.clone(),
                attempt,
                job,
                node,
            }),
            ExecEvent::AttemptFinished {
                task,
                attempt,
                outcome,
                verify_passed,
                duration,
                verify,
                snapshot,
                outside_paths,
                agent,
                score,
                diff,
            } => {
                let (commit, git_ref, changed, skipped, snapshot_ms) = match snapshot.map(|b| *b) {
                    Some((snap, r)) => (
                        Some(snap.commit.to_string()),
                        Some(r),
                        snap.changed,
                        snap.skipped,
                        Some(crate::millis(snap.duration)),
                    ),
                    None => (None, None, Vec::new(), Vec::new(), None),
                };
                self.emit(EventBody::AttemptFinished {
                    task: self.tasks.get(task).id.clone(),
                    attempt,
                    outcome,
                    verify_passed,
                    duration_ms: crate::millis(duration),
                    commit,
                    git_ref,
                    changed_files: changed,
                    skipped_files: skipped,
                    outside_paths,
                    snapshot_ms,
                    verify_ms: verify.map(crate::millis),
                    agent,
                    score: score.map(|s| *s),
                    diff,
                })
            }
            ExecEvent::Finished {
                task,
                status,
                reason,
            } => self.on_done(task, status, reason),
            ExecEvent::Withdrawn { task } => {
                // Never started: back in its queue, as if never handed over.
                self.slots.set_in_flight(task, false);
                self.queue.push(task, self.graph.priority(task));
                Ok(())
            }
            ExecEvent::Lost { task, why } => self.on_done(
                task,
                TaskStatus::Failed,
                Some(format!("swarm lost it: {why}")),
            ),
        }
    }

    /// Every task still in flight is lost (the executor ended early).
    pub(super) fn lose_all(&mut self, why: &str) -> Result<(), RunError> {
        for i in self.tasks.indices() {
            if self.slots[i].in_flight() {
                self.on_done(i, TaskStatus::Failed, Some(format!("swarm lost it: {why}")))?;
            }
        }
        Ok(())
    }
}
