//! The one fold of a run's events into its state.
//!
//! The journal is the run's source of truth, and three readers need the
//! state it adds up to: the dispatcher (which task is pending, running,
//! finished, merged; what each one's result is), the report (`report.json`,
//! `swarm status`, `swarm runs`, JUnit) and resume (what is left to run).
//! They all apply events through [`RunFold::apply`], so an event handled
//! for one of them cannot be forgotten by another: `apply` matches every
//! event kind without a catch-all, and a unit test replays one of each kind
//! the committed schema names.

use std::path::Path;

use git2::Oid;
use swarm_protocol::{
    AttemptOutcome, Event, EventBody, Isolation, JobPlacement, RunReport, TaskInfo, TaskKind,
    TaskReport, TaskStatus, ThinVec,
};

use crate::id_index::IdIndex;
use crate::ids::TaskIndex;
use crate::layout::{log_paths, run_dir, verify_log_paths};

/// What the events say of one task, beyond its report: the git facts the
/// dispatcher and resume act on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskState {
    /// The last attempt that started (0: none did).
    pub attempt: u32,
    /// The commit that attempt started from.
    pub base: Option<Oid>,
    /// The snapshot of the last attempt that finished, if it had one.
    pub commit: Option<Oid>,
    /// What its merge recorded: the task's commit, or the user's merge
    /// commit for a conflict resolved by hand (which holds the fix).
    pub merged: Option<Oid>,
    /// Whether the last finished attempt's `verify` passed (`None`: it
    /// did not run).
    pub verify_passed: Option<bool>,
    /// The cluster job of the last attempt that started, if it ran as one.
    pub job: Option<String>,
    /// The request its children were spawned from, once it spawned any:
    /// it runs no more itself, it waits for them.
    pub spawned: Option<String>,
    /// It failed and was replanned: its children take its place, starting
    /// from its base; its own (failed) result is not part of its line.
    pub replaced: bool,
    /// It was given the run-wide verify's repair round (once a run): a
    /// resumed run starts it from the branch, and gives it no other.
    pub repaired: bool,
    /// What its agent is told as it runs again (a re-run's or a repair's
    /// note), until that attempt starts.
    pub rerun_note: Option<String>,
}

impl TaskState {
    /// Where task's line starts for its children: its base when it was
    /// replanned, else its own result.
    pub fn line_start(&self) -> Option<Oid> {
        match self.replaced {
            true => self.base,
            false => self.commit,
        }
    }
}

/// Folds events into a run's state and its [`RunReport`].
#[derive(Debug, Default)]
pub struct RunFold {
    report: Option<RunReport>,
    /// Task id to its slot (the order `run_started` lists tasks in), by
    /// the ids of the report's tasks.
    index: IdIndex,
    tasks: Vec<TaskState>,
    /// The run's numbering of its tasks (`TaskIndex`, its task table's),
    /// once a dispatcher or resume gave it ([`RunFold::number`]): each
    /// index's slot, and each slot's index. Until then (a reader of a
    /// journal, which has no table) a task's index is its slot.
    numbering: Option<Numbering>,
    /// What each agent task running now is doing, by slot (its notes as
    /// they come; its report comes with its attempt's end).
    agents: std::collections::HashMap<usize, LiveAgent>,
}

/// An agent task as it runs: its tool now, its tokens and cost so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveAgent {
    pub tool: String,
    pub tokens: u64,
    pub cost_usd: f64,
}

/// The run's task numbering against the fold's slots (the order
/// `run_started` lists tasks in, then subtasks as spawned).
#[derive(Debug, Default)]
struct Numbering {
    slots: Vec<usize>,
    indices: Vec<Option<TaskIndex>>,
}

fn oid(text: &str) -> Option<Oid> {
    Oid::from_str(text).ok()
}

impl RunFold {
    /// The state `events` add up to.
    pub fn of(events: &[Event]) -> Self {
        let mut fold = Self::default();
        for event in events {
            fold.apply(event);
        }
        fold
    }

