//! Running a plan: preparation (every check that can fail before anything is
//! changed), then the dispatcher, which owns all run state and drives task
//! workers, merges, the journal and the report from one loop.

mod adopted;
mod blocking;
mod cgroup;
mod dispatch;
mod error;
mod executor;
mod executor_for;
mod experiment;
pub mod land;
pub mod landing;
mod lineage;
mod list;
mod local;
pub(crate) use local::layers::probe as probe_layers;
mod lock;
mod lost_branch;
pub(crate) mod names;
mod options;
mod prepared;
pub mod remote;
mod replan;
pub(crate) mod resume;
pub mod slurm;
mod spawn;
mod table;
mod verify;
pub mod warm;
mod writer;

pub use crate::layout::transcript_path;
pub use error::{RUN_NAME_RULE, RunError};
pub use list::{ListError, Listing, Note, list_runs};
pub use lock::{RunLock, is_held as is_driven};
use names::claim;
pub use names::{
    check_run_name, discard_unstarted, free_run_name, latest_run, lock_run, never_started,
    open_run_state,
};
pub use options::{
    BACKGROUND_NICE, BuildCache, CliProgram, ExecutorOptions, McpProgram, RunOptions,
    SandboxSettings,
};
use prepared::resume_home;
pub use prepared::{Prepared, check_plan, prepare, prepare_resume};

/// Which cgroups tasks get on this machine (`"v2"`, `"v1"`), or `None`
/// when their limits are rlimits only.
pub fn cgroup_support() -> Option<&'static str> {
    cgroup::Cgroups::probe()
}

use swarm_protocol::{Event, RunReport};
use swarm_sandbox::Stop;
use tokio::sync::watch;

use crate::state::State;
use crate::worktree_home::WorktreeHome;

/// Runs a prepared plan to the end (or until `stop` says otherwise).
///
/// `observer` sees every event as it is journalled; the returned report is
/// the fold of exactly those events.
pub async fn execute(
    mut prepared: Prepared,
    observer: &mut (dyn FnMut(&Event) + Send),
    stop: watch::Receiver<Option<Stop>>,
) -> Result<RunReport, RunError> {
    // Everything the run writes into exists, checked, before the
    // dispatcher writes through plain paths.
    State::check_untracked(&prepared.repo)?;
    // Excluded before `.swarm` exists: another process's `git status`
    // (a second run's check for uncommitted changes) never counts it.
    prepared
        .repo
        .exclude(&format!("/{}/", crate::state::STATE_DIR))?;
    let state = State::create(&prepared.repo.workdir)?;
    let lock = claim(
        &prepared.repo,
        &mut prepared.run,
        &prepared.plan.name,
        prepared.options.name.is_some(),
        &state,
    )?;
    state.begin_run(&prepared.run)?;
    let home = WorktreeHome::create(&prepared.options.worktree_root, &prepared.repo)?;
    home.begin_run(&prepared.run)?;
    dispatch::Dispatcher::start(prepared, lock, &home, observer, stop)?
        .run()
        .await
}

/// Continues a run whose coordinator died or was cancelled, from its journal
/// and git; the report covers the whole run.
pub async fn resume(
    prepared: Prepared,
    observer: &mut (dyn FnMut(&Event) + Send),
    stop: watch::Receiver<Option<Stop>>,
) -> Result<RunReport, RunError> {
    let Some(state) = open_run_state(&prepared.repo, &prepared.run)? else {
        return Err(RunError::NotResumable {
            run: prepared.run.clone(),
            why: format!("swarm has not run in {}", prepared.repo.workdir.display()),
        });
    };
    if state
        .entries(&[crate::layout::RUNS])?
        .iter()
        .all(|e| e.name != prepared.run)
    {
        return Err(RunError::NotResumable {
            run: prepared.run.clone(),
            why: "no such run (see .swarm/runs/)".into(),
        });
    }
    for parts in [
        &[
            crate::layout::RUNS,
            prepared.run.as_str(),
            crate::layout::LOGS,
        ][..],
        &[crate::layout::RUNS, &prepared.run, crate::layout::TMP],
    ] {
        state.ensure_dir(parts)?;
    }
    let home = resume_home(&prepared)?;
    home.begin_run(&prepared.run)?;
    dispatch::Dispatcher::resume(prepared, &home, observer, stop)?
        .run()
        .await
}
