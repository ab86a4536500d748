//! The run report: what a run's journal adds up to (where its files are
//! is `crate::layout`'s). The dispatcher builds its final `report.json` with the same
//! fold ([`crate::fold`]) that `swarm status` applies to the journal on
//! disk, so the two always agree.

use std::time::SystemTime;

use swarm_protocol::{Event, EventBody, Isolation, RunReport, TaskReport, TaskStatus};

pub use crate::layout::{
    cleanup_egress_log_path, cleanup_log_paths, egress_log_path, log_paths, run_dir,
    score_log_paths, setup_egress_log_path, setup_log_paths, verify_log_paths,
};

mod experiment;
pub use experiment::{CompareError, Experiment};

/// The report a list of events adds up to.
pub fn fold(events: &[Event]) -> Option<RunReport> {
    crate::fold::RunFold::of(events).into_report()
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

/// One run as `swarm runs` lists it (its `--json` form too).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRow {
    pub run: String,
    pub state: &'static str,
    /// RFC 3339, UTC, as in the journal.
    pub started_at: String,
    /// Seconds since it started.
    pub age_secs: u64,
    /// Tasks whose result is in the integration branch (read-only tasks
    /// that succeeded, which have nothing to merge, count here too).
    pub merged: usize,
    /// Tasks that failed, timed out or conflicted.
    pub failed: usize,
    pub total: usize,
    /// The integration branch, if it exists (none for a read-only run, or
    /// once `swarm clean --refs` deleted it).
    pub branch: Option<String>,
    pub exit_code: Option<i32>,
}

impl RunRow {
    /// The row of the run `report` describes (`driven`: see
    /// [`RunState::of`]), as of `now`; variants count through their
    /// experiment.
    pub fn of(report: &RunReport, driven: bool, branch: Option<String>, now: SystemTime) -> Self {
        let count = |pred: &dyn Fn(&TaskReport) -> bool| {
            report
                .tasks
                .iter()
                .filter(|t| t.variant_of.is_none() && pred(t))
                .count()
        };
        let age_secs = humantime::parse_rfc3339(&report.started_at)
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .map_or(0, |d| d.as_secs());
        Self {
            run: report.run.clone(),
            state: RunState::of(report, driven).as_str(),
            started_at: report.started_at.clone(),
            age_secs,
            merged: count(&|t| {
                t.status == TaskStatus::Merged
                    || (t.status == TaskStatus::Succeeded && t.isolation == Isolation::Readonly)
            }),
            failed: count(&|t| {
                matches!(
                    t.status,
                    TaskStatus::Failed
                        | TaskStatus::TimedOut
                        | TaskStatus::Stalled
                        | TaskStatus::Conflicted
                        | TaskStatus::BrokeVerify
                )
            }),
            total: count(&|_| true),
            branch,
            exit_code: report.exit_code,
        }
    }
}

/// Adds to each running task of `report` the time since its attempt going
/// on started (its last `task_started` in `events`), as of `now`: a
/// running task's time so far (the report counts ended attempts only).
pub fn add_running_time(report: &mut RunReport, events: &[Event], now: SystemTime) {
    let mut started = std::collections::HashMap::new();
    for event in events {
        if let EventBody::TaskStarted { task, .. } = &event.body {
            started.insert(task.as_str(), event.ts.as_str());
        }
    }
    for task in &mut report.tasks {
        if task.status != TaskStatus::Running {
            continue;
        }
        let since = started
            .get(task.id.as_str())
            .and_then(|ts| humantime::parse_rfc3339_weak(ts).ok())
            .and_then(|at| now.duration_since(at).ok());
        if let Some(since) = since {
            task.duration_ms += crate::millis(since);
        }
    }
}