    pub fn apply(&mut self, event: &Event) {
        match &event.body {
            EventBody::RunStarted {
                run,
                plan,
                repo,
                base,
                base_commit,
                integration_branch,
                tasks,
                ..
            } => {
                let dir = run_dir(Path::new(repo), run);
                self.tasks = vec![TaskState::default(); tasks.len()];
                let report = self.report.insert(RunReport {
                    v: event.v,
                    run: run.clone(),
                    plan: plan.clone(),
                    repo: repo.clone(),
                    base: base.clone(),
                    base_commit: base_commit.clone(),
                    integration_branch: integration_branch.clone(),
                    integration_commit: base_commit.clone(),
                    started_at: event.ts.clone(),
                    finished_at: None,
                    duration_ms: None,
                    exit_code: None,
                    tasks: tasks.iter().map(|t| new_task(&dir, t)).collect(),
                    verify_runs: Vec::new(),
                    verify_named: None,
                    merge_queue: None,
                });
                let reports = &report.tasks;
                self.index = IdIndex::of(reports.len(), |i| reports[i].id.as_str());
            }
            // What an agent does as it runs (the live view's); its report
            // comes with its attempt.
            EventBody::AgentTool { task, detail, .. } => {
                if let Some(slot) = self.slot_of(task) {
                    self.agents.entry(slot).or_default().tool = detail.clone();
                }
            }
            EventBody::AgentUsage {
                task,
                total,
                cost_usd,
                ..
            } => {
                if let Some(slot) = self.slot_of(task) {
                    let live = self.agents.entry(slot).or_default();
                    live.tokens = total.total();
                    live.cost_usd = *cost_usd;
                }
            }
            // Said as they come; no state.
            EventBody::TaskQueued { .. }
            | EventBody::TaskHeld { .. }
            | EventBody::BudgetSpent { .. } => {}
            // The shards are in `run_started`'s tasks already; what moved
            // since the last run is said on the shards it moved to.
            EventBody::TaskSharded {
                task,
                shards,
                moved,
            } => {
                for (number, entries) in (1..).zip(shards) {
                    let here: Vec<&String> = entries.iter().filter(|e| moved.contains(e)).collect();
                    let id = crate::plan::shards::shard_id(task, number);
                    if let (false, Some((t, _))) = (here.is_empty(), self.task_mut(&id)) {
                        t.warnings.push(regrouped(&here));
                    }
                }
            }
            EventBody::RunResumed {
                pending,
                integration_commit,
                merged,
                ..
            } => {
                for id in pending {
                    if let Some((t, s)) = self.task_mut(id) {
                        // A task that spawned subtasks runs no more: it
                        // waits for them again.
                        t.status = match s.spawned {
                            Some(_) => TaskStatus::Running,
                            None => TaskStatus::Pending,
                        };
                        t.reason = None;
                    }
                }
                for id in merged {
                    if let Some((t, s)) = self.task_mut(id) {
                        t.status = TaskStatus::Merged;
                        s.merged = s.commit;
                    }
                }
                if let Some(r) = &mut self.report {
                    r.integration_commit = integration_commit.clone();
                    r.exit_code = None;
                    r.finished_at = None;
                }
            }
            EventBody::RunFinished {
                integration_commit,
                exit_code,
                duration_ms,
            } => {
                if let Some(r) = &mut self.report {
                    r.integration_commit = integration_commit.clone();
                    r.exit_code = Some(*exit_code);
                    r.duration_ms = Some(*duration_ms);
                    r.finished_at = Some(event.ts.clone());
                }
            }
            EventBody::TaskStarted { .. }
            | EventBody::AttemptSetUp { .. }
            | EventBody::AttemptPlaced { .. }
            | EventBody::AttemptFinished { .. }
            | EventBody::ExperimentDecided { .. }
            | EventBody::TaskFinished { .. }
            | EventBody::TaskMerged { .. }
            | EventBody::TaskConflicted { .. }
            | EventBody::TaskRequeued { .. }
            | EventBody::TestsReported { .. } => self.apply_attempt(event),
            EventBody::SubtasksSpawned { .. }
            | EventBody::ReplanStarted { .. }
            | EventBody::Replanned { .. }
            | EventBody::SubtasksMerged { .. }
            | EventBody::RunVerified { .. }
            | EventBody::VerifyNamed { .. }
            | EventBody::VerifyBroken { .. } => self.apply_verify(event),
        }
    }

