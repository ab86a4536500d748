//! Landing a run on a branch that moved (`swarm land`): the run's results
//! are merged again, in the run's order, onto the branch's tip, as a new
//! run (`<run>-land`) of the same plan from that tip whose tasks start
//! already done. Each task's result is *adopted* from the run it landed in
//! ([`Adopted`]): [`AdoptingExecutor`] reports it at once, as an attempt
//! that ran and succeeded, without running anything; the dispatcher merges
//! it like any result. One that now conflicts runs again on the branch as
//! it is (`on_conflict`), by the real executor this one wraps; the
//! run-wide verify runs on the result as in any run. The CLI moves the
//! branch (or pushes it) only if that run ends well.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures_util::future::BoxFuture;
use git2::Oid;
use swarm_protocol::{AttemptOutcome, Isolation, RunReport, TaskStatus};
use swarm_sandbox::Stop;

use super::executor::{Admission, ExecEvent, Executor, Launch, Reattached};
use crate::git::{GitError, Repo, Snapshot, refs};
use crate::ids::TaskIndex;
use crate::run::table::TaskTable;

pub use super::adopted::{Adopted, AdoptedResult};

impl Adopted {
    /// The results of the tasks `report`'s run merged (read back from its
    /// branch, in order), and of its read-only tasks that succeeded.
    pub fn of_run(repo: &Repo, report: &RunReport) -> Result<Self, GitError> {
        let base = Oid::from_str(&report.base_commit).map_err(|e| GitError::Git2 {
            action: format!("read the run's base commit {}", report.base_commit),
            source: e,
        })?;
        let tip = Oid::from_str(&report.integration_commit).unwrap_or(base);
        let merges = super::verify::rebuild::merges_since(repo, base, tip)?;
        let git = repo.open()?;
        let mut adopted = Self::default();
        for (_, id) in merges {
            let Some(task) = report.tasks.iter().find(|t| t.id == id) else {
                continue;
            };
            if task.status != TaskStatus::Merged {
                continue;
            }
            let Some(commit) = task.commit.as_deref().and_then(|c| Oid::from_str(c).ok()) else {
                continue;
            };
            let made_on = git
                .find_commit(commit)
                .ok()
                .and_then(|c| c.parent_ids().next())
                .unwrap_or(base);
            adopted.order.push(id.clone());
            adopted.by_id.insert(
                id,
                AdoptedResult {
                    commit,
                    base: made_on,
                    changed: task.changed_files.to_vec(),
                },
            );
        }
        for task in &report.tasks {
            if task.isolation == Isolation::Readonly && task.status == TaskStatus::Succeeded {
                adopted.by_id.insert(
                    task.id.clone(),
                    AdoptedResult {
                        commit: base,
                        base,
                        changed: Vec::new(),
                    },
                );
            }
        }
        Ok(adopted)
    }
}

/// An executor that reports adopted results as succeeded attempts, and
/// hands everything else (a re-run after a conflict, a task without an
/// adopted result) to the executor it wraps.
pub(crate) struct AdoptingExecutor {
    inner: Box<dyn Executor>,
    repo: Repo,
    run: String,
    tasks: TaskTable,
    adopted: HashMap<String, AdoptedResult>,
    /// Events of adopted tasks, reported before the inner executor's.
    ready: VecDeque<ExecEvent>,
}

impl AdoptingExecutor {
    pub(crate) fn new(
        inner: Box<dyn Executor>,
        repo: Repo,
        run: String,
        tasks: TaskTable,
        adopted: &Adopted,
    ) -> Self {
        Self {
            inner,
            repo,
            run,
            tasks,
            adopted: adopted.by_id.clone(),
            ready: VecDeque::new(),
        }
    }

    fn adopted(&self, task: TaskIndex) -> Option<&AdoptedResult> {
        self.adopted.get(&self.tasks.get(task).id)
    }
}

impl Executor for AdoptingExecutor {
    fn admit(&self, task: TaskIndex) -> Admission {
        match self.adopted(task) {
            // Nothing runs for it.
            Some(_) => Admission::Start,
            None => self.inner.admit(task),
        }
    }

    fn begin(&mut self) {
        self.inner.begin();
    }

    fn admit_on_deck(&mut self, task: TaskIndex, unlocks: &dyn Fn(TaskIndex) -> bool) -> bool {
        self.adopted(task).is_none() && self.inner.admit_on_deck(task, unlocks)
    }

    fn start(&mut self, launch: Launch) {
        let i = launch.task;
        let result = match (&launch.again, self.adopted(i)) {
            (false, Some(result)) => result.clone(),
            _ => return self.inner.start(launch),
        };
        // Its result, kept on this run's ref like any task's.
        let id = self.tasks.get(i).id.clone();
        let git_ref = refs::task(&self.run, &id);
        if let Err(e) = self
            .repo
            .set_ref(&git_ref, result.commit, "swarm: land: adopted result")
        {
            self.ready.push_back(ExecEvent::Lost {
                task: i,
                why: format!("keep its adopted result: failed to {e}"),
            });
            return;
        }
        let attempt = launch.first_attempt;
        self.ready.push_back(ExecEvent::Started {
            task: i,
            attempt,
            base: result.base,
            workdir: std::path::PathBuf::new(),
            job: None,
            at: None,
            setup: None,
            setup_run: None,
        });
        let snapshot = Snapshot {
            commit: result.commit,
            changed: result.changed,
            skipped: Vec::new(),
            duration: Duration::ZERO,
            hashed: 0,
            written: 0,
        };
        self.ready.push_back(ExecEvent::AttemptFinished {
            task: i,
            attempt,
            outcome: AttemptOutcome::Exited { code: 0 },
            verify_passed: None,
            duration: Duration::ZERO,
            verify: None,
            snapshot: Some(Box::new((snapshot, git_ref))),
            outside_paths: Vec::new(),
            agent: None,
            score: None,
            diff: None,
        });
        self.ready.push_back(ExecEvent::Finished {
            task: i,
            status: TaskStatus::Succeeded,
            reason: Some("adopted from the run it landed in".into()),
        });
    }

    fn next(&mut self) -> BoxFuture<'_, Option<ExecEvent>> {
        Box::pin(async move {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            self.inner.next().await
        })
    }

    fn cancel(&mut self, task: TaskIndex, how: Stop) {
        self.inner.cancel(task, how);
    }

    fn reattach(&mut self, task: TaskIndex, state: &crate::fold::TaskState) -> Reattached {
        self.inner.reattach(task, state)
    }

    fn shutdown(&mut self) -> BoxFuture<'_, ()> {
        self.inner.shutdown()
    }
}
