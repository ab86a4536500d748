//! The run report as a fold over journal events. The dispatcher builds its
//! final `report.json` with the same fold that `swarm status` applies to the
//! journal on disk, so the two always agree.

use std::collections::HashMap;
use std::path::Path;

use swarm_protocol::{Event, EventBody, RunReport, TaskKind, TaskReport, TaskStatus};

/// Folds events into a [`RunReport`].
#[derive(Debug, Default)]
pub struct ReportBuilder {
    report: Option<RunReport>,
    index: HashMap<String, usize>,
}

/// Where a task attempt's logs are, relative to nothing: absolute paths
/// under the run directory.
pub fn log_paths(
    run_dir: &Path,
    task: &str,
    attempt: u32,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = run_dir.join("logs").join(task);
    (
        dir.join(format!("{attempt}.out")),
        dir.join(format!("{attempt}.err")),
    )
}

/// Where the output of an attempt's `verify` command is: apart from the
/// command's own (`<attempt>.verify.out|.err`).
pub fn verify_log_paths(
    run_dir: &Path,
    task: &str,
    attempt: u32,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = run_dir.join("logs").join(task);
    (
        dir.join(format!("{attempt}.verify.out")),
        dir.join(format!("{attempt}.verify.err")),
    )
}

/// The directory of run `run` in the repository at `repo`.
pub fn run_dir(repo: &Path, run: &str) -> std::path::PathBuf {
    repo.join(crate::state::STATE_DIR).join("runs").join(run)
}

impl ReportBuilder {
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
                self.index = tasks
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (t.id.clone(), i))
                    .collect();
                self.report = Some(RunReport {
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
                    tasks: tasks
                        .iter()
                        .map(|t| {
                            let (out, err) = log_paths(&dir, &t.id, 1);
                            TaskReport {
                                id: t.id.clone(),
                                kind: t.kind,
                                isolation: t.isolation,
                                deps: t.deps.clone(),
                                status: TaskStatus::Pending,
                                reason: None,
                                exit_code: None,
                                attempts: 0,
                                duration_ms: 0,
                                commit: None,
                                git_ref: None,
                                changed_files: Vec::new(),
                                skipped_files: Vec::new(),
                                snapshot_ms: 0,
                                conflict_files: Vec::new(),
                                conflict_hunks: Vec::new(),
                                conflict_with: Vec::new(),
                                stdout_log: out.display().to_string(),
                                stderr_log: err.display().to_string(),
                                agent: None,
                            }
                        })
                        .collect(),
                });
            }
            EventBody::TaskStarted { task, attempt, .. } => {
                let dir = self
                    .report
                    .as_ref()
                    .map(|r| run_dir(Path::new(&r.repo), &r.run));
                if let (Some(t), Some(dir)) = (self.task(task), dir) {
                    let (out, err) = log_paths(&dir, task, *attempt);
                    t.status = TaskStatus::Running;
                    t.attempts = *attempt;
                    t.stdout_log = out.display().to_string();
                    t.stderr_log = err.display().to_string();
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
                snapshot_ms,
                agent,
            } => {
                let dir = self
                    .report
                    .as_ref()
                    .map(|r| run_dir(Path::new(&r.repo), &r.run));
                if let Some(t) = self.task(task) {
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
                    t.changed_files = changed_files.clone();
                    t.skipped_files = skipped_files.clone();
                    t.snapshot_ms += snapshot_ms.unwrap_or(0);
                }
            }
            EventBody::TaskFinished {
                task,
                status,
                reason,
            } => {
                if let Some(t) = self.task(task) {
                    t.status = *status;
                    t.reason = reason.clone();
                }
            }
            EventBody::TaskMerged {
                task,
                integration_commit,
                ..
            } => {
                if let Some(t) = self.task(task) {
                    t.status = TaskStatus::Merged;
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
                if let Some(t) = self.task(task) {
                    t.status = TaskStatus::Conflicted;
                    t.conflict_files = files.clone();
                    t.conflict_hunks = hunks.clone();
                    t.conflict_with = touched_by.clone();
                }
            }
            // Progress only: the agent's report comes with its attempt.
            EventBody::TaskQueued { .. }
            | EventBody::AgentTool { .. }
            | EventBody::AgentUsage { .. }
            | EventBody::BudgetSpent { .. } => {}
            EventBody::RunResumed {
                pending,
                integration_commit,
                ..
            } => {
                for id in pending {
                    if let Some(t) = self.task(id) {
                        t.status = TaskStatus::Pending;
                        t.reason = None;
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
        }
    }

    fn task(&mut self, id: &str) -> Option<&mut TaskReport> {
        let i = *self.index.get(id)?;
        self.report.as_mut()?.tasks.get_mut(i)
    }

    /// The report so far (`None` before `run_started`).
    pub fn report(&self) -> Option<&RunReport> {
        self.report.as_ref()
    }

    pub fn into_report(self) -> Option<RunReport> {
        self.report
    }
}

/// The report a list of events adds up to.
pub fn fold(events: &[Event]) -> Option<RunReport> {
    let mut builder = ReportBuilder::default();
    for event in events {
        builder.apply(event);
    }
    builder.into_report()
}

/// Where a run stands, as `swarm status` and `swarm runs` say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Its journal has no end and a coordinator holds its lock.
    Running,
    /// Its journal has no end and nobody drives it: the coordinator died.
    Interrupted,
    /// Every task succeeded.
    FinishedOk,
    /// It ended with failed, conflicted or blocked tasks.
    Failed,
    /// It was cancelled (Ctrl-C, SIGTERM).
    Stopped,
}

impl RunState {
    /// The state of the run `report` describes; `driven` is whether a
    /// coordinator holds its lock (see `run::is_driven`).
    pub fn of(report: &RunReport, driven: bool) -> Self {
        match report.exit_code {
            None if driven => Self::Running,
            None => Self::Interrupted,
            Some(crate::exit::SUCCESS) => Self::FinishedOk,
            Some(crate::exit::INTERRUPTED) => Self::Stopped,
            Some(_) => Self::Failed,
        }
    }

    /// The words shown to users (and in `swarm runs --json`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Interrupted => "interrupted",
            Self::FinishedOk => "finished ok",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
        }
    }
}