    /// [`Self::apply`] of the run-wide verify's events and the graph's growing:
    /// subtasks spawned and merged, replans.
    fn apply_verify(&mut self, event: &Event) {
        match &event.body {
            EventBody::SubtasksSpawned {
                task,
                tasks,
                request,
                ..
            } => {
                let dir = self.run_dir();
                if let Some((t, s)) = self.task_mut(task) {
                    t.subtasks = tasks.iter().map(|c| c.id.clone()).collect();
                    s.spawned = Some(request.clone());
                }
                if let (Some(report), Some(dir)) = (&mut self.report, dir) {
                    for child in tasks {
                        let reports = &report.tasks;
                        if self.index.contains(&child.id, |i| reports[i].id.as_str()) {
                            continue;
                        }
                        report.tasks.push(new_task(&dir, child));
                        let reports = &report.tasks;
                        self.index
                            .insert(reports.len() - 1, |i| reports[i].id.as_str());
                        self.tasks.push(TaskState::default());
                    }
                }
            }
            EventBody::ReplanStarted { .. } => {}
            EventBody::Replanned {
                task,
                reason,
                error: None,
                ..
            } => {
                if let Some((t, s)) = self.task_mut(task) {
                    t.replanned = Some(reason.clone());
                    s.replaced = true;
                }
            }
            EventBody::Replanned { error: Some(_), .. } => {}
            EventBody::SubtasksMerged { task, commit } => {
                if let Some((t, s)) = self.task_mut(task) {
                    t.commit = Some(commit.clone());
                    s.commit = oid(commit);
                }
            }
            EventBody::RunVerified { run } => {
                if let Some(r) = &mut self.report {
                    r.verify_runs.push(run.clone());
                    r.merge_queue = Some(queue_stats(r));
                }
            }
            EventBody::VerifyNamed { named } => {
                if let Some(r) = &mut self.report {
                    r.verify_named = Some(named.clone());
                }
            }
            EventBody::VerifyBroken {
                task,
                integration_commit,
                unmerged,
                conflicted,
                reason,
                ..
            } => {
                if let Some((t, s)) = self.task_mut(task) {
                    t.status = TaskStatus::BrokeVerify;
                    t.reason = Some(reason.clone());
                    s.merged = None;
                }
                // Their results hold its changes: out of the branch too.
                for (id, status) in unmerged
                    .iter()
                    .map(|id| (id, TaskStatus::Blocked))
                    .chain(conflicted.iter().map(|id| (id, TaskStatus::Conflicted)))
                {
                    if let Some((t, s)) = self.task_mut(id) {
                        t.status = status;
                        t.reason = Some(match status {
                            TaskStatus::Blocked => format!(
                                "dependency `{task}` broke the run-wide verify; its merge was taken out with it"
                            ),
                            _ => format!(
                                "its merge conflicts once `{task}`'s merge is taken out of the integration branch"
                            ),
                        });
                        s.merged = None;
                    }
                }
                if let Some(r) = &mut self.report {
                    r.integration_commit = integration_commit.clone();
                    r.merge_queue = Some(queue_stats(r));
                }
            }
            // [`Self::apply`] hands this function only the events above.
            _ => {}
        }
    }

