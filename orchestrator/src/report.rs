//! The run report: what a run's journal adds up to (where its files are
//! is `crate::layout`'s). The dispatcher builds its final `report.json` with the same
//! fold ([`crate::fold`]) that `swarm status` applies to the journal on
//! disk, so the two always agree.

use swarm_protocol::{Event, RunReport};

pub use crate::layout::{
    cleanup_egress_log_path, cleanup_log_paths, egress_log_path, log_paths, run_dir,
    score_log_paths, setup_egress_log_path, setup_log_paths, verify_log_paths,
};

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