    /// [`Self::apply`] of the events of a task's attempts and end: its start,
    /// setting up, attempts, experiment, status, merge or conflict, re-queueing
    /// and tests.
    fn apply_attempt(&mut self, event: &Event) {
        match &event.body {
            EventBody::TaskStarted {
                task,
                attempt,
                base_commit,
                job,
                setup_run,
                ..
            } => {
                let dir = self.run_dir();
                if let Some((t, s)) = self.task_mut(task)
                    && let Some(dir) = dir
                {
                    let (out, err) = log_paths(&dir, task, *attempt);
                    t.status = TaskStatus::Running;
                    t.attempts = *attempt;
                    t.stdout_log = out.display().to_string();
                    t.stderr_log = err.display().to_string();
                    s.attempt = *attempt;
                    s.base = oid(base_commit);
                    s.job = job.clone();
                    if let Some(run) = setup_run {
                        t.setup_ms += run.ms;
                    }
                    t.setup_reused = setup_run.is_some_and(|r| r.reused);
                    if let Some(job) = job {
                        t.jobs.push(JobPlacement {
                            attempt: *attempt,
                            job: job.clone(),
                            node: None,
                        });
                    }
                }
            }
            EventBody::AttemptSetUp { task, setup, .. } => {
                if let Some((t, _)) = self.task_mut(task) {
                    t.setup_ms += setup.ms;
                    t.setup_reused = setup.reused;
                }
            }
            EventBody::AttemptPlaced {
                task,
                attempt,
                job,
                node,
            } => {
                if let Some((t, _)) = self.task_mut(task)
                    && let Some(p) = t
                        .jobs
                        .iter_mut()
                        .find(|p| p.attempt == *attempt && p.job == *job)
                {
                    p.node = Some(node.clone());
                }
            }
            EventBody::AttemptFinished {
                task,
                attempt,
                outcome,
                verify_passed,
                duration_ms,
                commit,
                git_ref,
                changed_files,
                skipped_files,
                outside_paths,
                snapshot_ms,
                verify_ms: _,
                agent,
                score,
                diff,
            } => {
                let dir = self.run_dir();
                if let Some((t, s)) = self.task_mut(task) {
                    // An attempt lost with its node is tried again and
                    // would leave no trace but the journal.
                    if let AttemptOutcome::Lost { message } = outcome {
                        t.warnings
                            .push(format!("attempt {attempt} was lost: {message}"));
                    }
                    // A command task's failed `verify` wrote its own logs;
                    // an agent's verify output went back to the agent.
                    let verify_logs = match t.kind {
                        TaskKind::Command | TaskKind::Wasm => true,
                        TaskKind::Agent => false,
                    };
                    if let (Some(false), true, Some(dir)) = (verify_passed, verify_logs, dir) {
                        t.stderr_log = verify_log_paths(&dir, task, *attempt)
                            .1
                            .display()
                            .to_string();
                    }
                    t.agent = agent.clone();
                    t.exit_code = outcome.exit_code();
                    t.duration_ms += duration_ms;
                    t.commit = commit.clone();
                    t.git_ref = git_ref.clone();
                    t.changed_files = changed_files.as_slice().into();
                    t.skipped_files = skipped_files.as_slice().into();
                    t.outside_paths = outside_paths.as_slice().into();
                    t.snapshot_ms += snapshot_ms.unwrap_or(0);
                    t.score = score.clone().map(Box::new);
                    t.diff = diff.map(Box::new);
                    s.commit = commit.as_deref().and_then(oid);
                    s.verify_passed = *verify_passed;
                }
            }
            EventBody::ExperimentDecided { task, decision } => {
                // The winner's result is the experiment's: what it gives
                // its dependents and the integration branch.
                let winner = decision
                    .winner
                    .as_ref()
                    .and_then(|w| self.slot_of(w))
                    .and_then(|w| {
                        let report = self.report.as_ref()?.tasks.get(w)?;
                        Some((
                            report.commit.clone(),
                            report.git_ref.clone(),
                            report.changed_files.clone(),
                            self.tasks.get(w)?.clone(),
                        ))
                    });
                if let Some((t, s)) = self.task_mut(task) {
                    t.experiment = Some(Box::new(decision.clone()));
                    if let Some((commit, git_ref, changed, state)) = winner {
                        t.commit = commit;
                        t.git_ref = git_ref;
                        t.changed_files = changed;
                        s.base = state.base;
                        s.commit = state.commit;
                    }
                }
            }
            EventBody::TaskFinished { .. }
            | EventBody::TaskMerged { .. }
            | EventBody::TaskConflicted { .. }
            | EventBody::TaskRequeued { .. }
            | EventBody::TestsReported { .. } => self.apply_end(event),
            // [`Self::apply`] hands this function only the events above.
            _ => {}
        }
    }

    /// [`Self::apply_attempt`] of the events of a task's end: its status, merge
    /// or conflict, re-queueing and tests.
    fn apply_end(&mut self, event: &Event) {
        match &event.body {
            EventBody::TaskFinished {
                task,
                status,
                reason,
            } => {
                if let Some((t, _)) = self.task_mut(task) {
                    t.status = *status;
                    t.reason = reason.clone();
                    let found = warnings(t);
                    t.warnings.retain(|w| !w.starts_with(CHANGED_NOTHING));
                    t.warnings.extend(found);
                }
            }
            EventBody::TaskMerged {
                task,
                commit,
                integration_commit,
                resolved,
            } => {
                if let Some((t, s)) = self.task_mut(task) {
                    t.status = TaskStatus::Merged;
                    s.rerun_note = None;
                    s.merged = oid(if *resolved {
                        integration_commit
                    } else {
                        commit
                    });
                }
                if let Some(r) = &mut self.report {
                    r.integration_commit = integration_commit.clone();
                }
            }
            EventBody::TaskConflicted {
                task,
                files,
                hunks,
                touched_by,
                ..
            } => {
                if let Some((t, _)) = self.task_mut(task) {
                    t.status = TaskStatus::Conflicted;
                    t.conflict_files = files.as_slice().into();
                    t.conflict_hunks = hunks.as_slice().into();
                    t.conflict_with = touched_by.as_slice().into();
                }
            }
            EventBody::TaskRequeued {
                task,
                rerun,
                repair,
                note,
                ..
            } => {
                // Pending again: its conflicting result is on its attempt's
                // ref (a repaired one's, merged, on the branch too), and no
                // longer the one to merge.
                if let Some((t, s)) = self.task_mut(task) {
                    t.status = TaskStatus::Pending;
                    t.reason = None;
                    if !repair {
                        t.conflict_reruns = *rerun;
                    }
                    s.repaired |= *repair;
                    s.rerun_note = note.clone();
                    t.conflict_files = ThinVec::new();
                    t.conflict_hunks = ThinVec::new();
                    t.conflict_with = ThinVec::new();
                    s.commit = None;
                    s.verify_passed = None;
                }
            }
            EventBody::TestsReported {
                task,
                attempt,
                tests,
                warning,
            } => {
                if let Some((t, _)) = self.task_mut(task) {
                    // The last attempt's report is the task's.
                    t.tests = tests.clone().map(Box::new);
                    if let Some(w) = warning {
                        t.warnings.push(format!("attempt {attempt}: {w}"));
                    }
                }
            }
            // [`Self::apply_attempt`] hands this function only the events above.
            _ => {}
        }
    }

    fn run_dir(&self) -> Option<std::path::PathBuf> {
        self.report
            .as_ref()
            .map(|r| run_dir(Path::new(&r.repo), &r.run))
    }

    fn task_mut(&mut self, id: &str) -> Option<(&mut TaskReport, &mut TaskState)> {
        let i = self.slot_of(id)?;
        let t = self.report.as_mut()?.tasks.get_mut(i)?;
        Some((t, self.tasks.get_mut(i)?))
    }

    /// The slot of task `id` (its place in `run_started`'s list).
    fn slot_of(&self, id: &str) -> Option<usize> {
        let reports = &self.report.as_ref()?.tasks;
        self.index.get(id, |i| reports[i].id.as_str())
    }

    /// The slot of task `i`.
    fn slot(&self, i: TaskIndex) -> Option<usize> {
        match &self.numbering {
            Some(numbering) => numbering.slots.get(i.get()).copied(),
            None => Some(i.get()),
        }
    }

    /// Numbers the tasks as the run's task table does: `ids` in the
    /// table's order (`TaskIndex`), every task the fold has among them
    /// (a dispatcher numbers them again as subtasks join). Err: the first
    /// id the fold does not know (its `run_started` did not list it).
    pub fn number<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>) -> Result<(), &'a str> {
        let mut numbering = Numbering {
            slots: Vec::new(),
            indices: vec![None; self.tasks.len()],
        };
        for id in ids {
            let slot = self.slot_of(id).ok_or(id)?;
            let i = TaskIndex::new(numbering.slots.len());
            numbering.slots.push(slot);
            if let Some(index) = numbering.indices.get_mut(slot) {
                *index = Some(i);
            }
        }
        self.numbering = Some(numbering);
        Ok(())
    }

    /// The index of task `id`.
    pub fn index(&self, id: &str) -> Option<TaskIndex> {
        let slot = self.slot_of(id)?;
        match &self.numbering {
            Some(numbering) => numbering.indices.get(slot).copied().flatten(),
            None => Some(TaskIndex::new(slot)),
        }
    }

    /// The report of task `i`.
    pub fn task(&self, i: TaskIndex) -> Option<&TaskReport> {
        self.report.as_ref()?.tasks.get(self.slot(i)?)
    }

    /// The status of task `i` (pending before `run_started`).
    pub fn status(&self, i: TaskIndex) -> TaskStatus {
        self.task(i).map_or(TaskStatus::Pending, |t| t.status)
    }

    /// Every task's report and state, in the order `run_started` listed
    /// them (then subtasks as spawned).
    pub fn tasks(&self) -> impl Iterator<Item = (&TaskReport, &TaskState)> {
        let reports = self.report.as_ref().map_or(&[][..], |r| r.tasks.as_slice());
        reports.iter().zip(&self.tasks)
    }

    /// What agent task `id` is doing as it runs, once it said anything.
    pub fn live_agent(&self, id: &str) -> Option<&LiveAgent> {
        self.agents.get(&self.slot_of(id)?)
    }

    /// What every agent task said it spent so far: tokens and cost, when
    /// any did.
    pub fn agents_spent(&self) -> Option<(u64, f64)> {
        (!self.agents.is_empty()).then(|| {
            self.agents
                .values()
                .fold((0, 0.0), |(t, c), a| (t + a.tokens, c + a.cost_usd))
        })
    }

    /// The git facts of task `i`.
    pub fn state(&self, i: TaskIndex) -> Option<&TaskState> {
        self.tasks.get(self.slot(i)?)
    }

    /// What task `i` gives its dependents and the integration branch: for
    /// a merged task what its merge recorded; for one that succeeded, its
    /// snapshot (a read-only task's is the commit it ran on); for one that
    /// ended otherwise, its last snapshot.
    pub fn result(&self, i: TaskIndex) -> Option<Oid> {
        let s = self.state(i)?;
        match self.status(i) {
            TaskStatus::Merged => s.merged.or(s.commit),
            TaskStatus::Succeeded => match self.task(i)?.isolation {
                Isolation::Readonly => s.base,
                Isolation::Worktree => s.commit,
            },
            _ => s.commit,
        }
    }

    /// The report so far (`None` before `run_started`).
    pub fn report(&self) -> Option<&RunReport> {
        self.report.as_ref()
    }

    pub fn into_report(self) -> Option<RunReport> {
        self.report
    }
}

/// The report of task `t` before anything happened to it, its logs in the
/// run directory `dir`.
/// The warning of a shard that runs `here`, entries another shard ran in
/// the task's last run.
fn regrouped(here: &[&String]) -> String {
    let named: Vec<String> = here
        .iter()
        .take(3)
        .map(|e| crate::escape::line(e).into_owned())
        .collect();
    let more = if here.len() > 3 { ", …" } else { "" };
    format!(
        "regrouped: {} of its entries ran in another shard last run ({}{more}); a test that fails only now may depend on what ran before it (`shard_grouping = \"pinned\"` keeps a grouping)",
        here.len(),
        named.join(", ")
    )
}

/// The start of the warning for a writing task that changed nothing.
pub const CHANGED_NOTHING: &str = "changed nothing";

/// What `t`, just finished, should be looked at for though it did not
/// fail: a task that may write and succeeded without changing a file
/// (a silent no-op, such as an in-place edit that matched nothing).
fn warnings(t: &TaskReport) -> Vec<String> {
    let wrote = t.isolation == Isolation::Worktree
        && t.subtasks.is_empty()
        && t.variant_of.is_none()
        && t.experiment.is_none()
        && t.commit.is_some();
    // A read-only task gets no `[setup]`: advice that would lose it says so.
    let set_up = t.setup_ms > 0 || t.setup_reused;
    match t.status == TaskStatus::Succeeded && wrote && t.changed_files.is_empty() {
        true => vec![format!(
            "{CHANGED_NOTHING}: it succeeded without changing a file (if it only checks, `isolation = \"readonly\"` says so{})",
            match set_up {
                true => ", but a read-only task gets no [setup]",
                false => "",
            }
        )],
        false => Vec::new(),
    }
}

fn new_task(dir: &Path, t: &TaskInfo) -> TaskReport {
    let (out, err) = log_paths(dir, &t.id, 1);
    TaskReport {
        id: t.id.clone(),
        kind: t.kind,
        isolation: t.isolation,
        deps: t.deps.as_slice().into(),
        status: TaskStatus::Pending,
        reason: None,
        exit_code: None,
        attempts: 0,
        duration_ms: 0,
        commit: None,
        git_ref: None,
        conflict_reruns: 0,
        setup_ms: 0,
        setup_reused: false,
        tests: None,
        changed_files: ThinVec::new(),
        skipped_files: ThinVec::new(),
        outside_paths: ThinVec::new(),
        snapshot_ms: 0,
        conflict_files: ThinVec::new(),
        conflict_hunks: ThinVec::new(),
        conflict_with: ThinVec::new(),
        stdout_log: out.display().to_string(),
        stderr_log: err.display().to_string(),
        agent: None,
        variant_of: t.variant_of.clone(),
        parent: crate::ids::parent_of(&t.id).map(str::to_string),
        subtasks: ThinVec::new(),
        replanned: None,
        warnings: ThinVec::new(),
        score: None,
        diff: None,
        experiment: None,
        jobs: ThinVec::new(),
    }
}

#[cfg(test)]
#[path = "fold_tests.rs"]
mod tests;

/// The merge queue's numbers of `report` as it stands.
fn queue_stats(report: &RunReport) -> swarm_protocol::verify::QueueStats {
    let culprits = report
        .tasks
        .iter()
        .filter(|t| t.status == TaskStatus::BrokeVerify)
        .count();
    swarm_protocol::verify::QueueStats::of(
        &report.verify_runs,
        u32::try_from(culprits).unwrap_or(u32::MAX),
    )
}
